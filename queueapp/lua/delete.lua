-- Delete a task and every trace of it.
-- KEYS: 1 active hash, 2 deadletter hash, 3 context set, 4 context index, 5 contexts index,
--       6 counts, 7 events stream, 8 push configs, 9 queue, 10 leases, 11 processing,
--       12 cancels, 13 context owners hash, 14 active index, then one history index per
--       finished state (#FINISHED, in its order), then the owner's active index and the
--       owner's history index per finished state
-- ARGV: 1 task id, 2 context id, 3 notify channel, 4 '1' to delete only finished tasks
-- Returns {1, old state}, {-1} when there is no such task, {-3} when it is unfinished and
-- only finished tasks may be deleted.
local key = KEYS[2]
if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    return {-1}
  end
  if ARGV[4] == '1' then
    return {-3}
  end
  key = KEYS[1]
end
local state = redis.call('HGET', key, 'state')
local owner = redis.call('HGET', key, 'identity')
local n = #FINISHED
local OWNER = 15 + n  -- the owner's active index, then its history indexes
redis.call('DEL', key, KEYS[7], KEYS[8])
redis.call('HINCRBY', KEYS[6], state, -1)
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('ZCARD', KEYS[4]) == 0 then
  redis.call('ZREM', KEYS[5], ARGV[2])
  redis.call('HDEL', KEYS[13], ARGV[2])
end
owner_index(owner, slice(KEYS, OWNER, n + 1), nil, 0, ARGV[1])
zrem_each(KEYS, 14, n + 1, ARGV[1])
redis.call('LREM', KEYS[9], 0, ARGV[1])
redis.call('ZREM', KEYS[10], ARGV[1])
redis.call('LREM', KEYS[11], 0, ARGV[1])
redis.call('SREM', KEYS[12], ARGV[1])
notify(ARGV[3], KEYS[9], ARGV[1], ARGV[2], state, 'deleted')
return {1, state}
