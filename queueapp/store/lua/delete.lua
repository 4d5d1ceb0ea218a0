-- Delete tasks and every trace of them: one for the dashboard, a batch for retention. What
-- the deletes of one call share (the counts, the active and history indexes, the leases, the
-- cancel set, the notices' queue length) is written once per call rather than once per task.
-- Returns, per item: {1, old state}, {-1} when there is no such task, {-3} when it is
-- unfinished and only finished tasks may be deleted, {-4, error} when its data broke the script.
-- KEYS and ARGV: K.<name>, A.<name> and item(n), declared in queueapp/store/scripts.py.
local counts, notices, gone = {}, {}, {}
-- The contexts whose last task went: they leave the contexts index and the owners hash.
local emptied = {}

local function delete_one(key, item_arg)
  local id = item_arg.task_id
  local hash = key.deadletter
  -- One read answers both "is it finished?" and what the delete needs; a finished hash always
  -- has a state, so only a missing one asks whether the hash is there (damaged) or active.
  local fields = redis.call('HMGET', hash, 'state', 'identity')
  if not fields[1] and redis.call('EXISTS', key.deadletter) == 0 then
    if redis.call('EXISTS', key.active) == 0 then
      return {-1}
    end
    if item_arg.only_finished == '1' then
      return {-3}
    end
    hash = key.active
    -- Only an unfinished task can still be waiting or taken (finish.lua took a finished one
    -- out of both lists); LREM scans the whole list, so a finished task's delete skips it.
    redis.call('LREM', K.queue, '0', id)
    redis.call('LREM', K.processing, '0', id)
    fields = redis.call('HMGET', hash, 'state', 'identity')
  end
  local state, owner = fields[1], fields[2]
  redis.call('DEL', hash, key.events, key.push_configs)
  gone[#gone + 1] = id  -- collected once the task is gone: it leaves the shared indexes below
  if state then
    add_to(counts, state, -1)
  end
  redis.call('ZREM', key.context_index, id)
  if redis.call('ZCARD', key.context_index) == 0 then
    redis.call('DEL', key.legacy_context)
    emptied[#emptied + 1] = item_arg.context_id
  end
  owner_index(owner, key.owner_active_index, nil, 0, id)
  owner_index(owner, key.owner_history_indexes, nil, 0, id)
  notices[#notices + 1] = notice(id, item_arg.context_id, state or '', 'deleted')  -- its queue_length comes last
  return {1, state or ''}
end

local results = {}
for n = 1, ITEMS do
  -- A task whose data breaks its delete (a key of the wrong type) fails alone, {-4, why}.
  local ok, result = pcall(delete_one, item(n))
  results[n] = ok and result or {-4, item_error(result)}
end
for _, index in ipairs({K.active_index, unpack(K.history_indexes)}) do
  for_all('ZREM', index, gone)
end
for_all('ZREM', K.leases, gone)
for_all('SREM', K.cancels, gone)
for_all('ZREM', K.contexts, emptied)
for_all('HDEL', K.context_owners, emptied)
write_totals(K.counts, counts)
notify_all_with_length(A.channel, K.queue, notices)
return results
