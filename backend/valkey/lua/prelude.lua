-- prelude.lua is prepended to every script of this driver.
--
-- Every script gets KEYS[1] = <prefix>ff:{p:N}:keys (the partition's keystore
-- hash), KEYS[2] = <prefix>ff:{p:N}:store (the partition's store marker),
-- on a standalone server KEYS[3] = the claim hint, ARGV[1] = the partition
-- count P the caller opened with and, last, ARGV[#ARGV] = the value of the
-- store marker the caller expects (see the check at the end of this file).
-- Every other key a script touches starts with BASE = <prefix>ff:{p:N}: and
-- so shares KEYS[1]'s hash tag: one script call touches one slot, which
-- makes it atomic and valid on a cluster.
--
-- Times are decimal strings of milliseconds from the server's TIME, and
-- arithmetic on them is done on decimal strings: Lua numbers are doubles,
-- and now + grace_ms (grace_ms up to 2^53-1) does not fit a double exactly.
local KS = KEYS[1]
local BASE = string.sub(KS, 1, #KS - 4)

-- ff_error is an error reply the driver decodes into a contract error:
-- "FF <code> [<arg> ...]". Arguments are kids, identifiers, states and
-- numbers, none of which holds a space; the driver words the detail.
local function ff_error(code, ...)
  return redis.error_reply(table.concat({'FF', code, ...}, ' '))
end

-- ff_partitions returns an error reply when the partition records another
-- partition count than ARGV[1], else nil.
local function ff_partitions()
  local rec = redis.call('HGET', KS, 'partitions')
  if rec and rec ~= ARGV[1] then
    return ff_error('partition_count_mismatch', rec, ARGV[1])
  end
  return nil
end

-- ff_keystore reads the partition's keystore hash in one HGETALL and
-- returns it as a table field -> value, or an error reply when it records
-- another partition count than ARGV[1].
local function ff_keystore()
  local all = redis.call('HGETALL', KS)
  local ks = {}
  for i = 1, #all, 2 do
    ks[all[i]] = all[i + 1]
  end
  if ks.partitions and ks.partitions ~= ARGV[1] then
    return nil, ff_error('partition_count_mismatch', ks.partitions, ARGV[1])
  end
  return ks, nil
end

-- Operation records. go-redis re-sends a command on a new connection when
-- the old one fails before the reply arrives (up to max_retries times, a
-- few seconds in all); a write script that already ran must then answer
-- what it answered, not run again. Each write script gets an id generated
-- by the driver for the call (a signal_id, a lease_id or a fresh one),
-- records its reply under op:<id> for OP_TTL_MS, and a second run with the
-- same id returns the recorded reply without writing. (A caller retrying a
-- failed call makes a new call with new ids: idempotency keys cover that.)
local OP_TTL_MS = 60000

-- ff_op_get returns the reply recorded for operation id, or nil.
local function ff_op_get(id)
  if id == nil or id == '' then
    return nil
  end
  local v = redis.call('GET', BASE .. 'op:' .. id)
  if not v then
    return nil
  end
  return v
end

-- ff_op_put records value as the reply of operation id.
local function ff_op_put(id, value)
  if id ~= nil and id ~= '' then
    redis.call('SET', BASE .. 'op:' .. id, value, 'PX', OP_TTL_MS)
  end
end

-- ff_now is the server clock in milliseconds, as a decimal string.
local function ff_now()
  local t = redis.call('TIME')
  return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
end

-- ff_cmp compares two non-negative decimal strings without leading zeros.
local function ff_cmp(a, b)
  if #a ~= #b then
    return #a < #b and -1 or 1
  end
  if a == b then
    return 0
  end
  return a < b and -1 or 1
end

-- ff_add adds two non-negative decimal strings.
local function ff_add(a, b)
  local out, carry = {}, 0
  local i, j = #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local s = carry
    if i > 0 then s = s + string.byte(a, i) - 48; i = i - 1 end
    if j > 0 then s = s + string.byte(b, j) - 48; j = j - 1 end
    out[#out + 1] = string.char(48 + s % 10)
    carry = math.floor(s / 10)
  end
  return string.reverse(table.concat(out))
end

-- ff_member is the index member of an execution: 20-digit zero-padded
-- suspended_at_ms, ':', execution_id. Byte order of members is the
-- (suspended_at_ms, execution_id) order.
local function ff_member(ms, id)
  return string.rep('0', 20 - #ms) .. ms .. ':' .. id
end

-- Index keys of the partition.
local IDX_SUSPENDED = BASE .. 'idx:suspended' -- members of state suspended (score 0, by lex)
local IDX_READY = BASE .. 'idx:ready'         -- members that may be claimable now (score 0, by lex)
local IDX_TIMERS = BASE .. 'idx:timers'       -- members scored by timeout_at_ms / lease_expires_at_ms

-- The claim hint (standalone servers only; KEYS[3], absent on a cluster,
-- where it would be another slot) and the claim heads, two keys next to
-- it, tell a claim where the oldest claimable execution is without asking
-- all P partitions:
--   - the hint, <prefix>ff:claim-hint, a sorted set of partition numbers
--     scored by when the partition's timers index may next hold a due
--     member: never later than its earliest timer (a partition absent has
--     no timer). Every script that adds a timer lowers the partition's
--     score (ff_hint); claim scripts set it exactly (ff_hint_refresh). A
--     claim first promotes the due timers of the partitions scored before
--     now. (A version before the claim heads also scored 0 a partition
--     whose ready index was not empty: a claim promotes it as well, which
--     sets its head.) The member 'complete' (score +inf) says that every
--     partition's hint and head are kept; without it a claim asks every
--     partition (claim_peek) and the driver adds it. ('all', +inf, is the
--     previous version's mark, which knew no heads.)
--   - the heads, <prefix>ff:claim-heads, a sorted set (score 0, by lex) of
--     "<member> <partition>", one per partition whose ready index is not
--     empty: a member never after the partition's oldest ready member
--     (ff_ready lowers it when a member joins the ready index; claim
--     scripts set it exactly, ff_head), so its first entry names the
--     partition holding the oldest claimable execution once its bound is
--     exact. ' ' sorts before every byte of an execution_id, so the
--     entries sort as their members do. <prefix>ff:claim-head, a hash,
--     maps each partition to its entry there.
--
-- Two more kinds of key beside them list the suspended executions of every
-- partition in one place, so that a page of list_suspended reads about
-- limit entries whatever P (list_index.lua):
--   - <prefix>ff:list, a sorted set (score 0, by lex) of "<member>
--     <partition>" for every member of every partition's suspended index
--     (sorting as the members do, as the claim heads), and
--     <prefix>ff:list:tag:<tag> the same for each partition's index of tag.
--     ff_list and ff_unlist keep them with the partitions' indexes.
--   - <prefix>ff:list-complete says that they hold every partition's
--     members: without it (a store written before them) a list reads every
--     partition (list_all) and the driver backfills them (list_fill.lua).
local HINT = KEYS[3]
local HEADS, HEADP, LIST = nil, nil, nil
if HINT then
  local hb = string.sub(HINT, 1, #HINT - #'claim-hint')
  HEADS, HEADP, LIST = hb .. 'claim-heads', hb .. 'claim-head', hb .. 'list'
end
local PNUM = string.match(KS, '{p:(%d+)}:keys$')

-- The store marker (docs/spec.md §6.1): <prefix>ff:{p:N}:store holds a
-- random id that the driver created at Open (SET NX) and remembered. A
-- marker that is missing, or holds another id, means that the partition's
-- data was lost since (a server restarted without persistence, a master
-- replaced by an empty one) or that another process took the emptied
-- store: the script answers store_reset and changes nothing.
local STORE = KEYS[2]
local STORE_ID = ARGV[#ARGV]

-- ff_store_check returns an error reply naming the partition when the
-- marker key (<prefix>ff:{p:N}:store) is missing or holds another value
-- than want (nil: any value will do), else nil.
local function ff_store_check(key, want)
  local v = redis.call('GET', key)
  if v and (not want or v == want) then
    return nil
  end
  local p = string.match(key, '{p:(%d+)}:store$') or '-'
  return ff_error('store_reset', p, v and 'changed' or 'gone')
end

-- ff_use_partition points KS, BASE, the index keys, HINT, LIST and PNUM,
-- and so every helper here, at the partition whose keystore hash is ks. Only
-- claim_hinted does, on a standalone server, where a script may touch keys
-- of any partition (a cluster would refuse them as another slot); it
-- checks their store markers first.
local function ff_use_partition(ks, hint)
  KS = ks
  BASE = string.sub(ks, 1, #ks - 4)
  IDX_SUSPENDED = BASE .. 'idx:suspended'
  IDX_READY = BASE .. 'idx:ready'
  IDX_TIMERS = BASE .. 'idx:timers'
  HINT = hint
  PNUM = string.match(ks, '{p:(%d+)}:keys$')
  LIST = hint and (string.sub(hint, 1, #hint - #'claim-hint') .. 'list') or nil
end

-- ff_hint lowers the partition's hint score to score (adding it if absent):
-- a timer at score joined its timers index.
local function ff_hint(score)
  if HINT then
    redis.call('ZADD', HINT, 'LT', score, PNUM)
  end
end

-- ff_head sets the partition's claim head to member m, its oldest ready
-- member (false: none, the partition leaves the heads).
local function ff_head(m)
  local old = redis.call('HGET', HEADP, PNUM)
  local new = m and (m .. ' ' .. PNUM) or false
  if old == new then
    return
  end
  if old then
    redis.call('ZREM', HEADS, old)
  end
  if new then
    redis.call('ZADD', HEADS, 0, new)
    redis.call('HSET', HEADP, PNUM, new)
  else
    redis.call('HDEL', HEADP, PNUM)
  end
end

-- ff_before reports whether a sorts strictly before b in byte order, the
-- order of index members in the sorted sets. Lua's < compares strings
-- with the server's collation (strcoll: the server takes LC_COLLATE from
-- its environment), which need not be byte order: en_US.UTF-8 weighs
-- letters before punctuation, so "ab" < "a-c" there, while '-' comes
-- before 'b' in bytes.
local function ff_before(a, b)
  if a == b then
    return false
  end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

-- ff_ready lowers the partition's claim head to member m, which joined its
-- ready index (adding it if absent).
local function ff_ready(m)
  if not HINT then
    return
  end
  local old = redis.call('HGET', HEADP, PNUM)
  if old and not ff_before(m, string.sub(old, 1, #old - #PNUM - 1)) then
    return
  end
  ff_head(m)
end

-- ff_claimable tells the workers of every process that an execution of
-- the partition became claimable at once (docs/spec.md §8.8): a PUBLISH
-- of the partition number on <prefix>ff:claimable (watch.go). PUBLISH has
-- no key, so it is valid on a cluster, where it reaches the subscribers of
-- every node. Resuming deliveries (ff_record), cancel and release call it;
-- a replay answered from an operation record does not publish again.
local function ff_claimable()
  redis.call('PUBLISH', string.match(BASE, '^(.*){p:%d+}:$') .. 'claimable', PNUM)
end

-- ff_hint_refresh sets the partition's hint score and claim head from its
-- indexes.
local function ff_hint_refresh()
  if not HINT then
    return
  end
  ff_head(redis.call('ZRANGE', IDX_READY, 0, 0)[1] or false)
  local t = redis.call('ZRANGE', IDX_TIMERS, 0, 0, 'WITHSCORES')
  if t[1] then
    redis.call('ZADD', HINT, t[2], PNUM)
  else
    redis.call('ZREM', HINT, PNUM)
  end
end

-- ff_promote moves members whose deadline is past (score < now) from the
-- timers index to the ready index.
local function ff_promote(now)
  local due = redis.call('ZRANGEBYSCORE', IDX_TIMERS, '-inf', '(' .. now, 'LIMIT', 0, 1000)
  local low = nil
  for _, m in ipairs(due) do
    redis.call('ZREM', IDX_TIMERS, m)
    redis.call('ZADD', IDX_READY, 0, m)
    if not low or ff_before(m, low) then
      low = m
    end
  end
  if low then
    ff_ready(low)
  end
end

-- Waitpoints live in one of two layouts, and every script reads both
-- (a store written by an earlier version of the driver keeps working, with
-- no migration step):
--   - inline (layout 2, written by suspend since): a waitpoint that a
--     suspend opened is the field w:<waitpoint_id> of its execution's hash
--     x:E, "<SHA-256 of its token, 32 raw bytes><signal count>:<key>",
--     while its suspension is the execution's latest. Everything else it
--     has is its suspension's: created_at_ms is sat, its suspension sid,
--     its timeout tat, its tags the execution's, and it is closed exactly
--     when the execution is not in state suspended (a suspension's
--     waitpoints close together, and a suspend starts from a state other
--     than suspended and resumed). So one small hash, which the server
--     keeps listpack-encoded (short fields, values under 64 bytes), holds a
--     suspended execution. When the execution suspends again, suspend_write
--     moves them to the hashes of the other layout (ff_archive).
--   - a hash of its own, w:<waitpoint_id> (e, k, c, s, closed, n, h as
--     hex, t, tags; x and nb while pending): every waitpoint of layout 1,
--     pending waitpoints (create_waitpoint), and the waitpoints of earlier
--     suspensions. Those of the latest suspension are listed in x:E's wps.

-- ff_inline splits the value of an inline waitpoint: the token's SHA-256
-- (raw), the signal count (a decimal string) and the key.
local function ff_inline(v)
  local colon = string.find(v, ':', 33, true)
  return string.sub(v, 1, 32), string.sub(v, 33, colon - 1), string.sub(v, colon + 1)
end

-- ff_hex is a raw SHA-256 as lowercase hex, in one string.format: a
-- gsub calling a Lua function per byte cost 6-11 µs of the server's thread,
-- a quarter of a delivery.
local function ff_hex(raw)
  return string.format(string.rep('%02x', #raw), string.byte(raw, 1, #raw))
end

-- ff_wp reads waitpoint wid of execution id in either layout as
-- {e, closed, s, k, n, x, nb, h} (false for a field it lacks; WF below,
-- then h, the token's SHA-256 as lowercase hex), with .inline set for an
-- inline one, whose hash is .raw (raw bytes, as it is stored) and h false:
-- deliver compares the raw bytes, and nothing else reads it.
local function ff_wp(id, wid)
  local x = redis.call('HMGET', BASE .. 'x:' .. id, 'w:' .. wid, 'state', 'sid')
  if x[1] then
    local h, n, k = ff_inline(x[1])
    return {id, x[2] == 'suspended' and '0' or '1', x[3], k, n, false, false, false, inline = true, raw = h}
  end
  return redis.call('HMGET', BASE .. 'w:' .. wid, 'e', 'closed', 's', 'k', 'n', 'x', 'nb', 'h')
end

-- ff_inline_ids returns the ids of the inline waitpoints of x:E (exec).
local function ff_inline_ids(exec)
  local ids = {}
  for _, f in ipairs(redis.call('HKEYS', exec)) do
    if string.sub(f, 1, 2) == 'w:' then
      ids[#ids + 1] = string.sub(f, 3)
    end
  end
  return ids
end

-- ff_archive moves the inline waitpoints of execution id, which belong to
-- its latest suspension sid (suspended at sat, timeout tat, tags), to
-- hashes of their own (closed: the execution suspends again), listed in
-- xw:E with the suspension in xs:E, which complete deletes: a suspend
-- calls it before it writes the new suspension's inline waitpoints.
local function ff_archive(id, sid, sat, tat, tags)
  local exec = BASE .. 'x:' .. id
  local ids = ff_inline_ids(exec)
  if sid then
    redis.call('SADD', BASE .. 'xs:' .. id, sid)
  end
  for _, w in ipairs(ids) do
    local h, n, k = ff_inline(redis.call('HGET', exec, 'w:' .. w))
    redis.call('HSET', BASE .. 'w:' .. w, 'e', id, 'k', k, 'c', sat, 's', sid, 'closed', '1', 'n', n,
      'h', ff_hex(h), 't', tat or '', 'tags', tags or '')
    redis.call('SADD', BASE .. 'xw:' .. id, w)
    redis.call('HDEL', exec, 'w:' .. w)
  end
end

-- ff_close_waitpoints closes the waitpoints of the execution's current
-- suspension: those of layout 1 (wps); inline ones close with the state.
local function ff_close_waitpoints(exec)
  local wps = redis.call('HGET', exec, 'wps')
  if wps then
    for w in string.gmatch(wps, '%S+') do
      redis.call('HSET', BASE .. 'w:' .. w, 'closed', '1')
    end
  end
end

-- ff_tag_index is the partition's index of the suspended executions whose
-- current suspension carries tag (docs/spec.md §8.6): the members of
-- IDX_SUSPENDED, score 0, by lex. Tags are [A-Za-z0-9._:-] only, so the key
-- keeps the partition's hash tag.
local function ff_tag_index(tag)
  return BASE .. 'idx:tag:' .. tag
end

-- ff_list adds member to the suspended index and to the index of each of
-- tags (space-separated, as x:<id> keeps them); ff_unlist removes it from
-- them. Every script that adds or removes an execution from the suspended
-- index goes through these two, so a tag index holds exactly the suspended
-- executions whose suspension carries the tag. On a standalone server they
-- change the global list indexes the same way (see LIST above), in the
-- same script: "<member> <partition>" is in <prefix>ff:list (and
-- <prefix>ff:list:tag:<tag>) exactly when member is in the partition's
-- suspended index (and tag index), for every member a script of this
-- version added.
local function ff_list(member, tags)
  redis.call('ZADD', IDX_SUSPENDED, 0, member)
  local entry = LIST and (member .. ' ' .. PNUM)
  if entry then
    redis.call('ZADD', LIST, 0, entry)
  end
  for t in string.gmatch(tags or '', '%S+') do
    redis.call('ZADD', ff_tag_index(t), 0, member)
    if entry then
      redis.call('ZADD', LIST .. ':tag:' .. t, 0, entry)
    end
  end
end

local function ff_unlist(member, tags)
  redis.call('ZREM', IDX_SUSPENDED, member)
  local entry = LIST and (member .. ' ' .. PNUM)
  if entry then
    redis.call('ZREM', LIST, entry)
  end
  for t in string.gmatch(tags or '', '%S+') do
    redis.call('ZREM', ff_tag_index(t), member)
    if entry then
      redis.call('ZREM', LIST .. ':tag:' .. t, entry)
    end
  end
end

-- The count indexes (count_executions, docs/spec.md §8.9), which with
-- IDX_SUSPENDED place every execution in a state other than none by its
-- member, so that count.lua answers a partition's counts with ZCARD and
-- ZCOUNT alone: idx:timeouts holds the members of IDX_SUSPENDED whose
-- suspension has a timeout, scored by timeout_at_ms; idx:resumed the
-- resumed executions (score 0); idx:leases the claimed ones, scored by
-- lease_expires_at_ms. idx:ready and idx:timers cannot serve: each mixes
-- states, and claims move members between them only when they look. The
-- count indexes change with the state, timeout or lease expiry they
-- record, in the same script as the execution's hash: every script that
-- writes one of those calls ff_counted (ff_forget, ff_record, suspend_write,
-- cancel, claim_lib, extend, release).
local function ff_count_index(name)
  return BASE .. 'idx:' .. name
end

-- ff_counted puts member in the count index of state: 'suspended' with
-- deadline its timeout_at_ms ('' for none: then IDX_SUSPENDED alone counts
-- it), 'resumed', or 'claimed' with deadline its lease_expires_at_ms; and
-- takes it out of the others. Any other state (nil, '' for none) takes it
-- out of all of them. Idempotent: ZADD and ZREM only.
local function ff_counted(member, state, deadline)
  local timeouts, resumed, leases = ff_count_index('timeouts'), ff_count_index('resumed'), ff_count_index('leases')
  if state == 'suspended' and deadline and deadline ~= '' then
    redis.call('ZADD', timeouts, deadline, member)
  else
    redis.call('ZREM', timeouts, member)
  end
  if state == 'resumed' then
    redis.call('ZADD', resumed, 0, member)
  else
    redis.call('ZREM', resumed, member)
  end
  if state == 'claimed' then
    redis.call('ZADD', leases, deadline, member)
  else
    redis.call('ZREM', leases, member)
  end
end

-- ff_exec_view reads what suspend and create_waitpoint decide on of
-- execution id: {version, state, lease, lease_expires_at_ms, plast}. The
-- version names what the execution is now: '-' when it is not remembered,
-- else its ver (every write script sets it to an id of its own call, never
-- reused), state, lease and latest suspension_id, so that a write by a
-- driver from before versions changes it too. A two-step write re-reads it
-- and starts over when it changed: what the caller decided on is then what
-- the write changes. state is '' for an execution remembered in state none
-- (docs/spec.md §8.1); plast is the latest expires_at_ms of its pending
-- waitpoints, '' when it has none.
local function ff_exec_view(id)
  local f = redis.call('HMGET', BASE .. 'x:' .. id, 'state', 'ver', 'lease', 'lexp', 'plast', 'sid')
  if not f[1] then
    return {'-', '', '', '', ''}
  end
  local version = table.concat({f[2] or '', f[1], f[3] or '', f[6] or ''}, '/')
  return {version, f[1], f[3] or '', f[4] or '', f[5] or ''}
end

-- ff_push appends records to list, in chunks (unpack is bounded by the Lua
-- stack).
local function ff_push(list, records)
  for i = 1, #records, 1000 do
    redis.call('RPUSH', list, unpack(records, i, math.min(i + 999, #records)))
  end
end

-- ff_buffered returns the signal records buffered on the pending waitpoints
-- ids (pb:<id>, each "<seq> <record>") as "<record>"s merged in delivery
-- order, by the execution's delivery sequence (docs/spec.md §8.1).
local function ff_buffered(ids)
  local all = {}
  for _, w in ipairs(ids) do
    for _, rec in ipairs(redis.call('LRANGE', BASE .. 'pb:' .. w, 0, -1)) do
      local sp = string.find(rec, ' ', 1, true)
      all[#all + 1] = {tonumber(string.sub(rec, 1, sp - 1)), string.sub(rec, sp + 1)}
    end
  end
  table.sort(all, function(a, b) return a[1] < b[1] end)
  local out = {}
  for i, r in ipairs(all) do
    out[i] = r[2]
  end
  return out
end

-- ff_forget deletes execution id and everything recorded for it: its hash,
-- every waitpoint (of its suspensions and pending ones) with its delivery
-- idempotency records and buffered signals, every suspension's signals,
-- its suspend idempotency records and its index entries (docs/spec.md
-- §5.6, §8.1).
local function ff_forget(id)
  local exec = BASE .. 'x:' .. id
  for _, w in ipairs(redis.call('SMEMBERS', BASE .. 'xw:' .. id)) do
    redis.call('DEL', BASE .. 'w:' .. w, BASE .. 'wi:' .. w, BASE .. 'pb:' .. w)
  end
  for _, w in ipairs(ff_inline_ids(exec)) do
    redis.call('DEL', BASE .. 'wi:' .. w)
  end
  for _, s in ipairs(redis.call('SMEMBERS', BASE .. 'xs:' .. id)) do
    redis.call('DEL', BASE .. 'sig:' .. s)
  end
  local f = redis.call('HMGET', exec, 'member', 'tags', 'sid')
  if f[3] then
    redis.call('DEL', BASE .. 'sig:' .. f[3]) -- layout 2 lists only earlier suspensions in xs
  end
  if f[1] then
    redis.call('ZREM', IDX_READY, f[1])
    redis.call('ZREM', IDX_TIMERS, f[1])
    ff_unlist(f[1], f[2])
    ff_counted(f[1], nil)
  end
  redis.call('DEL', exec, BASE .. 'xi:' .. id, BASE .. 'xw:' .. id, BASE .. 'xs:' .. id, BASE .. 'xp:' .. id)
end

-- ff_kid_usable reports whether tokens of kid verify at now: kid is the
-- current kid, or a verifying kid with expires_at_ms >= now that is not
-- revoked (r:<kid>, docs/spec.md §8.7). It reads the keystore with one
-- HMGET and returns, as second value, an error reply when the keystore
-- records another partition count than ARGV[1].
local function ff_kid_usable(kid, now)
  local f = redis.call('HMGET', KS, 'partitions', 'current', 'x:' .. kid, 'r:' .. kid)
  if f[1] and f[1] ~= ARGV[1] then
    return false, ff_error('partition_count_mismatch', f[1], ARGV[1])
  end
  if f[2] == kid then
    return true, nil
  end
  return f[3] and not f[4] and ff_cmp(f[3], now) >= 0, nil
end

-- ff_record_replayed returns the reply of a delivery whose signal_id
-- (ARGV[6]) was already recorded, or nil.
local function ff_record_replayed()
  local flag = ff_op_get(ARGV[6])
  if flag then
    return {'accepted', flag}
  end
  return nil
end

-- ff_payload_bytes sums the payload lengths of the signal records in list
-- ("<ms>|" then six "<len>:<bytes>" fields, the payload fifth). Only
-- ff_record calls it, once per suspension opened before the driver kept
-- the nbytes counter, which it then stores.
local function ff_payload_bytes(list)
  local total = 0
  for _, rec in ipairs(redis.call('LRANGE', list, 0, -1)) do
    local pos = string.find(rec, '|', 1, true) + 1
    for field = 1, 5 do
      local colon = string.find(rec, ':', pos, true)
      local len = tonumber(string.sub(rec, pos, colon - 1))
      if field == 5 then
        total = total + len
      end
      pos = colon + 1 + len
    end
  end
  return total
end

-- The waitpoint fields deliver and deliver_write read (ff_wp, in this
-- order) and pass to ff_record as wf: [1] e execution_id, [2] closed,
-- [3] s suspension_id ('' while pending and unused), [4] k key, [5] n its
-- signal count, [6] x expires_at_ms of a pending waitpoint (false for one a
-- suspend opened), [7] nb its payload bytes (pending waitpoints), [8] h.

-- ff_record_pending decides check 4 of deliver_signal for a pending
-- waitpoint that no suspend used yet, as driver.CheckPendingDeliverable
-- does (docs/spec.md §8.1), and buffers the signal on it. Past its
-- expires_at_ms (strictly) → waitpoint_closed (the driver words it as
-- driver.PendingWaitpointExpired); then the budgets of §8.3,
-- where the waitpoint's own count n is its waitpoint budget and the
-- signals and payload bytes (n, nb) of the execution's live pending
-- waitpoints (xp:<execution_id>, scored by expires_at_ms: those not past
-- now) stand for the suspension they will join. The record goes to
-- pb:<waitpoint_id> behind the execution's next delivery sequence number,
-- which orders it among the signals of the other pending waitpoints when a
-- suspend uses them (ff_buffered). A pending waitpoint never resumes
-- anything: {'accepted', '0'}. ARGV as ff_record's.
local function ff_record_pending(now, wf)
  local id, wid, ikey = ARGV[3], ARGV[4], ARGV[5]
  if ff_cmp(now, wf[6]) > 0 then
    return ff_error('waitpoint_closed', 'pending')
  end
  if (tonumber(wf[5]) or 0) >= tonumber(ARGV[9]) then
    return ff_error('signal_limit_exceeded', 'waitpoint', ARGV[9])
  end
  local signals, bytes = 0, 0
  for _, p in ipairs(redis.call('ZRANGEBYSCORE', BASE .. 'xp:' .. id, now, '+inf')) do
    local f = redis.call('HMGET', BASE .. 'w:' .. p, 'n', 'nb')
    signals = signals + (tonumber(f[1]) or 0)
    bytes = bytes + (tonumber(f[2]) or 0)
  end
  if signals >= tonumber(ARGV[10]) then
    return ff_error('signal_limit_exceeded', 'suspension', ARGV[10])
  end
  local size = tonumber(ARGV[12])
  if bytes + size > tonumber(ARGV[11]) then
    return ff_error('signal_limit_exceeded', 'payload', ARGV[11])
  end
  local exec = BASE .. 'x:' .. id
  local w = BASE .. 'w:' .. wid
  local seq = redis.call('HINCRBY', exec, 'seq', 1)
  local key = wf[4]
  redis.call('RPUSH', BASE .. 'pb:' .. wid, seq .. ' ' .. now .. '|' .. ARGV[7] .. #key .. ':' .. key .. ARGV[8])
  redis.call('HINCRBY', w, 'n', 1)
  if size > 0 then
    redis.call('HINCRBY', w, 'nb', size)
  end
  if ikey ~= '' then
    redis.call('HSET', BASE .. 'wi:' .. wid, ikey, ARGV[6])
  end
  redis.call('HSET', exec, 'ver', ARGV[6])
  ff_op_put(ARGV[6], '0')
  return {'accepted', '0'}
end

-- ff_record decides steps 3-5 of deliver_signal (docs/spec.md §5) at now,
-- once the token was accepted for the waitpoint, and records the signal.
-- wf is the waitpoint's ff_wp. ARGV: [3] execution_id, [4]
-- waitpoint_id, [5] idempotency_key, [6] signal_id, [7] and [8] the signal
-- record before and after its waitpoint_key field, [9] signals per
-- waitpoint, [10] signals per suspension, [11] payload bytes per
-- suspension (the budgets of docs/spec.md §8.3), [12] the payload's length
-- in bytes.
-- Duplicate (waitpoint_id, idempotency_key) → {'duplicate', signal_id}. A
-- pending waitpoint no suspend used yet: ff_record_pending. Otherwise, in
-- the order of driver.CheckDeliverable: waitpoint closed →
-- waitpoint_closed; past the suspension's timeout → suspension_timed_out;
-- a budget used up → signal_limit_exceeded naming it (waitpoint,
-- suspension or payload) and its limit. The budgets are counters kept with
-- the writes: n in the waitpoint's hash, nsig and nbytes in the
-- execution's (set by each suspend, from what its pending waitpoints
-- bring; for a suspension opened before nbytes existed, the first delivery
-- sums the stored payloads once, ff_payload_bytes, and an accepted one
-- stores the sum).
-- Otherwise appends "<now>|<record>" to the suspension's signals, records
-- the idempotency key and, when the condition holds, resumes: state
-- resumed, every waitpoint of the suspension closed, the execution moved
-- from the suspended (and tag) and timers indexes to the ready index (and
-- to the resumed count index, ff_counted), and the workers are told
-- (ff_claimable). The condition: 'pending' counts the waitpoints that
-- must still receive their first signal (suspend sets it from the
-- threshold the driver kit gives, driver.ConditionHolds,
-- docs/spec.md §8.2), and the suspension resumes when it reaches 0. (A
-- suspension opened before thresholds were stored, without 'need', kept
-- 'pending' = every waitpoint: there "any" resumes on the first signal.)
-- {'accepted', '1'|'0'}.
local function ff_record(now, wf)
  local id, wid, ikey = ARGV[3], ARGV[4], ARGV[5]
  local widem = BASE .. 'wi:' .. wid
  if ikey ~= '' then
    local sig = redis.call('HGET', widem, ikey)
    if sig then
      return {'duplicate', sig}
    end
  end
  if wf[3] == '' and wf[6] then
    return ff_record_pending(now, wf)
  end
  if wf[2] == '1' then
    return ff_error('waitpoint_closed')
  end
  local exec = BASE .. 'x:' .. id
  local ef = redis.call('HMGET', exec, 'tat', 'nsig', 'cond', 'member', 'nbytes', 'need', 'tags', 'pending')
  if ef[1] ~= '' and ff_cmp(now, ef[1]) > 0 then
    return ff_error('suspension_timed_out')
  end
  if (tonumber(wf[5]) or 0) >= tonumber(ARGV[9]) then
    return ff_error('signal_limit_exceeded', 'waitpoint', ARGV[9])
  end
  if tonumber(ef[2]) >= tonumber(ARGV[10]) then
    return ff_error('signal_limit_exceeded', 'suspension', ARGV[10])
  end
  local size, used = tonumber(ARGV[12]), tonumber(ef[5])
  local list = BASE .. 'sig:' .. wf[3]
  if not used then
    used = ff_payload_bytes(list)
  end
  if used + size > tonumber(ARGV[11]) then
    return ff_error('signal_limit_exceeded', 'payload', ARGV[11])
  end
  local key = wf[4]
  redis.call('RPUSH', list, now .. '|' .. ARGV[7] .. #key .. ':' .. key .. ARGV[8])
  if ikey ~= '' then
    redis.call('HSET', widem, ikey, ARGV[6])
  end
  -- The execution's fields this delivery changes, written by one HSET at
  -- the end from what was read above (the script is atomic): its signal
  -- count and payload bytes, an inline waitpoint's signal count, the
  -- waitpoints still to be signalled, its version and, when it resumes,
  -- its state.
  local set = {'nsig', tonumber(ef[2]) + 1, 'ver', ARGV[6]}
  if not ef[5] or size > 0 then
    set[#set + 1], set[#set + 2] = 'nbytes', used + size
  end
  local n -- the waitpoint's signal count, this one included
  if wf.inline then
    n = tonumber(wf[5]) + 1
    set[#set + 1], set[#set + 2] = 'w:' .. wid, wf.raw .. n .. ':' .. key
  else
    n = redis.call('HINCRBY', BASE .. 'w:' .. wid, 'n', 1)
  end
  local resumed = false
  if n == 1 then
    local left = (tonumber(ef[8]) or 0) - 1
    set[#set + 1], set[#set + 2] = 'pending', left
    resumed = left <= 0 or (not ef[6] and ef[3] == 'any')
  end
  if resumed then
    set[#set + 1], set[#set + 2] = 'state', 'resumed'
  end
  redis.call('HSET', exec, unpack(set))
  if resumed then
    redis.call('HDEL', exec, 'reason')
    ff_close_waitpoints(exec)
    ff_unlist(ef[4], ef[7])
    ff_counted(ef[4], 'resumed')
    redis.call('ZREM', IDX_TIMERS, ef[4])
    redis.call('ZADD', IDX_READY, 0, ef[4])
    ff_ready(ef[4])
    ff_claimable()
  end
  local flag = resumed and '1' or '0'
  ff_op_put(ARGV[6], flag)
  return {'accepted', flag}
end

-- Before every script body: the partition's store marker must hold the
-- value the caller remembered (one GET).
do
  local err = ff_store_check(STORE, STORE_ID)
  if err then return err end
end
