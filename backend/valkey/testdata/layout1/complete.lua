-- complete forgets a claimed execution atomically (ff_forget): its hash,
-- every waitpoint (pending ones included) with its idempotency records and
-- buffered signals, every suspension's signals, its suspend idempotency
-- records and its index entries. Unknown → execution_not_found; not
-- claimed (state none remembered included) or another lease →
-- lease_mismatch (driver.CheckComplete).
-- ARGV: [2] execution_id, [3] lease_id, [4] the call's operation id (a
-- re-sent call answers 'completed' again). Returns {'completed'}.
local err = ff_partitions()
if err then return err end
if ff_op_get(ARGV[4]) then
  return {'completed'}
end
local id = ARGV[2]
local f = redis.call('HMGET', BASE .. 'x:' .. id, 'state', 'lease')
if not f[1] then
  return ff_error('execution_not_found', id)
end
if f[1] ~= 'claimed' or f[2] ~= ARGV[3] then
  return ff_error('lease_mismatch', 'complete', id)
end
ff_forget(id)
ff_hint_refresh()
ff_op_put(ARGV[4], '1')
return {'completed'}
