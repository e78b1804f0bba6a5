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
-- A batch (claim_resumed_executions): ARGV[4] up to the one before the
-- store marker's value are further lease ids. The call then claims, at one
-- clock, up to one execution per lease id as successive calls would: each
-- from the partition whose oldest candidate is the oldest of all, that
-- partition's candidate then read again; and answers {'batch', ...}
-- (ff_batch_reply in claim_lib.lua) or {'none'}, as well as {'full'} and
-- {'hint', ...}.
--
-- A re-sent call (same first lease_id) goes back to the partitions the
-- first call claimed in (the operation record
-- <prefix>ff:claim-op:<lease_id>: the partition of each claim, in order),
-- where claim's own records answer the executions it claimed.
local HINTED_MAX = 32
local hint = HINT
local base = string.sub(hint, 1, #hint - #'claim-hint') -- <prefix>ff:
local leases = ff_claim_leases()
local batch = #leases > 1
local opkey = base .. 'claim-op:' .. leases[1]

-- use points the helpers at partition p and checks its partition count.
local function use(p)
  ff_use_partition(base .. '{p:' .. p .. '}:keys', hint)
  return ff_partitions()
end

-- marked returns store_reset when partition p's store marker is gone.
local function marked(p)
  return ff_store_check(base .. '{p:' .. p .. '}:store', nil)
end

-- answer renders the claims made.
local function answer(claims)
  if batch then
    return ff_batch_reply(claims)
  end
  return claims[1] or {'none'}
end

local rec = redis.call('GET', opkey)
if rec then
  local claims, i = {}, 0
  for p in string.gmatch(rec, '%S+') do
    i = i + 1
    local err = marked(p) or use(p)
    if err then return err end
    local out = ff_claim(leases[i], ARGV[3])
    if out[1] == 'claimed' then
      claims[#claims + 1] = out
    end
  end
  return answer(claims)
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
local claims, where = {}, {}
while #claims < #leases and #candidates > 0 do
  local best = 1
  for i = 2, #candidates do
    if candidates[i][1] < candidates[best][1] then
      best = i
    end
  end
  local c = candidates[best]
  local err = use(c[2])
  if err then return err end
  local out = ff_claim(leases[#claims + 1], ARGV[3])
  local after = nil
  if out[1] == 'claimed' then
    claims[#claims + 1] = out
    where[#where + 1] = c[2]
    after = redis.call('ZRANGE', IDX_READY, 0, 0)[1]
  end
  if after then
    c[1] = after
  else
    table.remove(candidates, best)
  end
end
if #claims > 0 then
  redis.call('SET', opkey, table.concat(where, ' '), 'PX', OP_TTL_MS)
end
return answer(claims)
