-- list_fill backfills the global list indexes (see LIST in prelude.lua)
-- from one partition's indexes, on a standalone server: a store written
-- before them has them empty or partial. ARGV: [1] P, [2] the member of
-- the partition's suspended index after which this chunk starts ('' from
-- the start), [3] n, how many members to copy, [4] '' (or 'complete':
-- see below). It adds "<member> <partition>" to <prefix>ff:list for the
-- next n members of the suspended index and, for each tag the
-- execution's hash names whose partition index holds the member, to
-- <prefix>ff:list:tag:<tag>; and answers {last member copied} when it
-- copied n (more may follow), else {''}. The other calls, on partition 0,
-- copy nothing:
--   - ARGV[4] = 'begin', ARGV[2] a fresh id: a backfill starts. It
--     answers {'complete'} when <prefix>ff:list-complete is set (nothing
--     to do), else records the id in <prefix>ff:list-fill and answers
--     {''}.
--   - ARGV[4] = 'complete', ARGV[2] that id, once every partition was
--     copied to its end: sets <prefix>ff:list-complete, from which
--     list_index serves pages, when <prefix>ff:list-fill still holds the
--     id ({'complete'}); else ({'superseded'}) another backfill began
--     since, or the list keys were deleted (an operator's rebuild) while
--     this one ran, and what it copied before may be gone.
--   - ARGV[4] = 'open' (when a backend opens): {'complete'} when
--     <prefix>ff:list-complete is set, or when no partition holds a
--     suspended execution (a new store: it then sets it, there being
--     nothing to copy), else {'incomplete'}: the driver then backfills.
--     P EXISTS, once per Open.
--
-- Why a chunked backfill, with writers running meanwhile, leaves the
-- global indexes equal to the union of the partitions' indexes, provided
-- every writer runs this version's scripts (ff_list and ff_unlist keep
-- both, in the same atomic script, with idempotent ZADD and ZREM):
--   - a global entry comes from ff_list, which adds the member to its
--     partition in the same call, or from a chunk, which copies a member
--     its partition holds at that instant; ff_unlist removes both at
--     once. So no global entry outlives its member.
--   - a member still in its partition when the walk ends is in the
--     global index: either a writer of this version added it (and the
--     entry with it), or it was there before and the walk, which visits
--     the partition's members in order and never skips one that stays,
--     copied it (members never change; one added behind the walk is of
--     the first kind).
-- Each chunk is one script, atomic, so no writer runs between reading a
-- member and copying it, and copying again what a writer or another
-- backfill already copied changes nothing. A process of an earlier
-- version keeps neither: see CHANGELOG.md for the upgrade.
local err = ff_partitions()
if err then return err end
if not LIST then
  return redis.error_reply('list_fill: a standalone server only')
end
local base = string.sub(LIST, 1, #LIST - #'list') -- <prefix>ff:
if ARGV[4] == 'begin' then
  if redis.call('EXISTS', base .. 'list-complete') == 1 then
    return {'complete'}
  end
  redis.call('SET', base .. 'list-fill', ARGV[2])
  return {''}
end
if ARGV[4] == 'complete' then
  if redis.call('GET', base .. 'list-fill') ~= ARGV[2] then
    return {'superseded'}
  end
  redis.call('SET', base .. 'list-complete', '1')
  redis.call('DEL', base .. 'list-fill')
  return {'complete'}
end
if ARGV[4] == 'open' then
  if redis.call('EXISTS', base .. 'list-complete') == 1 then
    return {'complete'}
  end
  for p = 0, tonumber(ARGV[1]) - 1 do
    if redis.call('EXISTS', base .. '{p:' .. p .. '}:idx:suspended') == 1 then
      return {'incomplete'}
    end
  end
  redis.call('SET', base .. 'list-complete', '1')
  return {'complete'}
end
local n = tonumber(ARGV[3])
local from = '-'
if ARGV[2] ~= '' then
  from = '(' .. ARGV[2]
end
local got = redis.call('ZRANGE', IDX_SUSPENDED, from, '+', 'BYLEX', 'LIMIT', 0, n)
local entries = {}
for _, m in ipairs(got) do
  entries[#entries + 1] = 0
  entries[#entries + 1] = m .. ' ' .. PNUM
  local tags = redis.call('HGET', BASE .. 'x:' .. string.sub(m, 22), 'tags')
  for t in string.gmatch(tags or '', '%S+') do
    if redis.call('ZSCORE', ff_tag_index(t), m) then
      redis.call('ZADD', LIST .. ':tag:' .. t, 0, m .. ' ' .. PNUM)
    end
  end
end
for i = 1, #entries, 1000 do
  redis.call('ZADD', LIST, unpack(entries, i, math.min(i + 999, #entries)))
end
if #got == n and n > 0 then
  return {got[#got]}
end
return {''}
