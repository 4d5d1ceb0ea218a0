-- Finish tasks: move each from active to the history (deadletter), all in one step.
-- The store sends the finishes asked for in one turn of its event loop together, so the
-- bookkeeping they share is written once per call rather than once per task: the counts,
-- the minute's stats and the queue length of the notices.
-- Returns, per item: {1, queue length, 1 if the task has push configs else 0}, {-1} when the
-- task is not active, {-2} when the guard fails, {2} when a 'cancel' flagged a claimed task
-- instead, {-4, error} when its data broke the script.
--
-- 'cancel' is a cancel request at the revision guard_value the caller read: a claimed task is
-- only flagged in the cancel set (its worker ends it on its next heartbeat), an unclaimed
-- one is finished here. Checking the claim and flagging in one step leaves no flag behind
-- for a task that finished in between; a task that changed or left answers {-2}, re-read.
-- KEYS and ARGV: K.<name>, A.<name> and item(n), declared in queueapp/store/scripts.py.
local HISTORY_OWN_FIELDS = {state = true, context_id = true, task = true, identity = true,
  token = true, progress = true, status = true, updated_ms = true, rev = true, cancel_reason = true}
local score = index_score(A.now_ms)
local events_maxlen = tonumber(A.events_maxlen)
local counts, stats, notices = {}, {}, {}
-- What every finish writes to the shared keys, written once for the call after the loop:
-- the ids that leave the active index, the leases and the cancel set; the contexts' scores;
-- each history index's score/member pairs.
local ended, context_scores, history_scores = {}, {}, {}

-- The fields a claimed task's active hash holds when nothing but the create, the claim and
-- its worker's updates wrote it: state, context_id, task, rev, attempts, created_ms,
-- updated_ms and enqueued_ms (the create), token, worker and started_ms (the claim), and
-- besides these only identity, trace, status and progress, whichever are there.
local CLAIMED_FIELDS = 11

local function history_meta(active_rev, rest_json)
  -- The history's 'meta': the task's next revision and its finish time, which only this call
  -- knows, then the bookkeeping of the JSON object rest_json.
  local head = '{"rev":"' .. string.format('%d', (tonumber(active_rev) or 0) + 1) .. '","finished_ms":"' .. A.now_ms .. '"'
  if rest_json == '{}' then
    return head .. '}'
  end
  return head .. ',' .. string.sub(rest_json, 2)
end

local function read_active(key, item_arg)
  -- The active hash's fields the finish needs (state, context_id, identity, token, rev) and the
  -- history's meta JSON; nil when the task is not active.
  if item_arg.guard_kind == 'token' and item_arg.meta_json ~= '' then
    -- A worker's finish: its claim holds the task's bookkeeping (TaskRecord.history_meta), and
    -- nobody else changes those fields while the claim's token is on the hash (the guard). So
    -- the hash is not read whole, when it holds no other field (one an earlier version or
    -- another writer left, which the history keeps): that read, sorting it and encoding its
    -- meta took a fifth of a finish's instructions.
    local f = redis.call('HMGET', key.active, 'state', 'context_id', 'token', 'rev', 'identity', 'trace', 'status', 'progress')
    if not f[1] then
      return nil
    end
    local held = CLAIMED_FIELDS
    for i = 5, 8 do  -- the fields a claimed task may or may not have
      if f[i] then held = held + 1 end
    end
    if redis.call('HLEN', key.active) == held then
      return {state = f[1], context_id = f[2], token = f[3], rev = f[4], identity = f[5]}, history_meta(f[4], item_arg.meta_json)
    end
  end
  -- The whole hash in one read: the guard, the fields the history keeps, and the rest.
  local all = redis.call('HGETALL', key.active)
  if #all == 0 then
    return nil
  end
  -- The history hash keeps state, context_id, task and identity (with auth on) as fields and
  -- the rest of the bookkeeping (rev, attempts, times, worker, the caller's extra fields...)
  -- as one JSON field, 'meta': a hash of few fields takes far less memory. The claim token and
  -- progress end with the task, the claim's status field and a cancel's reason are in the task
  -- JSON now, and updated_ms is finished_ms. One pass sorts the hash's fields into the two.
  local active, meta = {}, {finished_ms = A.now_ms}
  for i = 1, #all, 2 do
    if HISTORY_OWN_FIELDS[all[i]] then
      active[all[i]] = all[i + 1]
    else
      meta[all[i]] = all[i + 1]
    end
  end
  meta.rev = string.format('%d', (tonumber(active.rev) or 0) + 1)
  if item_arg.extra_json ~= '{}' then  -- most finishes have no extra fields: no decode
    for name, value in pairs(cjson.decode(item_arg.extra_json)) do
      if not HISTORY_OWN_FIELDS[name] then
        meta[name] = value
      end
    end
  end
  return active, cjson.encode(meta)
end

local function finish_one(key, item_arg)
  local id = item_arg.task_id
  if item_arg.guard_kind == 'cancel' then
    if redis.call('HGET', key.active, 'rev') ~= item_arg.guard_value then
      return {-2}
    end
    if redis.call('HEXISTS', key.active, 'token') == 1 then
      -- The worker ends it with the caller's reason, which its heartbeat reads with the flag.
      redis.call('HSET', key.active, 'cancel_reason', cjson.decode(item_arg.extra_json).cancel_reason or '')
      redis.call('SADD', K.cancels, id)
      return {2}
    end
  end
  local active, meta = read_active(key, item_arg)
  if not active then
    return {-1}
  end
  if item_arg.guard_kind ~= 'cancel' and not guard_ok(item_arg.guard_kind, item_arg.guard_value, active.token, active.rev, K.leases, id, A.now_ms) then
    return {-2}
  end
  local state = item_arg.state
  local history = {'state', state, 'context_id', active.context_id, 'task', item_arg.task_json, 'meta', meta}
  if active.identity then
    history[#history + 1], history[#history + 2] = 'identity', active.identity
  end
  redis.call('DEL', key.active, key.deadletter)
  redis.call('HSET', key.deadletter, unpack(history))
  tally_move(counts, active.state, state)
  add_to(counts, 'total_' .. state, 1)
  -- Collected before anything below can fail: a finished task always leaves the active index.
  ended[#ended + 1] = id
  append_pair(context_scores, score, active.context_id)
  history_scores[key.history_index] = history_scores[key.history_index] or {}
  append_pair(history_scores[key.history_index], score, id)
  redis.call('ZADD', key.context_index, score, id)
  owner_index(active.identity, key.owner_active_index, key.owner_history_index, score, id)
  if item_arg.guard_kind ~= 'token' then
    -- Only an unclaimed task can still be waiting or taken; LREM scans the whole queue, so a
    -- worker's finish skips these: its claim (lease.lua) took the id out of the queue, the
    -- processing list and the processing-seen hash.
    redis.call('LREM', K.queue, '0', id)
    redis.call('LREM', K.processing, '0', id)
    redis.call('HDEL', K.processing_seen, id)
  end
  push_event(key.events, item_arg.event, events_maxlen)
  redis.call('PEXPIRE', key.events, A.events_ttl_ms)
  add_to(stats, state, 1)
  -- How many waits were measured is the sum of the histogram's buckets (histogram.py).
  local wait_ms, run_ms = tonumber(item_arg.wait_ms), tonumber(item_arg.run_ms)
  if wait_ms >= 0 then
    add_to(stats, 'wait_ms', wait_ms)
    add_to(stats, item_arg.wait_bucket, 1)
  end
  if run_ms >= 0 then
    add_to(stats, 'run_ms', run_ms)
    add_to(stats, item_arg.run_bucket, 1)
  end
  notices[#notices + 1] = notice(id, active.context_id, state, 'finished')  -- its queue_length comes last
  return {1, 0, redis.call('EXISTS', key.push_configs)}
end

local results = {}
for n = 1, ITEMS do
  -- A task whose data breaks its finish (a damaged hash) fails alone, {-4, why}: the others
  -- of the call are finished and counted.
  local ok, result = pcall(finish_one, item(n))
  results[n] = ok and result or {-4, item_error(result)}
end
-- The history indexes first: a task missing from its history index would never be retained.
for history_index, scores in pairs(history_scores) do
  for_all('ZADD', history_index, scores)
end
for_all('ZREM', K.active_index, ended)
for_all('ZREM', K.leases, ended)
for_all('SREM', K.cancels, ended)
for_all('ZADD', K.contexts, context_scores)
write_totals(K.counts, counts)
-- A field the minute did not have yet may be the hash's first: then it gets its TTL.
if write_totals(K.stats_minute, stats) then
  redis.call('EXPIRE', K.stats_minute, A.stats_ttl_s)
end
answer_with_length(A.channel, K.queue, notices, results, 2)
return results
