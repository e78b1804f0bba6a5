-- release gives a claimed execution back (release_execution, docs/spec.md
-- §8.4), atomically at one server clock: lease rules as extend's
-- (driver.CheckLeaseHolder); then the lease becomes driver.ReleasedLease:
-- the fresh lease id ARGV[4] nobody holds, expiring at now + ARGV[5] (the
-- kit's offset, -1: expired at once, and so in its count index,
-- ff_counted), and the execution's member moves to the ready index, so
-- the next claim takes it with the reason it was claimed with; the
-- workers are told (ff_claimable).
-- ARGV: [2] execution_id, [3] lease_id, [4] the released lease id,
-- [5] the expiry's offset from now, [6] the call's operation id (a re-sent
-- call answers released again). Returns {'released'}.
local err = ff_partitions()
if err then return err end
if ff_op_get(ARGV[6]) then
  return {'released'}
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
-- now (< 2^53) plus a small offset is exact in a double.
local lexp = string.format('%.0f', tonumber(ff_now()) + tonumber(ARGV[5]))
redis.call('HSET', exec, 'lease', ARGV[4], 'lexp', lexp, 'ver', ARGV[6])
redis.call('ZREM', IDX_TIMERS, f[3])
redis.call('ZADD', IDX_READY, 0, f[3])
ff_counted(f[3], 'claimed', lexp)
ff_ready(f[3])
ff_claimable()
ff_op_put(ARGV[6], '1')
return {'released'}
