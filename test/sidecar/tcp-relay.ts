/**
 * A TCP relay in front of a real broker, so a test can make the broker unreachable and bring it back on the same
 * address: stop() refuses connections (as a broker that is down), freeze() keeps connections open but lets no byte
 * through (as a broker that hangs, or a network that drops packets), thaw() and start() undo them.
 */
import net from 'node:net';

export interface TcpRelay {
  port: number;
  /** Closes every relayed connection and the listener: new connections are refused. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** Holds every byte, both ways, on open and new connections. */
  freeze(): void;
  /** Lets the held bytes through and relays again. */
  thaw(): void;
  close(): Promise<void>;
}

export async function startRelay(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpRelay> {
  const sockets = new Set<net.Socket>();
  /** Bytes held while frozen, with the socket they are for, in arrival order. */
  const held: Array<[net.Socket, Buffer]> = [];
  let frozen = false;
  const forward = (from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (frozen) held.push([to, chunk]);
      else to.write(chunk);
    });
    from.on('close', () => to.destroy());
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    forward(client, upstream);
    forward(upstream, client);
  });
  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  const stop = async (): Promise<void> => {
    held.length = 0;
    for (const s of sockets) s.destroy();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    port,
    stop,
    start: () => listen(port),
    freeze() {
      frozen = true;
    },
    thaw() {
      frozen = false;
      for (const [to, chunk] of held.splice(0)) if (!to.destroyed) to.write(chunk);
    },
    close: stop,
  };
}
