import type { Manifest } from './manifests.js';
import type { ResolvedComponent } from '../backends/types.js';
import { loadManifests } from './manifests.js';

/** Looks up a Kubernetes Secret's key (or a local secret store's entry). Undefined when absent. */
export type SecretLookup = (name: string, key: string) => string | undefined;

export interface SkippedManifest {
  kind: string;
  name: string;
  file: string;
  line: number;
  reason: string;
}

export interface LoadOptions {
  /** Only components whose scopes include this app id (or have no scopes) are kept. */
  appId?: string;
  /** Environment for envRef and secretstores.local.env (defaults to process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface LoadedResources {
  /** Binding components for this app, secrets resolved (secret stores themselves are not listed). */
  components: ResolvedComponent[];
  /** Every manifest read, for the other kinds' parsers (ScaledObject, TriggerAuthentication). */
  manifests: Manifest[];
  /** Kubernetes Secrets in the folder, then local secret stores. */
  secrets: SecretLookup;
  /** Kinds and components not used here, with why. */
  skipped: SkippedManifest[];
}

export async function loadResources(paths: readonly string[], options: LoadOptions = {}): Promise<LoadedResources> {
  return resolveResources(await loadManifests(paths), options);
}

export function resolveResources(_manifests: Manifest[], _options: LoadOptions = {}): LoadedResources {
  throw new Error('not implemented yet');
}
