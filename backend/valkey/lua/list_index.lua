-- list_index is a page of list_suspended over every partition in one call
-- on a standalone server (read-only, docs/spec.md §5.4), reading the
-- global list indexes (see LIST in prelude.lua) instead of each
-- partition's: called with partition 0's KEYS (whose store marker the
-- prelude checks by value); ARGV: [1] P, [2] the index member after which
-- the page starts ('' from the start), [3] n, how many rows to read, [4]
-- the tag ('' for none).
--
-- When <prefix>ff:list-complete is missing (a store written before the
-- global indexes, or one the driver has not finished backfilling) it
-- answers {'incomplete'}, and the caller lists with list_all.
--
-- Otherwise it reads the n first entries of <prefix>ff:list (or
-- <prefix>ff:list:tag:<tag>) after the member, "<member> <partition>",
-- and each one's row from its partition's x:<execution_id> with one
-- HMGET: O(log N + n), whatever P. Checks: partition 0 must record no
-- other partition count than P; each partition holding a row of the page
-- must still have its store marker (else store_reset naming it) and record
-- no other partition count (else partition_count_mismatch). A standalone
-- server loses every partition at once, so partition 0's marker, checked
-- by value, stands for those holding no row.
--
-- {member, suspension_id, suspended_at_ms, timeout_at_ms or '',
-- waitpoints, tags (space-separated), ...}: one row per entry, in member
-- order, as list_all answers. Within one call nothing changes, and
-- ff_list and ff_unlist keep the entries with the partitions' indexes, so
-- every row is an execution suspended (and carrying the tag) at that call.
-- An entry whose execution is not suspended under that member (left
-- behind by a process of an earlier version, which does not keep the
-- global indexes) is passed over, and the next one read in its place.
local err = ff_partitions()
if err then return err end
if not LIST then
  return redis.error_reply('list_index: a standalone server only')
end
local base = string.sub(LIST, 1, #LIST - #'list') -- <prefix>ff:
if redis.call('EXISTS', base .. 'list-complete') == 0 then
  return {'incomplete'}
end
local P = tonumber(ARGV[1])
local after, n, tag = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local index = LIST
if tag ~= '' then
  index = LIST .. ':tag:' .. tag
end
-- The entries of the member after are "<after> <digits>": they sort
-- before "<after> \255", and every member after it sorts after that
-- (' ' sorts before every byte of an execution_id).
local from = '-'
if after ~= '' then
  from = '(' .. after .. ' \255'
end
-- checked: the partitions whose marker and partition count were checked.
local checked = {['0'] = true}

-- check checks the partitions of entries not checked yet: their store
-- markers in one MGET, then their partition counts.
local function check(entries)
  local ps, markers = {}, {}
  for _, e in ipairs(entries) do
    local p = string.match(e, ' (%d+)$')
    if not p or tonumber(p) >= P then
      return redis.error_reply('list_index: entry of no partition ' .. e)
    end
    if not checked[p] then
      checked[p] = true
      ps[#ps + 1] = p
      markers[#markers + 1] = base .. '{p:' .. p .. '}:store'
    end
  end
  if #ps == 0 then
    return nil
  end
  local got = redis.call('MGET', unpack(markers))
  for i = 1, #ps do
    if not got[i] then
      return ff_store_check(markers[i], nil)
    end
  end
  for _, p in ipairs(ps) do
    local rec = redis.call('HGET', base .. '{p:' .. p .. '}:keys', 'partitions')
    if rec and rec ~= ARGV[1] then
      return ff_error('partition_count_mismatch', rec, ARGV[1])
    end
  end
  return nil
end

local out, rows = {}, 0
while rows < n do
  local want = n - rows
  local got = redis.call('ZRANGE', index, from, '+', 'BYLEX', 'LIMIT', 0, want)
  local bad = check(got)
  if bad then return bad end
  for _, e in ipairs(got) do
    local p = string.match(e, ' (%d+)$')
    local m = string.sub(e, 1, #e - #p - 1)
    local f = redis.call('HMGET', base .. '{p:' .. p .. '}:x:' .. string.sub(m, 22), 'sid', 'sat', 'tat', 'nwp', 'tags', 'member', 'state')
    if f[6] == m and f[7] == 'suspended' then
      rows = rows + 1
      out[#out + 1] = m
      out[#out + 1] = f[1]
      out[#out + 1] = f[2]
      out[#out + 1] = f[3]
      out[#out + 1] = f[4]
      out[#out + 1] = f[5] or ''
    end
  end
  if #got < want then
    break
  end
  from = '(' .. got[#got]
end
return out
