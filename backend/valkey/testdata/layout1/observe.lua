-- observe returns one page of the signals of the execution's latest
-- suspension in delivery order (read-only), reading only that page: the
-- signals at positions ARGV[4] to ARGV[5] (0-based, inclusive; the caller
-- asks for limit+1 so that it knows whether another page follows).
-- ARGV: [2] execution_id, [3] the cursor's suspension_id or '' (no
-- cursor), [4] start, [5] stop. Returns {suspension_id, record...}; only
-- {suspension_id} when the cursor names another suspension than the
-- latest; {} when the execution is not known.
local err = ff_partitions()
if err then return err end
local sid = redis.call('HGET', BASE .. 'x:' .. ARGV[2], 'sid')
if not sid then
  return {}
end
if ARGV[3] ~= '' and ARGV[3] ~= sid then
  return {sid}
end
local out = redis.call('LRANGE', BASE .. 'sig:' .. sid, ARGV[4], ARGV[5])
table.insert(out, 1, sid)
return out
