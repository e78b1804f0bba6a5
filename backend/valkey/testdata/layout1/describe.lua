-- describe reads one execution for describe_execution (read-only,
-- docs/spec.md §8.9), at the server clock; the caller builds the envelope
-- with driver.DescribeExecution. ARGV: [2] execution_id.
-- Returns {now} when the execution is not remembered, else {now, state
-- ('' for none), lease_expires_at_ms or '', reason or '', timeout_at_ms
-- or '', then of its latest suspension suspension_id, suspended_at_ms and
-- tags ('', '' and '' before its first), then, per waitpoint, its id and
-- its ff_waitpoint_view (waitpoint_lib.lua, the get_waitpoint reply)}: the
-- waitpoints of its latest suspension (wps), then its pending waitpoints
-- no suspend used that have not expired at now (xp, scored by
-- expires_at_ms: those from now on). Never its lease id nor a token. The
-- limits of docs/spec.md §5.1 and §8.1 bound the waitpoints (32 at most),
-- so the script reads the execution's hash, one range and one hash per
-- waitpoint (two for a waitpoint older than its t field).
local err = ff_partitions()
if err then return err end
local now = ff_now()
local id = ARGV[2]
local f = redis.call('HMGET', BASE .. 'x:' .. id, 'state', 'lexp', 'reason', 'tat', 'sid', 'sat', 'tags', 'wps')
if not f[1] then
  return {now}
end
local out = {now, f[1], f[2] or '', f[3] or '', f[4] or '', f[5] or '', f[6] or '', f[7] or ''}
local function add(w)
  out[#out + 1] = w
  out[#out + 1] = ff_waitpoint_view(now, w)
end
for w in string.gmatch(f[8] or '', '%S+') do
  add(w)
end
for _, w in ipairs(redis.call('ZRANGEBYSCORE', BASE .. 'xp:' .. id, now, '+inf')) do
  add(w)
end
return out
