-- suspend_read is the first step of suspend (read-only): what the caller
-- decides suspend on with the driver kit (docs/spec.md §5.1, §8.1), in one
-- round trip:
--   - the server clock, the partition's current kid and its secret;
--   - the suspend idempotency record of (ARGV[2] execution_id, ARGV[3]
--     idempotency_key) if any, with what a replay needs to sign its tokens
--     again: the kid that signed them (read from the record's first
--     "token" field, a kid alone or, in records written before tokens
--     stopped being stored, a whole token; an already_satisfied record has
--     none) and that kid's secret and expiry;
--   - the execution (ff_exec_view: its version, state, lease, latest
--     pending expiry);
--   - each pending waitpoint the suspend names (ARGV[5...], in order, up
--     to the store marker's value, last): what
--     driver.PendingWaitpoint holds of it, or not found (no such waitpoint,
--     or one a suspend opened);
--   - when at least ARGV[4] of those (the caller's threshold, from
--     driver.ConditionHolds) are this execution's, unused and hold a
--     signal, the signals buffered on them in delivery order: the
--     already_satisfied outcome lists them (ff_buffered).
-- Returns {now, current kid or '', current secret hex or '', record or '',
-- record's kid or '', its secret hex or '' (unknown: collected), its
-- expires_at_ms or '' (current), version, state, lease, plast, '1' when the
-- signals follow else '0', then per pending id: found '1'|'0', execution_id,
-- key, created_at_ms, expires_at_ms, used '1'|'0', signals, payload bytes,
-- then the signal records}; a record is the 64-hex fingerprint followed by
-- the stored outcome JSON.
local ks, err = ff_keystore()
if err then return err end
local now = ff_now()
local id = ARGV[2]
local current = ks.current or ''
local secret = ''
if current ~= '' then secret = ks['s:' .. current] or '' end
local rec = ''
if ARGV[3] ~= '' then rec = redis.call('HGET', BASE .. 'xi:' .. id, ARGV[3]) or '' end
local kid, ksecret, exp = '', '', ''
if string.sub(rec, 65, 86) == '{"outcome":"suspended"' then
  kid = string.match(rec, '"token":"([^":]*)', 65) or ''
  if kid ~= '' then
    ksecret = ks['s:' .. kid] or ''
    if kid ~= current then exp = ks['x:' .. kid] or '' end
  end
end
local v = ff_exec_view(id)
local out = {now, current, secret, rec, kid, ksecret, exp, v[1], v[2], v[3], v[5], '0'}
local function push(...)
  for _, x in ipairs({...}) do out[#out + 1] = x end
end
local signaled, usable = 0, {}
for i = 5, #ARGV - 1 do -- ARGV[#ARGV] is the store marker (prelude.lua)
  local f = redis.call('HMGET', BASE .. 'w:' .. ARGV[i], 'e', 'k', 'c', 'x', 's', 'n', 'nb')
  if f[1] and f[4] then
    local used = f[5] ~= ''
    push('1', f[1], f[2], f[3], f[4], used and '1' or '0', f[6] or '0', f[7] or '0')
    if f[1] == id and not used then
      usable[#usable + 1] = ARGV[i]
      if (tonumber(f[6]) or 0) > 0 then signaled = signaled + 1 end
    end
  else
    push('0', '', '', '', '', '', '', '')
  end
end
if #usable > 0 and signaled >= tonumber(ARGV[4]) then
  out[12] = '1'
  for _, r in ipairs(ff_buffered(usable)) do
    out[#out + 1] = r
  end
end
return out
