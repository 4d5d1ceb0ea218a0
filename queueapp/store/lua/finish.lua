-- Finish a task: move it from active to the history (deadletter) in one step.
-- Returns {1, queue length, 1 if the task has push configs else 0}, {-1} when the task is not
-- active, {-2} when the guard fails, {2} when a 'cancel' flagged a claimed task instead.
--
-- 'cancel' is a cancel request at the revision A.guard_value the caller read: a claimed task is
-- only flagged in the cancel set (its worker ends it on its next heartbeat), an unclaimed
-- one is finished here. Checking the claim and flagging in one step leaves no flag behind
-- for a task that finished in between; a task that changed or left answers {-2}, re-read.
-- KEYS and ARGV: K.<name> and A.<name>, declared in queueapp/store/scripts.py.
if A.guard_kind == 'cancel' then
  if redis.call('HGET', K.active, 'rev') ~= A.guard_value then
    return {-2}
  end
  if redis.call('HEXISTS', K.active, 'token') == 1 then
    redis.call('SADD', K.cancels, A.task_id)
    return {2}
  end
end
-- The whole hash in one read: the guard, the fields the history keeps, and the rest.
local all = redis.call('HGETALL', K.active)
if #all == 0 then
  return {-1}
end
local active = {}
for i = 1, #all, 2 do
  active[all[i]] = all[i + 1]
end
if A.guard_kind ~= 'cancel' and not guard_ok(A.guard_kind, A.guard_value, active.token, active.rev) then
  return {-2}
end
local HISTORY_OWN_FIELDS = {state = true, context_id = true, task = true, identity = true,
  token = true, progress = true, status = true, updated_ms = true, rev = true}
local now = tonumber(A.now_ms)
local state = A.state
local fields = {active.state, active.context_id, active.identity}
-- The history hash keeps state, context_id, task and identity (with auth on) as fields and
-- the rest of the bookkeeping (rev, attempts, times, worker, the caller's extra fields...)
-- as one JSON field, 'meta': a hash of few fields takes far less memory. The claim token and
-- progress end with the task, the claim's status field is in the task JSON now, and
-- updated_ms is finished_ms.
local meta = {finished_ms = A.now_ms, rev = tostring(tonumber(active.rev) + 1)}
for name, value in pairs(active) do
  if not HISTORY_OWN_FIELDS[name] then
    meta[name] = value
  end
end
for name, value in pairs(extra_fields(ARGV, REST)) do
  if not HISTORY_OWN_FIELDS[name] then
    meta[name] = value
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
  -- Only an unclaimed task can still be waiting or taken; LREM scans the whole queue, so a
  -- worker's finish skips these: its claim (lease.lua) took the id out of the queue, the
  -- processing list and the processing-seen hash.
  redis.call('LREM', K.queue, 0, A.task_id)
  redis.call('LREM', K.processing, 0, A.task_id)
  redis.call('HDEL', K.processing_seen, A.task_id)
end
redis.call('ZREM', K.leases, A.task_id)
redis.call('SREM', K.cancels, A.task_id)
redis.call('XADD', K.events, 'MAXLEN', '~', A.events_maxlen, '*', 'e', A.event_json)
redis.call('PEXPIRE', K.events, A.events_ttl_ms)
-- The minute's first task of a state gives the hash its TTL; setting it again on every task
-- changed nothing but cost a command.
if redis.call('HINCRBY', K.stats_minute, state, 1) == 1 then
  redis.call('EXPIRE', K.stats_minute, A.stats_ttl_s)
end
if tonumber(A.wait_ms) >= 0 then
  -- How many waits were measured is the sum of the histogram's buckets (histogram.py).
  redis.call('HINCRBY', K.stats_minute, 'wait_ms', A.wait_ms)
  redis.call('HINCRBY', K.stats_minute, A.wait_bucket, 1)
end
if tonumber(A.run_ms) >= 0 then
  redis.call('HINCRBY', K.stats_minute, 'run_ms', A.run_ms)
  redis.call('HINCRBY', K.stats_minute, A.run_bucket, 1)
end
local qlen = notify(A.channel, K.queue, A.task_id, fields[2], state, 'finished')
return {1, qlen, redis.call('EXISTS', K.push_configs)}
