-- cancel closes the suspension of a suspended execution (cancel_suspension,
-- docs/spec.md §8.5), atomically: unknown → execution_not_found; any state
-- but suspended (state none remembered included) → not_suspended, as
-- driver.CheckCancel decides. Then every waitpoint of the suspension
-- closes, the state becomes resumed with reason cancelled (claim keeps it),
-- and the execution leaves the suspended, tag and timers indexes for the
-- ready index and the resumed count index (ff_counted), and the workers
-- are told (ff_claimable). A suspension past its timeout that nobody
-- claimed cancels too. Cancel and a delivery that
-- would resume are each one script on the partition: whichever runs second
-- answers not_suspended or waitpoint_closed.
-- ARGV: [2] execution_id, [3] the call's operation id (a re-sent call
-- answers the first reply). Returns {'cancelled', suspension_id}.
local err = ff_partitions()
if err then return err end
local done = ff_op_get(ARGV[3])
if done then
  return {'cancelled', done}
end
local id = ARGV[2]
local exec = BASE .. 'x:' .. id
local f = redis.call('HMGET', exec, 'state', 'sid', 'member', 'tags')
if not f[1] then
  return ff_error('execution_not_found', id)
end
if f[1] ~= 'suspended' then
  return ff_error('not_suspended', id)
end
redis.call('HSET', exec, 'state', 'resumed', 'reason', 'cancelled', 'ver', ARGV[3])
ff_close_waitpoints(exec)
ff_unlist(f[3], f[4])
ff_counted(f[3], 'resumed')
redis.call('ZREM', IDX_TIMERS, f[3])
redis.call('ZADD', IDX_READY, 0, f[3])
ff_ready(f[3])
ff_claimable()
ff_op_put(ARGV[3], f[2])
return {'cancelled', f[2]}
