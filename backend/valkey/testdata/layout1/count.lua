-- count answers one partition's count_executions (read-only, docs/spec.md
-- §8.9) at the server clock, from indexes alone: two ZCARDs and three
-- ZCOUNTs, each O(log N) whatever the number of executions, none reading
-- an execution. Returns {suspended (not past its timeout), timed_out,
-- resumed, claimed (lease not expired), lease_expired}. The suspended
-- executions are IDX_SUSPENDED; those past their timeout (timeout_at_ms <
-- now, as claim decides) a range of idx:timeouts; the resumed ones
-- idx:resumed; the claimed ones idx:leases, split at now (expired:
-- lease_expires_at_ms < now). See ff_counted in prelude.lua.
local err = ff_partitions()
if err then return err end
local now = ff_now()
local suspended = redis.call('ZCARD', IDX_SUSPENDED)
local timed_out = redis.call('ZCOUNT', ff_count_index('timeouts'), '-inf', '(' .. now)
local resumed = redis.call('ZCARD', ff_count_index('resumed'))
local leases = ff_count_index('leases')
local claimed = redis.call('ZCOUNT', leases, now, '+inf')
local expired = redis.call('ZCOUNT', leases, '-inf', '(' .. now)
return {suspended - timed_out, timed_out, resumed, claimed, expired}
