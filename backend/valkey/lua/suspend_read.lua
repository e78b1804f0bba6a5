-- suspend_read is the first step of suspend (read-only): the server clock,
-- the partition's current kid and its secret, and the suspend idempotency
-- record of (ARGV[2] execution_id, ARGV[3] idempotency_key) if any, with
-- what a replay needs to sign its tokens again: the kid that signed them
-- (read from the record's first "token" field, a kid alone or, in records
-- written before tokens stopped being stored, a whole token) and that
-- kid's secret and expiry.
-- Returns {now, current kid or '', current secret hex or '', record or '',
-- record's kid or '', its secret hex or '' (unknown: collected), its
-- expires_at_ms or '' (current)}; a record is the 64-hex fingerprint
-- followed by the stored outcome JSON.
local ks, err = ff_keystore()
if err then return err end
local now = ff_now()
local current = ks.current or ''
local secret = ''
if current ~= '' then secret = ks['s:' .. current] or '' end
local rec = ''
if ARGV[3] ~= '' then rec = redis.call('HGET', BASE .. 'xi:' .. ARGV[2], ARGV[3]) or '' end
local kid, ksecret, exp = '', '', ''
if rec ~= '' then
  kid = string.match(rec, '"token":"([^":]*)', 65) or ''
  if kid ~= '' then
    ksecret = ks['s:' .. kid] or ''
    if kid ~= current then exp = ks['x:' .. kid] or '' end
  end
end
return {now, current, secret, rec, kid, ksecret, exp}
