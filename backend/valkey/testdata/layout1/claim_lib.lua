-- claim_lib.lua follows the prelude in claim and claim_hinted.

-- reply renders the claim of execution id, whose hash is exec:
-- {'claimed', execution_id, suspension_id, reason, lease_expires_at_ms,
-- member (its index member, which orders claims of several partitions),
-- lease_id, signal record...}.
local function reply(id, exec)
  local f = redis.call('HMGET', exec, 'sid', 'reason', 'lexp', 'member', 'lease')
  local out = redis.call('LRANGE', BASE .. 'sig:' .. f[1], 0, -1)
  table.insert(out, 1, f[5])
  table.insert(out, 1, f[4])
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
      ff_counted(m, 'claimed', lexp)
      redis.call('ZADD', IDX_TIMERS, lexp, m)
      ff_op_put(lease_id, id)
      ff_hint_refresh()
      return reply(id, exec)
    end
  end
end

-- Batches (claim_resumed_executions, docs/spec.md §8.8). A claim script
-- called with more than one lease id (ARGV[2], then ARGV[4] up to the one
-- before the store marker's value) claims up to one execution per lease id,
-- oldest first, each exactly as a call with that lease id alone would, and
-- answers ff_batch_reply.

-- ff_claim_leases lists the call's lease ids.
local function ff_claim_leases()
  local leases = {ARGV[2]}
  for i = 4, #ARGV - 1 do
    leases[#leases + 1] = ARGV[i]
  end
  return leases
end

-- ff_batch_reply renders claims (claim replies) as {'batch', #c1, c1...,
-- #c2, c2...}, or {'none'} when there is none.
local function ff_batch_reply(claims)
  if #claims == 0 then
    return {'none'}
  end
  local out = {'batch'}
  for _, c in ipairs(claims) do
    out[#out + 1] = #c
    for _, v in ipairs(c) do
      out[#out + 1] = v
    end
  end
  return out
end

-- ff_claim_each claims on the partition with each of leases in turn for
-- lease_ms and returns the claim replies. It stops at the first lease id
-- that finds nothing claimable; a lease id whose claim a first call of the
-- same operation made answers that claim again (ff_claim), or nothing when
-- the execution was taken from it since, and the next lease ids go on.
local function ff_claim_each(leases, lease_ms)
  local claims = {}
  for _, lease in ipairs(leases) do
    local replayed = ff_op_get(lease)
    local out = ff_claim(lease, lease_ms)
    if out[1] == 'claimed' then
      claims[#claims + 1] = out
    elseif not replayed then
      break
    end
  end
  return claims
end
