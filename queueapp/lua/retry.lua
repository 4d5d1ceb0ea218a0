-- Put a finished task back on the queue as a new attempt.
-- KEYS: 1 deadletter hash, 2 active hash, 3 queue, 4-7 history index per terminal state,
--       8 active index, 9 context index, 10 contexts index, 11 counts, 12 events stream,
--       13 index sequence, 14 the owner's active index, 15-18 the owner's history index per
--       terminal state
-- ARGV: 1 task id, 2 expected rev, 3 task JSON, 4 now (ms), 5 event JSON, 6 notify channel,
--       7 events max length
-- Returns {1, queue length}, {-1} when the task is not in the history, {-2} on a rev conflict.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
local fields = redis.call('HMGET', KEYS[1], 'state', 'context_id', 'meta', 'rev', 'identity')
-- finish.lua folds the bookkeeping, rev included, into one JSON field; unfold it.
local meta = fields[3] and cjson.decode(fields[3]) or {}
if (fields[4] or meta.rev) ~= ARGV[2] then
  return {-2}
end
local now = tonumber(ARGV[4])
redis.call('RENAME', KEYS[1], KEYS[2])
if fields[3] then
  redis.call('HDEL', KEYS[2], 'meta')
  for name, value in pairs(meta) do
    redis.call('HSET', KEYS[2], name, value)
  end
end
redis.call('HINCRBY', KEYS[2], 'rev', 1)
redis.call('HSET', KEYS[2], 'state', 'submitted', 'task', ARGV[3], 'updated_ms', now,
  'enqueued_ms', now, 'attempts', 0)
redis.call('HDEL', KEYS[2], 'finished_ms', 'token', 'worker', 'error', 'started_ms')
for i = 4, 7 do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
local score = index_score(KEYS[13], now)
redis.call('ZADD', KEYS[8], score, ARGV[1])
redis.call('ZADD', KEYS[9], score, ARGV[1])
redis.call('ZADD', KEYS[10], score, fields[2])
owner_index(fields[5], {KEYS[15], KEYS[16], KEYS[17], KEYS[18]}, KEYS[14], score, ARGV[1])
move_count(KEYS[11], fields[1], 'submitted')
redis.call('PERSIST', KEYS[12])
redis.call('XADD', KEYS[12], 'MAXLEN', '~', ARGV[7], '*', 'e', ARGV[5])
redis.call('LPUSH', KEYS[3], ARGV[1])
local qlen = notify(ARGV[6], KEYS[3], ARGV[1], fields[2], 'submitted', 'retried')
return {1, qlen}
