/**
 * `qscale up`: reads a folder (Kubernetes YAML + the dapr.yaml run file) into a plan (plan.ts), refuses to start on
 * any problem in it, then starts every app with its sidecar and scales the apps a ScaledObject targets. The control
 * path is one straight line: scalers → KEDA step → HPA step → Deployment.scaleTo, driven by the real clock
 * (ScaleLoop) with the same pure functions the simulator uses.
 */
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { errorMessage } from '../errors.js';
import { createLogSink, type LogSink } from './logs.js';
import { Deployment } from './deployment.js';
import { startControlServer } from './control.js';
import { backlogOutlook, cooldownOutlook, removeSupervisorFile, writeSupervisorFile, type DecisionRecord, type Outlook, type QueueState, type SystemStatus } from './state.js';
import { History, Sampler } from './history.js';
import { ScaleLoop, type ScaleLoopOptions } from './scaleloop.js';
import { loadSystem, planError, type InputQueue, type SystemPlan } from './plan.js';
import { createBackend, createScaler } from '../backends/registry.js';
import type { Backend } from '../backends/types.js';
import { createLogger } from '../util/log.js';
import { withTimeout } from '../util/timeout.js';
import { DeadLetterService } from '../dlq/service.js';
import { bindingsOfPlan } from '../dlq/bindings.js';
import { prepareSubscriptions, setUpStreams, type Preparer } from './subscriptions.js';

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
  /**
   * Keep a standby sidecar started ahead for each scaled app's next replica, so a scale-up spawns only the app
   * (deployment.ts, warm.ts). Default true; `qscale up --no-warm-sidecar` turns it off.
   */
  warmSidecar?: boolean;
  /**
   * With warmSidecar, a node app's standby also holds a warm app runtime (warm-app-main.ts), so a scale-up starts no
   * process. Default true; `qscale up --no-warm-app` turns it off.
   */
  warmApp?: boolean;
  logs?: LogSink;
}

export interface RunningSystem {
  status(): Promise<SystemStatus>;
  controlUrl: string;
  /** The dashboard's address (the control server's root). */
  dashboardUrl: string;
  /** The Ready producer replica's address; undefined while none is Ready. */
  readonly producerUrl: string | undefined;
  /**
   * Resolves with the producer's address once a producer replica is Ready and its port answers — the moment the
   * printed curl works; undefined when there is no producer or the system stops first.
   */
  producerReady: Promise<string | undefined>;
  deployments: Map<string, Deployment>;
  loops: ScaleLoop[];
  plan: SystemPlan;
  notices: string[];
  /** Graceful: stop scaling, drain every replica, close. */
  stop(): Promise<void>;
  /** Immediate: kill -9 every process of every replica. */
  kill(): Promise<void>;
}

const MAX_DECISIONS = 200;
/** Bound on each broker read a status request makes (queue depth, a trigger's value). */
const STATUS_READ_MS = 1500;

export async function startSystem(opts: SystemOptions): Promise<RunningSystem> {
  const logs = opts.logs ?? createLogSink();
  const dataDir = path.resolve(opts.dataDir);
  const plan = await loadSystem(opts.folder, {
    runFile: opts.runFile,
    embedded: opts.embedded,
    dataDir,
    requireRunFile: true,
    controlPort: opts.controlPort || undefined,
  });
  const refused = planError(plan);
  if (refused) throw refused;
  const notices = [...plan.notices];

  // Nothing is spawned before the control endpoint listens: a failure up to here leaves nothing behind.
  const deployments = new Map<string, Deployment>();
  const loops: ScaleLoop[] = [];
  const inputs = plan.scaledObjects.flatMap((so) => (plan.apps.find((a) => a.app.appId === so.appId)?.inputs ?? []).map((q) => ({ q, appId: so.appId })));
  const queues = inputs.map(({ q }) => new QueueDepth(q, opts.embedded, dataDir));
  const decisions: DecisionRecord[] = [];
  const record = (d: DecisionRecord): void => {
    decisions.push(d);
    if (decisions.length > MAX_DECISIONS) decisions.splice(0, decisions.length - MAX_DECISIONS);
    logs.system(`${d.scaledObject}: ${d.reason}`);
  };
  const startedAt = Date.now();
  const producerDeployment = (): Deployment | undefined => (plan.producer ? deployments.get(plan.producer.app.appId) : undefined);
  const producerUrl = (): string | undefined => {
    const r = producerDeployment()?.list().find((x) => x.ready);
    return r ? `http://127.0.0.1:${r.appPort}` : undefined;
  };

  const history = new History();
  const replicaInfos = async () => {
    await Promise.all([...deployments.values()].map((d) => d.refreshInFlight()));
    return [...deployments.values()].flatMap((d) => d.list());
  };
  const sampler = new Sampler({
    scaledObjects: () => loops.map((l) => ({ name: l.name, appId: l.appId, desired: l.autoscalerState?.replicas ?? l.deployment.desiredReplicas, actual: l.deployment.current, ready: l.deployment.readyCount })),
    queues: async () => (await Promise.all(queues.map((q) => q.read()))).map((state, i) => ({ appId: inputs[i]!.appId, state })),
    replicas: replicaInfos,
  }, history);
  const outlook = (l: ScaleLoop, states: QueueState[], now: number): Outlook => {
    const own = states.filter((_, i) => inputs[i]!.appId === l.appId);
    const st = l.autoscalerState;
    return {
      scaledObject: l.name,
      backlog: own.length > 0 && own.every((q) => q.error === undefined) ? backlogOutlook(own.reduce((n, q) => n + q.ready + q.inFlight, 0), history.rate(l.name, now)) : undefined,
      cooldown: st ? cooldownOutlook({ spec: l.config.spec, state: st }, now) : undefined,
    };
  };

  const status = async (): Promise<SystemStatus> => {
    const [queueStates] = await Promise.all([
      Promise.all(queues.map((q) => q.read())),
      Promise.all([...deployments.values()].map((d) => d.refreshInFlight())),
      Promise.all(loops.map((l) => l.refresh(1000, STATUS_READ_MS))),
    ]);
    const now = Date.now();
    const url = producerUrl();
    return {
      pid: process.pid,
      startedAt,
      embedded: opts.embedded,
      dataDir,
      producerUrl: url,
      swaggerUrl: url ? `${url}/swagger` : undefined,
      replicas: [...deployments.values()].flatMap((d) => d.list()).map((r) => ({ ...r, ageSeconds: (now - r.startedAt) / 1000 })),
      warmSidecars: [...deployments.values()].flatMap((d) => {
        const w = d.warmSidecar();
        return w ? [{ appId: d.appId, ...w }] : [];
      }),
      hpa: loops.map((l) => l.hpaLine()),
      scaledObjects: loops.map((l) => l.status()),
      queue: queueStates[0],
      queues: queueStates,
      decisions: [...decisions],
      outlook: loops.map((l) => outlook(l, queueStates, now)),
    };
  };
  // The dead letters of every app's input bindings, served next to /status (each backend opened on first use).
  const deadLetters = new DeadLetterService(bindingsOfPlan(plan), { embedded: opts.embedded, dataDir });
  const control = await startControlServer(status, opts.controlPort, {
    history,
    producerAppId: plan.producer?.app.appId,
    producerUrl,
    logs: () => Object.fromEntries([...deployments.values()].flatMap((d) => d.list()).map((r) => [r.name, logs.tail?.(r.name) ?? []])),
  }, deadLetters);
  const folder = path.resolve(opts.folder);
  await writeSupervisorFile(dataDir, { pid: process.pid, controlUrl: control.url, producerUrl: undefined, startedAt, folder });

  const stopping = new AbortController();
  let stopped: Promise<void> | undefined;
  let preparer: Preparer | undefined;
  const stop = (): Promise<void> => {
    stopping.abort();
    stopped ??= (async () => {
      // A Deployment takes no scale request once it stops, so scaling and draining stop side by side.
      await Promise.all([...loops.map((l) => l.stop()), ...[...deployments.values()].map((d) => d.stopAll()), sampler.stop(), preparer?.stop()]);
      await Promise.all([...queues.map((q) => q.close()), deadLetters.close()]);
      await control.server.close();
      await removeSupervisorFile(dataDir, process.pid);
    })();
    return stopped;
  };
  const kill = async (): Promise<void> => {
    stopping.abort();
    void sampler.stop();
    void preparer?.stop();
    for (const l of loops) void l.stop();
    await Promise.all([...deployments.values()].map((d) => d.killAll()));
  };

  try {
    const loopOpts: ScaleLoopOptions = {
      syncPeriodMs: opts.syncPeriodMs,
      downscaleStabilizationMs: opts.downscaleStabilizationMs,
      instantActivation: opts.instantActivation,
      record,
      report: (line) => logs.system(line),
    };
    const scaled = new Set(plan.scaledObjects.map((so) => so.appId));
    for (const a of plan.apps) {
      const warmSidecar = opts.warmSidecar !== false && scaled.has(a.app.appId);
      deployments.set(a.app.appId, new Deployment({ app: a.app, embedded: opts.embedded, dataDir, graceMs: opts.graceMs, logs, fixedPorts: true, runFile: plan.runFile?.file, warmSidecar, warmApp: opts.warmApp !== false }));
    }
    for (const so of plan.scaledObjects) {
      const scalers = so.triggers.map((t) => createScaler(t.trigger, { embedded: opts.embedded, dataDir, embeddedQueue: t.embeddedQueue }));
      loops.push(new ScaleLoop(so.config, deployments.get(so.appId)!, scalers, loopOpts));
    }
    // The scaled apps' subscriptions are made before any app starts (a producer's first events are kept) and before
    // the first trigger read (a backlog at 0 replicas is seen). One that cannot be made yet is said and tried again.
    if (!opts.embedded) await setUpStreams(plan.streamSetups, (line) => logs.system(line));
    preparer = prepareSubscriptions(plan.toPrepare, { embedded: opts.embedded, dataDir, report: (line) => logs.system(line) });
    await preparer.first;
    // Fixed-size apps start now; scaled apps start at their initial count and the loop takes over.
    for (const a of plan.apps) await deployments.get(a.app.appId)!.scaleTo(a.initialReplicas);
    // The scaled apps' input bindings are opened (queue declared, stream and consumer group created) before the
    // first trigger read, so a fresh broker does not read as a missing queue. Bounded: a broker that is down shows
    // in the trigger's error and the queue line, not here.
    // Leftovers of an earlier run are said before they are consumed, not taken silently.
    for (const q of await Promise.all(queues.map((x) => x.read()))) {
      const line = waitingLine(q);
      if (line) logs.system(line);
    }
    for (const l of loops) l.start();
    sampler.start();
  } catch (err) {
    await kill();
    await stop();
    throw err;
  }

  const producerReady = plan.producer ? whenProducerReady(() => producerDeployment()!, stopping.signal) : Promise.resolve(undefined);
  void producerReady.then(async (url) => {
    // The dashboard is printed with the producer's address (cli/up prints that next): its form sends through it.
    if (!stopping.signal.aborted && (url || !plan.producer)) logs.system(`dashboard:  ${control.url}/  (live queue depth, replicas and decisions${plan.producer ? '; a form that sends messages' : ''})`);
    if (url && !stopping.signal.aborted) await writeSupervisorFile(dataDir, { pid: process.pid, controlUrl: control.url, producerUrl: url, startedAt, folder }).catch(() => undefined);
  });

  return {
    status,
    controlUrl: control.url,
    dashboardUrl: `${control.url}/`,
    get producerUrl() {
      return producerUrl();
    },
    producerReady,
    deployments,
    loops,
    plan,
    notices,
    stop,
    kill,
  };
}

/** The address of the first Ready producer replica (its app port accepts, its sidecar is healthy): the printed curl works. */
async function whenProducerReady(dep: () => Deployment, signal: AbortSignal): Promise<string | undefined> {
  const r = await dep().whenReady(signal).catch(() => undefined);
  return r ? `http://127.0.0.1:${r.appPort}` : undefined;
}

/**
 * The depth of one input queue for status, read through the binding's own backend. Connects on first use and again
 * after a failure; every read is bounded, so status answers during a broker outage with the error in the queue line.
 */
class QueueDepth {
  private backend: Backend | undefined;
  private pending: Promise<QueueState> | undefined;
  private closed = false;
  private readonly logger = createLogger('supervisor');

  constructor(private readonly q: InputQueue, private readonly embedded: boolean, private readonly dataDir: string) {}

  read(): Promise<QueueState> {
    this.pending ??= this.readOnce().finally(() => {
      this.pending = undefined;
    });
    const base = { binding: this.q.component.name, queue: this.q.queue };
    return withTimeout(this.pending, STATUS_READ_MS, `queue depth: no answer within ${STATUS_READ_MS} ms`).catch((err: unknown) => ({
      ...base, ready: 0, inFlight: 0, deadLettered: 0, error: errorMessage(err),
    }));
  }

  private async readOnce(): Promise<QueueState> {
    const c = this.q.component;
    const base = { binding: c.name, queue: this.q.queue };
    try {
      if (!this.backend) {
        const b = createBackend(c, { logger: this.logger, dataDir: this.dataDir }, { embedded: this.embedded });
        try {
          await withTimeout(b.init(), c.initTimeoutMs, `component ${c.name} (${c.type}) did not initialise within ${c.initTimeoutMs} ms`);
        } catch (err) {
          await b.close().catch(() => undefined);
          throw err;
        }
        if (this.closed) {
          await b.close().catch(() => undefined);
          throw new Error('supervisor stopping');
        }
        this.backend = b;
      }
      return { ...base, ...(await this.backend.depth()) };
    } catch (err) {
      const b = this.backend;
      this.backend = undefined;
      if (b) void b.close().catch(() => undefined);
      return { ...base, ready: 0, inFlight: 0, deadLettered: 0, error: errorMessage(err) };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pending) await withTimeout(this.pending, 2000, 'close').catch(() => undefined);
    const b = this.backend;
    this.backend = undefined;
    if (b) await withTimeout(b.close(), 2000, 'close').catch(() => undefined);
  }
}

export async function dataDirReady(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
}

/** One line when a queue already holds messages at start (left by an earlier run or another producer). */
export function waitingLine(q: QueueState): string | undefined {
  if (q.error) return undefined;
  const parts = [q.ready > 0 ? `${q.ready} waiting` : '', q.inFlight > 0 ? `${q.inFlight} leased by an earlier process (back when the lease ends)` : '', q.deadLettered > 0 ? `${q.deadLettered} dead-lettered` : ''].filter(Boolean);
  if (q.ready + q.inFlight === 0 && q.deadLettered === 0) return undefined;
  return `queue ${q.queue} (${q.binding}) at start: ${parts.join(', ')}${q.ready + q.inFlight > 0 ? '; they are consumed like new ones' : ''}`;
}
