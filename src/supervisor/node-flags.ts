/**
 * Node/V8 flags of every sidecar qscale starts (`qscale up`'s replicas and standbys, and the benches, which measure
 * what `qscale up` runs).
 *
 * `--max-semi-space-size=2` (MiB) caps V8's young generation, which otherwise grows to 16 MiB a semi-space under a
 * steady stream of short-lived objects — exactly a sidecar's per-message garbage. Measured on a consumer sidecar
 * (docs/benchmarks.md "Sidecar start-up memory and V8 flags"): ~5 MiB less USS idle and ~15–20 MiB less at peak,
 * at the same CPU per message. It made start-up no faster or slower within the noise, and a warm sidecar is started
 * ahead of the replica that adopts it anyway. On the command line, these take precedence over NODE_OPTIONS.
 */
export const SIDECAR_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
