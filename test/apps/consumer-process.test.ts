/**
 * The consumer as the supervisor runs it: a real process, stdout for the processed lines, SIGTERM to stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';
import { request } from 'undici';

const ROOT = path.resolve(fileURLToPath(new URL('../../../', import.meta.url)));
const MAIN = path.join(ROOT, 'dist/apps/consumer/main.js');

interface Proc {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  url: string;
  exit: Promise<number | null>;
  waitFor(lines: string[], re: RegExp, timeoutMs?: number): Promise<string>;
}

async function startConsumer(env: Record<string, string>): Promise<Proc> {
  // Port 0: the process picks a free port and says which in its first log line (no race with other processes).
  const child = spawn(process.execPath, [MAIN], { env: { ...process.env, APP_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const listeners: Array<() => void> = [];
  readline.createInterface({ input: child.stdout! }).on('line', (l) => { stdout.push(l); listeners.forEach((f) => f()); });
  readline.createInterface({ input: child.stderr! }).on('line', (l) => { stderr.push(l); listeners.forEach((f) => f()); });
  // 'close', not 'exit': every line the process wrote has been read by then.
  const exit = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  const waitFor = (lines: string[], re: RegExp, timeoutMs = 15_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = lines.find((l) => re.test(l));
        if (hit !== undefined) resolve(hit);
        return hit !== undefined;
      };
      if (check()) return;
      const t = setTimeout(() => reject(new Error(`no line matching ${re}; stdout: ${stdout.join('\n')}; stderr: ${stderr.join('\n')}`)), timeoutMs);
      listeners.push(() => { if (check()) clearTimeout(t); });
    });
  const p: Proc = { child, stdout, stderr, url: '', exit, waitFor };
  const listening = await waitFor(stderr, /consumer listening on http:\/\/127\.0\.0\.1:\d+/);
  p.url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(listening)![1]!;
  return p;
}

test('consumer - the process prints the seed line on stdout and logs on stderr', { timeout: 120_000 }, async () => {
  const p = await startConsumer({ WORK_MS: '50' });
  try {
    const res = await request(`${p.url}/message-queue`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"Hello World"}' });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    const line = await p.waitFor(p.stdout, /Hello World/);
    assert.match(line, /^Hello World -- Received at: \d{2}\/\d{2}\/\d{4} \d{2}:\d{2}:\d{2} -- Finished at: \d{2}\/\d{2}\/\d{4} \d{2}:\d{2}:\d{2}$/);
    assert.ok(!p.stdout.some((l) => /level=/.test(l)), 'log lines stay off stdout');
  } finally {
    p.child.kill('SIGKILL');
    await p.exit;
  }
});

test('consumer - SIGTERM finishes the message in progress, answers it 200, then exits 0', { timeout: 120_000 }, async () => {
  const p = await startConsumer({ WORK_MS: '1500' });
  const inFlight = request(`${p.url}/message-queue`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"in flight at SIGTERM"}' });
  // The message is being worked on once the app holds it; give the request time to arrive.
  await new Promise((r) => setTimeout(r, 300));
  p.child.kill('SIGTERM');
  await p.waitFor(p.stderr, /SIGTERM: finishing 1 message/);
  const res = await inFlight;
  assert.equal(res.statusCode, 200, 'the in-flight message is answered, so the sidecar acks it');
  await res.body.dump();
  assert.equal(await p.exit, 0);
  assert.ok(p.stdout.some((l) => l.startsWith('in flight at SIGTERM -- Received at: ')), 'its work completed');
});

test('consumer - a bad WORK_MS stops the process at start with the variable named', { timeout: 120_000 }, async () => {
  const child = spawn(process.execPath, [MAIN], { env: { ...process.env, WORK_MS: 'soon' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.equal(code, 2);
  assert.match(err, /WORK_MS='soon'/);
});
