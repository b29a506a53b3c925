-- renew.lua: extend the leases a node still holds (compare-and-pexpire).
--
-- KEYS[1] agenda (zset)
-- ARGV[1] lock key prefix, ARGV[2] lease (ms), then pairs: occurrence id, token
-- Returns: for each pair 1 if the lease was extended, 0 if the caller no longer holds it.
--
-- Only a lock whose value is the caller's token is touched, so a node that lost its lease
-- can never extend someone else's. The occurrence's score moves with the lease so it stays
-- invisible to claimers. Safe to run twice.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 2 do
  local occ, token = ARGV[i], ARGV[i + 1]
  local lk = ARGV[1] .. occ
  if redis.call('GET', lk) == token then
    redis.call('PEXPIRE', lk, lease)
    redis.call('ZADD', KEYS[1], 'XX', now + lease, occ)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
