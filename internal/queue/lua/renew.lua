-- renew.lua: extend the leases a node still holds (compare-and-pexpire).
--
-- KEYS[1] agenda (zset), KEYS[2] cancel (hash occurrence -> the one replacing it)
-- ARGV[1] lock key prefix, ARGV[2] lease (ms), then pairs: occurrence id, token
-- Returns: for each pair 1 if the lease was extended, 0 if the caller no longer holds it,
-- 2 if it was extended but a newer occurrence of the job cancels the run (overlap
-- cancel_other): the holder stops its handler and completes the occurrence as cancelled,
-- renewing meanwhile, so nobody else claims it in between.
--
-- Only a lock whose value is the caller's token is touched, so a node that lost its lease
-- can never extend someone else's. The occurrence's score moves with the lease so it stays
-- invisible to claimers. Safe to run twice.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
local anyCancel = redis.call('HLEN', KEYS[2]) > 0
local out = {}
for i = 3, #ARGV, 2 do
  local occ, token = ARGV[i], ARGV[i + 1]
  local lk = ARGV[1] .. occ
  if redis.call('GET', lk) == token then
    redis.call('PEXPIRE', lk, lease)
    redis.call('ZADD', KEYS[1], 'XX', now + lease, occ)
    if anyCancel and redis.call('HEXISTS', KEYS[2], occ) == 1 then
      out[#out + 1] = 2
    else
      out[#out + 1] = 1
    end
  else
    out[#out + 1] = 0
  end
end
return out
