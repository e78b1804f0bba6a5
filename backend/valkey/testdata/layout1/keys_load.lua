-- keys_load reads one partition's keystore and the server clock (read-only).
-- ARGV[2] names the kid whose secret to return: '' none, ':current' the
-- current kid's (':' never occurs in a kid), else that kid's.
-- Returns {now, current kid or '', n, kid_1, expires_1 or '', secret_1 or '',
-- revoked_1 '1'|'', ...}: every kid with a secret (s:<kid>) and every
-- revoked kid (r:<kid>, which has no secret; docs/spec.md §8.7).
local ks, err = ff_keystore()
if err then return err end
local now = ff_now()
local current = ks.current or ''
local want = ARGV[2]
if want == ':current' then want = current end
local out = {now, current, 0}
for f, v in pairs(ks) do
  local tag = string.sub(f, 1, 2)
  if tag == 's:' or tag == 'r:' then
    local kid = string.sub(f, 3)
    local exp = ''
    if kid ~= current then exp = ks['x:' .. kid] or '' end
    local secret, revoked = '', ''
    if tag == 'r:' then
      revoked = '1'
    elseif kid == want and want ~= '' then
      secret = v
    end
    if tag == 'r:' or not ks['r:' .. kid] then
      out[#out + 1] = kid
      out[#out + 1] = exp
      out[#out + 1] = secret
      out[#out + 1] = revoked
      out[3] = out[3] + 1
    end
  end
end
return out
