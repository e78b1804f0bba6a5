-- deliver is deliver_signal in one round trip, for the token suspend or
-- create_waitpoint issued last: both store SHA-256(token) with each
-- waitpoint they hand a token out for (raw bytes inline, lowercase hex in a
-- waitpoint's own hash; ff_wp reads either), and a presented token whose
-- SHA-256 (ARGV[13], raw bytes, computed by the caller) equals it is that
-- token, so its MAC is right for this waitpoint's message. If
-- the hashes match, the waitpoint belongs to the execution and the token's
-- kid (ARGV[2]) still verifies at the server clock, ff_record decides and
-- records atomically. Anything else answers {'slow'} without writing, and
-- the caller takes the two-step path (deliver_read, MAC check in Go,
-- deliver_write), which also words every token error.
--
-- ARGV as deliver_write's, plus [13] SHA-256 of the presented token (raw).
local replayed = ff_record_replayed()
if replayed then return replayed end
local now = ff_now()
local usable, err = ff_kid_usable(ARGV[2], now)
if err then return err end
if not usable then
  return {'slow'}
end
local wf = ff_wp(ARGV[3], ARGV[4])
local same
if wf.inline then
  same = wf.raw == ARGV[13]
else
  same = wf[8] and wf[8] == ff_hex(ARGV[13])
end
if wf[1] ~= ARGV[3] or not same then
  return {'slow'}
end
return ff_record(now, wf)
