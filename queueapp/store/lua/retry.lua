-- Put a finished task back on the queue as a new attempt.
-- Returns {1, queue length}, {-1} when the task is not in the history, {-2} on a rev conflict.
-- KEYS and ARGV: K.<name> and A.<name>, declared in queueapp/store/scripts.py.
if redis.call('EXISTS', K.deadletter) == 0 then
  return {-1}
end
local fields = redis.call('HMGET', K.deadletter, 'state', 'context_id', 'meta', 'rev', 'identity')
-- finish.lua folds the bookkeeping, rev included, into one JSON field; unfold it.
local meta = fields[3] and cjson.decode(fields[3]) or {}
if (fields[4] or meta.rev) ~= A.rev then
  return {-2}
end
redis.call('RENAME', K.deadletter, K.active)
if fields[3] then
  redis.call('HDEL', K.active, 'meta')
  for name, value in pairs(meta) do
    redis.call('HSET', K.active, name, value)
  end
end
redis.call('HINCRBY', K.active, 'rev', '1')
redis.call('HSET', K.active, 'state', STATE.SUBMITTED, 'task', A.task_json, 'updated_ms', A.now_ms,
  'enqueued_ms', A.now_ms, 'attempts', '0')
redis.call('HDEL', K.active, 'finished_ms', 'token', 'worker', 'error', 'started_ms')
zrem_all(K.history_indexes, A.task_id)
local score = index_score(A.now_ms)
redis.call('ZADD', K.active_index, score, A.task_id)
redis.call('ZADD', K.context_index, score, A.task_id)
redis.call('ZADD', K.contexts, score, fields[2])
owner_index(fields[5], K.owner_history_indexes, K.owner_active_index, score, A.task_id)
move_count(K.counts, fields[1], STATE.SUBMITTED)
redis.call('PERSIST', K.events)
push_event(K.events, A.event, tonumber(A.events_maxlen))  -- numbered on from the first attempt's, if still kept
redis.call('LPUSH', K.queue, A.task_id)
local qlen = notify(A.channel, K.queue, A.task_id, fields[2], STATE.SUBMITTED, 'retried')
return {1, qlen}
