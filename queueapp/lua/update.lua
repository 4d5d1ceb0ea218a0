-- Record a change on an unfinished task: state, task JSON, an event, and optionally
-- release its claim or put it back on the queue.
-- KEYS: 1 active hash, 2 active index, 3 context index, 4 contexts index, 5 counts,
--       6 events stream, 7 queue, 8 leases, 9 processing, 10 push configs, 11 index sequence,
--       12 the owner's active index
-- ARGV: 1 task id, 2 guard kind ('token' | 'rev' | 'none'), 3 guard value, 4 new state,
--       5 task JSON, 6 now (ms), 7 event JSON ('' for none), 8 action ('' | 'release' |
--       'requeue' | 'requeue_front'), 9 notify channel, 10 events max length,
--       11.. extra field/value pairs
-- Returns {1, new rev, queue length, 1 if the task has push configs else 0}, {-1} when the task
-- is not active, {-2} when the guard fails.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
if not guard_ok(KEYS[1], ARGV[2], ARGV[3]) then
  return {-2}
end
local now = tonumber(ARGV[6])
local fields = redis.call('HMGET', KEYS[1], 'state', 'context_id', 'identity')
local rev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'task', ARGV[5], 'updated_ms', now)
redis.call('HDEL', KEYS[1], 'status')  -- the claim's working status, now in the task JSON
set_fields(KEYS[1], ARGV, 11)
move_count(KEYS[5], fields[1], ARGV[4])
local score = index_score(KEYS[11], now)
redis.call('ZADD', KEYS[2], score, ARGV[1])
redis.call('ZADD', KEYS[3], score, ARGV[1])
redis.call('ZADD', KEYS[4], score, fields[2])
owner_index(fields[3], {}, KEYS[12], score, ARGV[1])
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[10], '*', 'e', ARGV[7])
end
local action = ARGV[8]
if action ~= '' then
  redis.call('HDEL', KEYS[1], 'token', 'worker')
  redis.call('ZREM', KEYS[8], ARGV[1])
  redis.call('LREM', KEYS[9], 0, ARGV[1])
  if action == 'requeue' then
    redis.call('HSET', KEYS[1], 'enqueued_ms', now)
    redis.call('LPUSH', KEYS[7], ARGV[1])
  elseif action == 'requeue_front' then
    redis.call('RPUSH', KEYS[7], ARGV[1])
  end
end
local qlen = notify(ARGV[9], KEYS[7], ARGV[1], fields[2], ARGV[4], action ~= '' and action or 'update')
return {1, rev, qlen, redis.call('EXISTS', KEYS[10])}
