-- Return ids stranded in the processing list (taken by a worker that died before leasing
-- them) to the front of the queue, once they have been seen there for longer than a grace.
-- KEYS: 1 processing, 2 processing-seen hash, 3 leases, 4 queue
-- ARGV: 1 now (ms), 2 grace (ms)
-- Returns the ids put back.
local now = tonumber(ARGV[1])
local present = {}
local returned = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  present[id] = true
  if redis.call('ZSCORE', KEYS[3], id) then
    redis.call('LREM', KEYS[1], 0, id)
  else
    local seen = redis.call('HGET', KEYS[2], id)
    if not seen then
      redis.call('HSET', KEYS[2], id, now)
    elseif now - tonumber(seen) > tonumber(ARGV[2]) then
      redis.call('LREM', KEYS[1], 0, id)
      redis.call('RPUSH', KEYS[4], id)
      redis.call('HDEL', KEYS[2], id)
      returned[#returned + 1] = id
    end
  end
end
for _, id in ipairs(redis.call('HKEYS', KEYS[2])) do
  if not present[id] then redis.call('HDEL', KEYS[2], id) end
end
return returned
