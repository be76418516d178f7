/**
 * The embedded queue's schema and statements. One SQLite file holds every queue (rows carry their queue name).
 *
 * A message row is ready when visible_at <= now. Leasing it sets lease_token, pushes visible_at out by the
 * visibility timeout and counts the delivery; a lease whose visible_at has passed is simply ready again, which is
 * how the work of a killed process comes back without anyone cleaning up. Completing deletes the row and releasing
 * clears the token, both only while the token still matches: a late answer for an expired lease changes nothing.
 * seq (the rowid) gives FIFO by enqueue order.
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
`;

export const SQL = {
  insert: `INSERT INTO messages (queue, id, data, metadata, enqueued_at, visible_at) VALUES (?, ?, ?, ?, ?, ?)`,
  candidates: `SELECT seq, delivery_count AS deliveryCount FROM messages
    WHERE queue = ? AND visible_at <= ? ORDER BY seq LIMIT ?`,
  lease: `UPDATE messages SET lease_token = ?, visible_at = ?, delivery_count = delivery_count + 1
    WHERE seq = ? RETURNING seq, id, data, metadata, delivery_count AS deliveryCount`,
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
  deadLetters: `SELECT seq, id, data, metadata, delivery_count AS deliveryCount, reason FROM dead_letters
    WHERE queue = ? ORDER BY seq LIMIT ?`,
  requeueDead: `INSERT INTO messages (queue, id, data, metadata, enqueued_at, visible_at)
    SELECT queue, id, data, metadata, enqueued_at, ? FROM dead_letters WHERE queue = ? AND seq <= ? ORDER BY seq`,
  deleteDead: `DELETE FROM dead_letters WHERE queue = ? AND seq <= ?`,
  lastDeadSeq: `SELECT max(seq) FROM (SELECT seq FROM dead_letters WHERE queue = ? ORDER BY seq LIMIT ?)`,
} as const;
