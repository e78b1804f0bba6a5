-- list_peek is the first step of list_suspended on one partition
-- (read-only, docs/spec.md §5.4): the index members (ff_member: the
-- 20-digit suspended_at_ms, ':', the execution_id, whose byte order is the
-- list's order) of at most ARGV[3] suspended executions strictly after the
-- member ARGV[2] ('' from the start) and strictly before the member ARGV[5]
-- ('' for no bound: the caller passes the last member that can still be on
-- the page once it knows enough candidates, so that a partition returns
-- only members that can still win), in order. With a tag (ARGV[4], '' for
-- none) it reads that tag's index (ff_tag_index) instead of the suspended
-- index: the same members, only those whose suspension carries the tag
-- (docs/spec.md §8.6). One ZRANGEBYLEX: it reads no execution; list_rows
-- reads the rows of the winners.
local err = ff_partitions()
if err then return err end
local from, to = '-', '+'
if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
if ARGV[5] ~= '' then to = '(' .. ARGV[5] end
local index = IDX_SUSPENDED
if ARGV[4] ~= '' then index = ff_tag_index(ARGV[4]) end
return redis.call('ZRANGEBYLEX', index, from, to, 'LIMIT', 0, tonumber(ARGV[3]))
