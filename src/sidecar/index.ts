/**
 * The Dapr-compatible sidecar: daprd's HTTP bindings API in front of a backend, and the delivery loop into the app.
 */
export { startSidecar } from './sidecar.js';
export type { SidecarOptions, SidecarHandle, DrainResult, BackendFactory } from './options.js';
export { DEFAULT_GRACE_MS, DEFAULT_HTTP_PORT, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES } from './options.js';
export { API_ERRORS, type ApiErrorCode } from './http/errors.js';
export type { SidecarStats } from './metadata.js';
export type { ReaderStats, ReaderState } from './input.js';
