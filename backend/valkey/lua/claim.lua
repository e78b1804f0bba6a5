-- claim leases the oldest claimable execution of the partition, atomically
-- at one server clock: resumed (reason signal), suspended past its timeout
-- (reason timeout) or claimed past its lease (reason kept). Members of the
-- ready index that are no longer claimable are dropped on the way.
-- ARGV: [2] lease_id, [3] lease_ms. Sets state claimed, the lease and its
-- timer, closes the waitpoints and leaves the suspended index.
-- Returns {'none'} or {'claimed', execution_id, suspension_id, reason,
-- lease_expires_at_ms, signal record...}.
local err = ff_partitions()
if err then return err end
local now = ff_now()
ff_promote(now)
while true do
  local first = redis.call('ZRANGE', IDX_READY, 0, 0)
  local m = first[1]
  if not m then
    return {'none'}
  end
  redis.call('ZREM', IDX_READY, m)
  local id = string.sub(m, 22)
  local exec = BASE .. 'x:' .. id
  local f = redis.call('HMGET', exec, 'state', 'tat', 'lexp', 'reason', 'sid', 'member')
  local reason = nil
  if f[6] == m then
    if f[1] == 'resumed' then
      reason = 'signal'
    elseif f[1] == 'suspended' and f[2] ~= '' and ff_cmp(now, f[2]) > 0 then
      reason = 'timeout'
    elseif f[1] == 'claimed' and ff_cmp(now, f[3]) > 0 then
      reason = f[4]
    end
  end
  if not reason and f[6] == m then
    -- Not claimable yet: keep its deadline, if it has one, in the timers.
    if f[1] == 'suspended' and f[2] ~= '' then
      redis.call('ZADD', IDX_TIMERS, f[2], m)
    elseif f[1] == 'claimed' then
      redis.call('ZADD', IDX_TIMERS, f[3], m)
    end
  end
  if reason then
    local lexp = ff_add(now, ARGV[3])
    redis.call('HSET', exec, 'state', 'claimed', 'lease', ARGV[2], 'lexp', lexp, 'reason', reason)
    ff_close_waitpoints(exec)
    redis.call('ZREM', IDX_SUSPENDED, m)
    redis.call('ZADD', IDX_TIMERS, lexp, m)
    local out = redis.call('LRANGE', BASE .. 'sig:' .. f[5], 0, -1)
    table.insert(out, 1, lexp)
    table.insert(out, 1, reason)
    table.insert(out, 1, f[5])
    table.insert(out, 1, id)
    table.insert(out, 1, 'claimed')
    return out
  end
end
