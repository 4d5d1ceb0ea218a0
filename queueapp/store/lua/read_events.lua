-- A task's events after a reader's cursor, at most A.count of them (the list push_event in
-- _common.lua writes). The cursor is the id 'ms-n' of the last event the reader has, or '0-0'.
-- Returns {n of the first event returned, its '<ms>:<event JSON>' and those after it...}.
-- KEYS and ARGV: K.<name> and A.<name>, declared in queueapp/store/scripts.py.
local trimmed = events_trimmed(K.events)
if not trimmed then
  return {0}
end
local after = tonumber(string.match(A.after, '%-(%d+)$')) or 0
local first = math.max(after - trimmed, 0) + 1  -- event n is at index n - trimmed
local rows = redis.call('LRANGE', K.events, string.format('%d', first), string.format('%d', first + tonumber(A.count) - 1))
table.insert(rows, 1, trimmed + first)
return rows
