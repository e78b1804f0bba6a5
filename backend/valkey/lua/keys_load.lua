-- keys_load reads one partition's keystore and the server clock (read-only).
-- ARGV[2] names the kid whose secret to return: '' none, ':current' the
-- current kid's (':' never occurs in a kid), else that kid's.
-- Returns {now, current kid or '', n, kid_1, expires_1 or '', secret_1 or '', ...}.
local err = ff_partitions()
if err then return err end
local now = ff_now()
local current = redis.call('HGET', KS, 'current') or ''
local want = ARGV[2]
if want == ':current' then want = current end
local out = {now, current, 0}
local all = redis.call('HGETALL', KS)
for i = 1, #all, 2 do
  local f = all[i]
  if string.sub(f, 1, 2) == 's:' then
    local kid = string.sub(f, 3)
    local exp = ''
    if kid ~= current then exp = redis.call('HGET', KS, 'x:' .. kid) or '' end
    local secret = ''
    if kid == want and want ~= '' then secret = all[i + 1] end
    out[#out + 1] = kid
    out[#out + 1] = exp
    out[#out + 1] = secret
    out[3] = out[3] + 1
  end
end
return out
