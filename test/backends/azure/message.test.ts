/**
 * How request metadata becomes a Service Bus message and how a received message becomes the app's headers, as
 * Dapr's Service Bus binding maps them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import { goQueryEscape, metadataOf, toServiceBusMessage } from '../../../src/backends/azure/servicebus/message.js';

const body = Buffer.from('{"text":"Hello World"}');

test('servicebus message - Dapr\'s keys set the broker fields; other keys become application properties', { timeout: 60_000 }, () => {
  const m = toServiceBusMessage(body, {
    MessageId: 'm-1', CorrelationId: 'c-1', SessionId: 's-1', Label: 'greeting', ReplyTo: 'replies', To: 'someone',
    PartitionKey: 's-1', ContentType: 'application/json', ttlInSeconds: '90', tenant: 'contoso',
  });
  assert.deepEqual(m.body, body);
  assert.equal(m.messageId, 'm-1');
  assert.equal(m.correlationId, 'c-1');
  assert.equal(m.sessionId, 's-1');
  assert.equal(m.subject, 'greeting');
  assert.equal(m.replyTo, 'replies');
  assert.equal(m.to, 'someone');
  assert.equal(m.partitionKey, 's-1');
  assert.equal(m.contentType, 'application/json');
  assert.equal(m.timeToLive, 90_000);
  assert.deepEqual(m.applicationProperties, { tenant: 'contoso' });
});

test('servicebus message - the older spellings id and correlationID still set the ids', { timeout: 60_000 }, () => {
  const m = toServiceBusMessage(body, { id: 'm-2', correlationID: 'c-2' });
  assert.equal(m.messageId, 'm-2');
  assert.equal(m.correlationId, 'c-2');
  assert.deepEqual(m.applicationProperties, {});
});

test('servicebus message - keys are matched exactly, as Dapr matches them: "label" is an application property', { timeout: 60_000 }, () => {
  const m = toServiceBusMessage(body, { label: 'x' });
  assert.equal(m.subject, undefined);
  assert.deepEqual(m.applicationProperties, { label: 'x' });
});

test('servicebus message - blank values are skipped, except a blank SessionId', { timeout: 60_000 }, () => {
  const m = toServiceBusMessage(body, { Label: '', SessionId: '', tenant: '' });
  assert.equal(m.subject, undefined);
  assert.equal(m.sessionId, '');
  assert.deepEqual(m.applicationProperties, {});
});

test('servicebus message - ScheduledEnqueueTimeUtc as an HTTP date or RFC 3339', { timeout: 60_000 }, () => {
  assert.equal(toServiceBusMessage(body, { ScheduledEnqueueTimeUtc: 'Tue, 24 Dec 2019 14:42:42 GMT' }).scheduledEnqueueTimeUtc?.toISOString(), '2019-12-24T14:42:42.000Z');
  assert.equal(toServiceBusMessage(body, { ScheduledEnqueueTimeUtc: '2019-12-24T14:42:42Z' }).scheduledEnqueueTimeUtc?.toISOString(), '2019-12-24T14:42:42.000Z');
});

const refused: Array<{ name: string; metadata: Record<string, string>; message: RegExp }> = [
  { name: 'SessionId over 128 characters', metadata: { SessionId: 'x'.repeat(129) }, message: /metadata 'SessionId' exceeds the maximum length of 128 characters/ },
  { name: 'SessionId and PartitionKey differ', metadata: { SessionId: 'a', PartitionKey: 'b' }, message: /'SessionId' \(a\) and 'PartitionKey' \(b\) must be equal/ },
  { name: 'ScheduledEnqueueTimeUtc unreadable', metadata: { ScheduledEnqueueTimeUtc: 'tomorrow' }, message: /metadata 'ScheduledEnqueueTimeUtc' must be an HTTP date .* got 'tomorrow'/ },
];
for (const c of refused) {
  test(`servicebus message - refused with a reason: ${c.name}`, { timeout: 60_000 }, () => {
    assert.throws(() => toServiceBusMessage(body, c.metadata), { code: 'ERR_MESSAGE_METADATA', message: c.message });
  });
}

test('servicebus message - received: Dapr\'s binding headers plus the broker facts, application properties escaped', { timeout: 60_000 }, () => {
  const enqueued = new Date(Date.UTC(2019, 11, 24, 14, 42, 42));
  const received = {
    body, messageId: 'm-1', correlationId: 'c-1', subject: 'greeting', deliveryCount: 2, sequenceNumber: { toString: () => '7' },
    enqueuedTimeUtc: enqueued, lockedUntilUtc: enqueued, applicationProperties: { 'my key': 'a/b c', count: 3 },
  } as unknown as ServiceBusReceivedMessage;
  const md = metadataOf(received);
  assert.equal(md.id, 'm-1');
  assert.equal(md.correlationID, 'c-1');
  assert.equal(md.label, 'greeting');
  assert.equal(md['my+key'], 'a%2Fb+c');
  assert.equal(md.count, undefined, 'only string properties pass, as in Dapr');
  assert.equal(md.MessageId, 'm-1');
  assert.equal(md.DeliveryCount, '3', 'the SDK counts earlier attempts; the header counts this one too');
  assert.equal(md.SequenceNumber, '7');
  assert.equal(md.EnqueuedTimeUtc, 'Tue, 24 Dec 2019 14:42:42 GMT');
  assert.equal(md.LockedUntilUtc, 'Tue, 24 Dec 2019 14:42:42 GMT');
});

test('servicebus message - Go\'s query escaping: unreserved kept, space as +, the rest as %XX of UTF-8', { timeout: 60_000 }, () => {
  assert.equal(goQueryEscape('AZaz09-_.~'), 'AZaz09-_.~');
  assert.equal(goQueryEscape('a b'), 'a+b');
  assert.equal(goQueryEscape("!'()*"), '%21%27%28%29%2A');
  assert.equal(goQueryEscape('é'), '%C3%A9');
});
