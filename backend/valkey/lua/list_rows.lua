-- list_rows is the second step of list_suspended on one partition
-- (read-only, docs/spec.md §5.4): the rows of the members ARGV[3...] (up
-- to the store marker's value, last), which list_peek returned. A member
-- still in the index (ARGV[2]'s tag index, or the suspended index without
-- a tag) is an execution still suspended under the same suspension
-- (suspended_at_ms is in the member), and carrying the tag: {execution_id,
-- suspension_id, suspended_at_ms, timeout_at_ms or '', waitpoints, tags
-- (space-separated)}. A member no longer there (the execution resumed,
-- was claimed or cancelled, or completed, since list_peek) answers six
-- empty strings: the caller leaves it out. One ZSCORE and one HMGET a
-- member.
local err = ff_partitions()
if err then return err end
local index = IDX_SUSPENDED
if ARGV[2] ~= '' then index = ff_tag_index(ARGV[2]) end
local out = {}
for i = 3, #ARGV - 1 do
  local m = ARGV[i]
  if redis.call('ZSCORE', index, m) then
    local id = string.sub(m, 22)
    local f = redis.call('HMGET', BASE .. 'x:' .. id, 'sid', 'sat', 'tat', 'nwp', 'tags')
    out[#out + 1] = id
    out[#out + 1] = f[1]
    out[#out + 1] = f[2]
    out[#out + 1] = f[3]
    out[#out + 1] = f[4]
    out[#out + 1] = f[5] or ''
  else
    for _ = 1, 6 do out[#out + 1] = '' end
  end
end
return out
