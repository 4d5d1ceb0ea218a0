-- Finish a task: move it from active to the history (deadletter) in one step.
-- KEYS: 1 active hash, 2 deadletter hash, 3 all index, 4 active index, 5 context index,
--       6 contexts index, 7 counts, 8 events stream, 9 queue, 10 leases, 11 processing,
--       12 cancels, 13 history index, 14 history index of the final state, 15 stats minute,
--       16 processing-seen hash, 17 push configs
-- ARGV: 1 task id, 2 guard kind ('token' | 'rev' | 'none'), 3 guard value, 4 final state,
--       5 task JSON, 6 now (ms), 7 event JSON, 8 notify channel, 9 events max length,
--       10 events TTL (ms), 11 stats TTL (s), 12 wait ms, 13 run ms, 14.. extra field/value pairs
-- Returns {1, queue length, 1 if the task has push configs else 0}, {-1} when the task is not
-- active, {-2} when the guard fails.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
if not guard_ok(KEYS[1], ARGV[2], ARGV[3]) then
  return {-2}
end
local now = tonumber(ARGV[6])
local state = ARGV[4]
local fields = redis.call('HMGET', KEYS[1], 'state', 'context_id')
redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call('HSET', KEYS[1], 'state', state, 'task', ARGV[5], 'updated_ms', now, 'finished_ms', now)
redis.call('HDEL', KEYS[1], 'token', 'progress')
set_fields(KEYS[1], ARGV, 14)
redis.call('RENAME', KEYS[1], KEYS[2])
move_count(KEYS[7], fields[1], state)
redis.call('HINCRBY', KEYS[7], 'total_' .. state, 1)
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[3], now, ARGV[1])
redis.call('ZADD', KEYS[5], now, ARGV[1])
redis.call('ZADD', KEYS[6], now, fields[2])
redis.call('ZADD', KEYS[13], now, ARGV[1])
redis.call('ZADD', KEYS[14], now, ARGV[1])
if ARGV[2] ~= 'token' then
  -- Only an unclaimed task can still be waiting; LREM scans the whole queue, so a worker's
  -- finish (its claim proves the id left the queue) skips it.
  redis.call('LREM', KEYS[9], 0, ARGV[1])
end
redis.call('LREM', KEYS[11], 0, ARGV[1])
redis.call('ZREM', KEYS[10], ARGV[1])
redis.call('SREM', KEYS[12], ARGV[1])
redis.call('HDEL', KEYS[16], ARGV[1])
redis.call('XADD', KEYS[8], 'MAXLEN', '~', ARGV[9], '*', 'e', ARGV[7])
redis.call('PEXPIRE', KEYS[8], ARGV[10])
redis.call('HINCRBY', KEYS[15], state, 1)
if tonumber(ARGV[12]) >= 0 then
  redis.call('HINCRBY', KEYS[15], 'wait_ms', ARGV[12])
  redis.call('HINCRBY', KEYS[15], 'waited', 1)
end
if tonumber(ARGV[13]) >= 0 then
  redis.call('HINCRBY', KEYS[15], 'run_ms', ARGV[13])
  redis.call('HINCRBY', KEYS[15], 'ran', 1)
end
redis.call('EXPIRE', KEYS[15], ARGV[11])
local qlen = notify(ARGV[8], KEYS[9], ARGV[1], fields[2], state, 'finished')
return {1, qlen, redis.call('EXISTS', KEYS[17])}
