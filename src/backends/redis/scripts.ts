/**
 * The Lua the Redis queue runs where two commands must act as one: moving a dead letter back to the queue, and
 * deleting the queue's ready entries while consumers keep reading. A script runs atomically in Redis, so no consumer
 * can be handed an entry between the check and the delete, and no crash can leave a dead letter both requeued and
 * still listed (or gone from both). Needs Redis 6.2+ (exclusive XRANGE bounds), as XAUTOCLAIM does. And the
 * consumer's turn (ACK_THEN_READ): not for atomicity but for cost, one command where it took five. A Redis user the
 * queue connects as must therefore be allowed EVAL and EVALSHA.
 */

/**
 * KEYS[1] the dead-letter stream, KEYS[2] the queue stream, ARGV the dead letters' entry ids. Each one still there is
 * added to the queue as a new entry (its body and metadata, so its delivery count starts again at 1) and then deleted
 * from the dead letters. Returns how many moved; ids no longer there are skipped.
 */
export const REQUEUE_DEAD_LETTERS = `
local moved = 0
for _, id in ipairs(ARGV) do
  local found = redis.call('XRANGE', KEYS[1], id, id)
  if #found > 0 then
    local fields = found[1][2]
    local data, meta = '', '{}'
    for i = 1, #fields, 2 do
      if fields[i] == 'data' then data = fields[i + 1] elseif fields[i] == 'meta' then meta = fields[i + 1] end
    end
    redis.call('XADD', KEYS[2], '*', 'data', data, 'meta', meta)
    moved = moved + redis.call('XDEL', KEYS[1], id)
  end
end
return moved
`;

/**
 * KEYS[1] the queue stream; ARGV[1] the consumer group, ARGV[2] the newest entry id to consider, ARGV[3] at most
 * this many per call, ARGV[4] how many earlier calls of the same purge deleted. Deletes entries the group was never
 * handed: those after its last-delivered-id (the group hands entries out in id order, and a claim or a retry never
 * moves that id). Entries delivered and not yet acked are at or before it, so they stay. Returns how many it deleted;
 * fewer than ARGV[3] when it reached ARGV[2].
 *
 * On that last call it also sets the group's position past the deleted entries. Redis 7 estimates a group's lag from
 * how many entries it read, and entries deleted after its last-delivered-id throw that estimate off for good: it kept
 * counting the purged entries as waiting (an empty stream read a lag of 4), or read no lag, then a wrong one. A
 * lag-based trigger (KEDA's lagCount) would scale for messages that are gone. Moving the group to just before the
 * first entry still waiting (or to the stream's last id), with the count of entries it has passed, gives Redis the
 * exact figure again. Only when the entries still waiting are few enough to count here; Redis before 7 has no
 * ENTRIESREAD (pcall).
 */
export const PURGE_READY = `
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then return 0 end
local last, known = '0-0', false
for _, g in ipairs(groups) do
  local name, delivered
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then delivered = g[i + 1] end
  end
  if name == ARGV[1] and delivered then last, known = delivered, true end
end
local count = tonumber(ARGV[3])
local entries = redis.call('XRANGE', KEYS[1], '(' .. last, ARGV[2], 'COUNT', count)
local deleted = 0
for _, e in ipairs(entries) do deleted = deleted + redis.call('XDEL', KEYS[1], e[1]) end
if known and #entries < count and deleted + tonumber(ARGV[4]) > 0 then
  local waiting = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1001)
  if #waiting <= 1000 then
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    local added, newest
    for i = 1, #info, 2 do
      if info[i] == 'entries-added' then added = info[i + 1] elseif info[i] == 'last-generated-id' then newest = info[i + 1] end
    end
    local position = newest
    if #waiting > 0 then
      local ms, seq = string.match(waiting[1][1], '^(%d+)%-(%d+)$')
      if seq ~= '0' then
        position = ms .. '-' .. string.format('%.0f', tonumber(seq) - 1)
      else
        position = string.format('%.0f', tonumber(ms) - 1) .. '-18446744073709551615'
      end
    end
    if added then pcall(redis.call, 'XGROUP', 'SETID', KEYS[1], ARGV[1], position, 'ENTRIESREAD', added - #waiting) end
  end
end
return deleted
`;

/**
 * KEYS[1] the queue stream; ARGV[1] the consumer group, ARGV[2] the consumer, ARGV[3] how many new entries to read
 * ('0': none), ARGV[4..] the ids of answered entries. Acks and deletes those ids (XACK, then XDEL once the XACK went
 * through), then reads up to ARGV[3] entries the group was never handed (XREADGROUP without BLOCK, which a script
 * cannot run): the consumer's whole turn in one command. Returns { the XACK/XDEL outcome, the XREADGROUP reply
 * (nil: nothing waiting) }; either can be an error reply on its own, so a failed ack never hides a read and the
 * other way round. The ids go in steps of 1000 (Lua's unpack has a stack limit).
 */
export const ACK_THEN_READ = `
local acked = 0
for i = 4, #ARGV, 1000 do
  local last = math.min(i + 999, #ARGV)
  acked = redis.pcall('XACK', KEYS[1], ARGV[1], unpack(ARGV, i, last))
  if type(acked) == 'table' then break end
  local deleted = redis.pcall('XDEL', KEYS[1], unpack(ARGV, i, last))
  if type(deleted) == 'table' then
    acked = deleted
    break
  end
end
local read = false
if ARGV[3] ~= '0' then
  read = redis.pcall('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
end
return {acked, read}
`;

/**
 * KEYS[1] the queue stream; ARGV[1] the consumer group, ARGV[2] the consumer, ARGV[3] an idle time in ms (the
 * visibility timeout), ARGV[4] the consumer that holds handed-back entries, then pairs of an entry id and the
 * delivery count it had before this consumer read it. Hands back entries a consumer read ahead and never delivered:
 * each one this consumer still holds moves to ARGV[4], looking idle for ARGV[3] ms (any consumer's claim sweep
 * takes it at once), with its delivery count set back (RETRYCOUNT), so the claim that delivers it counts the
 * delivery it really is. An entry another consumer took meanwhile is left alone. Returns how many were handed back.
 */
export const HAND_BACK = `
local n = 0
for i = 5, #ARGV - 1, 2 do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p > 0 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[4], 0, ARGV[i], 'IDLE', ARGV[3], 'RETRYCOUNT', ARGV[i + 1], 'JUSTID')
    n = n + 1
  end
end
return n
`;
