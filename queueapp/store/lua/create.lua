-- Create tasks and enqueue them, each in one step with its checks.
-- The store sends the creates asked for in one turn of its event loop together (a server
-- under load accepts many messages at once), so the bookkeeping they share is written once
-- per call rather than once per task: the queue, the active index, the contexts, the counts,
-- and the notices with the queue's length.
-- Returns, per item: {1, task id, queue length}, {0, existing task id} for a repeated message
-- id, {-1} when the task id is taken, {-3} when the context is not the owner's to use, or
-- {-4, error} when its data broke the script.
--
-- The items are created in their order, and what a later item checks (the context's index and
-- owner, the task's hashes) is written by each item as it goes, its message id noted for the
-- items after it: two messages of one call in the same new context, or with the same message
-- id, are told apart exactly as two calls would tell them.
-- KEYS and ARGV: K.<name>, A.<name> and item(n), declared in queueapp/store/scripts.py.
local created, notices = 0, {}
-- What every create writes to the shared keys, written once for the call after the loop.
local queued, active_scores, context_scores = {}, {}, {}
-- The message ids of the tasks created, stored last of all (after the shared writes): a call
-- that a damaged shared key stops leaves no message id that names a task never queued, so the
-- caller's retry creates the task anew.
local remembered, remembered_ids = {}, {}  -- message id key, TTL pairs; message id key -> task id
-- How far the item being created got with its writes (0: none yet, nil: all done), so that
-- undo_create can take back what it wrote when a later write of it fails.
local written

local function create_one(key, item_arg)
  local owner = item_arg.owner
  -- The context's owner is checked before anything else is read, so a context (or a message id
  -- in it) of someone else's is refused exactly like a context that does not exist.
  local context_known = redis.call('EXISTS', key.context_index) == 1
  if context_known then
    if (redis.call('HGET', K.context_owners, item_arg.context_id) or '') ~= owner then
      return {-3}
    end
  elseif item_arg.context_must_exist == '1' then
    return {-3}
  end
  if tonumber(item_arg.message_id_ttl_ms) > 0 then
    local existing = remembered_ids[key.message_id] or redis.call('GET', key.message_id)
    if existing then
      return {0, existing}
    end
  end
  if redis.call('EXISTS', key.active, key.deadletter) > 0 then  -- the id is taken, by a waiting or a finished task
    return {-1}
  end
  local id, now = item_arg.task_id, item_arg.now_ms
  local score = index_score(now)
  -- The task's own key first, then the indexes, each write counted: a create that a damaged
  -- key stops is undone (undo_create), so it leaves nothing behind and its caller can send the
  -- message again.
  written = 0
  if redis.call('RPUSH', key.events, '0', item_arg.event) ~= 2 then  -- the first event, none trimmed (push_event)
    -- A list no task owns (the id is new) was there, left by damage: the task's starts afresh.
    redis.call('DEL', key.events)
    redis.call('RPUSH', key.events, '0', item_arg.event)
  end
  written = 1
  redis.call('ZADD', key.context_index, score, id)
  written = 2
  if owner ~= '' then
    redis.call('ZADD', key.owner_active_index, score, id)  -- the owner's own copy of the active index
    written = 3
    if not context_known then
      redis.call('HSET', K.context_owners, item_arg.context_id, owner)
      written = 4
    end
  end
  redis.call('HSET', key.active, 'state', STATE.SUBMITTED, 'context_id', item_arg.context_id, 'task', item_arg.task_json, 'rev', '1',
    'attempts', '0', 'created_ms', now, 'updated_ms', now, 'enqueued_ms', now)
  if owner ~= '' then
    redis.call('HSET', key.active, 'identity', owner)
  end
  if item_arg.trace ~= '' then
    redis.call('HSET', key.active, 'trace', item_arg.trace)
  end
  written = nil  -- the hash is written: the task is created, and queued, indexed and counted below
  queued[#queued + 1] = id
  append_pair(active_scores, score, id)
  append_pair(context_scores, score, item_arg.context_id)
  created = created + 1
  if tonumber(item_arg.message_id_ttl_ms) > 0 then
    remembered_ids[key.message_id] = id
    append_pair(remembered, key.message_id, item_arg.message_id_ttl_ms)
  end
  notices[#notices + 1] = notice(id, item_arg.context_id, STATE.SUBMITTED, 'created')  -- its queue_length comes last
  return {1, id, 0}
end

local function undo_create(key, item_arg)
  -- Take back the writes of a create that failed, the last first (see `written`).
  local id, steps = item_arg.task_id, written or 0
  written = nil
  local undo = {{'DEL', key.events}, {'ZREM', key.context_index, id}, {'ZREM', key.owner_active_index, id},
    {'HDEL', K.context_owners, item_arg.context_id}}
  for step = steps, 1, -1 do
    pcall(redis.call, unpack(undo[step]))
  end
end

local results = {}
for n = 1, ITEMS do
  -- A task whose data breaks its create (a damaged key) fails alone, {-4, why}, undone: the
  -- others of the call are created and counted.
  local key, item_arg = item(n)
  local ok, result = pcall(create_one, key, item_arg)
  if not ok then
    undo_create(key, item_arg)
  end
  results[n] = ok and result or {-4, item_error(result)}
end
-- One LPUSH of the ids in their order leaves the queue as one LPUSH each would: the first
-- created is nearest the right, where the claims take from.
for_all('LPUSH', K.queue, queued)
for_all('ZADD', K.active_index, active_scores)
for_all('ZADD', K.contexts, context_scores)
if created > 0 then
  redis.call('HINCRBY', K.counts, STATE.SUBMITTED, string.format('%d', created))
end
for i = 1, #remembered, 2 do
  redis.call('SET', remembered[i], remembered_ids[remembered[i]], 'PX', remembered[i + 1])
end
answer_with_length(A.channel, K.queue, notices, results, 3)
return results
