-- Claim ids that are in the processing list: give each a token and a lease, and mark it
-- working (state, status, counts, index, an event and a notice) in the same step.
-- Returns, per claimed id: {id, task JSON, rev, attempts, enqueued_ms, context id,
-- status JSON, 1 if the task has push configs else 0, owner identity or '', traceparent or '', created_ms,
-- started_ms} (the enqueued, created and started times '' when the hash has none).
-- An id whose task is gone or no longer waiting is dropped from processing and skipped,
-- and so is an id no longer in processing (the reaper gave it back to the queue): it is
-- claimed only by whoever takes it next.
-- While the queue is paused, nothing new is claimed: the ids go back from processing to the
-- front of the queue in their order, so a pause that came while a worker was blocked in
-- BLMOVE is honoured here and a claim is never made and then undone.
-- Running it again with the same tokens returns the same claims (safe to resend).
--
-- The working status goes in a field of its own, 'status', rather than into the task JSON:
-- Lua's cjson would not round-trip every JSON value (empty arrays, big integers) of a task
-- it rewrote. The next write from Python stores the whole task again and drops the field.
-- Like the context's index, the owner's active index is not re-scored by the claim (its key
-- is not known before it); the task's next write does that.
-- KEYS and ARGV: K.<name> and A.<name>, declared in queueapp/store/scripts.py.
local claimed = {}
local given_back = {}
local paused = redis.call('EXISTS', K.paused) == 1
-- One score for all the ids; the queue's length for the notices is read once too (the queue
-- does not change until the ids given back go in, last).
local score = index_score(A.now_ms)
local events_maxlen = tonumber(A.events_maxlen)
local qlen
local counts, notices = {}, {}
-- The working status is the same for every claim of the call.
local status = '{"state":"' .. STATE_V1.WORKING .. '","timestamp":' .. cjson.encode(A.now_iso) .. '}'
-- What every claim writes to the shared keys, written once for the call after the loop.
local unseen, leases, active_scores = {}, {}, {}
local function claim_one(key, claim)
  -- The claim's row, or nil for an id that is not claimed (gone, not waiting, or paused).
  local id, token = claim.task_id, claim.token
  local was_taken = redis.call('LREM', K.processing, '1', id) == 1
  unseen[#unseen + 1] = id
  local fields = redis.call('HMGET', key.active, 'state', 'task', 'rev', 'attempts', 'enqueued_ms', 'context_id', 'token',
    'status', 'identity', 'trace', 'created_ms', 'started_ms')
  if fields[1] and fields[7] == token then
    -- Already ours: this is a resend after the first reply was lost on a dropped connection.
    -- The row is the first claim's, its start time included.
    return {id, fields[2], fields[3], fields[4], fields[5] or '', fields[6], fields[8] or '', redis.call('EXISTS', key.push_configs),
      fields[9] or '', fields[10] or '', fields[11] or '', fields[12] or ''}
  elseif was_taken and paused then
    given_back[#given_back + 1] = id
  elseif was_taken and fields[1] and not fields[7] and (fields[1] == STATE.SUBMITTED or fields[1] == STATE.WORKING) then
    local attempts = string.format('%d', (tonumber(fields[4]) or 0) + 1)
    local rev = string.format('%d', (tonumber(fields[3]) or 0) + 1)
    redis.call('HSET', key.active, 'token', token, 'worker', A.worker_id, 'started_ms', A.now_ms, 'state', STATE.WORKING,
      'status', status, 'updated_ms', A.now_ms, 'attempts', attempts, 'rev', rev)
    tally_move(counts, fields[1], STATE.WORKING)  -- right after the state it counts is written
    -- Collected before anything below can fail: a claim that got this far keeps its lease.
    append_pair(leases, A.deadline_ms, id)
    append_pair(active_scores, score, id)
    -- The entry as reads.event_entry makes it: this event is small and built here anyway.
    push_event(key.events, A.now_ms .. ':{"statusUpdate":{"taskId":' .. cjson.encode(id) .. ',"contextId":' .. cjson.encode(fields[6])
      .. ',"status":' .. status .. '}}', events_maxlen)
    local row = {id, fields[2], rev, attempts, fields[5] or '', fields[6], status, redis.call('EXISTS', key.push_configs),
      fields[9] or '', fields[10] or '', fields[11] or '', A.now_ms}
    qlen = qlen or redis.call('LLEN', K.queue)
    notices[#notices + 1] = notice(id, fields[6], STATE.WORKING, 'update', qlen)  -- last: the claim is made
    return row
  end
  return nil
end

for n = 1, ITEMS do
  local key, claim = item(n)
  -- A task whose data breaks the claim (a damaged key) is skipped, and the other claims of the
  -- call and their counts are kept. Its id goes back to the processing list, where recovery
  -- finds it: back to the queue after the grace, or left to the lease reaper if the claim got
  -- as far as its lease.
  local ok, row = pcall(claim_one, key, claim)
  if not ok then
    redis.log(redis.LOG_WARNING, 'a2a lease: ' .. claim.task_id .. ' could not be claimed: ' .. item_error(row))
    redis.call('LPUSH', K.processing, claim.task_id)
  elseif row then
    claimed[#claimed + 1] = row
  end
end
-- The leases first: a claim without its lease would never be reaped.
for_all('ZADD', K.leases, leases)
for_all('ZADD', K.active_index, active_scores)
for_all('HDEL', K.processing_seen, unseen)
write_totals(K.counts, counts)
notify_all(A.channel, notices)
for i = #given_back, 1, -1 do
  redis.call('RPUSH', K.queue, given_back[i])  -- the oldest ends at the right, taken first
end
if #given_back > 0 then
  -- The queue is longer again: say so, as a pause does, or a dashboard that read its length
  -- while the ids sat in processing would keep showing them gone.
  notify(A.channel, K.queue, '', '', '', 'given-back')
end
return claimed
