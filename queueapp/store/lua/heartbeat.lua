-- A worker's heartbeat: mark it alive, extend the leases it still holds, and report which
-- of its tasks it lost (another worker took over) or must cancel.
-- Returns {lost ids, ids to cancel, the reason given for each cancel ('' for none)}.
-- KEYS and ARGV: K.<name> and A.<name>, declared in queueapp/store/scripts.py.
redis.call('ZADD', K.workers, A.now_ms, A.worker_id)
redis.call('HSET', K.worker, 'info', A.info_json, 'seen_ms', A.now_ms)
redis.call('EXPIRE', K.worker, A.worker_ttl_s)
local lost, cancel, reasons = {}, {}, {}
for n = 1, ITEMS do
  local key, claim = item(n)
  local id = claim.task_id
  if redis.call('HGET', key.active, 'token') == claim.token then
    redis.call('ZADD', K.leases, 'XX', A.deadline_ms, id)
    if redis.call('SISMEMBER', K.cancels, id) == 1 then
      cancel[#cancel + 1] = id
      reasons[#reasons + 1] = redis.call('HGET', key.active, 'cancel_reason') or ''
    end
  else
    lost[#lost + 1] = id
  end
end
return {lost, cancel, reasons}
