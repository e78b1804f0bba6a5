-- claim leases the oldest claimable execution of the partition, atomically
-- at one server clock: resumed (reason signal, or cancelled after
-- cancel_suspension), suspended past its timeout
-- (reason timeout) or claimed past its lease (reason kept). Members of the
-- ready index that are no longer claimable are dropped on the way. It sets
-- the partition's claim hint from what it leaves.
-- ARGV: [2] lease_id, [3] lease_ms. Sets state claimed, the lease and its
-- timer, closes the waitpoints and leaves the suspended and tag indexes.
-- Returns {'none'} or {'claimed', execution_id, suspension_id, reason,
-- lease_expires_at_ms, signal record...}. The lease_id is the call's
-- operation id: a re-sent call answers the execution it claimed, if it
-- still holds it, instead of claiming another.
local err = ff_partitions()
if err then return err end
return ff_claim(ARGV[2], ARGV[3])
