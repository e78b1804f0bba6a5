-- claim_lib.lua follows the prelude in claim and claim_hinted.

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

-- ff_claim leases the oldest claimable execution of the partition (see
-- claim.lua) under lease_id for lease_ms; the caller checked the partition
-- count.
local function ff_claim(lease_id, lease_ms)
  local done = ff_op_get(lease_id)
  if done then
    local exec = BASE .. 'x:' .. done
    local f = redis.call('HMGET', exec, 'state', 'lease')
    if f[1] == 'claimed' and f[2] == lease_id then
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
    local f = redis.call('HMGET', exec, 'state', 'tat', 'lexp', 'reason', 'sid', 'member', 'tags')
    local reason = nil
    if f[6] == m then
      if f[1] == 'resumed' then
        -- cancelled after cancel_suspension; a signal resumed it otherwise
        reason = (f[4] and f[4] ~= '') and f[4] or 'signal'
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
      local lexp = ff_add(now, lease_ms)
      redis.call('HSET', exec, 'state', 'claimed', 'lease', lease_id, 'lexp', lexp, 'reason', reason, 'ver', lease_id)
      ff_close_waitpoints(exec)
      ff_unlist(m, f[7])
      redis.call('ZADD', IDX_TIMERS, lexp, m)
      ff_op_put(lease_id, id)
      ff_hint_refresh()
      return reply(id, exec)
    end
  end
end
