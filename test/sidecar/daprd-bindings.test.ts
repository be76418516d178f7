/**
 * Input and output bindings loaded and delivered as daprd does: `direction` and `route` read as dapr/dapr
 * pkg/runtime/processor/binding reads them, and the headers the app gets as the components-contrib binding and
 * daprd's app channel (pkg/messaging/v1 InternalMetadataToHTTPHeader) make them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import pino from 'pino';
import { Writable } from 'node:stream';
import { loadResources } from '../../src/components/index.js';
import { metadataOf } from '../../src/backends/azure/servicebus/message.js';
import type { Backend, QueueMessage, ResolvedComponent } from '../../src/backends/types.js';
import { call, componentYaml, queueDepth, sidecarFor, startApp, tempDir, waitFor, writeComponents, type Received } from './support.js';

const send = (port: number, name: string, data: unknown, metadata: Record<string, string> = {}) =>
  call(port, 'POST', `/v1.0/bindings/${name}`, JSON.stringify({ operation: 'create', data, metadata }));
const posts = (received: Received[], url?: string): Received[] => received.filter((r) => r.method === 'POST' && (url === undefined || r.url === url));

/** A logger whose lines the test can read. */
function capturingLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push((JSON.parse(chunk.toString()) as { msg: string }).msg);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

type Meta = { components: Array<{ name: string; capabilities: string[] }>; qscale: { inputBindings: Array<{ name: string; state: string }> } };

describe('daprd fidelity - direction', { timeout: 120_000 }, () => {
  it('direction - an empty direction makes the component neither an input nor an output binding: no call reaches the broker or the app', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'empty-dir', direction: '' }) });
    const app = await startApp(() => 200);
    const sc = await sidecarFor(dir, { appPort: app.port });
    try {
      const r = await send(sc.port, 'message-queue', 1);
      assert.equal(r.status, 500);
      assert.match((r.json() as { message: string }).message, /couldn't find output binding message-queue/);
      const m = (await call(sc.port, 'GET', '/v1.0/metadata')).json() as Meta;
      assert.deepEqual(m.components, [{ name: 'message-queue', type: 'bindings.qscale.embedded', version: 'v1', capabilities: [] }]);
      assert.deepEqual(m.qscale.inputBindings, []);
      await waitFor('the app reachable', async () => (await call(sc.port, 'GET', '/v1.0/healthz')).status === 204);
      assert.equal(app.received.length, 0, 'no OPTIONS probe, no delivery');
    } finally {
      await sc.close();
      await app.close();
    }
  });

  it('direction - a misspelt direction does not stop the start: a notice names file:line and what daprd loads', async () => {
    const dir = tempDir();
    writeComponents(dir, {
      'a.yaml': componentYaml('inbound', { queueName: 'a', direction: 'inptu' }),
      'b.yaml': componentYaml('both', { queueName: 'b', direction: 'input, outptu' }),
    });
    const loaded = await loadResources([dir], { appId: 'test-app' });
    assert.deepEqual(loaded.notices.filter((n) => /direction/.test(n)).sort(), [
      `${path.join(dir, 'a.yaml')}:11: component inbound (bindings.qscale.embedded): metadata 'direction' is 'inptu': daprd reads only input and output in it and ignores 'inptu', so it loads this component as neither an input nor an output binding, and so does qscale. Write input, output or "input, output"`,
      `${path.join(dir, 'b.yaml')}:11: component both (bindings.qscale.embedded): metadata 'direction' is 'input, outptu': daprd reads only input and output in it and ignores 'outptu', so it loads this component as an input binding only, and so does qscale. Write input, output or "input, output"`,
    ]);
    const sc = await sidecarFor(dir);
    try {
      const m = (await call(sc.port, 'GET', '/v1.0/metadata')).json() as Meta;
      const caps = Object.fromEntries(m.components.map((c) => [c.name, c.capabilities]));
      assert.deepEqual(caps, { both: ['INPUT_BINDING'], inbound: [] });
    } finally {
      await sc.close();
    }
  });

  it("direction - the name is matched in any case, the parts trimmed and lower-cased: 'Direction: \" OUTPUT \"' is output only", async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'case-dir', Direction: ' OUTPUT ' }) });
    const app = await startApp(() => 200);
    const sc = await sidecarFor(dir, { appPort: app.port });
    try {
      assert.equal((await send(sc.port, 'message-queue', 1)).status, 204);
      const m = (await call(sc.port, 'GET', '/v1.0/metadata')).json() as Meta;
      assert.deepEqual(m.components[0]?.capabilities, ['OUTPUT_BINDING']);
      assert.deepEqual(m.qscale.inputBindings, []);
    } finally {
      await sc.close();
      await app.close();
    }
  });

  it("direction - a component that is neither still needs a type that exists (daprd: couldn't find binding)", async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'x', direction: '' }, 'bindings.nosuchbroker') });
    const started = await sidecarFor(dir).then((sc) => sc, (err: Error) => err);
    if (!(started instanceof Error)) {
      await started.close();
      assert.fail('the sidecar started');
    }
    assert.match(started.message, /q\.yaml:\d+: .*unsupported binding type 'bindings\.nosuchbroker'/);
  });
});

describe('daprd fidelity - route', { timeout: 120_000 }, () => {
  it("route - only the name 'route' is read, as daprd reads it: 'Route' is ignored with a warning naming file:line", async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'route-case', Route: '/elsewhere' }) });
    const app = await startApp(() => 200);
    const { logger, lines } = capturingLogger();
    const sc = await sidecarFor(dir, { appPort: app.port, logger });
    try {
      await send(sc.port, 'message-queue', 'r');
      await waitFor('the delivery', () => posts(app.received).length > 0);
      assert.deepEqual(posts(app.received).map((r) => r.url), ['/message-queue']);
      assert.ok(lines.some((l) => /q\.yaml:\d+: component message-queue \(bindings\.qscale\.embedded\): metadata 'Route' is not read: daprd reads the name 'route' exactly, so messages go to POST \/message-queue/.test(l)), lines.join('\n'));
    } finally {
      await sc.close();
      await app.close();
    }
  });

  it('route - an empty route: the OPTIONS probe asks / and messages go to /<name>, as daprd does', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'route-empty', route: '' }) });
    const app = await startApp(() => 200);
    const sc = await sidecarFor(dir, { appPort: app.port });
    try {
      await send(sc.port, 'message-queue', 'e');
      await waitFor('the delivery', () => posts(app.received).length > 0);
      assert.deepEqual(app.received.filter((r) => r.method === 'OPTIONS').map((r) => r.url), ['/']);
      assert.deepEqual(posts(app.received).map((r) => r.url), ['/message-queue']);
    } finally {
      await sc.close();
      await app.close();
    }
  });

  it('route - the path is cleaned as Go cleans it: orders//in/./ is /orders/in', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'route-clean', route: 'orders//in/./' }) });
    const app = await startApp(() => 200);
    const sc = await sidecarFor(dir, { appPort: app.port });
    try {
      await send(sc.port, 'message-queue', 'c');
      await waitFor('the delivery', () => posts(app.received).length > 0);
      assert.deepEqual(app.received.map((r) => `${r.method} ${r.url}`), ['OPTIONS /orders/in', 'POST /orders/in']);
    } finally {
      await sc.close();
      await app.close();
    }
  });
});

/** A Service Bus binding with no Azure behind it: hands the app one message the real backend's mapping read. */
function fakeServiceBus(message: QueueMessage): (c: ResolvedComponent) => Backend {
  return (c) => ({
    name: c.name,
    type: c.type,
    init: async () => undefined,
    send: async () => undefined,
    receive: async (handler, { signal }) => {
      await handler(message);
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    },
    depth: async () => ({ ready: 0, inFlight: 0, deadLettered: 0 }),
    close: async () => undefined,
  });
}

const SERVICE_BUS_MESSAGE = {
  body: Buffer.from('"hi"'),
  messageId: 'm-1',
  correlationId: 'c-1',
  subject: 'greeting',
  replyTo: 'replies',
  to: 'someone',
  contentType: 'application/json',
  deliveryCount: 2,
  enqueuedTimeUtc: new Date('2026-01-02T03:04:05Z'),
  lockedUntilUtc: new Date('2026-01-02T03:05:05Z'),
  sequenceNumber: { toString: () => '42' },
  applicationProperties: { tenant: 'acme corp', 'Order Id': 'a/b', count: 7 },
} as unknown as ServiceBusReceivedMessage;

describe('daprd fidelity - headers the app gets', { timeout: 180_000 }, () => {
  for (const brokerHeaders of [false, true]) {
    it(`headers - Service Bus (fake broker: no Azure here): id, correlationID, label and the escaped application properties${brokerHeaders ? ', and with --broker-headers also MessageId, DeliveryCount and the other broker facts' : '; no MessageId, DeliveryCount or other header daprd never sends'}`, async () => {
      const dir = tempDir();
      writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'sb', connectionString: 'Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=v' }, 'bindings.azure.servicebusqueues') });
      const app = await startApp(() => 200);
      const message: QueueMessage = { id: 'm-1', data: Buffer.from('"hi"'), metadata: metadataOf(SERVICE_BUS_MESSAGE), deliveryCount: 3 };
      const sc = await sidecarFor(dir, { appPort: app.port, createBackend: fakeServiceBus(message), brokerHeaders });
      try {
        const [got] = await waitFor('the delivery', () => posts(app.received).length > 0 && posts(app.received));
        const { host: _h, connection: _c, 'content-length': _l, ...headers } = got!.headers;
        const dapr = { 'content-type': 'application/json', id: 'm-1', correlationid: 'c-1', label: 'greeting', tenant: 'acme+corp', 'order+id': 'a%2Fb' };
        const broker = {
          messageid: 'm-1', replyto: 'replies', to: 'someone', contenttype: 'application/json', deliverycount: '3',
          enqueuedtimeutc: 'Fri, 02 Jan 2026 03:04:05 GMT', lockeduntilutc: 'Fri, 02 Jan 2026 03:05:05 GMT', sequencenumber: '42',
        };
        assert.deepEqual(headers, brokerHeaders ? { ...broker, ...dapr } : dapr);
      } finally {
        await sc.close();
        await app.close();
      }
    });
  }

  it('headers - --embedded serving Service Bus gives what its Dapr binding would: id, correlationID, label, escaped properties; message properties and blank values are no headers', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'sb-embedded', connectionString: 'Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=v' }, 'bindings.azure.servicebusqueues') });
    const app = await startApp(() => 200);
    const sc = await sidecarFor(dir, { appPort: app.port, embedded: true });
    try {
      const metadata = { MessageId: 'order-7', correlationID: 'corr', Label: 'new', ttlInSeconds: '60', ReplyTo: 'r', 'My Key': 'a b/c', blank: '' };
      assert.equal((await send(sc.port, 'message-queue', 'x', metadata)).status, 204);
      const [got] = await waitFor('the delivery', () => posts(app.received).length > 0 && posts(app.received));
      const { host: _h, connection: _c, 'content-length': _l, ...headers } = got!.headers;
      assert.deepEqual(headers, { 'content-type': 'application/json', id: 'order-7', correlationid: 'corr', label: 'new', 'my+key': 'a+b%2Fc' });
    } finally {
      await sc.close();
      await app.close();
    }
  });

  it('headers - --embedded serving RabbitMQ gives every request metadata entry, its name query-escaped and its value as sent', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'rmq-embedded', host: 'amqp://guest:guest@127.0.0.1:5672' }, 'bindings.rabbitmq') });
    const app = await startApp(() => 200);
    const sc = await sidecarFor(dir, { appPort: app.port, embedded: true });
    try {
      assert.equal((await send(sc.port, 'message-queue', 'x', { ttlInSeconds: '60', 'My Key': 'a b/c' })).status, 204);
      const [got] = await waitFor('the delivery', () => posts(app.received).length > 0 && posts(app.received));
      const { host: _h, connection: _c, 'content-length': _l, ...headers } = got!.headers;
      assert.deepEqual(headers, { 'content-type': 'application/json', ttlinseconds: '60', 'my+key': 'a b/c' });
    } finally {
      await sc.close();
      await app.close();
    }
  });

  it('headers - metadata daprd never sends as a header stays out; grpc-* and HTTP/2 pseudo names go under dapr-; values go as UTF-8 bytes', async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'hdr-policy' }) });
    const app = await startApp(() => 200);
    const sc = await sidecarFor(dir, { appPort: app.port });
    try {
      const metadata = {
        'Content-Type': 'text/plain', 'content-length': '1', 'keep-alive': 'x', upgrade: 'x', te: 'x', trailer: 'x', 'proxy-authorization': 'x',
        'http2-settings': 'x', 'destination-app-id': 'x', 'trace-bin': 'x', connection: 'x-private', 'X-Private': 'hidden',
        'grpc-timeout': '1S', ':authority': 'here', 'X-Name': 'Zoë ✓',
      };
      assert.equal((await send(sc.port, 'message-queue', 'h', metadata)).status, 204);
      const [got] = await waitFor('the delivery', () => posts(app.received).length > 0 && posts(app.received));
      const { host: _h, connection: _c, 'content-length': _l, ...headers } = got!.headers;
      assert.deepEqual(headers, {
        'content-type': 'application/json', 'dapr-grpc-timeout': '1S', 'dapr-authority': 'here',
        'x-name': Buffer.from('Zoë ✓', 'utf8').toString('latin1'),
      });
    } finally {
      await sc.close();
      await app.close();
    }
  });

  it("headers - a metadata value Go's HTTP client refuses (a control character) fails the delivery as in daprd: not acked, dead-lettered after maxDeliveryCount", async () => {
    const dir = tempDir();
    writeComponents(dir, { 'q.yaml': componentYaml('message-queue', { queueName: 'hdr-bad', retryBackoff: '0s', maxDeliveryCount: '2' }) });
    const app = await startApp(() => 200);
    const { logger, lines } = capturingLogger();
    const sc = await sidecarFor(dir, { appPort: app.port, logger });
    try {
      assert.equal((await send(sc.port, 'message-queue', 'bad', { note: 'line one\nline two' })).status, 204);
      await waitFor('dead-lettered', async () => (await queueDepth(path.join(dir, '.qscale'), 'hdr-bad')).deadLettered === 1);
      assert.equal(posts(app.received).length, 0);
      assert.ok(lines.some((l) => /metadata 'note' has a control character in its value, so it cannot reach the app as a header \(daprd fails such a delivery too\)/.test(l)), lines.join('\n'));
    } finally {
      await sc.close();
      await app.close();
    }
  });
});
