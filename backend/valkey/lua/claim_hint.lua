-- claim_hint (standalone servers only, without the prelude) reads the claim
-- hint KEYS[1] (see ff_hint in prelude.lua): {'hint', partition...} with the
-- partitions scored before the server clock, which are the only ones that
-- may hold a claimable execution, or {'full'} when the hint is not
-- complete (its 'all' member is missing: a store written before the hint
-- existed, or the key was lost) and every partition must be asked.
if not redis.call('ZSCORE', KEYS[1], 'all') then
  return {'full'}
end
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
local out = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
table.insert(out, 1, 'hint')
return out
