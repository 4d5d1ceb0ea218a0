-- Delete a task and every trace of it.
-- Returns {1, old state}, {-1} when there is no such task, {-3} when it is unfinished and
-- only finished tasks may be deleted.
-- KEYS and ARGV: K.<name> and A.<name>, declared in queueapp/store/scripts.py.
local key = K.deadletter
if redis.call('EXISTS', K.deadletter) == 0 then
  if redis.call('EXISTS', K.active) == 0 then
    return {-1}
  end
  if A.only_finished == '1' then
    return {-3}
  end
  key = K.active
end
local state = redis.call('HGET', key, 'state')
local owner = redis.call('HGET', key, 'identity')
redis.call('DEL', key, K.events, K.push_configs)
redis.call('HINCRBY', K.counts, state, -1)
redis.call('ZREM', K.context_index, A.task_id)
if redis.call('ZCARD', K.context_index) == 0 then
  redis.call('DEL', K.legacy_context)
  redis.call('ZREM', K.contexts, A.context_id)
  redis.call('HDEL', K.context_owners, A.context_id)
end
owner_index(owner, {K.owner_active_index, unpack(K.owner_history_indexes)}, nil, 0, A.task_id)
zrem_all({K.active_index, unpack(K.history_indexes)}, A.task_id)
redis.call('LREM', K.queue, 0, A.task_id)
redis.call('ZREM', K.leases, A.task_id)
redis.call('LREM', K.processing, 0, A.task_id)
redis.call('SREM', K.cancels, A.task_id)
notify(A.channel, K.queue, A.task_id, A.context_id, state, 'deleted')
return {1, state}
