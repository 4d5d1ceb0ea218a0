-- Return ids stranded in the processing list (taken by a worker that died before leasing
-- them) to the front of the queue, once they have been seen there for longer than a grace.
-- Returns the ids put back.
-- KEYS and ARGV: K.<name> and A.<name>, declared in queueapp/store/scripts.py.
local now = tonumber(A.now_ms)
local present = {}
local returned = {}
for _, id in ipairs(redis.call('LRANGE', K.processing, '0', '-1')) do
  present[id] = true
  if redis.call('ZSCORE', K.leases, id) then
    redis.call('LREM', K.processing, '0', id)
  else
    local seen = redis.call('HGET', K.processing_seen, id)
    if not seen then
      redis.call('HSET', K.processing_seen, id, A.now_ms)
    elseif now - tonumber(seen) > tonumber(A.grace_ms) then
      redis.call('LREM', K.processing, '0', id)
      redis.call('RPUSH', K.queue, id)
      redis.call('HDEL', K.processing_seen, id)
      returned[#returned + 1] = id
    end
  end
end
for _, id in ipairs(redis.call('HKEYS', K.processing_seen)) do
  if not present[id] then redis.call('HDEL', K.processing_seen, id) end
end
return returned
