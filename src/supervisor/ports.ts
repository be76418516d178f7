import net from 'node:net';

/** A free TCP port on loopback, chosen by the OS. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True when nothing listens on the port yet (so a run file's fixed port can be used). */
export async function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/**
 * The ports the supervisor's processes use. A port handed out stays held until its processes are confirmed gone,
 * and a released one is not handed out again soon after, so a restarted pair never binds its predecessor's ports
 * nor one another replica is about to bind (the OS may offer a port again as soon as the probe closes).
 */
export class PortPool {
  private readonly held = new Set<number>();
  private readonly recent: number[] = [];

  constructor(private readonly recentSize = 256) {}

  /** A free loopback port that no replica holds or has just released. */
  async take(): Promise<number> {
    for (let i = 0; i < 50; i++) {
      const p = await freePort();
      if (this.held.has(p) || this.recent.includes(p)) continue;
      this.held.add(p);
      return p;
    }
    throw new Error('no free loopback port found after 50 tries');
  }

  /** Holds a fixed port (a run file's) for a replica; false when another replica holds it. */
  hold(port: number): boolean {
    if (this.held.has(port)) return false;
    this.held.add(port);
    return true;
  }

  isHeld(port: number): boolean {
    return this.held.has(port);
  }

  /** Gives a port back once its processes are gone; a fixed port (`reusable`) may be held again at once. */
  release(port: number, reusable = false): void {
    if (!this.held.delete(port) || reusable) return;
    this.recent.push(port);
    if (this.recent.length > this.recentSize) this.recent.splice(0, this.recent.length - this.recentSize);
  }
}

/** The pool every Deployment of this process shares unless given its own. */
export const sharedPorts = new PortPool();
