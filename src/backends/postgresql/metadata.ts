/**
 * Metadata of the `bindings.qscale.postgresql` binding and of KEDA's `postgresql` trigger, declared once.
 * The binding type carries "qscale" in its name: Dapr has no PostgreSQL queue binding, so nobody should take this
 * for one of Dapr's.
 */
import { defineMetadata } from '../../components/metadata.js';
import { redeliveryFields } from '../redelivery.js';

export const POSTGRESQL_BINDING_TYPE = 'bindings.qscale.postgresql';

export const postgresqlMetadata = defineMetadata([
  {
    name: 'connectionString',
    type: 'string',
    required: true,
    sensitive: true,
    description:
      'PostgreSQL connection: a URL (postgres://user:password@host:5432/db?sslmode=disable) or libpq keyword/value ' +
      "pairs (host=... port=5432 user=... password=... dbname=... sslmode=disable).",
    aliases: ['url', 'connection'],
  },
  { name: 'queueName', type: 'string', required: true, description: 'The queue: rows of the queue table with this queue name.' },
  { name: 'schema', type: 'string', default: 'public', description: 'Schema holding the queue tables (created when absent).' },
  {
    name: 'table',
    type: 'string',
    default: 'qscale_queue',
    description: 'Queue table (shared by every queue, one row per message). Dead letters go to <table>_dead_letter.',
  },
  {
    name: 'visibilityTimeoutInSec',
    type: 'integer',
    default: 60,
    min: 1,
    binding: 'input',
    description: 'Lease of a delivered message; renewed while the handler works, released when it fails.',
  },
  {
    name: 'maxDeliveryCount',
    type: 'integer',
    default: 10,
    min: 1,
    binding: 'input',
    description: 'Deliveries before a message moves to the dead-letter table (as Service Bus MaxDeliveryCount).',
  },
  {
    name: 'maxConcurrentHandlers',
    type: 'integer',
    min: 1,
    binding: 'input',
    description: 'Caps handler calls at once (the sidecar\'s --app-max-concurrency applies as well; the lower wins).',
  },
  {
    name: 'pollInterval',
    type: 'duration',
    default: '1s',
    binding: 'input',
    description: 'How often an idle receiver looks again when no NOTIFY arrived (lost notifications, expired leases).',
  },
  ...redeliveryFields,
] as const);

/**
 * KEDA `postgresql` trigger, plus one qscale extension: `queueName`, the queue the trigger watches when the sidecar
 * serves it from the embedded queue (--embedded). Without it the name is read from the documented default query.
 */
export const postgresqlTriggerMetadata = defineMetadata([
  { name: 'query', type: 'string', required: true, description: 'A query returning one numeric value: the metric.' },
  { name: 'targetQueryValue', type: 'number', description: 'Target value per replica (required, > 0).' },
  { name: 'activationTargetQueryValue', type: 'number', default: 0, description: 'Active when the value is above this.' },
  { name: 'connection', type: 'string', sensitive: true, description: 'Connection string (usually connectionFromEnv).' },
  { name: 'host', type: 'string', description: 'Host, when no connection string is given.' },
  { name: 'port', type: 'string', description: 'Port, when no connection string is given.' },
  { name: 'userName', type: 'string', description: 'User, when no connection string is given.' },
  { name: 'password', type: 'string', sensitive: true, description: 'Password (usually passwordFromEnv).' },
  { name: 'dbName', type: 'string', description: 'Database, when no connection string is given.' },
  { name: 'sslmode', type: 'string', description: 'sslmode, when no connection string is given (disable, require, ...).' },
  { name: 'queueName', type: 'string', description: 'qscale extension: the queue this trigger measures.' },
] as const);
