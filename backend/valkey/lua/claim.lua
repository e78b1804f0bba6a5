-- claim leases the oldest claimable execution of the partition, atomically
-- at one server clock: resumed (reason signal), suspended past its timeout
-- (reason timeout) or claimed past its lease (reason kept). Members of the
-- ready index that are no longer claimable are dropped on the way. It sets
-- the partition's claim hint from what it leaves.
-- ARGV: [2] lease_id, [3] lease_ms. Sets state claimed, the lease and its
-- timer, closes the waitpoints and leaves the suspended index.
-- Returns {'none'} or {'claimed', execution_id, suspension_id, reason,
-- lease_expires_at_ms, signal record...}. The lease_id is the call's
-- operation id: a re-sent call answers the execution it claimed, if it
-- still holds it, instead of claiming another.
local err = ff_partitions()
if err then return err end

-- reply renders the claim of execution id, whose hash is exec.
local function reply(id, exec)
  local f = redis.call('HMGET', exec, 'sid', 'reason', 'lexp')
  local out = redis.call('LRANGE', BASE .. 'sig:' .. f[1], 0, -1)
  table.insert(out, 1, f[3])
  table.insert(out, 1, f[2])
  table.insert(out, 1, f[1])
  table.insert(out, 1, id)
  table.insert(out, 1, 'claimed')
  return out
end

local done = ff_op_get(ARGV[2])
if done then
  local exec = BASE .. 'x:' .. done
  local f = redis.call('HMGET', exec, 'state', 'lease')
  if f[1] == 'claimed' and f[2] == ARGV[2] then
    return reply(done, exec)
  end
  return {'none'}
end
local now = ff_now()
ff_promote(now)
while true do
  local first = redis.call('ZRANGE', IDX_READY, 0, 0)
  local m = first[1]
  if not m then
    ff_hint_refresh()
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
    ff_op_put(ARGV[2], id)
    ff_hint_refresh()
    return reply(id, exec)
  end
end
