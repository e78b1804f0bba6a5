-- rotate rotates one partition atomically (CONTRACT.md §4): ARGV[2] new kid,
-- ARGV[3] its secret as canonical lowercase hex, ARGV[4] grace_ms (decimal).
-- Same kid and secret already current: {'noop', kid}. Kid current with
-- another secret, or remembered as verifying: rotation_conflict. Otherwise
-- expired verifying kids are deleted, the current kid becomes verifying
-- until now + grace_ms, and the new kid becomes current:
-- {'rotated', previous kid or '', gc_count}.
local err = ff_partitions()
if err then return err end
local kid, secret, grace = ARGV[2], ARGV[3], ARGV[4]
local now = ff_now()
local current = redis.call('HGET', KS, 'current')
if current == kid then
  if redis.call('HGET', KS, 's:' .. kid) == secret then
    return {'noop', kid}
  end
  return ff_error('rotation_conflict', 'current', kid)
end
if redis.call('HEXISTS', KS, 's:' .. kid) == 1 then
  return ff_error('rotation_conflict', 'verifying', kid)
end
local gc = 0
local all = redis.call('HGETALL', KS)
for i = 1, #all, 2 do
  local f = all[i]
  if string.sub(f, 1, 2) == 'x:' and ff_cmp(all[i + 1], now) < 0 then
    redis.call('HDEL', KS, f, 's:' .. string.sub(f, 3))
    gc = gc + 1
  end
end
if current then
  redis.call('HSET', KS, 'x:' .. current, ff_add(now, grace))
end
redis.call('HSET', KS, 'current', kid, 's:' .. kid, secret, 'partitions', ARGV[1])
return {'rotated', current or '', gc}
