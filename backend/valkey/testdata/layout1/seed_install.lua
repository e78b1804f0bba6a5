-- seed_install installs ARGV[2] (kid) with ARGV[3] (its stored form for
-- this partition as lowercase hex: the secret, or the secret sealed under a
-- KEK) as the partition's current kid, atomically, only when the partition
-- has no current kid; it records the partition count.
-- Returns {'installed'} or {'has', current kid, same stored form '1'|'0',
-- the current kid's stored form when it is ARGV[2] and differs, else ''}:
-- stored forms differ for the same secret sealed under another KEK, so the
-- caller opens it and compares secrets itself.
-- ARGV[4] is the call's operation id: a re-sent call answers 'installed'
-- again.
local err = ff_partitions()
if err then return err end
if ff_op_get(ARGV[4]) then
  return {'installed'}
end
local current = redis.call('HGET', KS, 'current')
if current then
  local same, stored = '0', ''
  if current == ARGV[2] then
    stored = redis.call('HGET', KS, 's:' .. current) or ''
    if stored == ARGV[3] then same, stored = '1', '' end
  end
  return {'has', current, same, stored}
end
redis.call('HDEL', KS, 'x:' .. ARGV[2])
redis.call('HSET', KS, 'current', ARGV[2], 's:' .. ARGV[2], ARGV[3], 'partitions', ARGV[1])
-- Tell the keystore caches of every process (<prefix>ff:keystore, see
-- watch.go); PUBLISH has no key, so it is valid on a cluster, where it
-- reaches the subscribers of every node.
redis.call('PUBLISH', string.match(BASE, '^(.*){p:%d+}:$') .. 'keystore', KS)
ff_op_put(ARGV[4], '1')
return {'installed'}
