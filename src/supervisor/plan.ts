/**
 * One step from a folder to what `qscale up` will run, shared by `up` and `validate`: the apps of the run file with
 * their run-file lines, each app's binding components (its input queues), the ScaledObjects with their triggers and
 * the app each one scales, the producer, the fixed ports — and every problem found on the way, each naming
 * file:line and field. Nothing is started here: `up` refuses to start while the plan has problems, and `validate`
 * prints the very same lines.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { listYamlFiles, parseManifests, type Manifest } from '../components/manifests.js';
import { bindingDirection, resolveResources, type LoadedResources, type SecretLookup } from '../components/resources.js';
import { ConfigError, QscaleError, errorMessage } from '../errors.js';
import { CliError, CLI_ERRORS, type CliErrorCode } from '../cli/codes.js';
import { loadScaledObjects, type ScalingConfig } from '../autoscaler/index.js';
import type { QueueTriggerParams, ResolvedTrigger } from '../autoscaler/scaler.js';
import { createScaler, embeddedQueueParams, findBackend, findTrigger, supportedBindingTypes } from '../backends/registry.js';
import type { ResolvedComponent } from '../backends/types.js';
import { findPubSub, supportedPubSubTypes } from '../pubsub/registry.js';
import type { DeclaredSubscription } from '../components/subscriptions.js';
import { findRunFile, loadRunFile, type RunFile, type RunFileApp } from './runfile.js';
import { appIdForTarget, readDeployments, type WorkloadInfo } from './apps.js';
import { checkAppCommand, checkPorts, runFilePorts, type FixedPort } from './preflight.js';
import { JETSTREAM_STREAM_ANNOTATION } from '../backends/nats/stream-setup.js';
import {
  declaredSubscriptions, keptBeforeSubscribing, matchTrigger, programmaticLine, unmatchedLine, type AppSubscription, type TriggerSubscription,
} from './subscriptions.js';

/** One thing that stops `up` from starting, as one printable line. */
export interface Problem {
  code: CliErrorCode;
  /** The whole line, starting with file:line when there is one. */
  message: string;
  file?: string;
  line?: number;
  field?: string;
}

/** What `validate` lists: one entry per thing read. */
export interface PlanEntry {
  kind: string;
  name: string;
  where: string;
  note: string;
}

export interface InputQueue {
  component: ResolvedComponent;
  /** The queue the binding reads (kept when --embedded serves it). */
  queue: string;
}

export interface AppPlan {
  app: RunFileApp;
  /** "dapr.yaml:12" */
  where: string;
  /** Binding components in this app's scope, read and checked. */
  components: ResolvedComponent[];
  /** The input bindings among them: the queues this app consumes. */
  inputs: InputQueue[];
  /** Pub/sub components in this app's scope. */
  pubsubs: ResolvedComponent[];
  /** Its declarative subscriptions daprd would run (Subscription resources in its scope, on its pub/sub components). */
  subscriptions: AppSubscription[];
  /** The Deployment in the folder that names this app (dapr.io/app-id), if any. */
  workload: WorkloadInfo | undefined;
  /** The ScaledObject that scales it, if any. */
  scaledBy: string | undefined;
  /** Replicas to start with: a paused ScaledObject's pinned count, else the Deployment's count, else 1 (or min). */
  initialReplicas: number;
}

export interface TriggerPlan {
  trigger: ResolvedTrigger;
  /** The queue it measures (under --embedded, the embedded pub/sub's queue of the subscription it reads). */
  queue: string;
  /** The pub/sub subscription of the scaled app it reads, when its names are one's. */
  subscription?: TriggerSubscription;
  /** Under --embedded: the embedded queue measured instead of the trigger's own queue name. */
  embeddedQueue?: string;
}

/** A stream a pubsub.jetstream component asks qscale up to create when it is missing (a qscale-only annotation). */
export interface StreamSetup {
  component: ResolvedComponent;
  subjects: string[];
}

export interface ScaledObjectPlan {
  config: ScalingConfig;
  appId: string;
  triggers: TriggerPlan[];
}

export interface SystemPlan {
  /** The folder as given. */
  folder: string;
  runFile: RunFile | undefined;
  apps: AppPlan[];
  scaledObjects: ScaledObjectPlan[];
  /** The app whose address, Swagger UI and "try:" line `up` prints once it is Ready. */
  producer: AppPlan | undefined;
  /** What `up` makes before the first trigger read: the scaled apps' declarative subscriptions (and what triggers read where the broker keeps events anyway). */
  toPrepare: AppSubscription[];
  /** JetStream streams `up` creates when missing, before any app starts (annotation qscale.io/jetstream-stream-subjects). */
  streamSetups: StreamSetup[];
  fixedPorts: FixedPort[];
  secrets: SecretLookup;
  entries: PlanEntry[];
  /** Worth showing once (legacy API read as v2, assumed defaults). */
  notices: string[];
  /** Scaling that cannot work as configured (a trigger on a queue its app does not read): shown once at start. */
  warnings: string[];
  /** Empty when `up` can start. */
  problems: Problem[];
}

export interface PlanOptions {
  /** The run file (default: <folder>/dapr.yaml). */
  runFile?: string;
  embedded: boolean;
  dataDir: string;
  /** `up` cannot run without a run file; `validate` reads a folder of manifests alone. */
  requireRunFile: boolean;
  /** The supervisor's --control-port when fixed (not 0). */
  controlPort?: number;
  /** Check the machine too (commands, folders, free ports); on by default. */
  checkHost?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** A config error as a problem; anything else (a bug) is rethrown. */
export function problemOf(err: unknown): Problem {
  if (err instanceof ConfigError) return { code: 'ERR_CONFIG', message: err.message, file: err.file, line: err.line, field: err.field };
  if (err instanceof QscaleError) {
    const code = (err.code in CLI_ERRORS ? err.code : 'ERR_CONFIG') as CliErrorCode;
    return { code, message: err.message };
  }
  throw err;
}

/** The error `up` fails with: every problem, one line each, and the first one's code (hence exit status). */
export function planError(plan: SystemPlan): CliError | undefined {
  const first = plan.problems[0];
  if (!first) return undefined;
  return new CliError(first.code, plan.problems.map((p) => p.message).join('\nqscale: '));
}

function rel(file: string): string {
  const r = path.relative(process.cwd(), file);
  return r === '' || r.startsWith('..') ? file : r;
}

export async function loadSystem(folder: string, opts: PlanOptions): Promise<SystemPlan> {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const problem = (p: Problem): void => {
    if (seen.has(p.message)) return;
    seen.add(p.message);
    problems.push(p);
  };
  const attempt = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch (err) {
      problem(problemOf(err));
      return undefined;
    }
  };
  const attemptAsync = async <T>(f: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await f();
    } catch (err) {
      problem(problemOf(err));
      return undefined;
    }
  };
  const env = opts.env ?? process.env;
  const notices: string[] = [];
  const warnings: string[] = [];
  const entries: PlanEntry[] = [];
  const checkHost = opts.checkHost ?? true;

  // The run file.
  let runFile: RunFile | undefined;
  const runFilePath = opts.runFile ?? (await findRunFile(folder));
  if (runFilePath) {
    runFile = await attemptAsync(() => loadRunFile(runFilePath));
  } else if (opts.requireRunFile) {
    problem({
      code: 'ERR_CONFIG',
      message: `no dapr.yaml run file in ${folder}: it says how to start each app (see examples/seed/dapr.yaml), or pass --run-file`,
      file: folder,
    });
  } else {
    notices.push(`no dapr.yaml run file in ${folder}: \`qscale up\` needs one to start the apps`);
  }
  if (runFile) {
    notices.push(...runFile.notices);
    for (const a of runFile.apps) entries.push({ kind: 'App', name: a.appId, where: `${rel(runFile.file)}:${a.line}`, note: a.command.join(' ') });
  }

  // The folder's manifests, file by file, so one broken file does not hide the others' errors.
  const manifests = await readManifests([folder], problem);
  const deployments = readDeployments(manifests);

  // Components: every app's own view (scopes, its env), and the folder's as a whole for those no app reads.
  const checked = new Map<string, boolean>();
  const checkComponent = (c: ResolvedComponent): boolean => {
    const key = `${c.file}:${c.line}:${c.name}`;
    const known = checked.get(key);
    if (known !== undefined) return known;
    const ok = attempt(() => {
      const def = findBackend(c.type);
      if (!def) {
        throw new ConfigError(`component ${c.name}: unsupported binding type '${c.type}' (supported: ${supportedBindingTypes().join(', ')})`, { ...c.where(), field: 'spec.type' });
      }
      def.metadata.parse(c.metadata, { subject: `component ${c.name} (${c.type})`, where: c.where });
      entries.push({ kind: 'Component', name: c.name, where: `${rel(c.file)}:${c.line}`, note: `${c.type}, queue ${def.queueName(c)}` });
      return true;
    }) ?? false;
    checked.set(key, ok);
    return ok;
  };
  // Pub/sub components: a type no registry line serves is a problem, unless --embedded serves every pub/sub type.
  const checkPubSub = (c: ResolvedComponent): boolean => {
    const key = `${c.file}:${c.line}:${c.name}`;
    const known = checked.get(key);
    if (known !== undefined) return known;
    const ok = attempt(() => {
      const def = findPubSub(c.type);
      if (!def && !opts.embedded) {
        throw new ConfigError(
          `component ${c.name}: unsupported pub/sub type '${c.type}' (supported: ${supportedPubSubTypes().join(', ') || 'none'}; with --embedded every pub/sub type is served by the embedded queue)`,
          { ...c.where(), field: 'spec.type' },
        );
      }
      def?.metadata.parse(c.metadata, { subject: `component ${c.name} (${c.type})`, where: c.where });
      const served = opts.embedded && def?.localOnly !== true ? ', served by the embedded queue (--embedded)' : '';
      entries.push({ kind: 'Component', name: c.name, where: `${rel(c.file)}:${c.line}`, note: `${c.type}${def?.localOnly ? ' (local only)' : ''}${served}` });
      return true;
    }) ?? false;
    checked.set(key, ok);
    return ok;
  };
  const listSubscription = (sub: DeclaredSubscription, pubsubNames: ReadonlySet<string>): void => {
    const routes = sub.rules.map((r) => (r.match === '' ? r.path : `${r.match} → ${r.path}`)).join(', ') || 'no route: every event is dropped';
    entries.push({ kind: 'Subscription', name: sub.name ?? '', where: `${rel(sub.file)}:${sub.line}`, note: `${sub.pubsubName}/${sub.topic}: ${routes}${sub.deadLetterTopic ? `, dead letters to ${sub.deadLetterTopic}` : ''}` });
    if (!pubsubNames.has(sub.pubsubName)) {
      warnings.push(`${rel(sub.file)}:${sub.line}: Subscription ${sub.name ?? ''} names pubsub '${sub.pubsubName}', which is no pub/sub component of the folder: daprd ignores it, and so does qscale`);
    }
  };
  const streamSetups: StreamSetup[] = [];
  const allEnv = { ...env, ...Object.assign({}, ...(runFile?.apps.map((a) => a.env) ?? [])) } as NodeJS.ProcessEnv;
  const folderResources = attempt(() => resolveResources(manifests, { env: allEnv }));
  const secrets: SecretLookup = folderResources?.secrets ?? (() => undefined);
  if (folderResources) {
    notices.push(...folderResources.notices);
    for (const c of folderResources.components) checkComponent(c);
    for (const c of folderResources.pubsubs) checkPubSub(c);
    for (const c of folderResources.pubsubs) {
      const setup = attempt(() => streamSetupOf(c, manifests));
      if (setup) streamSetups.push(setup);
    }
    const pubsubNames = new Set(folderResources.pubsubs.map((c) => c.name));
    for (const sub of folderResources.subscriptions) listSubscription(sub, pubsubNames);
    for (const s of folderResources.skipped) entries.push({ kind: s.kind, name: s.name, where: `${rel(s.file)}:${s.line}`, note: `skipped: ${s.reason}` });
  }

  const apps: AppPlan[] = [];
  for (const app of runFile?.apps ?? []) {
    const own = samePaths(app.resourcesPaths, [folder]) ? manifests : await readManifests(app.resourcesPaths, problem);
    const res: LoadedResources | undefined = attempt(() => resolveResources(own, { appId: app.appId, env: { ...env, ...app.env } }));
    for (const n of res?.notices ?? []) if (!notices.includes(n)) notices.push(n);
    const components = (res?.components ?? []).filter(checkComponent);
    for (const c of res?.pubsubs ?? []) checkPubSub(c);
    const inputs: InputQueue[] = [];
    for (const c of components) {
      // Read as daprd reads it: absent = both, empty or misspelt = neither.
      if (!bindingDirection(c.metadata).input) continue;
      inputs.push({ component: c, queue: findBackend(c.type)!.queueName(c) });
    }
    const workload = [...deployments.values()].find((d) => d.appId === app.appId);
    const pubsubs = (res?.pubsubs ?? []).filter((c) => checked.get(`${c.file}:${c.line}:${c.name}`) === true);
    const subscriptions = declaredSubscriptions(app.appId, pubsubs, res?.subscriptions ?? []);
    apps.push({
      app, where: `${rel(runFile!.file)}:${app.line}`, components, inputs, pubsubs, subscriptions, workload, scaledBy: undefined,
      initialReplicas: workload?.replicas ?? 1,
    });
  }

  // ScaledObjects: each with its triggers and the app it scales.
  const scaledObjects: ScaledObjectPlan[] = [];
  const toPrepare: AppSubscription[] = [];
  const appEnv = (target: string): Record<string, string> | undefined => runFile?.apps.find((a) => a.appId === appIdForTarget(target, deployments))?.env;
  const scaling = attempt(() => loadScaledObjects(manifests, { secrets, env: appEnv }));
  if (scaling) notices.push(...scaling.notices);
  for (const config of scaling?.scaledObjects ?? []) {
    const spec = config.spec;
    const triggers: TriggerPlan[] = [];
    const triggerEntries = new Map<ResolvedTrigger, PlanEntry>();
    for (const t of config.triggers) {
      const q = attempt(() => checkTrigger(t, opts));
      if (q === undefined) continue;
      const entry = { kind: 'Trigger', name: `${spec.name}/${t.type}${t.name ? ` (${t.name})` : ''}`, where: `${rel(spec.file)}:${spec.line}`, note: `queue ${q.queueName || '(none: a query of its own)'}, target ${q.target}, activation ${q.activationTarget}` };
      triggers.push({ trigger: t, queue: q.queueName });
      triggerEntries.set(t, entry);
      entries.push(entry);
    }
    entries.push({ kind: 'ScaledObject', name: spec.name, where: `${rel(spec.file)}:${spec.line}`, note: `${spec.target}: ${spec.minReplicaCount}..${spec.maxReplicaCount}` });
    if (!runFile) continue;
    const appId = appIdForTarget(spec.target, deployments);
    const app = apps.find((a) => a.app.appId === appId);
    const at = spec.where(['spec', 'scaleTargetRef', 'name']);
    if (!app) {
      problem(problemOf(new ConfigError(
        `ScaledObject ${spec.name}: scaleTargetRef '${spec.target}' matches no app of ${rel(runFile.file)} (apps: ${runFile.apps.map((a) => a.appId).join(', ')})`,
        { file: at.file, line: at.line, field: 'spec.scaleTargetRef.name' },
      )));
      continue;
    }
    if (app.scaledBy) {
      problem(problemOf(new ConfigError(`ScaledObject ${spec.name}: app ${appId} is already scaled by ScaledObject ${app.scaledBy}; one ScaledObject per workload`, { file: at.file, line: at.line, field: 'spec.scaleTargetRef.name' })));
      continue;
    }
    app.scaledBy = spec.name;
    app.initialReplicas = spec.pausedReplicas ?? app.workload?.replicas ?? spec.minReplicaCount;
    if (triggers.length !== config.triggers.length) continue;
    scaledObjects.push({ config, appId, triggers });
    // Its declarative subscriptions are made before the first trigger read, so a backlog at 0 replicas is kept and seen.
    for (const s of app.subscriptions) if (!toPrepare.includes(s)) toPrepare.push(s);
    for (const t of triggers) {
      const ref = attempt(() => findTrigger(t.trigger.type)?.subscriptionRef?.(t.trigger));
      const sub = ref ? matchTrigger(ref, appId, app.pubsubs, app.subscriptions) : undefined;
      if (sub) {
        t.subscription = sub;
        if (opts.embedded && sub.embeddedQueue !== undefined) {
          t.embeddedQueue = sub.embeddedQueue;
          t.queue = sub.embeddedQueue;
        }
        // What the trigger reads on a broker that keeps the topic anyway (a stream): made now, as the app would make it.
        if (!sub.declared && sub.topic !== undefined && keptBeforeSubscribing(sub.component.type) && !toPrepare.some((p) => p.appId === appId && p.component === sub.component && p.topic === sub.topic)) {
          toPrepare.push({ appId, component: sub.component, topic: sub.topic, metadata: sub.metadata, declared: undefined });
        }
        const entry = triggerEntries.get(t.trigger);
        if (entry) {
          const topic = `topic ${sub.topic ?? '(named by the app)'} (${sub.component.name})`;
          const of = sub.declared ? `Subscription ${sub.declared.name ?? ''} of app ${appId} to ${topic}` : `app ${appId}'s own subscription (GET /dapr/subscribe) to ${topic}`;
          entry.note += `; reads ${sub.names}: ${of}${t.embeddedQueue ? `, measured on the embedded queue ${t.embeddedQueue}` : ''}`;
        }
        if (spec.minReplicaCount === 0) {
          const line = programmaticLine(sub, t.trigger, opts.embedded);
          if (line) {
            const w = t.trigger.where('type');
            warnings.push(`${w.file ? `${rel(w.file)}:${w.line ?? ''}: ` : ''}${line}`);
          }
        }
        continue;
      }
      const unmatched = ref ? unmatchedLine(ref, t.trigger, appId, app.pubsubs, app.subscriptions) : undefined;
      if (unmatched && !app.inputs.some((i) => i.queue === t.queue)) {
        const w = t.trigger.where('type');
        warnings.push(`${w.file ? `${rel(w.file)}:${w.line ?? ''}: ` : ''}${unmatched}`);
        continue;
      }
      if (t.queue === '' || app.inputs.some((i) => i.queue === t.queue)) continue;
      const w = t.trigger.where('queueName');
      const reads = app.inputs.length > 0 ? `its input bindings read ${app.inputs.map((i) => `'${i.queue}' (${i.component.name})`).join(', ')}` : 'it has no input binding';
      warnings.push(`${w.file ? `${rel(w.file)}:${w.line ?? ''}: ` : ''}ScaledObject ${spec.name} ${describeTrigger(t.trigger)} watches queue '${t.queue}', but app ${appId} does not read it (${reads}): its replicas cannot drain what the trigger counts`);
    }
  }

  // The machine: commands, folders, free fixed ports.
  const fixedPorts: FixedPort[] = runFile ? runFilePorts(runFile) : [];
  if (opts.controlPort) fixedPorts.push({ port: opts.controlPort, what: '--control-port', field: '--control-port' });
  if (checkHost) {
    for (const app of runFile?.apps ?? []) for (const p of await checkAppCommand(runFile!, app)) problem(p);
    for (const p of await checkPorts(fixedPorts)) problem(p);
  }

  const producer = apps.find((a) => a.app.appId === 'producer') ?? apps.find((a) => /produc/i.test(a.app.appId));
  return { folder, runFile, apps, scaledObjects, producer, toPrepare, streamSetups, fixedPorts, secrets, entries, notices: [...new Set(notices)], warnings, problems };
}

/**
 * The annotation qscale.io/jetstream-stream-subjects of a pub/sub Component: the subjects of the stream (its
 * streamName) that `up` creates when missing. Only pubsub.jetstream with streamName takes it.
 */
function streamSetupOf(c: ResolvedComponent, manifests: readonly Manifest[]): StreamSetup | undefined {
  const m = manifests.find((x) => x.kind === 'Component' && x.name === c.name && x.file === c.file);
  const annotations = (m?.body.metadata as { annotations?: Record<string, unknown> } | undefined)?.annotations;
  const raw = annotations?.[JETSTREAM_STREAM_ANNOTATION];
  if (!m || raw === undefined) return undefined;
  const at = ['metadata', 'annotations', JETSTREAM_STREAM_ANNOTATION];
  if (c.type !== 'pubsub.jetstream') throw m.error(`component ${c.name} (${c.type}): annotation ${JETSTREAM_STREAM_ANNOTATION} applies to pubsub.jetstream only`, at);
  if (!Object.keys(c.metadata).some((k) => k.toLowerCase() === 'streamname' && c.metadata[k]!.trim() !== '')) {
    throw m.error(`component ${c.name} (${c.type}): annotation ${JETSTREAM_STREAM_ANNOTATION} needs metadata 'streamName': the stream to create`, at);
  }
  const subjects = typeof raw === 'string' ? raw.split(',').map((x) => x.trim()).filter(Boolean) : [];
  if (subjects.length === 0) throw m.error(`component ${c.name} (${c.type}): annotation ${JETSTREAM_STREAM_ANNOTATION} must list the stream's subjects, comma-separated (e.g. "orders")`, at);
  return { component: c, subjects };
}

/** "trigger 0 (rabbitmq)" or "trigger 0 (rabbitmq, name queue-depth)". */
export function describeTrigger(t: Pick<ResolvedTrigger, 'index' | 'type' | 'name'>): string {
  return `trigger ${t.index} (${t.type}${t.name ? `, name ${t.name}` : ''})`;
}

/**
 * Reads a trigger as `up` will build its scaler, returning its queue. With --embedded only the queue fields are read
 * (the broker's own settings are not used); otherwise the broker's scaler is built (no connection is made) and closed.
 */
export function checkTrigger(t: ResolvedTrigger, opts: Pick<PlanOptions, 'embedded' | 'dataDir'>): QueueTriggerParams {
  const def = findTrigger(t.type);
  if (def && opts.embedded) return embeddedQueueParams(def, t);
  const scaler = createScaler(t, { embedded: false, dataDir: opts.dataDir });
  void scaler.close().catch(() => undefined);
  return def!.parseQueueParams(t);
}

async function readManifests(paths: readonly string[], problem: (p: Problem) => void): Promise<Manifest[]> {
  let files: string[];
  try {
    files = await listYamlFiles(paths);
  } catch (err) {
    problem(problemOf(err));
    return [];
  }
  const out: Manifest[] = [];
  for (const file of files) {
    try {
      out.push(...parseManifests(await fs.readFile(file, 'utf8'), file));
    } catch (err) {
      if (err instanceof ConfigError) problem(problemOf(err));
      else problem({ code: 'ERR_CONFIG', message: `${file}: cannot be read: ${errorMessage(err)}`, file });
    }
  }
  return out;
}

function samePaths(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((p, i) => path.resolve(p) === path.resolve(b[i]!));
}
