-- Store one push config of a task under its id, unless that id holds another identity's
-- config: a client must not replace, and so take over, a config it cannot see.
-- Returns 1 when stored, 0 when the id is another's.
-- KEYS and ARGV: K.<name> and A.<name>, declared in queueapp/store/scripts.py.
local current = redis.call('HGET', K.push_configs, A.config_id)
if current then
  local ok, config = pcall(cjson.decode, current)
  local owner = ok and type(config) == 'table' and config[A.owner_field] or ''
  if owner ~= A.owner then
    return 0
  end
end
redis.call('HSET', K.push_configs, A.config_id, A.config_json)
return 1
