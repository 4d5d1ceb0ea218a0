-- Finish a task: move it from active to the history (deadletter) in one step.
-- KEYS: 1 active hash, 2 deadletter hash, 3 active index, 4 context index, 5 contexts index,
--       6 counts, 7 events stream, 8 queue, 9 leases, 10 processing, 11 cancels,
--       12 history index of the final state, 13 stats minute, 14 processing-seen hash,
--       15 push configs, 16 index sequence, 17 the owner's active index, 18 the owner's
--       history index of the final state
-- ARGV: 1 task id, 2 guard kind ('token' | 'rev' | 'cancel' | 'none'), 3 guard value, 4 final state,
--       5 task JSON, 6 now (ms), 7 event JSON, 8 notify channel, 9 events max length,
--       10 events TTL (ms), 11 stats TTL (s), 12 wait ms, 13 run ms, 14 wait bucket field,
--       15 run bucket field ('' when not measured; see histogram.py), 16.. extra field/value pairs
-- Returns {1, queue length, 1 if the task has push configs else 0}, {-1} when the task is not
-- active, {-2} when the guard fails, {2} when a 'cancel' flagged a claimed task instead.
--
-- 'cancel' is a cancel request at the revision ARGV[3] the caller read: a claimed task is
-- only flagged in the cancel set (its worker ends it on its next heartbeat), an unclaimed
-- one is finished here. Checking the claim and flagging in one step leaves no flag behind
-- for a task that finished in between; a task that changed or left answers {-2}, re-read.
if ARGV[2] == 'cancel' then
  if redis.call('HGET', KEYS[1], 'rev') ~= ARGV[3] then
    return {-2}
  end
  if redis.call('HEXISTS', KEYS[1], 'token') == 1 then
    redis.call('SADD', KEYS[11], ARGV[1])
    return {2}
  end
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
elseif not guard_ok(KEYS[1], ARGV[2], ARGV[3]) then
  return {-2}
end
local HISTORY_OWN_FIELDS = {state = true, context_id = true, task = true, identity = true,
  token = true, progress = true, status = true, updated_ms = true}
local now = tonumber(ARGV[6])
local state = ARGV[4]
local fields = redis.call('HMGET', KEYS[1], 'state', 'context_id', 'identity')
local rev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
set_fields(KEYS[1], ARGV, 16)
-- The history hash keeps state, context_id, task and identity (with auth on) as fields and
-- the rest of the bookkeeping (rev, attempts, times, worker...) as one JSON field, 'meta':
-- a hash of few fields takes far less memory. The claim token and progress end with the
-- task, the claim's status field is in the task JSON now, and updated_ms is finished_ms.
local meta = {finished_ms = ARGV[6], rev = tostring(rev)}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if not HISTORY_OWN_FIELDS[all[i]] then
    meta[all[i]] = all[i + 1]
  end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], 'state', state, 'context_id', fields[2], 'task', ARGV[5], 'meta', cjson.encode(meta))
if fields[3] then
  redis.call('HSET', KEYS[2], 'identity', fields[3])
end
move_count(KEYS[6], fields[1], state)
redis.call('HINCRBY', KEYS[6], 'total_' .. state, 1)
redis.call('ZREM', KEYS[3], ARGV[1])
local score = index_score(KEYS[16], now)
redis.call('ZADD', KEYS[4], score, ARGV[1])
redis.call('ZADD', KEYS[5], score, fields[2])
redis.call('ZADD', KEYS[12], score, ARGV[1])
owner_index(fields[3], {KEYS[17]}, KEYS[18], score, ARGV[1])
if ARGV[2] ~= 'token' then
  -- Only an unclaimed task can still be waiting; LREM scans the whole queue, so a worker's
  -- finish (its claim proves the id left the queue) skips it.
  redis.call('LREM', KEYS[8], 0, ARGV[1])
end
redis.call('LREM', KEYS[10], 0, ARGV[1])
redis.call('ZREM', KEYS[9], ARGV[1])
redis.call('SREM', KEYS[11], ARGV[1])
redis.call('HDEL', KEYS[14], ARGV[1])
redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[9], '*', 'e', ARGV[7])
redis.call('PEXPIRE', KEYS[7], ARGV[10])
redis.call('HINCRBY', KEYS[13], state, 1)
if tonumber(ARGV[12]) >= 0 then
  redis.call('HINCRBY', KEYS[13], 'wait_ms', ARGV[12])
  redis.call('HINCRBY', KEYS[13], 'waited', 1)
  redis.call('HINCRBY', KEYS[13], ARGV[14], 1)
end
if tonumber(ARGV[13]) >= 0 then
  redis.call('HINCRBY', KEYS[13], 'run_ms', ARGV[13])
  redis.call('HINCRBY', KEYS[13], 'ran', 1)
  redis.call('HINCRBY', KEYS[13], ARGV[15], 1)
end
redis.call('EXPIRE', KEYS[13], ARGV[11])
local qlen = notify(ARGV[8], KEYS[8], ARGV[1], fields[2], state, 'finished')
return {1, qlen, redis.call('EXISTS', KEYS[15])}
