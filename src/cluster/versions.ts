/**
 * The versions `qscale validate --cluster` checks against, named once: the docs, the output and the tests read them
 * from here.
 */
export const KUBERNETES_VERSION = '1.33';
/** Where the Kubernetes schemas come from: the OpenAPI spec of that release, compiled by this package. */
export const KUBERNETES_SCHEMAS = 'kubernetes-models 4.5.1';
/** The KEDA CRDs the ScaledObject / TriggerAuthentication / ScaledJob schemas follow (kedacore/keda 8b4f083ca, after v2.20.1). */
export const KEDA_VERSION = '2.20';
/** The Dapr CRDs (dapr/dapr d8450742ce, after v1.18.0-rc.1) and component metadata (components-contrib c23900d27). */
export const DAPR_VERSION = '1.18';

export function versionsLine(): string {
  return `Kubernetes ${KUBERNETES_VERSION} (${KUBERNETES_SCHEMAS}), KEDA ${KEDA_VERSION}, Dapr ${DAPR_VERSION}`;
}
