-- Put a finished task back on the queue as a new attempt.
-- KEYS: 1 deadletter hash, 2 active hash, 3 queue, 4 active index, 5 context index,
--       6 contexts index, 7 counts, 8 events stream, 9 index sequence, 10 the owner's active
--       index, then one history index per finished state (#FINISHED, in its order), then the
--       owner's history index per finished state
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
redis.call('HSET', KEYS[2], 'state', STATE.SUBMITTED, 'task', ARGV[3], 'updated_ms', now,
  'enqueued_ms', now, 'attempts', 0)
redis.call('HDEL', KEYS[2], 'finished_ms', 'token', 'worker', 'error', 'started_ms')
local n = #FINISHED
zrem_each(KEYS, 11, n, ARGV[1])
local score = index_score(KEYS[9], now)
redis.call('ZADD', KEYS[4], score, ARGV[1])
redis.call('ZADD', KEYS[5], score, ARGV[1])
redis.call('ZADD', KEYS[6], score, fields[2])
owner_index(fields[5], slice(KEYS, 11 + n, n), KEYS[10], score, ARGV[1])
move_count(KEYS[7], fields[1], STATE.SUBMITTED)
redis.call('PERSIST', KEYS[8])
redis.call('XADD', KEYS[8], 'MAXLEN', '~', ARGV[7], '*', 'e', ARGV[5])
redis.call('LPUSH', KEYS[3], ARGV[1])
local qlen = notify(ARGV[6], KEYS[3], ARGV[1], fields[2], STATE.SUBMITTED, 'retried')
return {1, qlen}
