-- Record a change on an unfinished task: state, task JSON, an event, and optionally
-- release its claim or put it back on the queue.
-- Returns {1, new rev, queue length, 1 if the task has push configs else 0}, {-1} when the task
-- is not active, {-2} when the guard fails.
-- KEYS and ARGV: K.<name> and A.<name>, declared in queueapp/store/scripts.py.
local fields = redis.call('HMGET', K.active, 'state', 'context_id', 'identity', 'token', 'rev')
if not fields[1] then
  return {-1}
end
if not guard_ok(A.guard_kind, A.guard_value, fields[4], fields[5], K.leases, A.task_id, A.now_ms) then
  return {-2}
end
local rev = string.format('%d', (tonumber(fields[5]) or 0) + 1)
redis.call('HSET', K.active, 'state', A.state, 'task', A.task_json, 'updated_ms', A.now_ms, 'rev', rev)
redis.call('HDEL', K.active, 'status')  -- the claim's working status, now in the task JSON
set_fields(K.active, ARGV, REST)
move_count(K.counts, fields[1], A.state)
local score = index_score(A.now_ms)
redis.call('ZADD', K.active_index, score, A.task_id)
redis.call('ZADD', K.context_index, score, A.task_id)
redis.call('ZADD', K.contexts, score, fields[2])
owner_index(fields[3], nil, K.owner_active_index, score, A.task_id)
if A.event ~= '' then
  push_event(K.events, A.event, tonumber(A.events_maxlen))
end
local action = A.action
if action ~= '' then
  redis.call('HDEL', K.active, 'token', 'worker')
  redis.call('ZREM', K.leases, A.task_id)
  redis.call('LREM', K.processing, '0', A.task_id)
  if action == 'requeue' then
    redis.call('HSET', K.active, 'enqueued_ms', A.now_ms)
    redis.call('LPUSH', K.queue, A.task_id)
  elseif action == 'requeue_front' then
    redis.call('RPUSH', K.queue, A.task_id)
  end
end
local qlen = notify(A.channel, K.queue, A.task_id, fields[2], A.state, action ~= '' and action or 'update')
return {1, rev, qlen, redis.call('EXISTS', K.push_configs)}
