/** A 127.0.0.1 port nothing listens on (bound, then released): a connect to it is refused. A fixed "unused" port is not. */
import net from 'node:net';

export async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}
