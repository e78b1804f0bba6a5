-- complete forgets a claimed execution atomically: its hash, every
-- waitpoint and waitpoint idempotency record, every suspension's signals,
-- its suspend idempotency records and its index entries. Unknown →
-- execution_not_found; not claimed or another lease → lease_mismatch.
-- ARGV: [2] execution_id, [3] lease_id, [4] the call's operation id (a
-- re-sent call answers 'completed' again). Returns {'completed'}.
local err = ff_partitions()
if err then return err end
if ff_op_get(ARGV[4]) then
  return {'completed'}
end
local id = ARGV[2]
local exec = BASE .. 'x:' .. id
local f = redis.call('HMGET', exec, 'state', 'lease', 'member')
if not f[1] then
  return ff_error('execution_not_found', id)
end
if f[1] ~= 'claimed' or f[2] ~= ARGV[3] then
  return ff_error('lease_mismatch', 'complete', id)
end
for _, w in ipairs(redis.call('SMEMBERS', BASE .. 'xw:' .. id)) do
  redis.call('DEL', BASE .. 'w:' .. w, BASE .. 'wi:' .. w)
end
for _, s in ipairs(redis.call('SMEMBERS', BASE .. 'xs:' .. id)) do
  redis.call('DEL', BASE .. 'sig:' .. s)
end
redis.call('ZREM', IDX_READY, f[3])
redis.call('ZREM', IDX_TIMERS, f[3])
redis.call('ZREM', IDX_SUSPENDED, f[3])
redis.call('DEL', exec, BASE .. 'xi:' .. id, BASE .. 'xw:' .. id, BASE .. 'xs:' .. id)
ff_hint_refresh()
ff_op_put(ARGV[4], '1')
return {'completed'}
