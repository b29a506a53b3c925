-- fanout.lua: replace a claimed occurrence by its parts (broadcast, shards), only for the
-- holder of its claim; see fanout.go.
--
-- KEYS[1] agenda (zset), KEYS[2] fan (hash, see keys.go), KEYS[3] calls (hash node -> ms)
-- ARGV[1] lock key prefix, ARGV[2] the occurrence (the parent), ARGV[3] its claim's token,
-- ARGV[4] the parts' due time (ms: the parent's, or later), ARGV[5] how long the parent's marker
-- lives (ms), ARGV[6] the join's state (JSON, fanState in fanout.go, without "started"),
-- ARGV[7] the count of parts,
-- ARGV[8..] for a broadcast, the node each part is pinned to, in the parts' order
-- Returns 1 if the parts replaced the occurrence (by this call or an earlier identical one),
-- 0 if the caller no longer holds its claim.
--
-- The parts (cron.PartID) go on the agenda due when the parent was or later, so none starts
-- before it was due. The parent leaves the agenda, but keeps its job's overlap slot (claim.lua's
-- active finds it in KEYS[2]) and its place under max_concurrent (its lock becomes the
-- marker "fan:TOKEN", which holders() counts while it lives) until its last part ended
-- (complete.lua). Nobody claims it again: it is no longer on the agenda. A re-sent call
-- finds the marker, or the done marker of a join that ended meanwhile, and answers 1.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local parent, token, due = ARGV[2], ARGV[3], tonumber(ARGV[4])
local lk = ARGV[1] .. parent
local v = redis.call('GET', lk)
if v == 'fan:' .. token or v == 'done:' .. token then return 1 end
if v ~= token then return 0 end
local n = tonumber(ARGV[7])
local state = cjson.decode(ARGV[6])
-- The parent starts when its parts can: claimed ahead of its due time, it would otherwise
-- be recorded as started before it was due.
state.started = iso(math.max(now, due))
redis.call('ZREM', KEYS[1], parent)
redis.call('HSET', KEYS[2], parent, cjson.encode(state))
for i = 0, n - 1 do
  local part = parent .. '~part-' .. i .. '-of-' .. n
  local node = ARGV[8 + i]
  if node and node ~= '' then redis.call('HSET', KEYS[2], part, node) end
  redis.call('ZADD', KEYS[1], 'NX', due, part)
end
redis.call('SET', lk, 'fan:' .. token, 'PX', tonumber(ARGV[5]))
-- Nodes that stopped calling a day ago are forgotten here, where fleets with parts call.
local calls = redis.call('HGETALL', KEYS[3])
for k = 1, #calls, 2 do
  if now - (tonumber(calls[k + 1]) or 0) > 86400000 then redis.call('HDEL', KEYS[3], calls[k]) end
end
return 1
