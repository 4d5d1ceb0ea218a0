-- Pause or resume the queue: while the flag is set, take.lua and lease.lua claim nothing.
-- Returns the queue length. The notice has the shape of every other (task_id and
-- context_id empty: it is about the whole queue), its event 'paused' or 'resumed'.
-- KEYS and ARGV: K.<name> and A.<name>, declared in queueapp/store/scripts.py.
local event = 'resumed'
if A.paused == '1' then
  redis.call('SET', K.paused, '1')
  event = 'paused'
else
  redis.call('DEL', K.paused)
end
return notify(A.channel, K.queue, '', '', '', event)
