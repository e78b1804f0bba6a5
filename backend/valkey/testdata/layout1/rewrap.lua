-- rewrap re-seals stored secrets of one partition (driver.SecretSealer's
-- RewrapSecrets): ARGV[2] is the call's operation id, ARGV[3] n, then n
-- triples (kid, its s:<kid> value as the caller read it, the new value).
-- Atomically: when every s:<kid> still holds the value read, all n are
-- replaced: {'ok'}; when any changed (a concurrent rotation or collection,
-- another rewrap), nothing is written: {'retry'}. Kids, expiries and the
-- current kid are never touched. A re-sent call answers 'ok' again.
local err = ff_partitions()
if err then return err end
if ff_op_get(ARGV[2]) then
  return {'ok'}
end
local set = {}
for i = 0, tonumber(ARGV[3]) - 1 do
  local f = 's:' .. ARGV[4 + 3 * i]
  if redis.call('HGET', KS, f) ~= ARGV[5 + 3 * i] then
    return {'retry'}
  end
  set[#set + 1] = f
  set[#set + 1] = ARGV[6 + 3 * i]
end
if #set > 0 then
  redis.call('HSET', KS, unpack(set))
  -- Tell the keystore caches of every process (<prefix>ff:keystore, see
  -- watch.go); PUBLISH has no key, so it is valid on a cluster, where it
  -- reaches the subscribers of every node.
  redis.call('PUBLISH', string.match(BASE, '^(.*){p:%d+}:$') .. 'keystore', KS)
end
ff_op_put(ARGV[2], '1')
return {'ok'}
