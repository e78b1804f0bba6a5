-- deliver_write is the second, atomic step of deliver_signal on the slow
-- path, after the caller checked the token's MAC (deliver_read). It reads
-- the clock once and re-checks what the caller saw: the token's kid still
-- verifies at this clock and the waitpoint still belongs to the execution
-- ({'retry'} otherwise, nothing written); then ff_record decides and records.
--
-- ARGV: [2] kid, [3] execution_id, [4] waitpoint_id, [5] idempotency_key,
-- [6] signal_id, [7] and [8] the signal record around its waitpoint_key,
-- [9] signals per waitpoint, [10] signals per suspension, [11] payload
-- bytes per suspension, [12] the payload's length (see ff_record).
local replayed = ff_record_replayed()
if replayed then return replayed end
local now = ff_now()
local usable, err = ff_kid_usable(ARGV[2], now)
if err then return err end
if not usable then
  return {'retry'}
end
local wf = redis.call('HMGET', BASE .. 'w:' .. ARGV[4], unpack(WF))
if wf[1] ~= ARGV[3] then
  return {'retry'}
end
return ff_record(now, wf)
