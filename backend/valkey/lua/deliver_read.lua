-- deliver_read is the first step of deliver_signal (read-only): what the
-- caller needs to check the token (steps 1-2 of docs/spec.md §5) in one
-- round trip. ARGV: [2] token kid, [3] execution_id, [4] waitpoint_id.
-- Returns {now, current kid or '', kid known '1'|'0', kid expires_at_ms or
-- '' (current), kid secret hex or '', waitpoint of this execution '1'|'0',
-- waitpoint_key, created_at_ms, kid revoked '1'|''}. A revoked kid
-- (docs/spec.md §8.7) is known, without a secret, so that its tokens answer
-- token_expired.
local ks, err = ff_keystore()
if err then return err end
local now = ff_now()
local kid = ARGV[2]
local current = ks.current or ''
local secret = ks['s:' .. kid]
local revoked = ''
if ks['r:' .. kid] then
  secret, revoked = nil, '1'
end
local known, exp = '0', ''
if secret or revoked == '1' then
  known = '1'
  if kid ~= current then exp = ks['x:' .. kid] or '' end
end
local mine, key, created = '0', '', ''
local x = redis.call('HMGET', BASE .. 'x:' .. ARGV[3], 'w:' .. ARGV[4], 'sat')
if x[1] then -- inline (see ff_wp in prelude.lua): created with its suspension
  local _, _, k = ff_inline(x[1])
  mine, key, created = '1', k, x[2]
else
  local w = redis.call('HMGET', BASE .. 'w:' .. ARGV[4], 'e', 'k', 'c')
  if w[1] == ARGV[3] then
    mine, key, created = '1', w[2], w[3]
  end
end
return {now, current, known, exp, secret or '', mine, key, created, revoked}
