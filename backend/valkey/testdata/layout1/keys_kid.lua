-- keys_kid reads what sign and verify need from one partition's keystore,
-- and the server clock (read-only, one HMGET for verify, two for sign):
-- ARGV[2] is the token's kid, or ':current' for the current kid (':' never
-- occurs in a kid). Returns {now, current kid or '', kid, its secret hex or
-- '' when unknown or revoked, its expires_at_ms or '' (current or unknown),
-- '1' when the kid is revoked (docs/spec.md §8.7: the record keeps no
-- secret) else ''}.
local kid = ARGV[2]
local f
if kid == ':current' then
  f = redis.call('HMGET', KS, 'partitions', 'current')
  kid = f[2] or ''
  if kid ~= '' then
    local g = redis.call('HMGET', KS, 's:' .. kid, 'x:' .. kid, 'r:' .. kid)
    f[3], f[4], f[5] = g[1], g[2], g[3]
  end
else
  f = redis.call('HMGET', KS, 'partitions', 'current', 's:' .. kid, 'x:' .. kid, 'r:' .. kid)
end
if f[1] and f[1] ~= ARGV[1] then
  return ff_error('partition_count_mismatch', f[1], ARGV[1])
end
local revoked = ''
if f[5] then revoked = '1' end
return {ff_now(), f[2] or '', kid, (not f[5] and f[3]) or '', f[4] or '', revoked}
