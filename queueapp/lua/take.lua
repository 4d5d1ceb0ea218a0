-- Move up to N waiting ids from the queue into the processing list, unless paused.
-- KEYS: 1 queue, 2 processing, 3 paused flag
-- ARGV: 1 N
-- Returns {queue length left, ids taken oldest first...}, or {-1} while paused.
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {-1}
end
local taken = {0}
for _ = 1, tonumber(ARGV[1]) do
  local id = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not id then break end
  taken[#taken + 1] = id
end
taken[1] = redis.call('LLEN', KEYS[1])
return taken
