-- renew.lua: extend the leases a node still holds (compare-and-pexpire).
--
-- KEYS[1] agenda (zset), KEYS[2] cancel (hash occurrence -> the one replacing it),
-- KEYS[3] epoch (hash, see guard in lib.lua), KEYS[4] tokens (hash occ -> last token),
-- KEYS[5] attempts (hash occ -> n), KEYS[6] running (hash job -> occ)
-- ARGV[1] lock key prefix, ARGV[2] lease (ms), ARGV[3] the shard's epoch as the caller knows
-- it, ARGV[4] the guard's parameters ("HOLD SETTLEAFTER", ms), then triples:
-- occurrence id, token, attempt
-- Returns: the guard's "ID SEQ FROM NOW", then for each triple 1 if the lease was extended,
-- 0 if the caller no longer holds it, 2 if it was extended but a newer occurrence of the job
-- cancels the run (overlap cancel_other): the holder stops its handler and completes the
-- occurrence as cancelled, renewing meanwhile, so nobody else claims it in between.
--
-- Only a lock whose value is the caller's token is touched, so a node that lost its lease
-- can never extend someone else's. The occurrence's score moves with the lease so it stays
-- invisible to claimers. Safe to run twice.
--
-- A holder whose lock expired takes its lease back as long as nobody claimed the occurrence
-- since (its token is still the occurrence's, KEYS[4]): its run is still the only one, as
-- for a late completion (complete.lua). This is what keeps a run going through a Redis
-- outage or failover longer than its lease (see settle in lib.lua). After Redis lost state,
-- until a lease past the end of the guard's hold, it also takes its lease back when Redis
-- forgot it (the lock is gone, or older than the caller's token, and no later claim is
-- known): nobody could claim the occurrence during the hold. The lock, the occurrence's
-- token, attempt, agenda entry and its job's overlap slot are written back.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
local ep = guard(KEYS[3], ARGV[3], now, ARGV[4])
local recovering = ep.hold > 0 and now <= ep.hold + lease
local anyCancel = redis.call('HLEN', KEYS[2]) > 0
local out = {ep.reply}
for i = 5, #ARGV, 3 do
  local occ, token, attempt = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local lk = ARGV[1] .. occ
  local v = redis.call('GET', lk)
  local held = v == token
  if not held and (recovering or not v) and older(v, token) then
    local tk = redis.call('HGET', KEYS[4], occ)
    if tk == token or (recovering and (not tk or tonumber(tk) <= tonumber(token))) then
      redis.call('SET', lk, token, 'PX', lease)
      redis.call('HSET', KEYS[4], occ, token)
      if tonumber(redis.call('HGET', KEYS[5], occ) or '0') < tonumber(attempt) then
        redis.call('HSET', KEYS[5], occ, attempt)
      end
      local job = split(occ)
      if not alertOf(occ) and not partOf(occ) and not redis.call('HGET', KEYS[6], job) then redis.call('HSET', KEYS[6], job, occ) end
      held = true
    end
  end
  if held then
    redis.call('PEXPIRE', lk, lease)
    redis.call('ZADD', KEYS[1], now + lease, occ)
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
