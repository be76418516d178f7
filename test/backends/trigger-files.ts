/**
 * A trigger as a user's files bring it: its metadata in a ScaledObject, its authParams in a TriggerAuthentication
 * backed by a Secret, its `<param>FromEnv` values in the app's environment — loaded by the code `qscale up` and
 * `qscale validate` use, so every parameter arrives from where KEDA would read it.
 */
import { parseManifests, resolveResources } from '../../src/components/index.js';
import { loadScaledObjects } from '../../src/autoscaler/index.js';
import type { ResolvedTrigger } from '../../src/autoscaler/scaler.js';

export const TRIGGER_FILE = 'keda-table.yaml';

export interface TriggerFiles {
  metadata: Record<string, string>;
  /** TriggerAuthentication parameters (secretTargetRef to a Secret holding them). */
  auth?: Record<string, string>;
  /** The app's environment, for `<param>FromEnv`. */
  env?: Record<string, string>;
  /** TriggerAuthentication podIdentity provider. */
  podIdentity?: string;
}

const q = (v: string): string => JSON.stringify(v);

/** Trigger `index` (the others before it are copies) of ScaledObject `table` in keda-table.yaml. */
export function loadTrigger(type: string, files: TriggerFiles, index = 0): ResolvedTrigger {
  const docs: string[] = [];
  const auth = files.auth ?? {};
  const authKeys = Object.keys(auth);
  const withAuth = authKeys.length > 0 || files.podIdentity !== undefined;
  if (authKeys.length > 0) {
    docs.push(['apiVersion: v1', 'kind: Secret', 'metadata:', '  name: table-auth', 'stringData:', ...authKeys.map((k) => `  ${k}: ${q(auth[k] ?? '')}`)].join('\n'));
  }
  if (withAuth) {
    docs.push(
      [
        'apiVersion: keda.sh/v1alpha1',
        'kind: TriggerAuthentication',
        'metadata:',
        '  name: table-auth',
        'spec:',
        ...(files.podIdentity ? ['  podIdentity:', `    provider: ${files.podIdentity}`] : []),
        ...(authKeys.length > 0 ? ['  secretTargetRef:', ...authKeys.flatMap((k) => [`  - parameter: ${k}`, '    name: table-auth', `    key: ${k}`])] : []),
      ].join('\n'),
    );
  }
  const keys = Object.entries(files.metadata);
  const triggers = Array.from({ length: index + 1 }, () => [
    `  - type: ${type}`,
    '    metadata:',
    ...(keys.length === 0 ? ['      {}'] : keys.map(([k, v]) => `      ${k}: ${q(v)}`)),
    ...(withAuth ? ['    authenticationRef:', '      name: table-auth'] : []),
  ]).flat();
  docs.push(['apiVersion: keda.sh/v1alpha1', 'kind: ScaledObject', 'metadata:', '  name: table', 'spec:', '  scaleTargetRef:', '    name: consumer', '  triggers:', ...triggers].join('\n'));
  const manifests = parseManifests(docs.join('\n---\n') + '\n', TRIGGER_FILE);
  const res = resolveResources(manifests, { env: {} });
  const loaded = loadScaledObjects(res.manifests, { secrets: res.secrets, env: files.env ?? {} });
  const t = loaded.scaledObjects[0]?.triggers[index];
  if (!t) throw new Error('no trigger');
  return t;
}
