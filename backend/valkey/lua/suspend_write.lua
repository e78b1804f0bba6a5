-- suspend_write is the second, atomic step of suspend. The caller read the
-- clock, the current kid and the execution with suspend_read, decided
-- every rule with the driver kit (docs/spec.md §5.1, §8.1) and signed the
-- tokens; this script writes what it planned only if the kid is still
-- current and the execution is still the one the caller read (its version,
-- ff_exec_view: every write to an execution sets it to an id of its own,
-- so an unchanged version means nothing the caller decided on changed):
-- {'retry'} otherwise, nothing written. A re-sent call (same
-- suspension_id) that already wrote answers {'ok'}.
--
-- ARGV: [2] execution_id, [3] kid, [4] idempotency_key, [5] fingerprint,
-- [6] the outcome JSON to store (driver.StoredSuspendOutcome: each token
-- replaced by its kid), [7] the version suspend_read saw, [8] now
-- (suspended_at_ms), [9] timeout_at_ms or '', [10] condition,
-- [11] suspension_id, [12] '1' to forget the execution first (an execution
-- in state none whose pending waitpoints all expired,
-- driver.ForgetsExpiredPending), [13] '1' when the suspension is already
-- satisfied (driver.PendingSatisfied), [14] need: how many waitpoints must
-- hold a signal for the condition to hold, [15] how many of them still
-- must (need less the signaled pending waitpoints used), [16] signals and
-- [17] payload bytes the pending waitpoints used bring (driver.PendingBudget),
-- [18] tags (space-separated), [19] n, then n quadruples (waitpoint_id,
-- waitpoint_key, SHA-256 of the waitpoint's token as raw bytes, which
-- deliver compares, '1' for a pending waitpoint used, '0' for a new key).
--
-- Writes: the earlier suspension's inline waitpoints moved to hashes of
-- their own (ff_archive), new waitpoints inline in the execution's hash
-- (signal count 0; see ff_wp in prelude.lua) and the pending ones used
-- joining the suspension (their counts kept, no longer pending, their
-- buffered signals moved to the suspension's list in delivery order,
-- listed in wps), the
-- execution hash (the suspension's budget counters nsig and nbytes, its
-- condition counter 'pending', its tags) and the idempotency record. A
-- suspension that waits drops the lease, the claim reason and any earlier
-- index entry and enters the suspended index, the index of each of its
-- tags and, with a timeout, the timers and its count index (ff_counted); an
-- already satisfied one is recorded with its waitpoints closed and leaves
-- the execution's state and lease as they were (a claimed execution keeps
-- its lease timer and its count index entry, under the new suspension's
-- member). {'ok'}. No token and no MAC is written: a
-- waitpoint keeps the SHA-256 of its token (h), the record only kids.
local err = ff_partitions()
if err then return err end
local id, kid, ikey, fp, sid = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[11]
local exec = BASE .. 'x:' .. id
if redis.call('HGET', exec, 'sid') == sid then
  return {'ok'}
end
if redis.call('HGET', KS, 'current') ~= kid then
  return {'retry'}
end
if ff_exec_view(id)[1] ~= ARGV[7] then
  return {'retry'}
end
if ARGV[12] == '1' then
  ff_forget(id)
end
local f = redis.call('HMGET', exec, 'state', 'member', 'tags', 'lexp', 'sid', 'sat', 'tat')
ff_archive(id, f[5], f[6], f[7], f[3])
local now, tat, tags = ARGV[8], ARGV[9], ARGV[18]
local satisfied = ARGV[13] == '1'
local closed = satisfied and '1' or '0'
local n = tonumber(ARGV[19])
local inline, used = {}, {}
for i = 1, n do
  local w, key, h = ARGV[16 + 4 * i], ARGV[17 + 4 * i], ARGV[18 + 4 * i]
  if ARGV[19 + 4 * i] == '1' then
    redis.call('HSET', BASE .. 'w:' .. w, 's', sid, 'closed', closed, 'h', ff_hex(h), 't', tat)
    redis.call('ZREM', BASE .. 'xp:' .. id, w)
    used[#used + 1] = w
  else
    inline[#inline + 1] = 'w:' .. w
    inline[#inline + 1] = h .. '0:' .. key
  end
end
ff_push(BASE .. 'sig:' .. sid, ff_buffered(used))
for _, w in ipairs(used) do
  redis.call('DEL', BASE .. 'pb:' .. w)
end
local state, old = f[1] or '', f[2]
if old then
  redis.call('ZREM', IDX_READY, old)
  redis.call('ZREM', IDX_TIMERS, old)
  ff_unlist(old, f[3])
  ff_counted(old, nil)
end
local member = ff_member(now, id)
redis.call('HSET', exec, 'state', state, 'sid', sid, 'sat', now, 'tat', tat, 'cond', ARGV[10],
  'nwp', n, 'need', ARGV[14], 'pending', ARGV[15], 'nsig', ARGV[16],
  'nbytes', ARGV[17], 'tags', tags, 'member', member, 'ver', sid, unpack(inline))
if #used > 0 then
  redis.call('HSET', exec, 'wps', table.concat(used, ' '))
else
  redis.call('HDEL', exec, 'wps')
end
if satisfied then
  if state == 'claimed' then
    redis.call('ZADD', IDX_TIMERS, f[4], member)
    ff_counted(member, 'claimed', f[4])
    ff_hint(f[4])
  end
else
  redis.call('HDEL', exec, 'lease', 'lexp', 'reason')
  redis.call('HSET', exec, 'state', 'suspended')
  ff_list(member, tags)
  ff_counted(member, 'suspended', tat)
  if tat ~= '' then
    redis.call('ZADD', IDX_TIMERS, tat, member)
    ff_hint(tat)
  end
end
if ikey ~= '' then
  redis.call('HSET', BASE .. 'xi:' .. id, ikey, fp .. ARGV[6])
end
return {'ok'}
