/**
 * Which app each Kubernetes workload is: a Deployment's `dapr.io/app-id` annotation (the Dapr injector's) names the
 * app id, and its spec.replicas the fixed replica count; a ScaledObject's scaleTargetRef names the Deployment.
 * Without a Deployment in the folder, the target's name is taken as the app id.
 */
import type { Manifest } from '../components/manifests.js';

export interface WorkloadInfo {
  deploymentName: string;
  appId: string;
  replicas: number;
}

export function readDeployments(manifests: readonly Manifest[]): Map<string, WorkloadInfo> {
  const out = new Map<string, WorkloadInfo>();
  for (const m of manifests) {
    if (m.kind !== 'Deployment') continue;
    const body = m.body as {
      spec?: { replicas?: unknown; template?: { metadata?: { annotations?: Record<string, unknown> } } };
    };
    const ann = body.spec?.template?.metadata?.annotations ?? {};
    const appId = typeof ann['dapr.io/app-id'] === 'string' ? ann['dapr.io/app-id'] : m.name;
    const replicas = typeof body.spec?.replicas === 'number' && body.spec.replicas >= 0 ? body.spec.replicas : 1;
    out.set(m.name, { deploymentName: m.name, appId, replicas });
  }
  return out;
}

/** The app id a scale target refers to. */
export function appIdForTarget(target: string, deployments: Map<string, WorkloadInfo>): string {
  return deployments.get(target)?.appId ?? target;
}
