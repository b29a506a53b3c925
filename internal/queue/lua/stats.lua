-- stats.lua: what a monitor asks of one shard's agenda, read by Redis' clock. It writes
-- nothing.
--
-- KEYS[1] agenda (zset)
-- Returns {NOW (ms), SIZE, DUE, HEAD}: the agenda's entries, how many of them are due now
-- (their score is not after NOW: no live lease hides them, and no node claimed them yet), and
-- the score of the earliest as a string ("" when the agenda is empty).
--
-- A script, not a pipeline of ZCARD and ZCOUNT: what is due is counted against Redis' own
-- clock, read in the same atomic step, so a node with a wrong clock reports the same backlog.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local size = redis.call('ZCARD', KEYS[1])
local due = redis.call('ZCOUNT', KEYS[1], '-inf', now)
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {now, size, due, head[2] or ''}
