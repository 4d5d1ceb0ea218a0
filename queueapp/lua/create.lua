-- Create a task and enqueue it, in one step.
-- KEYS: 1 active hash, 2 deadletter hash, 3 queue, 4 context set, 5 context index,
--       6 contexts index, 7 active index, 8 counts, 9 events stream, 10 message-id key,
--       11 index sequence, 12 context owners hash, 13 the owner's active index
-- ARGV: 1 task id, 2 context id, 3 task JSON, 4 now (ms), 5 message-id TTL (ms, 0 = off),
--       6 event JSON, 7 notify channel, 8 events max length, 9 owner identity ('' = none,
--       auth off), 10 '1' when the context must already exist and be the owner's (a context
--       the client named, with auth on), 11.. extra field/value pairs (such as 'trace', the
--       W3C traceparent of the call that created the task)
-- Returns {1, task id, queue length}, {0, existing task id} for a repeated message id,
-- {-1} when the task id is taken, or {-3} when the context is not the owner's to use.
local now = tonumber(ARGV[4])
local owner = ARGV[9]
-- The context's owner is checked before anything else is read, so a context (or a message id
-- in it) of someone else's is refused exactly like a context that does not exist.
local context_known = redis.call('EXISTS', KEYS[5]) == 1
if context_known then
  if (redis.call('HGET', KEYS[12], ARGV[2]) or '') ~= owner then
    return {-3}
  end
elseif ARGV[10] == '1' then
  return {-3}
end
if tonumber(ARGV[5]) > 0 then
  local existing = redis.call('GET', KEYS[10])
  if existing then
    return {0, existing}
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return {-1}
end
redis.call('HSET', KEYS[1], 'state', STATE.SUBMITTED, 'context_id', ARGV[2], 'task', ARGV[3],
  'rev', 1, 'attempts', 0, 'created_ms', now, 'updated_ms', now, 'enqueued_ms', now)
if owner ~= '' then
  redis.call('HSET', KEYS[1], 'identity', owner)
  if not context_known then
    redis.call('HSET', KEYS[12], ARGV[2], owner)
  end
end
set_fields(KEYS[1], ARGV, 11)
redis.call('SADD', KEYS[4], ARGV[1])
local score = index_score(KEYS[11], now)
redis.call('ZADD', KEYS[5], score, ARGV[1])
redis.call('ZADD', KEYS[6], score, ARGV[2])
redis.call('ZADD', KEYS[7], score, ARGV[1])
owner_index(owner, {}, KEYS[13], score, ARGV[1])
move_count(KEYS[8], nil, STATE.SUBMITTED)
redis.call('LPUSH', KEYS[3], ARGV[1])
redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[8], '*', 'e', ARGV[6])
if tonumber(ARGV[5]) > 0 then
  redis.call('SET', KEYS[10], ARGV[1], 'PX', ARGV[5])
end
local qlen = notify(ARGV[7], KEYS[3], ARGV[1], ARGV[2], STATE.SUBMITTED, 'created')
return {1, ARGV[1], qlen}
