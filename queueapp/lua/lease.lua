-- Claim ids that are in the processing list: give each a token and a lease, and mark it
-- working (state, status, counts, index, an event and a notice) in the same step.
-- KEYS: 1 processing, 2 leases, 3 processing-seen hash, 4 counts, 5 active index, 6 queue,
--       7 index sequence, 8 paused flag, then three keys per id: its active hash, its events
--       stream, its push configs
-- ARGV: 1 now (ms), 2 lease deadline (ms), 3 worker id, 4 now as an ISO 8601 timestamp,
--       5 notify channel, 6 events max length, then one (task id, token) pair per id
-- Returns, per claimed id: {id, task JSON, rev, attempts, enqueued_ms, context id,
-- status JSON, 1 if the task has push configs else 0, owner identity or '', traceparent or ''}.
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
local claimed = {}
local given_back = {}
local paused = redis.call('EXISTS', KEYS[8]) == 1
local ids = (#KEYS - 8) / 3
for n = 1, ids do
  local key, events, push = KEYS[6 + n * 3], KEYS[7 + n * 3], KEYS[8 + n * 3]
  local id = ARGV[5 + n * 2]
  local token = ARGV[6 + n * 2]
  local was_taken = redis.call('LREM', KEYS[1], 1, id) == 1
  redis.call('HDEL', KEYS[3], id)
  local fields = redis.call('HMGET', key, 'state', 'task', 'rev', 'attempts', 'enqueued_ms', 'context_id', 'token', 'status',
    'identity', 'trace')
  if fields[1] and fields[7] == token then
    -- Already ours: this is a resend after the first reply was lost on a dropped connection.
    claimed[#claimed + 1] = {id, fields[2], fields[3], fields[4], fields[5], fields[6], fields[8] or '',
      redis.call('EXISTS', push), fields[9] or '', fields[10] or ''}
  elseif was_taken and paused then
    given_back[#given_back + 1] = id
  elseif was_taken and fields[1] and not fields[7] and (fields[1] == STATE.SUBMITTED or fields[1] == STATE.WORKING) then
    local attempts = redis.call('HINCRBY', key, 'attempts', 1)
    local rev = redis.call('HINCRBY', key, 'rev', 1)
    local status = '{"state":"' .. STATE_V1.WORKING .. '","timestamp":' .. cjson.encode(ARGV[4]) .. '}'
    redis.call('HSET', key, 'token', token, 'worker', ARGV[3], 'started_ms', ARGV[1], 'state', STATE.WORKING,
      'status', status, 'updated_ms', ARGV[1])
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    move_count(KEYS[4], fields[1], STATE.WORKING)
    redis.call('ZADD', KEYS[5], index_score(KEYS[7], ARGV[1]), id)
    redis.call('XADD', events, 'MAXLEN', '~', ARGV[6], '*', 'e', '{"statusUpdate":{"taskId":' .. cjson.encode(id)
      .. ',"contextId":' .. cjson.encode(fields[6]) .. ',"status":' .. status .. '}}')
    notify(ARGV[5], KEYS[6], id, fields[6], STATE.WORKING, 'update')
    claimed[#claimed + 1] = {id, fields[2], rev, attempts, fields[5], fields[6], status, redis.call('EXISTS', push),
      fields[9] or '', fields[10] or ''}
  end
end
for i = #given_back, 1, -1 do
  redis.call('RPUSH', KEYS[6], given_back[i])  -- the oldest ends at the right, taken first
end
return claimed
