-- seed_install installs ARGV[2] (kid) with ARGV[3] (canonical lowercase hex
-- secret) as the partition's current kid, atomically, only when the
-- partition has no current kid; it records the partition count.
-- Returns {'installed'} or {'has', current kid, same secret '1'|'0'}.
-- ARGV[4] is the call's operation id: a re-sent call answers 'installed'
-- again.
local err = ff_partitions()
if err then return err end
if ff_op_get(ARGV[4]) then
  return {'installed'}
end
local current = redis.call('HGET', KS, 'current')
if current then
  local same = '0'
  if current == ARGV[2] and redis.call('HGET', KS, 's:' .. current) == ARGV[3] then same = '1' end
  return {'has', current, same}
end
redis.call('HDEL', KS, 'x:' .. ARGV[2])
redis.call('HSET', KS, 'current', ARGV[2], 's:' .. ARGV[2], ARGV[3], 'partitions', ARGV[1])
ff_op_put(ARGV[4], '1')
return {'installed'}
