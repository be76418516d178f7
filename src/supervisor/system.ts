/**
 * `qscale up`: reads a folder (Kubernetes YAML + the dapr.yaml run file), starts every app with its sidecar, and
 * scales the apps a ScaledObject targets. The control path is one straight line: scalers → KEDA step → HPA step →
 * Deployment.scaleTo, driven by the real clock (ScaleLoop) with the same pure functions the simulator uses.
 */
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { loadManifests, type Manifest } from '../components/manifests.js';
import { resolveResources } from '../components/resources.js';
import { ConfigError, errorMessage } from '../errors.js';
import { createLogSink, type LogSink } from './logs.js';
import { findRunFile, loadRunFile, type RunFile, type RunFileApp } from './runfile.js';
import { Deployment } from './deployment.js';
import { readDeployments, appIdForTarget } from './apps.js';
import { startControlServer } from './control.js';
import { removeSupervisorFile, writeSupervisorFile, type DecisionRecord, type QueueState, type SystemStatus } from './state.js';
import { ScaleLoop, type ScaleLoopOptions } from './scaleloop.js';
import { createBackend, createScaler, findBackend } from '../backends/registry.js';
import { loadScaledObjects } from '../autoscaler/index.js';
import type { Backend, ResolvedComponent } from '../backends/types.js';
import { createLogger } from '../util/log.js';

export interface SystemOptions {
  folder: string;
  runFile?: string;
  embedded: boolean;
  dataDir: string;
  syncPeriodMs: number;
  downscaleStabilizationMs: number;
  graceMs: number;
  controlPort: number;
  instantActivation: boolean;
  logs?: LogSink;
}

export interface RunningSystem {
  status(): Promise<SystemStatus>;
  controlUrl: string;
  producerUrl: string | undefined;
  deployments: Map<string, Deployment>;
  loops: ScaleLoop[];
  notices: string[];
  /** Graceful: stop scaling, drain every replica, close. */
  stop(): Promise<void>;
}

const MAX_DECISIONS = 200;

export async function startSystem(opts: SystemOptions): Promise<RunningSystem> {
  const logs = opts.logs ?? createLogSink();
  const folder = path.resolve(opts.folder);
  const runFilePath = opts.runFile ? path.resolve(opts.runFile) : await findRunFile(folder);
  if (!runFilePath) {
    throw new ConfigError(`no dapr.yaml run file in ${opts.folder}: it says how to start each app (see examples/seed/dapr.yaml), or pass --run-file`, { file: opts.folder });
  }
  const runFile: RunFile = await loadRunFile(runFilePath);
  const notices = [...runFile.notices];
  const manifests: Manifest[] = await loadManifests([folder]);
  const deploymentsInfo = readDeployments(manifests);

  // Fail fast on config errors, for every app, before anything starts.
  const componentsByApp = new Map<string, ResolvedComponent[]>();
  for (const app of runFile.apps) {
    const appManifests = samePaths(app.resourcesPaths, [folder]) ? manifests : await loadManifests(app.resourcesPaths);
    const r = resolveResources(appManifests, { appId: app.appId, env: { ...process.env, ...app.env } });
    for (const n of r.notices) if (!notices.includes(n)) notices.push(n);
    for (const c of r.components) {
      const def = findBackend(c.type);
      if (!def) continue; // the sidecar reports unsupported types with file:line when it starts
      def.metadata.parse(c.metadata, { subject: `component ${c.name} (${c.type})`, where: c.where });
    }
    componentsByApp.set(app.appId, r.components);
  }
  const secrets = resolveResources(manifests, {}).secrets;

  const decisions: DecisionRecord[] = [];
  const record = (d: DecisionRecord): void => {
    decisions.push(d);
    if (decisions.length > MAX_DECISIONS) decisions.splice(0, decisions.length - MAX_DECISIONS);
    logs.system(`${d.scaledObject}: ${d.reason}`);
  };

  const deployments = new Map<string, Deployment>();
  const appById = new Map(runFile.apps.map((a) => [a.appId, a]));
  for (const app of runFile.apps) {
    deployments.set(app.appId, new Deployment({ app, embedded: opts.embedded, dataDir: path.resolve(opts.dataDir), graceMs: opts.graceMs, logs, fixedPorts: true }));
  }

  // ScaledObjects → one loop each, targeting an app of the run file.
  const scaling = loadScaledObjects(manifests, {
    secrets,
    env: (target: string) => appById.get(appIdForTarget(target, deploymentsInfo))?.env,
  });
  notices.push(...scaling.notices);
  const loopOpts: ScaleLoopOptions = {
    syncPeriodMs: opts.syncPeriodMs,
    downscaleStabilizationMs: opts.downscaleStabilizationMs,
    instantActivation: opts.instantActivation,
    record,
  };
  const loops: ScaleLoop[] = [];
  for (const config of scaling.scaledObjects) {
    const spec = config.spec;
    const appId = appIdForTarget(spec.target, deploymentsInfo);
    const dep = deployments.get(appId);
    if (!dep) {
      const at = spec.where(['spec', 'scaleTargetRef', 'name']);
      throw new ConfigError(
        `ScaledObject ${spec.name}: scaleTargetRef '${spec.target}' matches no app of ${path.relative(process.cwd(), runFile.file) || runFile.file} (apps: ${[...deployments.keys()].join(', ')})`,
        { file: at.file, line: at.line, field: 'spec.scaleTargetRef.name' },
      );
    }
    const scalers = config.triggers.map((t) => createScaler(t, { embedded: opts.embedded, dataDir: path.resolve(opts.dataDir) }));
    loops.push(new ScaleLoop(config, dep, scalers, loopOpts));
  }

  // Queue depth for status: the input bindings of the scaled apps.
  const queueBackends: Array<{ component: ResolvedComponent; backend: Backend; queue: string }> = [];
  const scaledApps = new Set(loops.map((l) => l.appId));
  const logger = createLogger('supervisor');
  for (const appId of scaledApps) {
    for (const c of componentsByApp.get(appId) ?? []) {
      const def = findBackend(c.type);
      if (!def) continue;
      const direction = (c.metadata.direction ?? '').toLowerCase();
      if (direction && !direction.includes('input')) continue;
      try {
        const backend = createBackend(c, { logger, dataDir: path.resolve(opts.dataDir) }, { embedded: opts.embedded });
        await withTimeout(backend.init(), c.initTimeoutMs, `component ${c.name} (${c.type}) did not initialise within ${c.initTimeoutMs} ms`);
        queueBackends.push({ component: c, backend, queue: def.queueName(c) });
      } catch (err) {
        notices.push(`queue depth of ${c.name} unavailable in status: ${errorMessage(err)}`);
      }
    }
  }

  // Fixed-size apps start now; scaled apps start at the Deployment's replicas and the loop takes over.
  for (const app of runFile.apps) {
    const dep = deployments.get(app.appId)!;
    const loop = loops.find((l) => l.appId === app.appId);
    const info = [...deploymentsInfo.values()].find((d) => d.appId === app.appId);
    const initial = loop ? loop.initialReplicas(info?.replicas) : info?.replicas ?? 1;
    await dep.scaleTo(initial);
  }
  for (const l of loops) l.start();

  const producer = producerApp(runFile.apps);
  const producerUrl = producer ? `http://127.0.0.1:${deployments.get(producer.appId)!.all()[0]?.opts.appPort ?? producer.appPort}` : undefined;
  const startedAt = Date.now();

  const status = async (): Promise<SystemStatus> => {
    await Promise.all([...deployments.values()].map((d) => d.refreshInFlight()));
    const now = Date.now();
    const queues: QueueState[] = await Promise.all(
      queueBackends.map(async ({ component, backend, queue }) => {
        try {
          const d = await backend.depth();
          return { binding: component.name, queue, ...d };
        } catch (err) {
          return { binding: component.name, queue, ready: 0, inFlight: 0, deadLettered: 0, error: errorMessage(err) };
        }
      }),
    );
    return {
      pid: process.pid,
      startedAt,
      embedded: opts.embedded,
      dataDir: path.resolve(opts.dataDir),
      producerUrl,
      swaggerUrl: producerUrl ? `${producerUrl}/swagger` : undefined,
      replicas: [...deployments.values()].flatMap((d) => d.list()).map((r) => ({ ...r, ageSeconds: (now - r.startedAt) / 1000 })),
      hpa: loops.map((l) => l.hpaLine()),
      queue: queues[0],
      queues,
      decisions: [...decisions],
    };
  };

  const control = await startControlServer(status, opts.controlPort);
  await writeSupervisorFile(path.resolve(opts.dataDir), { pid: process.pid, controlUrl: control.url, producerUrl, startedAt, folder });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      for (const l of loops) await l.stop();
      await Promise.all([...deployments.values()].map((d) => d.stopAll()));
      for (const q of queueBackends) await q.backend.close().catch(() => undefined);
      await control.server.close();
      await removeSupervisorFile(path.resolve(opts.dataDir), process.pid);
    })();
    return stopped;
  };
  return { status, controlUrl: control.url, producerUrl, deployments, loops, notices, stop };
}

function producerApp(apps: RunFileApp[]): RunFileApp | undefined {
  return apps.find((a) => a.appId === 'producer') ?? apps.find((a) => /produc/i.test(a.appId));
}

function samePaths(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((p, i) => path.resolve(p) === path.resolve(b[i]!));
}

async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(message)), ms)))]);
  } finally {
    if (t) clearTimeout(t);
  }
}

export async function dataDirReady(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
}
