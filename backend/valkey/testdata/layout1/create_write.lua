-- create_write is the second, atomic step of create_waitpoint. The caller
-- read the clock, the current kid and the execution with create_read,
-- decided with the driver kit (driver.CheckCreateWaitpoint,
-- driver.ForgetsExpiredPending) and signed the token; this script writes
-- the pending waitpoint only if the kid is still current and the
-- execution's version (ff_exec_view) is the one the caller read:
-- {'retry'} otherwise, nothing written. A re-sent call (the same
-- waitpoint_id, already written) answers {'ok'}.
--
-- ARGV: [2] execution_id, [3] kid, [4] the version create_read saw, [5]
-- '1' to forget the execution first (state none, every pending waitpoint
-- expired), [6] waitpoint_id, [7] key, [8] now (created_at_ms), [9]
-- expires_at_ms, [10] SHA-256 of the token as lowercase hex (deliver
-- compares it; its first 16 digits are driver.TokenFingerprint), [11] tags
-- (space-separated).
--
-- Writes the waitpoint (s '' while no suspend uses it, x its expiry, n and
-- nb its signals and payload bytes), lists it with the execution's
-- waitpoints (xw, which complete deletes) and its unused pending ones (xp,
-- scored by expiry), and remembers the execution: in state none ('') when
-- it was not remembered, its latest pending expiry (plast) raised.
-- {'ok'}. No token and no MAC is written.
local err = ff_partitions()
if err then return err end
local id, wid = ARGV[2], ARGV[6]
local w = BASE .. 'w:' .. wid
if redis.call('HGET', w, 'e') == id then
  return {'ok'}
end
if redis.call('HGET', KS, 'current') ~= ARGV[3] then
  return {'retry'}
end
if ff_exec_view(id)[1] ~= ARGV[4] then
  return {'retry'}
end
if ARGV[5] == '1' then
  ff_forget(id)
end
local exp = ARGV[9]
redis.call('HSET', w, 'e', id, 'k', ARGV[7], 'c', ARGV[8], 's', '', 'closed', '0', 'n', 0, 'nb', 0,
  'h', ARGV[10], 'x', exp, 'tags', ARGV[11])
redis.call('SADD', BASE .. 'xw:' .. id, wid)
redis.call('ZADD', BASE .. 'xp:' .. id, exp, wid)
local exec = BASE .. 'x:' .. id
local f = redis.call('HMGET', exec, 'state', 'plast')
if not f[1] then
  redis.call('HSET', exec, 'state', '')
end
if not f[2] or ff_cmp(exp, f[2]) > 0 then
  redis.call('HSET', exec, 'plast', exp)
end
redis.call('HSET', exec, 'ver', wid)
return {'ok'}
