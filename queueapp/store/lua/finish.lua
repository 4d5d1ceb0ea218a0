-- Finish a task: move it from active to the history (deadletter) in one step.
-- Its KEYS and ARGV are K.* and A.*, declared in queueapp/store/scripts.py.
-- Returns {1, queue length, 1 if the task has push configs else 0}, {-1} when the task is not
-- active, {-2} when the guard fails, {2} when a 'cancel' flagged a claimed task instead.
--
-- 'cancel' is a cancel request at the revision A.guard_value the caller read: a claimed task is
-- only flagged in the cancel set (its worker ends it on its next heartbeat), an unclaimed
-- one is finished here. Checking the claim and flagging in one step leaves no flag behind
-- for a task that finished in between; a task that changed or left answers {-2}, re-read.
if A.guard_kind == 'cancel' then
  if redis.call('HGET', K.active, 'rev') ~= A.guard_value then
    return {-2}
  end
  if redis.call('HEXISTS', K.active, 'token') == 1 then
    redis.call('SADD', K.cancels, A.task_id)
    return {2}
  end
elseif redis.call('EXISTS', K.active) == 0 then
  return {-1}
elseif not guard_ok(K.active, A.guard_kind, A.guard_value) then
  return {-2}
end
local HISTORY_OWN_FIELDS = {state = true, context_id = true, task = true, identity = true,
  token = true, progress = true, status = true, updated_ms = true}
local now = tonumber(A.now_ms)
local state = A.state
local fields = redis.call('HMGET', K.active, 'state', 'context_id', 'identity')
local rev = redis.call('HINCRBY', K.active, 'rev', 1)
set_fields(K.active, ARGV, REST)
-- The history hash keeps state, context_id, task and identity (with auth on) as fields and
-- the rest of the bookkeeping (rev, attempts, times, worker...) as one JSON field, 'meta':
-- a hash of few fields takes far less memory. The claim token and progress end with the
-- task, the claim's status field is in the task JSON now, and updated_ms is finished_ms.
local meta = {finished_ms = A.now_ms, rev = tostring(rev)}
local all = redis.call('HGETALL', K.active)
for i = 1, #all, 2 do
  if not HISTORY_OWN_FIELDS[all[i]] then
    meta[all[i]] = all[i + 1]
  end
end
redis.call('DEL', K.active, K.deadletter)
redis.call('HSET', K.deadletter, 'state', state, 'context_id', fields[2], 'task', A.task_json, 'meta', cjson.encode(meta))
if fields[3] then
  redis.call('HSET', K.deadletter, 'identity', fields[3])
end
move_count(K.counts, fields[1], state)
redis.call('HINCRBY', K.counts, 'total_' .. state, 1)
redis.call('ZREM', K.active_index, A.task_id)
local score = index_score(K.index_seq, now)
redis.call('ZADD', K.context_index, score, A.task_id)
redis.call('ZADD', K.contexts, score, fields[2])
redis.call('ZADD', K.history_index, score, A.task_id)
owner_index(fields[3], {K.owner_active_index}, K.owner_history_index, score, A.task_id)
if A.guard_kind ~= 'token' then
  -- Only an unclaimed task can still be waiting; LREM scans the whole queue, so a worker's
  -- finish (its claim proves the id left the queue) skips it.
  redis.call('LREM', K.queue, 0, A.task_id)
end
redis.call('LREM', K.processing, 0, A.task_id)
redis.call('ZREM', K.leases, A.task_id)
redis.call('SREM', K.cancels, A.task_id)
redis.call('HDEL', K.processing_seen, A.task_id)
redis.call('XADD', K.events, 'MAXLEN', '~', A.events_maxlen, '*', 'e', A.event_json)
redis.call('PEXPIRE', K.events, A.events_ttl_ms)
redis.call('HINCRBY', K.stats_minute, state, 1)
if tonumber(A.wait_ms) >= 0 then
  redis.call('HINCRBY', K.stats_minute, 'wait_ms', A.wait_ms)
  redis.call('HINCRBY', K.stats_minute, 'waited', 1)
  redis.call('HINCRBY', K.stats_minute, A.wait_bucket, 1)
end
if tonumber(A.run_ms) >= 0 then
  redis.call('HINCRBY', K.stats_minute, 'run_ms', A.run_ms)
  redis.call('HINCRBY', K.stats_minute, 'ran', 1)
  redis.call('HINCRBY', K.stats_minute, A.run_bucket, 1)
end
redis.call('EXPIRE', K.stats_minute, A.stats_ttl_s)
local qlen = notify(A.channel, K.queue, A.task_id, fields[2], state, 'finished')
return {1, qlen, redis.call('EXISTS', K.push_configs)}
