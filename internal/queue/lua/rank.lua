-- rank.lua: what is due in one shard, counted by effective priority (rankDue in lib.lua),
-- so that a caller claiming from several shards can take the highest across all of them
-- (queue.Placement.Priorities). It changes nothing.
--
-- KEYS[1] agenda (zset), KEYS[2] top (string "PRIORITY MS": the highest priority the
-- shard's ranked claims took within the last settle, see claim.lua), KEYS[3] fan and
-- KEYS[4] calls (as claim.lua's KEYS[18] and KEYS[19], for the parts pinned to a node)
-- ARGV[1] lead (ms): what becomes due within this much of NOW counts as due, as in claim.lua,
-- ARGV[2] the priorities, as claim.lua's ARGV[20] (the floor and the top are not used),
-- ARGV[3] the most due entries to read (the oldest), ARGV[4] the caller's node name,
-- ARGV[5] lease (ms), ARGV[6] the jobs the caller may not run (space-separated, as claim.lua's
-- ARGV[23]), ARGV[7] the jobs it leaves to other nodes (likewise, as claim.lua's ARGV[24..])
-- Returns a flat array TOPPRIO, TOPREMAINMS, then EFF, N, EFF, N, ...: the shard's top and
-- what is left of its settle (-1, 0 for none), and how many due entries the caller would
-- not pass over have each effective priority, highest first; empty when there are no
-- priorities. What the caller passes over (passing in lib.lua) is not counted: it takes none
-- of it, and counting it would have the caller hold back room for it.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pr = parsePriority(ARGV[2])
if not pr then return {} end
local pass, anyPass = passing(words(ARGV[7]), words(ARGV[6]), KEYS[3], KEYS[4], ARGV[4], now, tonumber(ARGV[5]))
local _, counts = rankDue(KEYS[1], now, now + tonumber(ARGV[1]), pr, tonumber(ARGV[3]), anyPass and pass, {})
local out = {-1, 0}
local topPrio, topMs = string.match(redis.call('GET', KEYS[2]) or '', '^(%d+) (%d+)$')
if topPrio then out = {tonumber(topPrio), math.max(tonumber(topMs) + pr.settle - now, 0)} end
for e = MAX_PRIORITY, 0, -1 do
  if counts[e] then
    out[#out + 1] = e
    out[#out + 1] = counts[e]
  end
end
return out
