-- A worker's heartbeat: mark it alive, extend the leases it still holds, and report which
-- of its tasks it lost (another worker took over) or must cancel.
-- KEYS: 1 workers index, 2 worker hash, 3 leases, 4 cancels, 5.. one active hash per task
-- ARGV: 1 worker id, 2 now (ms), 3 lease deadline (ms), 4 worker info JSON, 5 worker hash TTL (s),
--       then one (task id, token) pair per task
-- Returns {lost ids, ids to cancel}.
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], 'info', ARGV[4], 'seen_ms', ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[5])
local lost, cancel = {}, {}
for i = 5, #KEYS do
  local id = ARGV[6 + (i - 5) * 2]
  local token = ARGV[7 + (i - 5) * 2]
  if redis.call('HGET', KEYS[i], 'token') == token then
    redis.call('ZADD', KEYS[3], 'XX', ARGV[3], id)
    if redis.call('SISMEMBER', KEYS[4], id) == 1 then
      cancel[#cancel + 1] = id
    end
  else
    lost[#lost + 1] = id
  end
end
return {lost, cancel}
