-- Create a task and enqueue it, in one step.
-- KEYS: 1 active hash, 2 deadletter hash, 3 queue, 4 context set, 5 context index,
--       6 contexts index, 7 active index, 8 counts, 9 events stream, 10 message-id key,
--       11 index sequence
-- ARGV: 1 task id, 2 context id, 3 task JSON, 4 now (ms), 5 message-id TTL (ms, 0 = off),
--       6 event JSON, 7 notify channel, 8 events max length, 9.. extra field/value pairs
-- Returns {1, task id, queue length}, {0, existing task id} for a repeated message id,
-- or {-1} when the task id is taken.
local now = tonumber(ARGV[4])
if tonumber(ARGV[5]) > 0 then
  local existing = redis.call('GET', KEYS[10])
  if existing then
    return {0, existing}
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return {-1}
end
redis.call('HSET', KEYS[1], 'state', 'submitted', 'context_id', ARGV[2], 'task', ARGV[3],
  'rev', 1, 'attempts', 0, 'created_ms', now, 'updated_ms', now, 'enqueued_ms', now)
set_fields(KEYS[1], ARGV, 9)
redis.call('SADD', KEYS[4], ARGV[1])
local score = index_score(KEYS[11], now)
redis.call('ZADD', KEYS[5], score, ARGV[1])
redis.call('ZADD', KEYS[6], score, ARGV[2])
redis.call('ZADD', KEYS[7], score, ARGV[1])
move_count(KEYS[8], nil, 'submitted')
redis.call('LPUSH', KEYS[3], ARGV[1])
redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[8], '*', 'e', ARGV[6])
if tonumber(ARGV[5]) > 0 then
  redis.call('SET', KEYS[10], ARGV[1], 'PX', ARGV[5])
end
local qlen = notify(ARGV[7], KEYS[3], ARGV[1], ARGV[2], 'submitted', 'created')
return {1, ARGV[1], qlen}
