/**
 * The image the Deployments run, checked against the Dockerfile without a Docker engine: the image the README builds
 * is the one every Deployment pulls; each command runs a compiled app the image holds, whose imports the production
 * install satisfies; ports, env and probes agree with the app's own configuration (read by calling the app's config
 * reader with the container's env) and with the run file `qscale up` uses; the image runs as a user that is not root.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import YAML from 'yaml';
import {
  EXAMPLES, ROOT, containerEnv, containersOf, exampleNames, ofKind, readText, render, requireKubectl, type Container,
  type K8sObject,
} from './support.js';
import { dockerIgnored, origin, parseDockerfile, type Stage } from './dockerfile.js';

const DOCKERFILE = readText('Dockerfile');
const IGNORE = readText('.dockerignore');
const stages = parseDockerfile(DOCKERFILE);
const final = stages.at(-1)!;
const pkg = JSON.parse(readText('package.json')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
const lock = JSON.parse(readText('package-lock.json')) as { packages: Record<string, { hasInstallScript?: boolean }> };
const outDir = (JSON.parse(readText('tsconfig.json')) as { compilerOptions: { outDir: string } }).compilerOptions.outDir;

const clusterExamples = (): string[] => exampleNames().filter((n) => existsSync(path.join(EXAMPLES, n, 'kustomization.yaml')));

/** Every Deployment container of every cluster example, named for messages. */
async function containers(): Promise<Array<{ where: string; deployment: K8sObject; container: Container; objects: K8sObject[]; example: string }>> {
  const out = [];
  for (const example of clusterExamples()) {
    const objects = await render(example);
    for (const deployment of ofKind(objects, 'Deployment')) {
      for (const container of containersOf(deployment)) {
        out.push({ where: `examples/${example}: Deployment ${deployment.metadata.name} container ${container.name}`, deployment, container, objects, example });
      }
    }
  }
  assert.ok(out.length >= 2, 'the examples render the producer and consumer Deployments');
  return out;
}

/** The build context path a file in the final image comes from, following COPY --from through the build stage and tsc. */
function sourceOf(imagePath: string): { context: string; stage: Stage } | string {
  const o = origin(final, imagePath);
  if (!o) return `no COPY in the final stage puts ${imagePath} in the image`;
  if (!o.copy.from) return `${imagePath} is copied from the build context (${o.sourcePath}), not compiled`;
  const build = stages.find((s) => s.name === o.copy.from);
  if (!build) return `COPY --from=${o.copy.from}: no such stage`;
  const rel = path.posix.relative(path.posix.join(build.workdir, outDir), o.sourcePath);
  if (rel.startsWith('..')) return `${o.sourcePath} is not tsc output (${build.workdir}/${outDir})`;
  const tsPath = path.posix.join(build.workdir, rel.replace(/\.js$/, '.ts'));
  const src = origin(build, tsPath);
  if (!src || src.copy.from) return `the build stage compiles ${tsPath}, which no COPY from the context brings`;
  return { context: src.sourcePath, stage: build };
}

/** The files `import` reaches from a compiled file: relative ones (followed) and package names. */
function importClosure(entry: string): { files: string[]; packages: Set<string> } {
  const files: string[] = [];
  const packages = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (files.includes(file)) continue;
    files.push(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      if (spec.startsWith('.')) todo.push(path.resolve(path.dirname(file), spec));
      else if (!spec.startsWith('node:')) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  }
  return { files, packages };
}

/** The argv the container runs: its command (else the image's ENTRYPOINT/CMD) and args (else CMD). */
function argvOf(c: Container): string[] {
  if (c.command) return [...c.command, ...(c.args ?? [])];
  return [...(final.entrypoint ?? []), ...(c.args ?? final.cmd ?? [])];
}

/** The compiled script a `node <script>` argv runs, in the image and in this checkout's dist/. */
function scriptOf(argv: string[]): { image: string; local: string } {
  assert.equal(argv[0], 'node', `runs ${argv.join(' ')}: expected node <script>`);
  const image = path.posix.resolve(final.workdir, argv[1]!);
  const local = path.join(ROOT, path.posix.relative(final.workdir, image));
  return { image, local };
}

interface AppConfig {
  host: string;
  port: number;
}

/** Calls the app's own config reader (config.js beside its main.js) with `env`; records which variables it reads. */
async function readAppConfig(localMain: string, env: Record<string, string>): Promise<{ config: AppConfig; read: Set<string> }> {
  const mod = (await import(pathToFileURL(path.join(path.dirname(localMain), 'config.js')).href)) as Record<string, unknown>;
  const reader = Object.entries(mod).find(([name, v]) => /^read\w*Config$/.test(name) && typeof v === 'function')?.[1] as
    | ((env: NodeJS.ProcessEnv) => AppConfig)
    | undefined;
  assert.ok(reader, `${localMain}: config.js exports no read...Config(env)`);
  const read = new Set<string>();
  const proxy = new Proxy(env, {
    get(target, key) {
      if (typeof key === 'string') read.add(key);
      return Reflect.get(target, key) as unknown;
    },
  });
  return { config: reader(proxy), read };
}

/** What the Dapr sidecar injector adds to every app container. */
const INJECTED = { DAPR_HTTP_PORT: '3500', DAPR_GRPC_PORT: '50001' };

describe('cluster files - image', { timeout: 180_000 }, () => {
  test('Dockerfile - production dependencies and compiled output only, on a small Node base, as a user that is not root', () => {
    assert.ok(stages.length >= 2, 'a build stage compiles, the final stage runs');
    const engines = Number(/(\d+)/.exec((JSON.parse(readText('package.json')) as { engines: { node: string } }).engines.node)![1]);
    const base = /^node:(\d+)-(slim|alpine)\b/.exec(final.image);
    assert.ok(base, `the final stage runs on ${final.image}: expected node:<major>-slim or -alpine`);
    assert.ok(Number(base[1]) >= engines, `${final.image} is older than package.json's engines.node`);
    assert.ok(final.user && !/^(root|0)(:|$)/.test(final.user), `the final stage runs as ${final.user ?? 'root (no USER)'}`);
    const installs = final.runs.filter((r) => /\bnpm (ci|install|i)\b/.test(r));
    assert.ok(installs.length > 0 && installs.every((r) => /\bnpm ci\b/.test(r) && /--omit=dev\b/.test(r)), `final stage installs: ${installs.join(' | ')}`);
    for (const c of final.copies) {
      if (c.from) {
        for (const s of c.sources) assert.match(s, new RegExp(`/${outDir}(/|$)`), `Dockerfile:${c.line}: copies ${s}, not compiled output`);
      } else {
        for (const s of c.sources) assert.ok(['package.json', 'package-lock.json'].includes(path.posix.normalize(s)), `Dockerfile:${c.line}: copies ${s} from the context into the final image`);
      }
    }
  });

  test('.dockerignore - the build context is exactly what the Dockerfile copies: no node_modules, dist, .qscale, .git or tests', () => {
    const copied = new Set(stages.flatMap((s) => s.copies.filter((c) => !c.from).flatMap((c) => c.sources.map((x) => path.posix.normalize(x).replace(/\/$/, '')))));
    for (const s of copied) {
      assert.ok(existsSync(path.join(ROOT, s)), `the Dockerfile copies ${s}, which does not exist`);
      assert.ok(!dockerIgnored(IGNORE, s), `the Dockerfile copies ${s}, which .dockerignore leaves out of the context`);
    }
    const sent = readdirSync(ROOT).filter((e) => !dockerIgnored(IGNORE, e));
    assert.deepEqual(sent.sort(), [...copied].sort(), 'top-level entries that reach the build context');
    for (const f of ['node_modules/pino/package.json', 'dist/apps/producer/main.js', '.qscale/queue.db', '.git/HEAD', 'test/apps/producer.test.ts', '.env']) {
      assert.ok(dockerIgnored(IGNORE, f), `${f} would reach the build context`);
    }
  });

  test('Deployments - every container runs the image the README builds from this Dockerfile', async (t) => {
    if (!requireKubectl(t)) return;
    const builds = new Map<string, string>();
    for (const readme of ['README.md', ...exampleNames().map((n) => `examples/${n}/README.md`)]) {
      for (const m of readText(readme).matchAll(/docker build ([^\n`#]*)/g)) {
        const cmd = m[1]!;
        const tag = /-t\s+(\S+)/.exec(cmd)?.[1];
        assert.ok(tag, `${readme}: docker build ${cmd} names no tag`);
        assert.match(cmd, /(^|\s)\.(\s|$)/, `${readme}: docker build ${cmd} does not build the repository root`);
        const file = /-f\s+(\S+)/.exec(cmd)?.[1];
        assert.ok(file === undefined || path.normalize(file) === 'Dockerfile', `${readme}: builds ${file}, not the root Dockerfile`);
        builds.set(readme, tag);
      }
    }
    assert.ok(builds.has('README.md') && builds.has('examples/seed/README.md'), `READMEs with a docker build line: ${[...builds.keys()].join(', ')}`);
    const tags = new Set(builds.values());
    assert.equal(tags.size, 1, `the READMEs build different tags: ${[...builds].map(([f, tg]) => `${f}: ${tg}`).join(', ')}`);
    const [tag] = tags;
    for (const { where, container } of await containers()) assert.equal(container.image, tag, `${where} pulls ${container.image}`);
  });

  test('Deployments - every command runs a compiled app the image holds, and the production install has every package it imports', async (t) => {
    if (!requireKubectl(t)) return;
    const argvs = new Map<string, string[]>([['the image\'s own CMD', [...(final.entrypoint ?? []), ...(final.cmd ?? [])]]]);
    for (const { where, container } of await containers()) argvs.set(where, argvOf(container));
    for (const [where, argv] of argvs) {
      const script = scriptOf(argv);
      const src = sourceOf(script.image);
      assert.ok(typeof src !== 'string', `${where}: ${argv.join(' ')}: ${String(src)}`);
      assert.ok(existsSync(path.join(ROOT, src.context)), `${where}: ${script.image} is compiled from ${src.context}, which does not exist`);
      assert.ok(!dockerIgnored(IGNORE, src.context), `${where}: ${src.context} is left out of the build context`);
      assert.ok(existsSync(script.local), `${where}: ${path.relative(ROOT, script.local)} is not built (npm run build)`);
      const { files, packages } = importClosure(script.local);
      for (const f of files) {
        const inImage = path.posix.join(final.workdir, path.relative(ROOT, f).split(path.sep).join('/'));
        assert.ok(origin(final, inImage), `${where}: the app imports ${inImage}, which the image does not hold`);
      }
      for (const p of packages) {
        assert.ok(p in pkg.dependencies, `${where}: the app imports ${p}, ${p in pkg.devDependencies ? 'a dev dependency' : 'not a dependency'}: npm ci --omit=dev leaves it out`);
        assert.ok(!lock.packages[`node_modules/${p}`]?.hasInstallScript, `${where}: the app imports ${p}, which needs its install script (the image skips them)`);
      }
    }
  });

  test('Deployments - ports agree: EXPOSE, containerPort, the app\'s port from its env, dapr.io/app-port, Service targetPort, probes; the app listens beyond loopback', async (t) => {
    if (!requireKubectl(t)) return;
    for (const { where, deployment, container, objects } of await containers()) {
      const script = scriptOf(argvOf(container));
      const env = { ...final.env, ...INJECTED, ...containerEnv(deployment) };
      const { config } = await readAppConfig(script.local, env);
      const ports = (container.ports ?? []).map((p) => p.containerPort);
      assert.deepEqual(ports, [config.port], `${where}: containerPort ${ports.join(', ')}, the app listens on ${config.port}`);
      assert.ok(final.exposed.includes(config.port), `${where}: port ${config.port} is not in the Dockerfile's EXPOSE ${final.exposed.join(' ')}`);
      const template = (deployment.spec as { template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> } } }).template.metadata;
      assert.equal(template.annotations?.['dapr.io/app-port'], String(config.port), `${where}: dapr.io/app-port is where daprd calls the app`);
      const named = new Map((container.ports ?? []).filter((p) => p.name).map((p) => [p.name!, p.containerPort]));
      const portOf = (p: number | string): number | undefined => (typeof p === 'number' ? p : named.get(p) ?? (Number(p) || undefined));
      for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe'] as const) {
        const probe = container[kind];
        const p = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
        if (p !== undefined) assert.equal(portOf(p), config.port, `${where}: ${kind} on port ${p}`);
      }
      const services = ofKind(objects, 'Service').filter((s) => {
        const selector = (s.spec as { selector?: Record<string, string> }).selector ?? {};
        return Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => template.labels[k] === v);
      });
      for (const s of services) {
        for (const sp of (s.spec as { ports: Array<{ port: number; targetPort?: number | string }> }).ports) {
          assert.equal(portOf(sp.targetPort ?? sp.port), config.port, `${where}: Service ${s.metadata.name} port ${sp.port} targets ${String(sp.targetPort)}`);
        }
      }
      if (services.length > 0) {
        assert.ok(['0.0.0.0', '::'].includes(config.host), `${where}: Service ${services[0]!.metadata.name} sends to the pod's address, but the app listens on ${config.host} only`);
      }
    }
  });

  test('Deployments - every env var set is one the app reads, and the app runs as the run file of qscale up starts it', async (t) => {
    if (!requireKubectl(t)) return;
    for (const { where, deployment, container, example } of await containers()) {
      const argv = argvOf(container);
      const script = scriptOf(argv);
      const set = containerEnv(deployment);
      const { read } = await readAppConfig(script.local, { ...final.env, ...INJECTED, ...set });
      for (const f of importClosure(script.local).files) {
        for (const m of readFileSync(f, 'utf8').matchAll(/process\.env\.([A-Za-z_]\w*)/g)) read.add(m[1]!);
      }
      for (const name of Object.keys(set)) assert.ok(read.has(name), `${where}: sets ${name}, which the app never reads (it reads ${[...read].sort().join(', ')})`);

      const appId = (deployment.spec as { template: { metadata: { annotations?: Record<string, string> } } }).template.metadata.annotations?.['dapr.io/app-id'];
      const runFile = YAML.parse(readFileSync(path.join(EXAMPLES, example, 'dapr.yaml'), 'utf8')) as {
        apps: Array<{ appID: string; appPort?: number; command: string[]; env?: Record<string, string> }>;
      };
      const app = runFile.apps.find((a) => a.appID === appId);
      assert.ok(app, `${where}: dapr.io/app-id ${String(appId)} is no app of examples/${example}/dapr.yaml`);
      assert.deepEqual(argv, app.command, `${where}: runs ${argv.join(' ')}; qscale up runs ${app.command.join(' ')}`);
      assert.deepEqual(container.ports?.map((p) => p.containerPort), [app.appPort], `${where}: the run file's appPort`);
      for (const [k, v] of Object.entries(app.env ?? {})) assert.equal(set[k], v, `${where}: ${k} is '${v}' in the run file`);
    }
  });
});
