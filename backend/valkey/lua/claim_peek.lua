-- claim_peek moves the partition's due timers (timeouts and leases past at
-- the server clock) to the ready index and returns the oldest ready member,
-- or '' when none: the candidate a claim over all partitions compares. It
-- sets the partition's claim hint and claim head from what it found (and so
-- promotes the partitions a {'hint', ...} reply of claim_hinted names).
-- For a batch, ARGV[2] (before the store marker's value) is a count n: it
-- then returns the n oldest ready members, oldest first (none: {}).
local err = ff_partitions()
if err then return err end
ff_promote(ff_now())
if #ARGV > 2 then
  local first = redis.call('ZRANGE', IDX_READY, 0, tonumber(ARGV[2]) - 1)
  ff_hint_refresh()
  return first
end
local first = redis.call('ZRANGE', IDX_READY, 0, 0)
ff_hint_refresh()
return {first[1] or ''}
