/**
 * The real Azure Service Bus, for the tests that can use one: QSCALE_TEST_SERVICEBUS_CONNECTION holds a namespace
 * connection string with Manage rights; QSCALE_TEST_SERVICEBUS_NAMESPACE a namespace's host name
 * (myns.servicebus.windows.net) reached with Azure AD through DefaultAzureCredential (az login, workload or managed
 * identity), whose identity holds Azure Service Bus Data Owner on it. Azure cannot be reached from the machines
 * qscale's CI runs on, so without them those tests are skipped with this reason — under CI=true too.
 */
import { ServiceBusAdministrationClient } from '@azure/service-bus';
import { DefaultAzureCredential } from '@azure/identity';

export const SERVICEBUS_ENV = 'QSCALE_TEST_SERVICEBUS_CONNECTION';
export const SERVICEBUS_NAMESPACE_ENV = 'QSCALE_TEST_SERVICEBUS_NAMESPACE';

export function serviceBusConnectionFromEnv(): string | undefined {
  const v = process.env[SERVICEBUS_ENV]?.trim();
  return v ? v : undefined;
}

export function serviceBusNamespaceFromEnv(): string | undefined {
  const v = process.env[SERVICEBUS_NAMESPACE_ENV]?.trim();
  return v ? v : undefined;
}

export function serviceBusSkipReason(): string | undefined {
  return serviceBusConnectionFromEnv()
    ? undefined
    : `Azure Service Bus cannot be reached from this machine: set ${SERVICEBUS_ENV} to a namespace connection string (Manage rights) to run this against a real namespace`;
}

export function serviceBusNamespaceSkipReason(): string | undefined {
  return serviceBusNamespaceFromEnv()
    ? undefined
    : `Azure Service Bus cannot be reached from this machine: set ${SERVICEBUS_NAMESPACE_ENV} to a namespace (myns.servicebus.windows.net) that DefaultAzureCredential can use (Azure Service Bus Data Owner) to run this against a real namespace with Azure AD`;
}

/** Removes a queue a test created (and with it its dead-letter subqueue): with Azure AD when `namespace` is given. */
export async function deleteServiceBusQueue(queueName: string, namespace?: string): Promise<void> {
  if (namespace) {
    await new ServiceBusAdministrationClient(namespace, new DefaultAzureCredential()).deleteQueue(queueName).catch(() => undefined);
    return;
  }
  const cs = serviceBusConnectionFromEnv();
  if (!cs) return;
  const admin = new ServiceBusAdministrationClient(cs);
  await admin.deleteQueue(queueName).catch(() => undefined);
}
