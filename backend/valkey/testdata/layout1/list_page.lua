-- list_page returns the partition's first ARGV[3] suspended executions
-- strictly after the index member ARGV[2] ('' for the start), in
-- (suspended_at_ms, execution_id) order (read-only). With a tag (ARGV[4],
-- '' for none) it reads that tag's index (ff_tag_index) instead of the
-- suspended index: the same members, only those whose suspension carries
-- the tag, so a filtered page reads no other execution (docs/spec.md §8.6).
-- {execution_id, suspension_id, suspended_at_ms, timeout_at_ms or '',
-- waitpoints, tags (space-separated), ...}.
local err = ff_partitions()
if err then return err end
local from = '-'
if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
local index = IDX_SUSPENDED
if ARGV[4] and ARGV[4] ~= '' then index = ff_tag_index(ARGV[4]) end
local members = redis.call('ZRANGEBYLEX', index, from, '+', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, m in ipairs(members) do
  local id = string.sub(m, 22)
  local f = redis.call('HMGET', BASE .. 'x:' .. id, 'sid', 'sat', 'tat', 'nwp', 'tags')
  out[#out + 1] = id
  out[#out + 1] = f[1]
  out[#out + 1] = f[2]
  out[#out + 1] = f[3]
  out[#out + 1] = f[4]
  out[#out + 1] = f[5] or ''
end
return out
