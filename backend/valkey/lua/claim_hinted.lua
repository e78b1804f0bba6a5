-- claim_hinted is claim_resumed_execution in one call on a standalone
-- server. KEYS[1] is the claim hint (see ff_hint in prelude.lua); ARGV:
-- [1] P, [2] lease_id, [3] lease_ms.
--
-- When the hint is not complete (no 'all' member: a store written before
-- the hint existed, or the key was lost) it answers {'full'}: the caller
-- asks every partition (claim_peek, which completes the hint) and claims.
-- When the hint names no partition scored before the server clock, nothing
-- is claimable: {'none'}. When it names several, the caller must compare
-- their oldest candidates: {'hint', partition...}. When it names one, this
-- script claims there as claim.lua does and answers like it.
--
-- A re-sent call (same lease_id) goes back to the partition the first call
-- claimed in (the operation record <prefix>ff:claim-op:<lease_id>), where
-- claim's own record answers the execution it claimed.
local hint = KEYS[1]
local base = string.sub(hint, 1, #hint - #'claim-hint') -- <prefix>ff:
local opkey = base .. 'claim-op:' .. ARGV[2]
local p = redis.call('GET', opkey)
if not p then
  if not redis.call('ZSCORE', hint, 'all') then
    return {'full'}
  end
  local ps = redis.call('ZRANGEBYSCORE', hint, '-inf', '(' .. ff_now())
  if #ps == 0 then
    return {'none'}
  end
  if #ps > 1 then
    table.insert(ps, 1, 'hint')
    return ps
  end
  p = ps[1]
end
ff_use_partition(base .. '{p:' .. p .. '}:keys', hint)
local err = ff_partitions()
if err then return err end
local out = ff_claim(ARGV[2], ARGV[3])
if out[1] == 'claimed' then
  redis.call('SET', opkey, p, 'PX', OP_TTL_MS)
end
return out
