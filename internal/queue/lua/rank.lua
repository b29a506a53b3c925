-- rank.lua: what is due in one shard, counted by effective priority (rankDue in lib.lua),
-- so that a caller claiming from several shards can take the highest across all of them
-- (queue.Placement.Priorities). It changes nothing.
--
-- KEYS[1] agenda (zset), KEYS[2] top (string "PRIORITY MS": the highest priority the
-- shard's ranked claims took within the last settle, see claim.lua)
-- ARGV[1] lead (ms): what becomes due within this much of NOW counts as due, as in claim.lua,
-- ARGV[2] the priorities, as claim.lua's ARGV[20] (the floor is not used),
-- ARGV[3] the most due entries to read (the oldest)
-- Returns a flat array TOPPRIO, TOPMS, then EFF, N, EFF, N, ...: the shard's top (-1, 0 for
-- none), and how many due entries have each effective priority, highest first; empty when
-- there are no priorities.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pr = parsePriority(ARGV[2])
if not pr then return {} end
local _, counts = rankDue(KEYS[1], now, now + tonumber(ARGV[1]), pr, tonumber(ARGV[3]))
local out = {-1, 0}
local topPrio, topMs = string.match(redis.call('GET', KEYS[2]) or '', '^(%d+) (%d+)$')
if topPrio then out = {tonumber(topPrio), tonumber(topMs)} end
for e = MAX_PRIORITY, 0, -1 do
  if counts[e] then
    out[#out + 1] = e
    out[#out + 1] = counts[e]
  end
end
return out
