/**
 * The multi-app run file (`dapr run -f dapr.yaml`): how to start each app locally. It is the one local-only file;
 * everything else comes from the Kubernetes YAML in the same folder.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Node } from 'yaml';
import { ConfigError } from '../errors.js';

export interface RunFileApp {
  appId: string;
  /** Absolute working directory of the app's command. */
  appDir: string;
  /** The port the app listens on as the run file gives it (the supervisor may pick another for replicas). */
  appPort: number | undefined;
  /** The sidecar's HTTP port as the run file gives it (otherwise allocated). */
  daprHttpPort: number | undefined;
  command: string[];
  env: Record<string, string>;
  /** Absolute resources folders for this app's sidecar. */
  resourcesPaths: string[];
  appMaxConcurrency: number | undefined;
  /** Position in the run file's apps list. */
  index: number;
  /** The app's line in the run file. */
  line: number;
  /** The line of each field the app gives (command, appDirPath, appPort, ...), for errors that point at it. */
  lines: Record<string, number>;
}

export interface RunFile {
  file: string;
  apps: RunFileApp[];
  notices: string[];
}

const APP_FIELDS = new Set([
  'appID', 'appDirPath', 'appPort', 'daprHTTPPort', 'daprGRPCPort', 'command', 'env', 'resourcesPath', 'resourcesPaths',
  'appProtocol', 'appMaxConcurrency', 'appHealthCheckPath', 'enableApiLogging', 'logLevel', 'appLogDestination',
  'daprdLogDestination', 'configFilePath', 'metricsPort', 'unixDomainSocket', 'placementHostAddress',
]);

export async function findRunFile(folder: string): Promise<string | undefined> {
  for (const name of ['dapr.yaml', 'dapr.yml']) {
    const p = path.join(folder, name);
    try {
      await fs.access(p);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

export async function loadRunFile(file: string): Promise<RunFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new ConfigError(`run file not found`, { file });
  }
  return parseRunFile(text, file);
}

export function parseRunFile(text: string, file: string): RunFile {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const firstErr = doc.errors[0];
  if (firstErr) throw new ConfigError(`invalid YAML: ${firstErr.message.split('\n')[0]}`, { file, line: lc.linePos(firstErr.pos[0]).line });
  const lineOf = (p: Array<string | number>): number => {
    let node = doc.contents as Node | null;
    let line = 1;
    for (const k of p) {
      if (isMap(node)) {
        const pair = node.items.find((it) => (isScalar(it.key) ? it.key.value : it.key) === k);
        if (!pair) break;
        const key = pair.key as Node;
        if (key.range) line = lc.linePos(key.range[0]).line;
        node = pair.value as Node | null;
      } else if (isSeq(node) && typeof k === 'number') {
        const item = node.items[k] as Node | undefined;
        if (!item) break;
        if (item.range) line = lc.linePos(item.range[0]).line;
        node = item;
      } else break;
    }
    return line;
  };
  const err = (msg: string, p: Array<string | number>): ConfigError =>
    new ConfigError(msg, { file, line: lineOf(p), field: p.join('.') });
  const root = doc.toJS() as Record<string, unknown> | null;
  if (!root || typeof root !== 'object') throw new ConfigError('run file is empty: expected version, common and apps', { file, line: 1 });
  if (root.version !== undefined && String(root.version) !== '1') throw err(`unsupported run file version '${String(root.version)}' (expected 1)`, ['version']);
  const base = path.dirname(path.resolve(file));
  const notices: string[] = [];
  const common = (root.common ?? {}) as Record<string, unknown>;
  if (typeof common !== 'object' || Array.isArray(common)) throw err('common must be a mapping', ['common']);
  const commonEnv = readEnv(common.env, ['common', 'env'], err);
  const commonResources = readResources(common, base, ['common'], err);
  if (!Array.isArray(root.apps) || root.apps.length === 0) throw err('apps must be a non-empty list', ['apps']);
  const seen = new Set<string>();
  const apps = root.apps.map((raw, i): RunFileApp => {
    const at = ['apps', i];
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw err(`apps[${i}] must be a mapping`, at);
    const a = raw as Record<string, unknown>;
    for (const k of Object.keys(a)) {
      if (!APP_FIELDS.has(k)) notices.push(`${file}:${lineOf([...at, k])}: apps[${i}].${k} is not a run file field; ignored`);
    }
    if (typeof a.appDirPath !== 'string' || a.appDirPath === '') throw err(`apps[${i}] is missing appDirPath`, at);
    const appDir = path.resolve(base, a.appDirPath);
    const appId = typeof a.appID === 'string' && a.appID !== '' ? a.appID : path.basename(appDir);
    if (seen.has(appId)) throw err(`app id '${appId}' appears twice`, [...at, 'appID']);
    seen.add(appId);
    if (!Array.isArray(a.command) || a.command.length === 0 || a.command.some((c) => typeof c !== 'string')) {
      throw err(`apps[${i}] (${appId}): command must be a non-empty list of strings, e.g. ["node", "app.js"]`, [...at, 'command']);
    }
    const port = (key: string): number | undefined => {
      const v = a[key];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) throw err(`apps[${i}] (${appId}): ${key} must be a port number 1-65535`, [...at, key]);
      return v;
    };
    const appMaxConcurrency = a.appMaxConcurrency;
    if (appMaxConcurrency !== undefined && (typeof appMaxConcurrency !== 'number' || !Number.isInteger(appMaxConcurrency) || appMaxConcurrency < 1)) {
      throw err(`apps[${i}] (${appId}): appMaxConcurrency must be a positive integer`, [...at, 'appMaxConcurrency']);
    }
    const own = readResources(a, base, at, err);
    return {
      appId,
      appDir,
      appPort: port('appPort'),
      daprHttpPort: port('daprHTTPPort'),
      command: a.command as string[],
      env: { ...commonEnv, ...readEnv(a.env, [...at, 'env'], err) },
      resourcesPaths: own.length > 0 ? own : commonResources.length > 0 ? commonResources : [base],
      appMaxConcurrency: appMaxConcurrency as number | undefined,
      index: i,
      line: lineOf(at),
      lines: Object.fromEntries(Object.keys(a).map((k) => [k, lineOf([...at, k])])),
    };
  });
  return { file, apps, notices };
}

type ErrFn = (msg: string, p: Array<string | number>) => ConfigError;

function readEnv(v: unknown, at: Array<string | number>, err: ErrFn): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw err('env must be a mapping of NAME: value', at);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (val !== null && typeof val === 'object') throw err(`env ${k} must be a plain value`, [...at, k]);
    out[k] = val === null || val === undefined ? '' : String(val);
  }
  return out;
}

function readResources(obj: Record<string, unknown>, base: string, at: Array<string | number>, err: ErrFn): string[] {
  const out: string[] = [];
  if (obj.resourcesPath !== undefined) {
    if (typeof obj.resourcesPath !== 'string') throw err('resourcesPath must be a folder path', [...at, 'resourcesPath']);
    out.push(path.resolve(base, obj.resourcesPath));
  }
  if (obj.resourcesPaths !== undefined) {
    if (!Array.isArray(obj.resourcesPaths) || obj.resourcesPaths.some((p) => typeof p !== 'string')) throw err('resourcesPaths must be a list of folder paths', [...at, 'resourcesPaths']);
    for (const p of obj.resourcesPaths as string[]) out.push(path.resolve(base, p));
  }
  return out;
}
