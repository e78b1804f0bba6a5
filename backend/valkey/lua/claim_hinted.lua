-- claim_hinted is claim_resumed_execution in one call on a standalone
-- server, called on partition 0 (whose store marker the prelude checks by
-- value); HINT is the claim hint (see ff_hint in prelude.lua); ARGV: [1]
-- P, [2] lease_id, [3] lease_ms. Before it writes anything, every other
-- partition it will touch must still have its store marker (a standalone
-- server loses every partition at once, so a marker present is the one
-- partition 0's stands for); else it answers store_reset.
--
-- When the hint is not complete (no 'all' member: a store written before
-- the hint existed, or the key was lost) it answers {'full'}: the caller
-- asks every partition (claim_peek, which completes the hint) and claims.
-- When the hint names no partition scored before the server clock, nothing
-- is claimable: {'none'}. When it names more than HINTED_MAX, it answers
-- {'hint', partition...} and the caller asks those in a pipeline (so that
-- one call does not hold the server for long). Otherwise it asks each named
-- partition for its oldest candidate as claim_peek does, and claims as
-- claim.lua does from the partition of the oldest one (the next oldest
-- when that one holds nothing claimable any more), answering like claim.
--
-- A re-sent call (same lease_id) goes back to the partition the first call
-- claimed in (the operation record <prefix>ff:claim-op:<lease_id>), where
-- claim's own record answers the execution it claimed.
local HINTED_MAX = 32
local hint = HINT
local base = string.sub(hint, 1, #hint - #'claim-hint') -- <prefix>ff:
local opkey = base .. 'claim-op:' .. ARGV[2]

-- use points the helpers at partition p and checks its partition count.
local function use(p)
  ff_use_partition(base .. '{p:' .. p .. '}:keys', hint)
  return ff_partitions()
end

-- marked returns store_reset when partition p's store marker is gone.
local function marked(p)
  return ff_store_check(base .. '{p:' .. p .. '}:store', nil)
end

local p = redis.call('GET', opkey)
if p then
  local err = marked(p) or use(p)
  if err then return err end
  return ff_claim(ARGV[2], ARGV[3])
end
if not redis.call('ZSCORE', hint, 'all') then
  return {'full'}
end
local now = ff_now()
local ps = redis.call('ZRANGEBYSCORE', hint, '-inf', '(' .. now)
if #ps > HINTED_MAX then
  table.insert(ps, 1, 'hint')
  return ps
end
for _, q in ipairs(ps) do
  local err = marked(q)
  if err then return err end
end
local candidates = {}
if #ps == 1 then
  ps, candidates = {}, {{'', ps[1]}} -- nothing to compare: claim decides
end
for _, q in ipairs(ps) do
  local err = use(q)
  if err then return err end
  ff_promote(now)
  local first = redis.call('ZRANGE', IDX_READY, 0, 0)
  ff_hint_refresh()
  if first[1] then
    candidates[#candidates + 1] = {first[1], q}
  end
end
table.sort(candidates, function(a, b) return a[1] < b[1] end)
for _, c in ipairs(candidates) do
  local err = use(c[2])
  if err then return err end
  local out = ff_claim(ARGV[2], ARGV[3])
  if out[1] == 'claimed' then
    redis.call('SET', opkey, c[2], 'PX', OP_TTL_MS)
    return out
  end
end
return {'none'}
