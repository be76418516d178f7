/**
 * The consumer sidecar's hop to the app: what one delivery (POST of a message to a plain node:http app answering 200)
 * costs the sidecar's process in CPU, through qscale's AppChannel.deliver (its own HTTP/1.1 client, app-http.ts) and
 * through the clients it could use instead: node:http's keep-alive Agent (what it used before), undici's Pool. The app runs
 * in a child process; this process only sends. N deliveries at C = 1 and C = 16 per client, clients interleaved round
 * by round (the machine is shared), medians of the rounds. Also: what an idle `qscale sidecar` on an embedded binding
 * costs in memory (PSS/USS from /proc/<pid>/smaps_rollup), and what loading undici in it would add.
 *
 * Run: npm run build && node dist/bench/app-hop.js [N] [--rounds R] [--no-write]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { AppChannel, metadataHeaders, type DeliveryOutcome } from '../src/sidecar/app-channel.js';
import { freePort, startSidecar } from './lib/broker-e2e.js';
import { machineLine, writeSection } from './report.js';
import { memoryOf } from './system.js';

const args = process.argv.slice(2);

type Deliver = (route: string, data: Buffer, metadata: Readonly<Record<string, string>>) => Promise<DeliveryOutcome>;
interface Client {
  name: string;
  deliver: Deliver;
  close(): Promise<void>;
}

function appChannel(port: number, c: number): Client {
  const ch = new AppChannel('127.0.0.1', port, undefined, c);
  return { name: 'AppChannel.deliver (qscale)', deliver: (r, d, m) => ch.deliver(r, d, m), close: () => ch.destroy() };
}

/** node:http as the sidecar used it before: an Agent with keep-alive, headers as an object, the body read to its end. */
function nodeHttp(port: number, c: number): Client {
  const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 30_000, maxSockets: c, scheduling: 'lifo' });
  return {
    name: 'node:http Agent',
    deliver: (route, data, metadata) => new Promise((resolve) => {
      const headers = metadataHeaders(metadata) as Record<string, string>;
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(data.length);
      const req = http.request({ host: '127.0.0.1', port, path: route, method: 'POST', headers, agent }, (res) => {
        res.once('end', () => resolve(res.statusCode === 200 ? { ok: true } : { ok: false, reason: String(res.statusCode) }));
        res.resume();
      });
      req.on('error', (e) => resolve({ ok: false, reason: e.message }));
      req.end(data);
    }),
    close: async () => agent.destroy(),
  };
}

function undiciRequest(port: number, c: number): Client {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: c, headersTimeout: 0, bodyTimeout: 0 });
  return {
    name: 'undici Pool.request',
    deliver: async (route, data, metadata) => {
      const headers = metadataHeaders(metadata) as Record<string, string>;
      headers['content-type'] = 'application/json';
      try {
        const res = await pool.request({ path: route, method: 'POST', headers, body: data });
        await res.body.dump();
        return res.statusCode === 200 ? { ok: true } : { ok: false, reason: String(res.statusCode) };
      } catch (e) {
        return { ok: false, reason: (e as Error).message };
      }
    },
    close: () => pool.destroy(),
  };
}

function undiciDispatch(port: number, c: number): Client {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: c, headersTimeout: 0, bodyTimeout: 0 });
  return {
    name: 'undici Pool.dispatch',
    deliver: (route, data, metadata) => new Promise((resolve) => {
      const headers = metadataHeaders(metadata) as Record<string, string>;
      headers['content-type'] = 'application/json';
      let status = 0;
      pool.dispatch({ path: route, method: 'POST', headers, body: data }, {
        onConnect() {},
        onHeaders(s: number) {
          status = s;
          return true;
        },
        onData() {
          return true;
        },
        onComplete() {
          resolve(status === 200 ? { ok: true } : { ok: false, reason: String(status) });
        },
        onError(e: Error) {
          resolve({ ok: false, reason: e.message });
        },
      } as never);
    }),
    close: () => pool.destroy(),
  };
}



const CLIENTS: Array<[string, (port: number, c: number) => Client]> = [
  ['AppChannel.deliver (qscale)', appChannel],
  ['node:http Agent', nodeHttp],
  ['undici Pool.request', undiciRequest],
  ['undici Pool.dispatch', undiciDispatch],
];

interface Run {
  perSec: number;
  cpuUs: number;
}

async function run(client: Client, n: number, c: number): Promise<Run> {
  const data = Buffer.from(JSON.stringify({ order: 42, item: 'a message of about a hundred bytes, as a queue carries', at: Date.now() }));
  const metadata = { 'x-order': '42', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
  // Warm-up: the pool's sockets and the JIT.
  await drive(client, Math.min(n, 2000), c, data, metadata);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await drive(client, n, c, data, metadata);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { perSec: n / (ms / 1000), cpuUs: (cpu.user + cpu.system) / n };
}

async function drive(client: Client, n: number, c: number, data: Buffer, metadata: Record<string, string>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: c }, async () => {
    while (next++ < n) {
      const out = await client.deliver('/message-queue', data, metadata);
      if (!out.ok) throw new Error(`${client.name}: delivery failed: ${out.reason}`);
    }
  }));
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** PSS/USS of an idle `qscale sidecar` on an embedded binding with an app, with `nodeArgs` (`-r undici`). */
async function idleSidecar(appPort: number, nodeArgs: string[]): Promise<{ pss: number; uss: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qscale-bench-hop-'));
  writeFileSync(path.join(dir, 'binding.yaml'),
    'apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: message-queue\nspec:\n  type: bindings.qscale.embedded\n  version: v1\n  metadata:\n  - {name: queueName, value: "hop"}\n');
  const sidecar = await startSidecar(dir, await freePort(), 'hop', appPort, { nodeArgs });
  await new Promise((r) => setTimeout(r, 3000));
  const m = memoryOf(sidecar.pid);
  const exited = new Promise((r) => sidecar.once('exit', r));
  sidecar.kill('SIGTERM');
  await exited;
  rmSync(dir, { recursive: true, force: true });
  return m;
}

async function main(): Promise<void> {
  const N = Number(args.find((a) => /^\d+$/.test(a)) ?? 20_000);
  const ri = args.indexOf('--rounds');
  const ROUNDS = ri >= 0 ? Number(args[ri + 1]) : 3;
  const WRITE = !args.includes('--no-write');
  const only = args.filter((a) => a.startsWith('--only=')).map((a) => a.slice(7));
  const app: ChildProcess = fork(fileURLToPath(import.meta.url), ['--app'], { stdio: 'inherit' });
  const port = await new Promise<number>((r) => app.once('message', (m: { port: number }) => r(m.port)));
  const clients = CLIENTS.filter(([name]) => only.length === 0 || only.some((o) => name.includes(o)));
  const results = new Map<string, Run[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of [1, 16]) {
      for (const [name, make] of round % 2 ? [...clients].reverse() : clients) {
        const client = make(port, c);
        const r = await run(client, N, c);
        await client.close();
        const key = `${name}|${c}`;
        results.set(key, [...(results.get(key) ?? []), r]);
        process.stdout.write(`round ${round + 1} C=${c} ${name}: ${r.perSec.toFixed(0)}/s, ${r.cpuUs.toFixed(1)} µs CPU/delivery\n`);
      }
    }
  }
  const rows: string[] = [];
  for (const c of [1, 16]) {
    for (const [name] of clients) {
      const rs = results.get(`${name}|${c}`)!;
      rows.push(`| ${c} | ${name} | ${median(rs.map((r) => r.perSec)).toFixed(0)} | ${median(rs.map((r) => r.cpuUs)).toFixed(1)} |`);
    }
  }
  const memory: string[] = [];
  if (!args.includes('--no-memory')) {
    for (const [label, nodeArgs] of [['qscale sidecar', []], ['qscale sidecar with undici loaded', ['-r', 'undici']]] as const) {
      const ms = [];
      for (let i = 0; i < 2; i++) ms.push(await idleSidecar(port, [...nodeArgs]));
      memory.push(`| ${label} | ${median(ms.map((m) => m.pss)).toFixed(1)} | ${median(ms.map((m) => m.uss)).toFixed(1)} |`);
    }
  }
  app.disconnect();
  const text = `${machineLine()}

What one delivery costs the consumer sidecar in CPU on its hop to the app: a POST of a 100-byte message with two
metadata headers to a node:http app (its own process) answering 200, ${N.toLocaleString('en')} deliveries at C in flight,
${ROUNDS} rounds with the clients interleaved, medians. CPU is the sending process's (process.cpuUsage), so the
app's share is not in it. \`node dist/bench/app-hop.js\`. Clients: **AppChannel.deliver (qscale)** is the sidecar's
own (src/sidecar/app-http.ts: one head string and the body written per request, answers parsed by hand, one
listener per connection); **node:http Agent** is node's keep-alive Agent as the sidecar used it before; the undici
rows are its Pool with \`request()\` (a body stream per answer) and with \`dispatch()\` and a bare handler.

| C | client | deliveries/s | CPU µs / delivery |
|---|---|---|---|
${rows.join('\n')}
${memory.length ? `
Idle \`qscale sidecar\` on an embedded binding with an app, 3 s after start (/proc/<pid>/smaps_rollup, MiB), and
the same with undici loaded (\`node -r undici\`): what taking undici for the hop would add to every replica:

| process | PSS | USS |
|---|---|---|
${memory.join('\n')}
` : ''}`;
  process.stdout.write(`\n${text}\n`);
  if (WRITE) await writeSection('Sidecar to app hop', text);
}

if (args[0] === '--app') {
  // The app: answers every request 200 once its body is read, as bench/vs-bullmq's consumer app does.
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.statusCode = 200;
      res.end();
    });
  });
  server.keepAliveTimeout = 0;
  server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    process.send!({ port: typeof a === 'object' && a ? a.port : 0 });
  });
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}
