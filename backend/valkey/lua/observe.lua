-- observe returns the signals of the execution's latest suspension in
-- delivery order (read-only): {suspension_id, record...}, or {} when the
-- execution is not known. ARGV[2] execution_id.
local err = ff_partitions()
if err then return err end
local sid = redis.call('HGET', BASE .. 'x:' .. ARGV[2], 'sid')
if not sid then
  return {}
end
local out = redis.call('LRANGE', BASE .. 'sig:' .. sid, 0, -1)
table.insert(out, 1, sid)
return out
