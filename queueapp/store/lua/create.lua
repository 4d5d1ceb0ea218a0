-- Create a task and enqueue it, in one step.
-- Returns {1, task id, queue length}, {0, existing task id} for a repeated message id,
-- {-1} when the task id is taken, or {-3} when the context is not the owner's to use.
-- KEYS and ARGV: K.<name> and A.<name>, declared in queueapp/store/scripts.py.
local owner = A.owner
-- The context's owner is checked before anything else is read, so a context (or a message id
-- in it) of someone else's is refused exactly like a context that does not exist.
local context_known = redis.call('EXISTS', K.context_index) == 1
if context_known then
  if (redis.call('HGET', K.context_owners, A.context_id) or '') ~= owner then
    return {-3}
  end
elseif A.context_must_exist == '1' then
  return {-3}
end
if tonumber(A.message_id_ttl_ms) > 0 then
  local existing = redis.call('GET', K.message_id)
  if existing then
    return {0, existing}
  end
end
if redis.call('EXISTS', K.active, K.deadletter) > 0 then  -- the id is taken, by a waiting or a finished task
  return {-1}
end
redis.call('HSET', K.active, 'state', STATE.SUBMITTED, 'context_id', A.context_id, 'task', A.task_json,
  'rev', '1', 'attempts', '0', 'created_ms', A.now_ms, 'updated_ms', A.now_ms, 'enqueued_ms', A.now_ms)
if owner ~= '' then
  redis.call('HSET', K.active, 'identity', owner)
  if not context_known then
    redis.call('HSET', K.context_owners, A.context_id, owner)
  end
end
set_fields(K.active, ARGV, REST)
local score = index_score(A.now_ms)
redis.call('ZADD', K.context_index, score, A.task_id)
redis.call('ZADD', K.contexts, score, A.context_id)
redis.call('ZADD', K.active_index, score, A.task_id)
owner_index(owner, nil, K.owner_active_index, score, A.task_id)
move_count(K.counts, nil, STATE.SUBMITTED)
redis.call('LPUSH', K.queue, A.task_id)
redis.call('RPUSH', K.events, '0', A.event)  -- the first event, none trimmed (push_event)
if tonumber(A.message_id_ttl_ms) > 0 then
  redis.call('SET', K.message_id, A.task_id, 'PX', A.message_id_ttl_ms)
end
local qlen = notify(A.channel, K.queue, A.task_id, A.context_id, STATE.SUBMITTED, 'created')
return {1, A.task_id, qlen}
