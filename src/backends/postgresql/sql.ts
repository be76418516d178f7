/**
 * The SQL of the PostgreSQL queue, in one place.
 *
 * Layout: ONE table for every queue (a `queue` column), so a queue needs no DDL and KEDA's query is a plain count:
 *   <schema>.<table>              id bigserial (FIFO order), queue, data bytea, metadata jsonb, delivery_count,
 *                                 lease_token uuid + lease_until: a message is leased while lease_until >= now();
 *                                 without a token, lease_until is when a failed message may be claimed again
 *   <schema>.<table>_dead_letter  messages that failed maxDeliveryCount times, with the reason and when; the
 *                                 message's id names the dead letter (show, requeue, purge)
 * Claims take the oldest unleased rows with FOR UPDATE SKIP LOCKED, so concurrent receivers never wait on each
 * other nor take the same row. Every later step on a row (complete, release, renew, dead-letter) names the lease
 * token: a receiver whose lease expired (and whose message went to another receiver) changes nothing.
 * Sends NOTIFY the channel with the queue name so idle receivers wake at once; a poll covers lost notifications.
 * A requeue moves dead letters back as new rows (a new id: the end of the queue, count 0, enqueued now) in one
 * statement, so a dead letter is never both requeued and kept, nor requeued twice by two callers.
 * `ensure` runs on every init: a table made by an older qscale gains what was added since, in place.
 */

export interface QueueSql {
  channel: string;
  ensure: string[];
  insert: string;
  claim: string;
  deadLetterExhausted: string;
  complete: string;
  completeMany: string;
  stillQueued: string;
  release: string;
  unclaim: string;
  deadLetterOne: string;
  renew: string;
  depth: string;
  deadLetters: string;
  deadLetter: string;
  requeueDeadLetters: string;
  purgeDeadLetters: string;
  purge: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

export function isIdentifier(name: string): boolean {
  return IDENT.test(name);
}

/** A timestamptz as milliseconds since the epoch (a JS number). */
function epochMs(column: string): string {
  return `floor(extract(epoch FROM ${column}) * 1000)::float8`;
}

/** Schema and table were checked with isIdentifier: quoting them is enough to keep them out of the SQL grammar. */
export function queueSql(schema: string, table: string): QueueSql {
  const t = `"${schema}"."${table}"`;
  const dl = `"${schema}"."${table}_dead_letter"`;
  const channel = `qscale_${schema}_${table}`.slice(0, 63);
  const deadColumns = `id::text AS id, data, metadata, delivery_count, reason, ${epochMs('enqueued_at')} AS enqueued_at,
    ${epochMs('dead_lettered_at')} AS dead_lettered_at`;
  const named = '($2::bigint[] IS NULL OR id = ANY($2::bigint[]))';
  return {
    channel,
    ensure: [
      `SELECT pg_advisory_xact_lock(hashtext('qscale:' || '${schema}.${table}'))`,
      `CREATE SCHEMA IF NOT EXISTS "${schema}"`,
      `CREATE TABLE IF NOT EXISTS ${t} (
         id bigserial PRIMARY KEY,
         queue text NOT NULL,
         data bytea NOT NULL,
         metadata jsonb NOT NULL DEFAULT '{}',
         enqueued_at timestamptz NOT NULL DEFAULT now(),
         delivery_count integer NOT NULL DEFAULT 0,
         lease_token uuid,
         lease_until timestamptz)`,
      `CREATE INDEX IF NOT EXISTS "${table}_queue_id" ON ${t} (queue, id)`,
      `CREATE TABLE IF NOT EXISTS ${dl} (
         id bigint PRIMARY KEY,
         queue text NOT NULL,
         data bytea NOT NULL,
         metadata jsonb NOT NULL DEFAULT '{}',
         enqueued_at timestamptz NOT NULL,
         delivery_count integer NOT NULL,
         reason text NOT NULL,
         dead_lettered_at timestamptz NOT NULL DEFAULT now())`,
      `CREATE INDEX IF NOT EXISTS "${table}_dead_letter_queue_id" ON ${dl} (queue, id)`,
    ],
    // $1 queue, $2 data, $3 metadata, $4 channel
    insert: `WITH i AS (INSERT INTO ${t} (queue, data, metadata) VALUES ($1, $2, $3) RETURNING id)
             SELECT pg_notify($4, $1) FROM i`,
    // $1 queue, $2 how many, $3 lease seconds, $4 lease token, $5 maxDeliveryCount
    claim: `WITH c AS (
              SELECT id FROM ${t}
              WHERE queue = $1 AND (lease_until IS NULL OR lease_until < now()) AND delivery_count < $5
              ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
            UPDATE ${t} AS m
            SET delivery_count = m.delivery_count + 1, lease_token = $4,
                lease_until = clock_timestamp() + make_interval(secs => $3)
            FROM c WHERE m.id = c.id
            RETURNING m.id::text AS id, m.data, m.metadata, m.delivery_count, ${epochMs('m.enqueued_at')} AS enqueued_at`,
    // A receiver died (or its lease ran out) during the last allowed delivery: no handler said "failed", the
    // lease just expired. $1 queue, $2 maxDeliveryCount, $3 reason
    deadLetterExhausted: `WITH d AS (
              DELETE FROM ${t} WHERE id IN (
                SELECT id FROM ${t}
                WHERE queue = $1 AND delivery_count >= $2 AND lease_until < now()
                FOR UPDATE SKIP LOCKED)
              RETURNING *)
            INSERT INTO ${dl} (id, queue, data, metadata, enqueued_at, delivery_count, reason)
            SELECT id, queue, data, metadata, enqueued_at, delivery_count, $3 FROM d`,
    // $1 id, $2 lease token
    complete: `DELETE FROM ${t} WHERE id = $1 AND lease_token = $2`,
    // Several at once, each under its own lease token: $1 ids, $2 their tokens (same order). Returns the ids deleted.
    completeMany: `DELETE FROM ${t} m USING unnest($1::bigint[], $2::uuid[]) AS d(id, token)
                   WHERE m.id = d.id AND m.lease_token = d.token RETURNING m.id::text AS id`,
    // After a completion deleted nothing: is the message still there (its lease was lost, it comes again), or gone
    // (a first attempt whose answer a dropped connection lost had deleted it)? $1 id
    stillQueued: `SELECT 1 FROM ${t} WHERE id = $1`,
    // A failed delivery: not claimable before lease_until (the redelivery backoff; NULL when there is none).
    // $1 id, $2 lease token, $3 backoff in seconds
    release: `UPDATE ${t} SET lease_token = NULL,
                lease_until = CASE WHEN $3::float8 > 0 THEN clock_timestamp() + make_interval(secs => $3::float8) END
              WHERE id = $1 AND lease_token = $2`,
    // Claimed while the receiver was stopping: handed back as if never delivered.
    unclaim: `UPDATE ${t} SET lease_token = NULL, lease_until = NULL, delivery_count = delivery_count - 1
              WHERE id = $1 AND lease_token = $2`,
    // $1 id, $2 lease token, $3 reason
    deadLetterOne: `WITH d AS (DELETE FROM ${t} WHERE id = $1 AND lease_token = $2 RETURNING *)
            INSERT INTO ${dl} (id, queue, data, metadata, enqueued_at, delivery_count, reason)
            SELECT id, queue, data, metadata, enqueued_at, delivery_count, $3 FROM d`,
    // $1 id, $2 lease token, $3 lease seconds
    renew: `UPDATE ${t} SET lease_until = clock_timestamp() + make_interval(secs => $3)
            WHERE id = $1 AND lease_token = $2`,
    // $1 queue, $2 maxDeliveryCount
    // Ready includes messages waiting out a redelivery backoff (no lease token): they wait for a receiver too.
    depth: `SELECT
              count(*) FILTER (WHERE NOT (lease_token IS NOT NULL AND lease_until >= now()) AND delivery_count < $2)::int AS ready,
              count(*) FILTER (WHERE lease_token IS NOT NULL AND lease_until >= now())::int AS in_flight,
              (SELECT count(*)::int FROM ${dl} WHERE queue = $1) AS dead
            FROM ${t} WHERE queue = $1`,
    // $1 queue, $2 limit (NULL: all)
    deadLetters: `SELECT ${deadColumns} FROM ${dl} WHERE queue = $1 ORDER BY id LIMIT $2`,
    // $1 queue, $2 id
    deadLetter: `SELECT ${deadColumns} FROM ${dl} WHERE queue = $1 AND id = $2`,
    // $1 queue, $2 ids (NULL: all), $3 channel
    requeueDeadLetters: `WITH d AS (DELETE FROM ${dl} WHERE queue = $1 AND ${named} RETURNING id, queue, data, metadata),
              i AS (INSERT INTO ${t} (queue, data, metadata) SELECT queue, data, metadata FROM d ORDER BY id RETURNING id),
              n AS (SELECT count(*)::int AS n FROM i)
            SELECT n, CASE WHEN n > 0 THEN pg_notify($3, $1) END FROM n`,
    // $1 queue, $2 ids (NULL: all)
    purgeDeadLetters: `DELETE FROM ${dl} WHERE queue = $1 AND ${named}`,
    // What depth counts as ready: under no live lease and not waiting to be dead-lettered. $1 queue, $2 maxDeliveryCount
    purge: `DELETE FROM ${t}
            WHERE queue = $1 AND NOT (lease_token IS NOT NULL AND lease_until >= now()) AND delivery_count < $2`,
  };
}
