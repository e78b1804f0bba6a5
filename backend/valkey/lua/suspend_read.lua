-- suspend_read is the first step of suspend (read-only): the server clock,
-- the partition's current kid and its secret, and the suspend idempotency
-- record of (ARGV[2] execution_id, ARGV[3] idempotency_key) if any.
-- Returns {now, current kid or '', secret hex or '', record or ''}; a record
-- is the 64-hex fingerprint followed by the outcome JSON.
local ks, err = ff_keystore()
if err then return err end
local now = ff_now()
local current = ks.current or ''
local secret = ''
if current ~= '' then secret = ks['s:' .. current] or '' end
local rec = ''
if ARGV[3] ~= '' then rec = redis.call('HGET', BASE .. 'xi:' .. ARGV[2], ARGV[3]) or '' end
return {now, current, secret, rec}
