-- The id 'ms-n' of a task's newest event (see push_event in _common.lua), or '0-0' when it
-- has none. A script, so that it reads the list in one step and, like every read, still
-- answers when Redis is out of memory (a MULTI would be refused then).
-- KEYS and ARGV: K.<name>, declared in queueapp/store/scripts.py.
local trimmed = events_trimmed(K.events)
local length = trimmed and redis.call('LLEN', K.events) or 0
if length < 2 then
  return '0-0'
end
return string.match(redis.call('LINDEX', K.events, '-1'), '^(%d+):') .. '-' .. string.format('%d', trimmed + length - 1)
