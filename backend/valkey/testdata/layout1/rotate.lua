-- rotate rotates one partition atomically (docs/spec.md §4): ARGV[2] new kid,
-- ARGV[3] its stored form for this partition as lowercase hex (the secret,
-- or the secret sealed under a KEK), ARGV[4] grace_ms (decimal).
-- Kid current with the same stored form: {'noop', kid}. Kid current with
-- another stored form: {'current', stored form}, nothing written; the
-- caller opens it and answers noop (the same secret sealed under another
-- KEK) or rotation_conflict. Kid revoked (r:<kid>, docs/spec.md §8.7) or
-- remembered as verifying: rotation_conflict, naming which.
-- Otherwise expired verifying kids are deleted (revoked kids are kept for
-- good, so that their names are never reused), the current kid becomes
-- verifying until now + grace_ms, and the new kid becomes current:
-- {'rotated', previous kid or '', gc_count}. One HGETALL, at most one HDEL
-- and one HSET, and a PUBLISH. ARGV[5] is the call's operation id: a
-- re-sent call answers what the first one answered.
local ks, err = ff_keystore()
if err then return err end
local done = ff_op_get(ARGV[5])
if done then
  local prev, gc = string.match(done, '^([^|]*)|(%d+)$')
  return {'rotated', prev, tonumber(gc)}
end
local kid, secret, grace = ARGV[2], ARGV[3], ARGV[4]
local current = ks.current
if current == kid then
  if ks['s:' .. kid] == secret then
    return {'noop', kid}
  end
  return {'current', ks['s:' .. kid] or ''}
end
if ks['r:' .. kid] then
  return ff_error('rotation_conflict', 'revoked', kid)
end
if ks['s:' .. kid] then
  return ff_error('rotation_conflict', 'verifying', kid)
end
local now = ff_now()
local gone = {}
for f, v in pairs(ks) do
  if string.sub(f, 1, 2) == 'x:' and ff_cmp(v, now) < 0 and not ks['r:' .. string.sub(f, 3)] then
    gone[#gone + 1] = f
    gone[#gone + 1] = 's:' .. string.sub(f, 3)
  end
end
if #gone > 0 then
  redis.call('HDEL', KS, unpack(gone))
end
local set = {'current', kid, 's:' .. kid, secret, 'partitions', ARGV[1]}
if current then
  set[#set + 1] = 'x:' .. current
  set[#set + 1] = ff_add(now, grace)
end
redis.call('HSET', KS, unpack(set))
-- Tell the keystore caches of every process (<prefix>ff:keystore, see
-- watch.go); PUBLISH has no key, so it is valid on a cluster, where it
-- reaches the subscribers of every node.
redis.call('PUBLISH', string.match(BASE, '^(.*){p:%d+}:$') .. 'keystore', KS)
ff_op_put(ARGV[5], (current or '') .. '|' .. (#gone / 2))
return {'rotated', current or '', #gone / 2}
