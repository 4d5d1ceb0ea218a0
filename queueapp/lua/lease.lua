-- Claim ids that are in the processing list: give each a token and a lease.
-- KEYS: 1 processing, 2 leases, 3 processing-seen hash, 4.. one active hash per id
-- ARGV: 1 now (ms), 2 lease deadline (ms), 3 worker id, then one (task id, token) pair per id
-- Returns, per claimed id: {id, task JSON, rev, attempts, enqueued_ms, context id}.
-- An id whose task is gone or no longer waiting is dropped from processing and skipped,
-- and so is an id no longer in processing (the reaper gave it back to the queue): it is
-- claimed only by whoever takes it next.
-- Running it again with the same tokens returns the same claims (safe to resend).
local claimed = {}
for i = 4, #KEYS do
  local id = ARGV[4 + (i - 4) * 2]
  local token = ARGV[5 + (i - 4) * 2]
  local was_taken = redis.call('LREM', KEYS[1], 1, id) == 1
  redis.call('HDEL', KEYS[3], id)
  local fields = redis.call('HMGET', KEYS[i], 'state', 'task', 'rev', 'attempts', 'enqueued_ms', 'context_id', 'token')
  if fields[1] and fields[7] == token then
    -- Already ours: this is a resend after the first reply was lost on a dropped connection.
    claimed[#claimed + 1] = {id, fields[2], fields[3], fields[4], fields[5], fields[6]}
  elseif was_taken and fields[1] and not fields[7] and (fields[1] == 'submitted' or fields[1] == 'working') then
    local attempts = redis.call('HINCRBY', KEYS[i], 'attempts', 1)
    redis.call('HSET', KEYS[i], 'token', token, 'worker', ARGV[3], 'started_ms', ARGV[1])
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    claimed[#claimed + 1] = {id, fields[2], fields[3], attempts, fields[5], fields[6]}
  end
end
return claimed
