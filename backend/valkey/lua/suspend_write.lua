-- suspend_write is the second, atomic step of suspend. The caller read the
-- clock and the current kid with suspend_read and signed the tokens; this
-- script writes the suspension only if that kid is still current
-- (optimistic check: {'retry'} otherwise, nothing written).
--
-- ARGV: [2] execution_id, [3] kid, [4] idempotency_key, [5] fingerprint,
-- [6] the outcome JSON to store (driver.StoredSuspendOutcome: each token
-- replaced by its kid), [7] lease_id or '', [8] now (suspended_at_ms),
-- [9] timeout_at_ms or '', [10] condition, [11] suspension_id,
-- [12] n, then n triples (waitpoint_id, waitpoint_key, SHA-256 of the
-- waitpoint's token as lowercase hex, which deliver compares).
--
-- Checks (docs/spec.md §5.1): an idempotency record with the same
-- fingerprint (written since the caller's suspend_read) answers {'retry'}:
-- the caller's next suspend_read replays it; another fingerprint is
-- idempotency_mismatch; suspended or resumed is already_suspended; claimed
-- needs the current lease; none with a lease is lease_mismatch. Writes the
-- execution hash (with the suspension's budget counters nsig and nbytes at
-- 0), its waitpoints (n: their signal counts), its index entries and the
-- idempotency record, dropping the lease and any earlier index entry:
-- {'ok'}. No token and no MAC is written: a waitpoint keeps the SHA-256 of
-- its token (h), the record only kids.
local err = ff_partitions()
if err then return err end
local id, kid, ikey, fp = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
-- A re-sent call (same suspension_id) that already wrote answers 'ok'.
if redis.call('HGET', BASE .. 'x:' .. id, 'sid') == ARGV[11] then
  return {'ok'}
end
if redis.call('HGET', KS, 'current') ~= kid then
  return {'retry'}
end
local exec = BASE .. 'x:' .. id
local idem = BASE .. 'xi:' .. id
if ikey ~= '' then
  local rec = redis.call('HGET', idem, ikey)
  if rec then
    if string.sub(rec, 1, 64) == fp then
      return {'retry'}
    end
    return ff_error('idempotency_mismatch')
  end
end
local lease = ARGV[7]
local state = redis.call('HGET', exec, 'state')
if not state then
  if lease ~= '' then
    return ff_error('lease_mismatch', 'none', id)
  end
elseif state == 'suspended' or state == 'resumed' then
  return ff_error('already_suspended', state, id)
elseif lease == '' or redis.call('HGET', exec, 'lease') ~= lease then
  return ff_error('lease_mismatch', 'suspend', id)
end
local old = redis.call('HGET', exec, 'member')
if old then
  redis.call('ZREM', IDX_READY, old)
  redis.call('ZREM', IDX_TIMERS, old)
  redis.call('ZREM', IDX_SUSPENDED, old)
end
local now, tat, sid = ARGV[8], ARGV[9], ARGV[11]
local n = tonumber(ARGV[12])
local ids = {}
for i = 1, n do
  local w, key, h = ARGV[10 + 3 * i], ARGV[11 + 3 * i], ARGV[12 + 3 * i]
  ids[i] = w
  redis.call('HSET', BASE .. 'w:' .. w, 'e', id, 'k', key, 'c', now, 's', sid, 'closed', '0', 'n', 0, 'h', h)
  redis.call('SADD', BASE .. 'xw:' .. id, w)
end
local member = ff_member(now, id)
redis.call('HDEL', exec, 'lease', 'lexp', 'reason')
redis.call('HSET', exec, 'state', 'suspended', 'sid', sid, 'sat', now, 'tat', tat, 'cond', ARGV[10],
  'wps', table.concat(ids, ' '), 'nwp', n, 'pending', n, 'nsig', 0, 'nbytes', 0, 'member', member)
redis.call('SADD', BASE .. 'xs:' .. id, sid)
redis.call('ZADD', IDX_SUSPENDED, 0, member)
if tat ~= '' then
  redis.call('ZADD', IDX_TIMERS, tat, member)
  ff_hint(tat)
end
if ikey ~= '' then
  redis.call('HSET', idem, ikey, fp .. ARGV[6])
end
return {'ok'}
