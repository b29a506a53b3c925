-- stats.lua: what a monitor asks of one shard's agenda, read by Redis' clock. It writes
-- nothing.
--
-- KEYS[1] agenda (zset), KEYS[2] unplaced (hash job -> 1, see claim.lua)
-- ARGV[1] unplaced key prefix (.. job: zset of its occurrences no live node may run),
-- ARGV[2] (optional) the jobs' priorities, "SCAN JOB P JOB P": the most due entries to read,
-- and the jobs whose priority is not the default (queue.DefaultPriority)
-- Returns {NOW (ms), SIZE, DUE, HEAD, BY, UNPLACED}: the agenda's entries, how many of them
-- are due now (their score is not after NOW: no live lease hides them, and no node claimed
-- them yet), the score of the earliest as a string ("" when the agenda is empty); BY, with
-- ARGV[2], a flat array P, N, P, N: the due entries (the oldest SCAN) by their job's
-- priority (empty without); UNPLACED a flat array JOB, N: the occurrences waiting for a node
-- that may run them, by job.
--
-- A script, not a pipeline of ZCARD and ZCOUNT: what is due is counted against Redis' own
-- clock, read in the same atomic step, so a node with a wrong clock reports the same backlog.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local size = redis.call('ZCARD', KEYS[1])
local due = redis.call('ZCOUNT', KEYS[1], '-inf', now)
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local unplaced = {}
for _, job in ipairs(redis.call('HKEYS', KEYS[2])) do
  local n = redis.pcall('ZCARD', ARGV[1] .. job)
  if type(n) == 'number' and n > 0 then
    unplaced[#unplaced + 1] = job
    unplaced[#unplaced + 1] = n
  end
end
if not ARGV[2] then return {now, size, due, head[2] or '', {}, unplaced} end
local scan, rest = string.match(ARGV[2], '^(%d+)(.*)$')
local prio = {}
for j, n in string.gmatch(rest or '', '(%S+) (%d+)') do prio[j] = tonumber(n) end
local counts, by = {}, {}
if due > 0 then
  for _, occ in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(scan))) do
    -- The job is the part of the id before its last '@'.
    local p = prio[string.match(occ, '^(.*)@[^@]*$') or occ] or DEFAULT_PRIORITY
    counts[p] = (counts[p] or 0) + 1
  end
  for p, n in pairs(counts) do
    by[#by + 1] = p
    by[#by + 1] = n
  end
end
return {now, size, due, head[2] or '', by, unplaced}
