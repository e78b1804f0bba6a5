-- deliver_write is the second, atomic step of deliver_signal, after the
-- caller checked the token's MAC. It reads the clock once and re-checks what
-- the caller saw: the token's kid still verifies at this clock and the
-- waitpoint still belongs to the execution ({'retry'} otherwise, nothing
-- written). Then, in order: duplicate (waitpoint_id, idempotency_key) →
-- {'duplicate', signal_id}; waitpoint closed → waitpoint_closed; past the
-- suspension's timeout → suspension_timed_out; ARGV[8] signals already
-- recorded → signal_limit_exceeded. Otherwise it appends the signal
-- ("<delivered_at_ms>|<record>") to the suspension's list, records the
-- idempotency key and, when the condition holds, resumes: state resumed,
-- every waitpoint of the suspension closed, the execution moved from the
-- suspended and timers indexes to the ready index. {'accepted', '1'|'0'}.
--
-- ARGV: [2] kid, [3] execution_id, [4] waitpoint_id, [5] idempotency_key,
-- [6] signal_id, [7] record (encoded by the caller), [8] signal limit.
local ks, err = ff_keystore()
if err then return err end
local now = ff_now()
local kid, id, wid, ikey = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if ks.current ~= kid then
  local exp = ks['x:' .. kid]
  if not exp or ff_cmp(exp, now) < 0 then
    return {'retry'}
  end
end
local w = BASE .. 'w:' .. wid
local wf = redis.call('HMGET', w, 'e', 'closed', 's')
if wf[1] ~= id then
  return {'retry'}
end
local widem = BASE .. 'wi:' .. wid
if ikey ~= '' then
  local sig = redis.call('HGET', widem, ikey)
  if sig then
    return {'duplicate', sig}
  end
end
if wf[2] == '1' then
  return ff_error('waitpoint_closed')
end
local exec = BASE .. 'x:' .. id
local ef = redis.call('HMGET', exec, 'tat', 'nsig', 'cond', 'member')
if ef[1] ~= '' and ff_cmp(now, ef[1]) > 0 then
  return ff_error('suspension_timed_out')
end
if tonumber(ef[2]) >= tonumber(ARGV[8]) then
  return ff_error('signal_limit_exceeded')
end
redis.call('RPUSH', BASE .. 'sig:' .. wf[3], now .. '|' .. ARGV[7])
redis.call('HINCRBY', exec, 'nsig', 1)
if ikey ~= '' then
  redis.call('HSET', widem, ikey, ARGV[6])
end
local pending = -1
if redis.call('HINCRBY', w, 'n', 1) == 1 then
  pending = redis.call('HINCRBY', exec, 'pending', -1)
end
local resumed = ef[3] == 'any' or pending == 0
if resumed then
  redis.call('HSET', exec, 'state', 'resumed')
  ff_close_waitpoints(exec)
  redis.call('ZREM', IDX_SUSPENDED, ef[4])
  redis.call('ZREM', IDX_TIMERS, ef[4])
  redis.call('ZADD', IDX_READY, 0, ef[4])
end
return {'accepted', resumed and '1' or '0'}
