/**
 * Stand-ins for what Azure AD needs around a Service Bus namespace, on loopback — not Azure:
 * - an identity endpoint as Azure App Service and Container Apps offer one to a managed identity
 *   (IDENTITY_ENDPOINT + IDENTITY_HEADER), handing out a fixed token and recording what it was asked;
 * - a self-signed certificate for the AMQP test peer, which the SDK only reaches over TLS on the Azure AD path.
 * Both only let the real @azure/identity and @azure/service-bus code run end to end here; neither checks anything
 * Azure would check.
 */
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';

export interface TokenRequest {
  resource: string | null;
  clientId: string | null;
  header: string | undefined;
}

export class IdentityEndpoint {
  readonly requests: TokenRequest[] = [];
  private constructor(private readonly server: http.Server, readonly url: string, readonly header: string, readonly token: string) {}

  static async start(token = 'aad-token-from-the-identity-endpoint'): Promise<IdentityEndpoint> {
    const header = 'identity-header-not-a-secret';
    let self: IdentityEndpoint | undefined;
    const server = http.createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://127.0.0.1');
      self?.requests.push({ resource: u.searchParams.get('resource'), clientId: u.searchParams.get('client_id'), header: req.headers['x-identity-header'] as string | undefined });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({
        access_token: token,
        expires_on: String(Math.floor(Date.now() / 1000) + 3600),
        resource: u.searchParams.get('resource'),
        token_type: 'Bearer',
        client_id: u.searchParams.get('client_id') ?? 'system-assigned',
      }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new IdentityEndpoint(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/msi/token`, header, token);
    return self;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A key and a self-signed certificate for 127.0.0.1 (openssl), valid for a day. */
export function selfSignedCertificate(): { key: string; cert: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qscale-peer-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    return { key: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Sets environment variables for the length of a test; returns the undo. */
export function withEnv(vars: Record<string, string | undefined>): () => void {
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>): void => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
    }
  };
  apply(vars);
  return () => apply(before);
}
