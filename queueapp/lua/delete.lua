-- Delete a task and every trace of it.
-- KEYS: 1 active hash, 2 deadletter hash, 3 context set, 4 context index, 5 contexts index,
--       6 active index, 7-10 history index per terminal state, 11 counts, 12 events stream,
--       13 push configs, 14 queue, 15 leases, 16 processing, 17 cancels, 18 context owners
--       hash, 19 the owner's active index, 20-23 the owner's history index per terminal state
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
redis.call('DEL', key, KEYS[12], KEYS[13])
redis.call('HINCRBY', KEYS[11], state, -1)
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('ZCARD', KEYS[4]) == 0 then
  redis.call('ZREM', KEYS[5], ARGV[2])
  redis.call('HDEL', KEYS[18], ARGV[2])
end
owner_index(owner, {KEYS[19], KEYS[20], KEYS[21], KEYS[22], KEYS[23]}, nil, 0, ARGV[1])
for i = 6, 10 do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
redis.call('LREM', KEYS[14], 0, ARGV[1])
redis.call('ZREM', KEYS[15], ARGV[1])
redis.call('LREM', KEYS[16], 0, ARGV[1])
redis.call('SREM', KEYS[17], ARGV[1])
notify(ARGV[3], KEYS[14], ARGV[1], ARGV[2], state, 'deleted')
return {1, state}
