/**
 * Components from a folder of Kubernetes YAML: Component (dapr.io/v1alpha1), Secret (v1), and the local secret
 * stores. Produces ResolvedComponents (secretKeyRef / envRef resolved) for the sidecar and a secret lookup for
 * KEDA's TriggerAuthentication.
 */
export { loadResources, resolveResources } from './resources.js';
export type { LoadedResources, SkippedManifest, SecretLookup, LoadOptions } from './resources.js';
export { loadManifests, parseManifests } from './manifests.js';
export type { Manifest, FieldPath } from './manifests.js';
export { parseSubscription, type DeclaredSubscription } from './subscriptions.js';
