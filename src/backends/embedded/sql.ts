/**
 * The embedded queue's schema and statements. One SQLite file holds every queue (rows carry their queue name).
 *
 * A message row is ready when visible_at <= now. Leasing it sets lease_token, pushes visible_at out by the
 * visibility timeout and counts the delivery; a lease whose visible_at has passed is simply ready again, which is
 * how the work of a killed process comes back without anyone cleaning up. Completing deletes the row and releasing
 * clears the token, both only while the token still matches: a late answer for an expired lease changes nothing.
 * seq (the rowid) gives FIFO by enqueue order.
 *
 * A dead letter keeps the message's id (a UUID), which names it for show, requeue and purge. A requeue inserts it
 * again as a new row (new seq: end of the queue, count 0, enqueued now) and deletes the dead letter, in one
 * transaction.
 *
 * SCHEMA runs on every open, so a file written by an older qscale gains what was added since (only CREATE ... IF NOT
 * EXISTS here: an index needs nothing more).
 */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  id TEXT NOT NULL,
  data BLOB NOT NULL,
  metadata TEXT NOT NULL,
  enqueued_at INTEGER NOT NULL,
  visible_at INTEGER NOT NULL,
  lease_token TEXT,
  delivery_count INTEGER NOT NULL DEFAULT 0
);
-- FIFO scan of one queue, filtering on visibility without touching the table.
CREATE INDEX IF NOT EXISTS messages_fifo ON messages(queue, seq, visible_at);
-- In-flight work is few rows: a partial index keeps counting it cheap whatever the backlog.
CREATE INDEX IF NOT EXISTS messages_leased ON messages(queue, visible_at) WHERE lease_token IS NOT NULL;
CREATE TABLE IF NOT EXISTS dead_letters (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  id TEXT NOT NULL,
  data BLOB NOT NULL,
  metadata TEXT NOT NULL,
  enqueued_at INTEGER NOT NULL,
  delivery_count INTEGER NOT NULL,
  reason TEXT NOT NULL,
  dead_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_queue ON dead_letters(queue, seq);
-- Show, requeue and purge by id.
CREATE INDEX IF NOT EXISTS dead_letters_id ON dead_letters(queue, id);
-- Pub/sub fan-out: a publish to a topic key is stored in every queue bound to it (one per subscription).
CREATE TABLE IF NOT EXISTS topic_queues (
  topic TEXT NOT NULL,
  queue TEXT NOT NULL,
  bound_at INTEGER NOT NULL,
  PRIMARY KEY (topic, queue)
) WITHOUT ROWID;
`;

const DEAD_COLUMNS = `seq, id, data, metadata, delivery_count AS deliveryCount, reason, enqueued_at AS enqueuedAt,
  dead_at AS deadLetteredAt`;
const REQUEUE = `INSERT INTO messages (queue, id, data, metadata, enqueued_at, visible_at)
  SELECT queue, id, data, metadata, ?, ? FROM dead_letters`;

export const SQL = {
  insert: `INSERT INTO messages (queue, id, data, metadata, enqueued_at, visible_at) VALUES (?, ?, ?, ?, ?, ?)`,
  candidates: `SELECT seq, delivery_count AS deliveryCount FROM messages
    WHERE queue = ? AND visible_at <= ? ORDER BY seq LIMIT ?`,
  // The candidates of one lease, all at once: within the lease's transaction, the rows of the queue from the first
  // candidate's seq to the last one's that are ready are exactly the candidates. Those at the maximum delivery count
  // were set aside just before. RETURNING gives no order: the caller sorts by seq.
  // ? token, visible_at, queue, first seq, last seq, now, maxDelivery
  leaseRange: `UPDATE messages SET lease_token = ?, visible_at = ?, delivery_count = delivery_count + 1
    WHERE queue = ? AND seq BETWEEN ? AND ? AND visible_at <= ? AND delivery_count < ?
    RETURNING seq, id, data, metadata, delivery_count AS deliveryCount, enqueued_at AS enqueuedAt`,
  complete: `DELETE FROM messages WHERE seq = ? AND lease_token = ?`,
  release: `UPDATE messages SET lease_token = NULL, visible_at = ? WHERE seq = ? AND lease_token = ?`,
  renew: `UPDATE messages SET visible_at = ? WHERE seq = ? AND lease_token = ?`,
  deliveryCountOf: `SELECT delivery_count AS deliveryCount FROM messages WHERE seq = ? AND lease_token = ?`,
  toDeadLetters: `INSERT INTO dead_letters (queue, id, data, metadata, enqueued_at, delivery_count, reason, dead_at)
    SELECT queue, id, data, metadata, enqueued_at, delivery_count, ?, ? FROM messages WHERE seq = ?`,
  deleteBySeq: `DELETE FROM messages WHERE seq = ?`,
  total: `SELECT count(*) FROM messages WHERE queue = ?`,
  inFlight: `SELECT count(*) FROM messages WHERE queue = ? AND lease_token IS NOT NULL AND visible_at > ?`,
  deadCount: `SELECT count(*) FROM dead_letters WHERE queue = ?`,
  any: `SELECT 1 FROM messages WHERE queue = ? LIMIT 1`,
  nextVisible: `SELECT min(visible_at) FROM messages WHERE queue = ? AND visible_at > ?`,
  deadLetters: `SELECT ${DEAD_COLUMNS} FROM dead_letters WHERE queue = ? ORDER BY seq LIMIT ?`,
  deadLetter: `SELECT ${DEAD_COLUMNS} FROM dead_letters WHERE queue = ? AND id = ? ORDER BY seq LIMIT 1`,
  // Leases that ran out on the last allowed delivery: set aside, never handed out again. ? queue, now, maxDelivery
  exhausted: `SELECT seq, delivery_count AS deliveryCount FROM messages
    WHERE queue = ? AND lease_token IS NOT NULL AND visible_at <= ? AND delivery_count >= ?`,
  // Ready = what depth counts as ready: every row but those under a live lease. ? queue, now
  purgeReady: `DELETE FROM messages WHERE queue = ? AND (lease_token IS NULL OR visible_at <= ?)`,
  // ? enqueued_at, visible_at, queue [, ids as a JSON array]
  requeueAll: `${REQUEUE} WHERE queue = ? ORDER BY seq`,
  requeueIds: `${REQUEUE} WHERE queue = ? AND id IN (SELECT value FROM json_each(?)) ORDER BY seq`,
  deleteDeadAll: `DELETE FROM dead_letters WHERE queue = ?`,
  deleteDeadIds: `DELETE FROM dead_letters WHERE queue = ? AND id IN (SELECT value FROM json_each(?))`,
  bindQueue: `INSERT OR IGNORE INTO topic_queues (topic, queue, bound_at) VALUES (?, ?, ?)`,
  topicQueues: `SELECT queue FROM topic_queues WHERE topic = ? ORDER BY queue`,
} as const;
