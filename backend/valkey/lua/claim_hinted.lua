-- claim_hinted is claim_resumed_execution in one call on a standalone
-- server, called on partition 0 (whose store marker the prelude checks by
-- value); HINT is the claim hint and HEADS the claim heads (see ff_hint in
-- prelude.lua); ARGV: [1] P, [2] lease_id, [3] lease_ms. Before it touches
-- another partition, that partition must still have its store marker (a
-- standalone server loses every partition at once, so a marker present is
-- the one partition 0's stands for); else it answers store_reset.
--
-- When the hint is not complete (no 'complete' member: a store written
-- before the claim heads existed, or the key was lost) it answers
-- {'full'}: the caller asks every partition (claim_peek, which sets each
-- one's hint and head) and claims. Otherwise it first promotes the due
-- timers of the partitions the hint scores before the server clock (when
-- there are more than HINTED_MAX of them, it answers {'hint', partition...}
-- instead, and the caller promotes those with claim_peek in a pipeline
-- and calls again, so that one call does not hold the server for long).
-- Then the first claim head names the partition of the oldest claimable
-- execution when its bound is exact (the partition's oldest ready member):
-- it claims there as claim.lua does; a bound that is not exact is made so
-- and the first head read again. Nothing claimable: {'none'}. So a claim
-- reads one partition, and a few more only when heads were behind.
--
-- A batch (claim_resumed_executions): ARGV[4] up to the one before the
-- store marker's value are further lease ids. The call then claims, at one
-- clock, up to one execution per lease id as successive calls would, each
-- from the partition the first exact head names; and answers {'batch', ...}
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
if not redis.call('ZSCORE', hint, 'complete') then
  return {'full'}
end
local now = ff_now()
local due = redis.call('ZRANGEBYSCORE', hint, '-inf', '(' .. now)
if #due > HINTED_MAX then
  table.insert(due, 1, 'hint')
  return due
end
local checked = {}
for _, q in ipairs(due) do
  local err = marked(q)
  if err then return err end
  checked[q] = true
end
for _, q in ipairs(due) do
  local err = use(q)
  if err then return err end
  ff_promote(now)
  ff_hint_refresh()
end
local claims, where = {}, {}
while #claims < #leases do
  local head = redis.call('ZRANGE', HEADS, 0, 0)[1]
  if not head then
    break
  end
  local sp = string.find(head, ' ', 1, true)
  local m, q = string.sub(head, 1, sp - 1), string.sub(head, sp + 1)
  if not checked[q] then
    local err = marked(q)
    if err then return err end
    checked[q] = true
  end
  local err = use(q)
  if err then return err end
  if redis.call('ZRANGE', IDX_READY, 0, 0)[1] ~= m then
    -- A bound before the partition's oldest ready member: make it exact.
    redis.call('ZREM', HEADS, head)
    redis.call('HDEL', HEADP, q)
    ff_head(redis.call('ZRANGE', IDX_READY, 0, 0)[1] or false)
  else
    -- The oldest of all: claim there (what is left sets the head again).
    local out = ff_claim(leases[#claims + 1], ARGV[3])
    if out[1] == 'claimed' then
      claims[#claims + 1] = out
      where[#where + 1] = q
    end
  end
end
if #claims > 0 then
  redis.call('SET', opkey, table.concat(where, ' '), 'PX', OP_TTL_MS)
end
return answer(claims)
