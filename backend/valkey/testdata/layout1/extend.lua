-- extend moves the lease of a claimed execution to now + ARGV[4] at one
-- server clock (extend_lease, docs/spec.md §8.4), atomically. Lease rules
-- as driver.CheckLeaseHolder decides them: unknown → execution_not_found;
-- not claimed (state none remembered included) or another lease →
-- lease_mismatch; an expired lease nobody re-claimed still extends. The
-- execution's member leaves the ready index (if its expiry had moved it
-- there) for the timers, scored by the new expiry (as in its count index,
-- ff_counted), and the partition's claim hint is recomputed from its
-- indexes.
-- ARGV: [2] execution_id, [3] lease_id, [4] lease_ms, [5] the call's
-- operation id (a re-sent call answers the first reply).
-- Returns {'extended', lease_expires_at_ms}.
local err = ff_partitions()
if err then return err end
local done = ff_op_get(ARGV[5])
if done then
  return {'extended', done}
end
local id = ARGV[2]
local exec = BASE .. 'x:' .. id
local f = redis.call('HMGET', exec, 'state', 'lease', 'member')
if not f[1] then
  return ff_error('execution_not_found', id)
end
if f[1] ~= 'claimed' or f[2] ~= ARGV[3] then
  return ff_error('lease_mismatch', 'lease', id)
end
local lexp = ff_add(ff_now(), ARGV[4])
redis.call('HSET', exec, 'lexp', lexp, 'ver', ARGV[5])
redis.call('ZREM', IDX_READY, f[3])
redis.call('ZADD', IDX_TIMERS, lexp, f[3])
ff_counted(f[3], 'claimed', lexp)
-- The claim hint must follow: a lease shortened below the partition's
-- earliest deadline would otherwise stay unclaimable past its expiry.
ff_hint_refresh()
ff_op_put(ARGV[5], lexp)
return {'extended', lexp}
