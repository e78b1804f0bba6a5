-- revoke revokes a kid on one partition atomically (docs/spec.md §8.7),
-- deciding as driver.PlanRevoke does: ARGV[2] the kid, ARGV[3] the call's
-- operation id (a re-sent call answers what the first one answered).
-- The current kid: {'current'}, nothing written (kid_is_current). A kid
-- unknown, already revoked (r:<kid>) or past its grace (x:<kid> < now):
-- {'noop'}, nothing written. Otherwise the kid's secret field s:<kid> is
-- deleted, r:<kid> is set to '1' and x:<kid> to now - 1, so the record keeps
-- the kid's name for good (rotate never collects nor reuses it) and no token
-- of it verifies from now on; the change is published like a rotation:
-- {'revoked'}. One HGETALL, at most one HDEL and one HSET, and a PUBLISH.
local ks, err = ff_keystore()
if err then return err end
if ff_op_get(ARGV[3]) then
  return {'revoked'}
end
local kid = ARGV[2]
if ks.current == kid then
  return {'current'}
end
local now = ff_now()
local exp = ks['x:' .. kid]
if not ks['s:' .. kid] or ks['r:' .. kid] or (exp and ff_cmp(exp, now) < 0) then
  return {'noop'}
end
redis.call('HDEL', KS, 's:' .. kid)
-- now >= 1: the millisecond clock is far from 0, and now - 1 < 2^53 is exact.
redis.call('HSET', KS, 'r:' .. kid, '1', 'x:' .. kid, string.format('%.0f', tonumber(now) - 1))
-- Tell the keystore caches of every process (<prefix>ff:keystore, see
-- watch.go); PUBLISH has no key, so it is valid on a cluster, where it
-- reaches the subscribers of every node.
redis.call('PUBLISH', string.match(BASE, '^(.*){p:%d+}:$') .. 'keystore', KS)
ff_op_put(ARGV[3], '1')
return {'revoked'}
