-- get_waitpoint reads one waitpoint for get_waitpoint (read-only,
-- docs/spec.md §8.6); the caller decides with driver.DescribeWaitpoint.
-- ARGV: [2] execution_id (unused here: the caller compares), [3]
-- waitpoint_id. Returns ff_waitpoint_view (waitpoint_lib.lua) at the
-- server clock: {now, execution_id or '' (no such waitpoint), key,
-- created_at_ms, suspension_id ('' while pending and unused), closed, its
-- signal count, SHA-256 of its token or '', pending expires_at_ms or '' (a
-- waitpoint a suspend opened), its suspension's timeout_at_ms or '', tags}.
local err = ff_partitions()
if err then return err end
return ff_waitpoint_view(ff_now(), ARGV[3])
