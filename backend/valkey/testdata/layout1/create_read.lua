-- create_read is the first step of create_waitpoint (read-only): what the
-- caller decides it on with the driver kit (docs/spec.md §8.1), in one
-- round trip. ARGV: [2] execution_id.
-- Returns {now, current kid or '', current secret hex or '', version, state,
-- lease, plast (ff_exec_view), live}: live is how many of the execution's
-- pending waitpoints no suspend used and not past their expires_at_ms at
-- now (xp:<execution_id> holds the unused ones, scored by expires_at_ms).
local ks, err = ff_keystore()
if err then return err end
local now = ff_now()
local current = ks.current or ''
local secret = ''
if current ~= '' then secret = ks['s:' .. current] or '' end
local v = ff_exec_view(ARGV[2])
local live = redis.call('ZCOUNT', BASE .. 'xp:' .. ARGV[2], now, '+inf')
return {now, current, secret, v[1], v[2], v[3], v[5], tostring(live)}
