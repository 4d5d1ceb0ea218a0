-- Shared helpers: a script gets the ones it calls (script.common_helpers), after the state
-- constants it names, generated from queueapp/states.py (STATE.*, FINISHED: see states.lua_constants).
-- Each helper is a top-level `local function`: that is how they are cut apart.
-- Values go to redis.call as text ('1', A.now_ms, string.format('%d', n)), not as Lua numbers:
-- Redis 7.0 prints a number argument with snprintf('%.17g'), about 3,600 instructions each.

local function publish(channel, message)
  -- A hash-tag channel ('{a2a}:queue:notify') is a shard channel: on a Cluster the notice
  -- stays in the queue's shard. Redis before 7 has no SPUBLISH, so fall back (see ha.py).
  if string.byte(channel, 1) == 123 and type(redis.pcall('SPUBLISH', channel, message)) == 'number' then
    return
  end
  redis.call('PUBLISH', channel, message)
end

local function notice(task_id, context_id, state, event, qlen)
  return {task_id = task_id, context_id = context_id, state = state, queue_length = qlen, event = event}
end

local function notify(channel, queue_key, task_id, context_id, state, event)
  -- One task's notice. Returns the queue's length, which it reads for the notice.
  local qlen = redis.call('LLEN', queue_key)
  publish(channel, cjson.encode(notice(task_id, context_id, state, event, qlen)))
  return qlen
end

local function notify_all(channel, notices)
  -- The notices of a call on many tasks (a claim, a finish) go out as one message, a JSON
  -- array: one PUBLISH, and one message for each subscribed process to read, not one per task.
  if #notices == 1 then
    publish(channel, cjson.encode(notices[1]))
  elseif #notices > 1 then
    publish(channel, cjson.encode(notices))
  end
end

local function notify_all_with_length(channel, queue_key, notices)
  -- Notices a call collected without the queue's length (a finish, a delete: the queue is
  -- not read per task) get it here, read once, and go out as notify_all sends them.
  -- Returns the length, or nil when there was nothing to publish.
  if #notices == 0 then
    return nil
  end
  local qlen = redis.call('LLEN', queue_key)
  for _, each in ipairs(notices) do
    each.queue_length = qlen
  end
  notify_all(channel, notices)
  return qlen
end

local function answer_with_length(channel, queue_key, notices, results, slot)
  -- Send the notices (notify_all_with_length) and put the queue's length they carry at
  -- results[n][slot] of every result that succeeded ({1, ...}): one read of the length per call.
  local qlen = notify_all_with_length(channel, queue_key, notices)
  if qlen then
    for _, result in ipairs(results) do
      if result[1] == 1 then
        result[slot] = qlen
      end
    end
  end
end

local function item_error(err)
  -- The text of the error that broke one item of a call, to answer {-4, text} with: the item's
  -- data was damaged. Unless the server refused the write (a replica, a master short of the
  -- replicas it needs, out of memory, a failed save, loading): that is no item's fault, and
  -- the whole call fails with the error, as a call of one task did, so that the client's
  -- failover handling (ha.py) sees it and retries on the master. A refusal comes at a
  -- script's first write, so nothing of the call was written.
  local text = type(err) == 'table' and err.err or tostring(err)
  for _, code in ipairs({'READONLY', 'NOREPLICAS', 'OOM', 'MISCONF', 'MASTERDOWN', 'LOADING'}) do
    -- At the start of the text, or after the script's name that Redis 6 puts in front (and
    -- there with its '-': 'user_script:1: -OOM command not allowed...').
    if string.sub(text, 1, #code + 1) == code .. ' ' or string.find(text, ': ' .. code .. ' ', 1, true)
        or string.find(text, ': -' .. code .. ' ', 1, true) then
      error(redis.error_reply(text))
    end
  end
  return text
end

local function set_fields(key, argv, first)
  -- argv[first..] are field/value pairs to store on the task hash.
  for i = first, #argv, 2 do
    redis.call('HSET', key, argv[i], argv[i + 1])
  end
end

local function push_event(key, entry, maxlen)
  -- Append one event to a task's events: a list whose first element is how many of the task's
  -- events were trimmed away (the oldest, past maxlen), then one entry '<ms>:<event JSON>' per
  -- event, made by store/reads.event_entry (lease.lua makes a claim's small one itself).
  -- So the event numbered n (from 1) is at index n minus that offset, and an event id 'ms-n'
  -- is a reader's cursor that trimming never moves (read_events.lua). A list, not a stream:
  -- Redis 7 allocates a new stream's first node at stream-node-max-bytes (4 KB) up front, two
  -- thirds of what a small task took in its first minutes. maxlen is a number: a script of many
  -- tasks converts A.events_maxlen once, not once a task.
  local ok, length = pcall(redis.call, 'RPUSH', key, entry)
  if not ok then
    -- A stream that an earlier version wrote starts over as a list; anything else is damage.
    if redis.call('TYPE', key).ok ~= 'stream' then
      error(type(length) == 'table' and length.err or length)
    end
    redis.call('DEL', key)
    length = redis.call('RPUSH', key, entry)
  end
  if length == 1 then  -- a new list (create.lua starts one with its offset): none trimmed yet
    redis.call('LPUSH', key, '0')
    return
  end
  local excess = length - 1 - maxlen
  if excess > 0 then
    local trimmed = tonumber(redis.call('LINDEX', key, '0')) + excess
    redis.call('LTRIM', key, string.format('%d', excess + 1), '-1')
    redis.call('LPUSH', key, string.format('%d', trimmed))
  end
end

local function events_trimmed(key)
  -- How many of a task's oldest events were trimmed away (the events list's first element,
  -- see push_event), or nil when the task has no events: none yet or any more, or a stream
  -- that an earlier version wrote. Any other error (a key of another type, an ACL) is raised.
  local ok, trimmed = pcall(redis.call, 'LINDEX', key, 0)
  if not ok then
    if redis.call('TYPE', key).ok == 'stream' then
      return nil
    end
    error(type(trimmed) == 'table' and trimmed.err or trimmed)
  end
  return tonumber(trimmed)
end

local function add_to(totals, field, n)
  -- Sum in Lua what a call of many tasks adds to one hash's counters; write_totals writes it.
  totals[field] = (totals[field] or 0) + n
end

local function tally_move(totals, old_state, new_state)
  -- What move_count would write, summed in totals (see write_totals).
  if old_state ~= new_state then
    if old_state then add_to(totals, old_state, -1) end
    add_to(totals, new_state, 1)
  end
end

local function write_totals(key, totals)
  -- One HINCRBY per counter that changed. Returns whether one of them is new to the hash.
  local new_field = false
  for field, n in pairs(totals) do
    if n ~= 0 and redis.call('HINCRBY', key, field, string.format('%d', n)) == n then
      new_field = true
    end
  end
  return new_field
end

local function move_count(counts, old_state, new_state)
  if old_state ~= new_state then
    if old_state then redis.call('HINCRBY', counts, old_state, '-1') end
    redis.call('HINCRBY', counts, new_state, '1')
  end
end

local function guard_ok(kind, value, token, rev, leases, task_id, now_ms)
  -- 'token': only the worker holding the claim may write.
  -- 'rev': compare-and-set against the revision the caller read.
  -- 'lease': the reaper's: the revision it read, and the lease it saw run out is still there
  -- and still run out. Another reaper that got there first took the lease away, and a worker
  -- that claimed the task since holds a new one: without this, two reapers that read the same
  -- expired leases both put the task back on the queue, and a worker took it twice.
  -- token and rev are the task's, read by the caller with its other fields (one HMGET).
  if kind == 'token' then
    return token == value
  elseif kind == 'rev' then
    return rev == value
  elseif kind == 'lease' then
    local deadline = rev == value and redis.call('ZSCORE', leases, task_id)
    return deadline and tonumber(deadline) <= tonumber(now_ms) or false
  end
  return true
end

local function index_score(now_ms)
  -- The score of a write in the time indexes: its time in whole ms, the text the caller sent
  -- as now_ms (ARGV, so no number is printed here). Writes of the same ms tie
  -- and sort by member: ids are time-ordered (model.new_id), so tasks created in one ms still
  -- list in creation order, and a cursor 'score:id' still names one position (store/lists.py).
  -- Whole numbers, because Redis keeps a small sorted set's scores as text and a fraction costs
  -- a strtod and a printf at every write: a sixth of a task's Redis instructions when scores
  -- were 'ms.n' (earlier versions; their scores sort among these by their whole ms).
  return now_ms
end

local function for_all(command, key, values)
  -- One command for what a call on many tasks collected for one key: ZADD with score/member
  -- pairs, ZREM, SREM or HDEL with members. A call per task would cost a command each; chunks
  -- keep unpack well inside Lua's stack (1000 is even, so no pair is split).
  for i = 1, #values, 1000 do
    redis.call(command, key, unpack(values, i, math.min(i + 999, #values)))
  end
end

local function append_pair(list, a, b)
  -- A score/member pair for for_all('ZADD', ...).
  list[#list + 1], list[#list + 2] = a, b
end

local function zrem_all(keys, id)
  -- Remove id from each of the sorted sets (one index per finished state, say).
  for _, key in ipairs(keys) do
    redis.call('ZREM', key, id)
  end
end

local function owner_index(owner, remove, add, score, id)
  -- A task with an owner (auth on) is also in its owner's own copy of the index of its
  -- place: active, or one history state. So one identity's ListTasks reads its own tasks
  -- only. 'remove' is the owner index the task leaves, a list of them, or nil; 'add' is the
  -- one it enters. (Keys, not a list built per call: most tasks have no owner.)
  if not owner or owner == '' then
    return
  end
  if type(remove) == 'table' then
    zrem_all(remove, id)
  elseif remove then
    redis.call('ZREM', remove, id)
  end
  if add then
    redis.call('ZADD', add, score, id)
  end
end
