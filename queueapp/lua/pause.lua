-- Pause or resume the queue: while the flag is set, take.lua and lease.lua claim nothing.
-- KEYS: 1 paused flag, 2 queue
-- ARGV: 1 '1' to pause, '0' to resume, 2 notify channel
-- Returns the queue length. The notice has the shape of every other (task_id and
-- context_id empty: it is about the whole queue), its event 'paused' or 'resumed'.
local event = 'resumed'
if ARGV[1] == '1' then
  redis.call('SET', KEYS[1], '1')
  event = 'paused'
else
  redis.call('DEL', KEYS[1])
end
return notify(ARGV[2], KEYS[2], '', '', '', event)
