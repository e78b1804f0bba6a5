-- claim leases the oldest claimable execution of the partition, atomically
-- at one server clock: resumed (reason signal, or cancelled after
-- cancel_suspension), suspended past its timeout
-- (reason timeout) or claimed past its lease (reason kept). Members of the
-- ready index that are no longer claimable are dropped on the way. It sets
-- the partition's claim hint from what it leaves.
-- ARGV: [2] lease_id, [3] lease_ms. Sets state claimed, the lease and its
-- timer, closes the waitpoints and leaves the suspended and tag indexes.
-- Returns {'none'} or {'claimed', execution_id, suspension_id, reason,
-- lease_expires_at_ms, member, lease_id, signal record...}. The lease_id
-- is the call's operation id: a re-sent call answers the execution it
-- claimed, if it still holds it, instead of claiming another.
--
-- A batch: ARGV[4] up to the one before the store marker's value are
-- further lease ids; the call then claims up to one execution per lease id
-- on the partition, oldest first, in the same call, and answers
-- {'batch', ...} (ff_batch_reply in claim_lib.lua) or {'none'}.
local err = ff_partitions()
if err then return err end
local leases = ff_claim_leases()
if #leases == 1 then
  return ff_claim(ARGV[2], ARGV[3])
end
return ff_batch_reply(ff_claim_each(leases, ARGV[3]))
