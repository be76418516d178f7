/**
 * The Lua the Redis queue runs where two commands must act as one: moving a dead letter back to the queue, and
 * deleting the queue's ready entries while consumers keep reading. A script runs atomically in Redis, so no consumer
 * can be handed an entry between the check and the delete, and no crash can leave a dead letter both requeued and
 * still listed (or gone from both). Needs Redis 6.2+ (exclusive XRANGE bounds), as XAUTOCLAIM does.
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
 * this many per call. Deletes entries the group was never handed: those after its last-delivered-id (the group
 * hands entries out in id order, and a claim or a retry never moves that id). Entries delivered and not yet acked are
 * at or before it, so they stay. Returns how many it deleted; 0 when none are left up to ARGV[2].
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
local entries = redis.call('XRANGE', KEYS[1], '(' .. last, ARGV[2], 'COUNT', ARGV[3])
local deleted = 0
for _, e in ipairs(entries) do deleted = deleted + redis.call('XDEL', KEYS[1], e[1]) end
-- Nothing left to hand out: say so in the group's lag too (Redis 7 would otherwise keep counting the deleted entries
-- as waiting, and a lag-based trigger would scale up for them). Redis before 7 has no ENTRIESREAD: pcall.
if deleted > 0 and known and #redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1) == 0 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'entries-added' then
      pcall(redis.call, 'XGROUP', 'SETID', KEYS[1], ARGV[1], last, 'ENTRIESREAD', info[i + 1])
    end
  end
end
return deleted
`;
