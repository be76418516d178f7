/**
 * A TCP relay in front of a broker on this machine, so a test can do to one client's connections what a network or
 * a broker outage would, without touching the broker other tests use: cut every connection (a blip), refuse new ones
 * (the broker is down), or accept and never answer (a black hole), and read what the client sent.
 */
import net from 'node:net';

export type ProxyMode = 'relay' | 'refuse' | 'blackhole';

export interface CuttableProxy {
  /** 127.0.0.1 port clients connect to; stays the same across modes. */
  readonly port: number;
  /** `${scheme}://127.0.0.1:${port}`, e.g. url('nats'). */
  url(scheme: string): string;
  /** Destroys every relayed connection; new ones are accepted again right away. */
  cut(): void;
  /**
   * relay: pass bytes both ways. refuse: drop every connection and stop listening, so a connect is refused as by a
   * stopped broker's closed port. blackhole: drop every connection, then accept new ones and never answer.
   */
  setMode(mode: ProxyMode): Promise<void>;
  /** Everything clients sent through the relay, as text, since the proxy started. */
  sent(): string;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<CuttableProxy> {
  const sockets = new Set<net.Socket>();
  let mode: ProxyMode = 'relay';
  let sent = '';
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (mode === 'blackhole') {
      client.resume();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => undefined);
    client.on('data', (chunk: Buffer) => {
      if (sent.length < 4_000_000) sent += chunk.toString('latin1');
    });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.unref();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const destroyAll = (): void => {
    for (const s of sockets) s.destroy();
  };
  return {
    port,
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    cut: destroyAll,
    async setMode(m) {
      const was = mode;
      mode = m;
      if (m !== 'relay') destroyAll();
      if (m === 'refuse' && was !== 'refuse') await new Promise<void>((resolve) => server.close(() => resolve()));
      if (m !== 'refuse' && was === 'refuse') await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
    sent: () => sent,
    close() {
      destroyAll();
      if (mode === 'refuse') return Promise.resolve();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
