/**
 * A nats-server of the test's own, with JetStream and monitoring on free ports (the machine's server on 4222 runs
 * without monitoring). It can be restarted on the same ports and store, as a broker restart would happen.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, portOpen } from '../../support/brokers.js';

export const NATS_SERVER = '/usr/sbin/nats-server';

export function natsServerAvailable(): boolean {
  return existsSync(NATS_SERVER);
}

export class TestNatsServer {
  private proc: ChildProcess | undefined;
  readonly storeDir = mkdtempSync(path.join(os.tmpdir(), 'qscale-nats-'));

  private constructor(
    readonly port: number,
    readonly monitorPort: number,
    private readonly auth: { user: string; pass: string } | undefined,
  ) {}

  static async start(auth?: { user: string; pass: string }): Promise<TestNatsServer> {
    const s = new TestNatsServer(await freePort(), await freePort(), auth);
    await s.up();
    return s;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get monitoringEndpoint(): string {
    return `127.0.0.1:${this.monitorPort}`;
  }

  async up(): Promise<void> {
    const args = ['-a', '127.0.0.1', '-p', String(this.port), '-m', String(this.monitorPort), '-js', '-sd', this.storeDir];
    if (this.auth) args.push('--user', this.auth.user, '--pass', this.auth.pass);
    this.proc = spawn(NATS_SERVER, args, { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      if ((await portOpen(this.port)) && (await portOpen(this.monitorPort))) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nats-server did not start on ${this.port}`);
  }

  async down(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.down();
    await this.up();
  }

  async stop(): Promise<void> {
    await this.down();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
