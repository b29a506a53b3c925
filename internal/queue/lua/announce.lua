-- announce.lua: a node says it is alive, and what it runs; stale entries go.
--
-- KEYS[1] nodes (hash name -> node JSON), KEYS[2] seen (hash name -> ms, Redis clock)
-- ARGV[1] node name, ARGV[2] node JSON ("" to depart: the node stopped cleanly),
-- ARGV[3] forget (ms): entries not seen for this long are removed
-- Returns Redis' time (ms).
--
-- When a node was last seen is Redis' clock, so that whether it is alive does not depend on
-- the clocks of the nodes, nor on that of whoever asks.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[1], now)
end
local forget = tonumber(ARGV[3])
local seen = redis.call('HGETALL', KEYS[2])
for i = 1, #seen, 2 do
  if now - tonumber(seen[i + 1]) > forget then
    redis.call('HDEL', KEYS[1], seen[i])
    redis.call('HDEL', KEYS[2], seen[i])
  end
end
return now
