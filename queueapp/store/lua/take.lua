-- Move up to N waiting ids from the queue into the processing list, unless paused.
-- Returns {queue length left, ids taken oldest first...}, or {-1} while paused.
-- KEYS and ARGV: K.<name> and A.<name>, declared in queueapp/store/scripts.py.
if redis.call('EXISTS', K.paused) == 1 then
  return {-1}
end
local taken = {0}
for _ = 1, tonumber(A.count) do
  local id = redis.call('LMOVE', K.queue, K.processing, 'RIGHT', 'LEFT')
  if not id then break end
  taken[#taken + 1] = id
end
taken[1] = redis.call('LLEN', K.queue)
return taken
