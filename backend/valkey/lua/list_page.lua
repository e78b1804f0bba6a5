-- list_page returns the partition's first ARGV[3] suspended executions
-- strictly after the index member ARGV[2] ('' for the start), in
-- (suspended_at_ms, execution_id) order (read-only):
-- {execution_id, suspension_id, suspended_at_ms, timeout_at_ms or '', waitpoints, ...}.
local err = ff_partitions()
if err then return err end
local from = '-'
if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
local members = redis.call('ZRANGEBYLEX', IDX_SUSPENDED, from, '+', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, m in ipairs(members) do
  local id = string.sub(m, 22)
  local f = redis.call('HMGET', BASE .. 'x:' .. id, 'sid', 'sat', 'tat', 'nwp')
  out[#out + 1] = id
  out[#out + 1] = f[1]
  out[#out + 1] = f[2]
  out[#out + 1] = f[3]
  out[#out + 1] = f[4]
end
return out
