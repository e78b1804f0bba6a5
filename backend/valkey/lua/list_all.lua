-- list_all is a page of list_suspended over every partition in one call
-- on a standalone server (read-only, docs/spec.md §5.4), called with
-- partition 0's KEYS (whose store marker the prelude checks by value) and
-- then, for each partition p = 0..P-1, KEYS[4+3p] its keystore hash,
-- KEYS[5+3p] its store marker and KEYS[6+3p] the index it lists: its
-- suspended index, or with a tag its index of that tag (ff_tag_index,
-- docs/spec.md §8.6). ARGV: [1] P, [2] the index member after which the
-- page starts ('' from the start), [3] n, how many rows to read. Only a
-- standalone server serves it: on a cluster the partitions are other
-- slots, and the driver calls list_peek and list_rows per partition.
--
-- Checks: every partition must still have its store marker (one MGET; a
-- standalone server loses every partition at once, so a marker present is
-- the one partition 0's stands for), else store_reset naming it; partition
-- 0 and each partition holding a row of the page must record no other
-- partition count than P (as list_rows checked its partitions), else
-- partition_count_mismatch.
--
-- It reads the index members in two waves, as listCandidates does with
-- list_peek, bounded so that no partition returns much more than can win:
--   1. every partition's first C members (C = 1.5 n/P + 2, at most n:
--      about the fewest calls and members in all when the executions are
--      spread evenly);
--   2. with tau the suspended_at_ms of the n-th smallest member found (by
--      time; none while fewer than n were found), the partitions that
--      returned C members (C < n) and whose last one is not after tau, in
--      the order of their last member's time: the members after it and
--      before the millisecond after tau, at most n - C (tau drops as
--      members arrive, and the partitions left then need no call).
-- A member not read is then after n members read, so the n first of those
-- read are the page. Members are compared by their suspended_at_ms as
-- numbers and, within one millisecond, by their execution_id byte by byte
-- (as numbers of 6 bytes each): Lua compares strings with the server's
-- collation (strcoll), which need not be byte order.
--
-- {member, suspension_id, suspended_at_ms, timeout_at_ms or '',
-- waitpoints, tags (space-separated), ...}: one row per member of the
-- page, in no particular order (the caller orders them by member), each
-- read with one HMGET. Within one call nothing changes, so every row is
-- an execution suspended (and carrying the tag) at that call.
local err = ff_partitions()
if err then return err end
local P = tonumber(ARGV[1])
local after, n = ARGV[2], tonumber(ARGV[3])
if #KEYS ~= 3 * P + 3 then
  return redis.error_reply('list_all: ' .. #KEYS .. ' keys for ' .. P .. ' partitions')
end

local markers = {}
for p = 1, P - 1 do
  markers[p] = KEYS[5 + 3 * p]
end
for i = 1, #markers, 1000 do
  local got = redis.call('MGET', unpack(markers, i, math.min(i + 999, #markers)))
  for j = 1, #got do
    if not got[j] then
      return ff_store_check(markers[i + j - 1], nil)
    end
  end
end
local from = '-'
if after ~= '' then from = '(' .. after end

-- The members read: mem[i] on partition part[i], at time at[i].
local mem, part, at = {}, {}, {}
-- times: the times of the members read, sorted up to sorted (then cut to
-- the n first), so that tau is times[n].
local times, sorted, tau = {}, 0, nil

local function read(p, lo, hi, limit)
  local got = redis.call('ZRANGEBYLEX', KEYS[6 + 3 * p], lo, hi, 'LIMIT', 0, limit)
  for _, m in ipairs(got) do
    local t = tonumber(string.sub(m, 1, 20))
    mem[#mem + 1], part[#part + 1], at[#at + 1] = m, p, t
    times[#times + 1] = t
  end
  return got
end

-- settle sorts times and sets tau when n members were read.
local function settle()
  if #times < n then
    return
  end
  table.sort(times)
  for i = #times, n + 1, -1 do
    times[i] = nil
  end
  sorted, tau = n, times[n]
end

-- Wave 1.
local C = math.min(n, math.floor(1.5 * n / P) + 2)
local full = {} -- {partition, last member, its time}
for p = 0, P - 1 do
  local got = read(p, from, '+', C)
  if #got == C and C < n then
    local last = got[C]
    full[#full + 1] = {p, last, tonumber(string.sub(last, 1, 20))}
  end
end
settle()

-- Wave 2.
if tau then
  local kept = {}
  for _, f in ipairs(full) do
    if f[3] <= tau then
      kept[#kept + 1] = f
    end
  end
  full = kept
end
if #full > 0 then
  table.sort(full, function(x, y) return x[3] < y[3] end)
  local batch = math.max(16, math.floor(n / 2))
  for _, f in ipairs(full) do
    if tau and f[3] > tau then
      break -- the others' last members are later still
    end
    local hi = '+'
    if tau then
      local ms = string.format('%d', tau + 1)
      hi = '(' .. string.rep('0', 20 - #ms) .. ms
    end
    read(f[1], '(' .. f[2], hi, n - C)
    if #times - sorted >= batch then
      settle()
    end
  end
  settle()
end

-- The page: the members before tau, then those at tau by execution_id.
local page, ties = {}, {}
for i = 1, #mem do
  if not tau or at[i] < tau then
    page[#page + 1] = i
  elseif at[i] == tau then
    ties[#ties + 1] = i
  end
end
if #ties > n - #page then
  -- Each execution_id as numbers of 6 bytes each (a byte b as b + 1, base
  -- 257, a missing byte as 0, so that a prefix sorts first): exact in a
  -- double, and compared as numbers.
  local keys = {}
  for _, i in ipairs(ties) do
    local m, k = mem[i], {}
    for s = 22, #m, 6 do
      local v = 0
      for _, c in ipairs({string.byte(m, s, s + 5)}) do
        v = v * 257 + c + 1
      end
      for _ = #m - s + 2, 6 do
        v = v * 257
      end
      k[#k + 1] = v
    end
    keys[i] = k
  end
  table.sort(ties, function(x, y)
    local a, b = keys[x], keys[y]
    for j = 1, math.min(#a, #b) do
      if a[j] ~= b[j] then
        return a[j] < b[j]
      end
    end
    return #a < #b
  end)
end
for k = 1, math.min(#ties, n - #page) do
  page[#page + 1] = ties[k]
end

local checked = {[0] = true}
for _, i in ipairs(page) do
  local p = part[i]
  if not checked[p] then
    checked[p] = true
    local rec = redis.call('HGET', KEYS[4 + 3 * p], 'partitions')
    if rec and rec ~= ARGV[1] then
      return ff_error('partition_count_mismatch', rec, ARGV[1])
    end
  end
end

local out = {}
for _, i in ipairs(page) do
  local m = mem[i]
  local ks = KEYS[4 + 3 * part[i]]
  local f = redis.call('HMGET', string.sub(ks, 1, #ks - 4) .. 'x:' .. string.sub(m, 22), 'sid', 'sat', 'tat', 'nwp', 'tags')
  out[#out + 1] = m
  out[#out + 1] = f[1]
  out[#out + 1] = f[2]
  out[#out + 1] = f[3]
  out[#out + 1] = f[4]
  out[#out + 1] = f[5] or ''
end
return out
