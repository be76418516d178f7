/**
 * The real Azure Service Bus, for the tests that can use one: only when QSCALE_TEST_SERVICEBUS_CONNECTION holds a
 * namespace connection string with Manage rights. Azure cannot be reached from the machines qscale's CI runs on, so
 * without it those tests are skipped with this reason — under CI=true too.
 */
import { ServiceBusAdministrationClient } from '@azure/service-bus';

export const SERVICEBUS_ENV = 'QSCALE_TEST_SERVICEBUS_CONNECTION';

export function serviceBusConnectionFromEnv(): string | undefined {
  const v = process.env[SERVICEBUS_ENV]?.trim();
  return v ? v : undefined;
}

export function serviceBusSkipReason(): string | undefined {
  return serviceBusConnectionFromEnv()
    ? undefined
    : `Azure Service Bus cannot be reached from this machine: set ${SERVICEBUS_ENV} to a namespace connection string (Manage rights) to run this against a real namespace`;
}

/** Removes a queue a test created (and with it its dead-letter subqueue). */
export async function deleteServiceBusQueue(queueName: string): Promise<void> {
  const cs = serviceBusConnectionFromEnv();
  if (!cs) return;
  const admin = new ServiceBusAdministrationClient(cs);
  await admin.deleteQueue(queueName).catch(() => undefined);
}
