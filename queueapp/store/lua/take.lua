-- Move up to N waiting ids from the queue into the processing list, unless paused.
-- Returns {queue length left, ids taken oldest first...}, or {-1} while paused.
-- KEYS and ARGV: K.<name> and A.<name>, declared in queueapp/store/scripts.py.
if redis.call('EXISTS', K.paused) == 1 then
  return {-1}
end
local taken = {0}
local count = tonumber(A.count)
-- Several ids: one LMPOP and one LPUSH, two commands however many are taken, rather than an
-- LMOVE each. The processing list ends the same: the oldest first pushed, the newest at its
-- head. Redis before 7.0 has no LMPOP (an error here): it takes them an LMOVE at a time.
local popped = count > 1 and redis.pcall('LMPOP', '1', K.queue, 'RIGHT', 'COUNT', A.count)
if type(popped) == 'table' and not popped.err then
  local ids = popped[2]
  redis.call('LPUSH', K.processing, unpack(ids))
  for i = 1, #ids do
    taken[i + 1] = ids[i]
  end
elseif count == 1 or popped then  -- one id, or a Redis without LMPOP (popped is its error)
  for _ = 1, count do
    local id = redis.call('LMOVE', K.queue, K.processing, 'RIGHT', 'LEFT')
    if not id then break end
    taken[#taken + 1] = id
  end
end  -- else LMPOP found the queue empty
taken[1] = redis.call('LLEN', K.queue)
return taken
