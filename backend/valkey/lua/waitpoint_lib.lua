-- waitpoint_lib.lua follows the prelude in get_waitpoint and describe.

-- ff_waitpoint_view reads waitpoint wid of execution id, in either layout
-- (see ff_wp in prelude.lua), as get_waitpoint answers it
-- (parseWaitpointRecord in lifecycle.go decodes it): {now, execution_id or
-- '' (no such waitpoint), key, created_at_ms, suspension_id ('' while
-- pending and unused), closed, its signal count, SHA-256 of its token as
-- hex or '', pending expires_at_ms or '' (a waitpoint a suspend opened),
-- its suspension's timeout_at_ms or '', tags}; {now, ''} when there is no
-- such waitpoint (a waitpoint of another execution included: its inline
-- field is not in id's hash, and the caller compares execution ids). One
-- HMGET for an inline waitpoint, two for another; a waitpoint written
-- before suspensions kept their timeout on their waitpoints takes the
-- execution's, when it is of its latest suspension (one more).
local function ff_waitpoint_view(now, wid, id)
  local x = redis.call('HMGET', BASE .. 'x:' .. id, 'w:' .. wid, 'state', 'sid', 'sat', 'tat', 'tags')
  if x[1] then
    local h, n, k = ff_inline(x[1])
    return {now, id, k, x[4], x[3], x[2] == 'suspended' and '0' or '1', n, ff_hex(h), '', x[5] or '', x[6] or ''}
  end
  local f = redis.call('HMGET', BASE .. 'w:' .. wid, 'e', 'k', 'c', 's', 'closed', 'n', 'h', 'x', 't', 'tags')
  if not f[1] then
    return {now, ''}
  end
  local t = f[9]
  if not t then
    local e = redis.call('HMGET', BASE .. 'x:' .. f[1], 'sid', 'tat')
    t = (e[1] and e[1] == f[4] and e[2]) or ''
  end
  return {now, f[1], f[2], f[3], f[4] or '', f[5] or '0', f[6] or '0', f[7] or '', f[8] or '', t, f[10] or ''}
end
