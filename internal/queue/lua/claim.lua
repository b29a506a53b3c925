-- claim.lua: claim the due occurrences of one shard, decided by Redis' clock.
--
-- KEYS[1] agenda (zset), KEYS[2] fence (hash job -> token), KEYS[3] attempts (hash occ -> n),
-- KEYS[4] request cache key for this call, KEYS[5] paused (hash job -> pause JSON)
-- ARGV[1] lock key prefix, ARGV[2] lease (ms), ARGV[3] max claims, ARGV[4] request cache TTL (ms),
-- ARGV[5] the caller's deadline (ms, Redis clock): past it the caller stopped waiting,
-- ARGV[6] lead (ms): also claim what becomes due within this much of NOW
-- Returns one string: "NOWUS\nHEAD" then one line per claim "OCC\tATTEMPT\tTOKEN\tNOTBEFORE\tPAUSE".
--   NOTBEFORE is the claimed entry's score: the caller must not start it before Redis' clock
--   reads NOTBEFORE. Claiming a little ahead (the lead) lets a node prepare a burst of runs
--   and start each on time; the start is still never early by Redis' clock, because Redis'
--   time in this reply plus the time elapsed since is a lower bound of Redis' clock.
--   NOWUS is Redis' time in microseconds at the end of the script (a precise lower bound of
--   its clock when the reply arrives); HEAD is the smallest score left in the agenda ("" when empty).
--   PAUSE is "" or, when the job is paused fleet-wide, its pause (JSON on one line): the
--   claimer must not run the occurrence but record it as skipped. Deciding it here, in the
--   claim, means a pause holds on every node from the next claim on, and the occurrence is
--   still held and completed like any other: if the claimer dies, the next one records it.
--
-- Due means score <= NOW by Redis' TIME, never by a node's clock, so a node with a wrong clock
-- cannot fire anything early. Each claim takes the occurrence's lock (SET NX semantics: only
-- when no live lock exists), hands out the job's next fencing token (strictly increasing per
-- job), counts the attempt, and moves the occurrence's score to the lease's expiry: while the
-- lease lives nobody sees it as due, and if the holder dies it becomes due again by itself.
-- The reply is cached under KEYS[4] so a re-sent call returns the same claims. A call that
-- reaches Redis after its caller's deadline (it sat in a socket while Redis was frozen or
-- slow) claims nothing: nobody would run what it claimed, and the occurrences would wait a
-- whole lease for nothing.
local cached = redis.call('GET', KEYS[4])
if cached then return cached end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
if now > tonumber(ARGV[5]) then limit = 0 end
local due = {}
if limit > 0 then
  due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now + tonumber(ARGV[6]), 'WITHSCORES', 'LIMIT', 0, limit)
end
local lines = {}
-- Most of the time no job is paused: then no claim needs to look.
local anyPaused = #due > 0 and redis.call('HLEN', KEYS[5]) > 0
for d = 1, #due, 2 do
  local occ, score = due[d], due[d + 1]
  local lk = ARGV[1] .. occ
  local v = redis.call('GET', lk)
  if v and string.sub(v, 1, 6) ~= 'retry:' and string.sub(v, 1, 5) ~= 'done:' then
    -- Still held (its holder renews it): look again when that lease would expire.
    -- PTTL is 0 for a lock expiring within the millisecond (look again at once), -1 for a
    -- lock without expiry (never written by cronfleet: give it a lease).
    local ttl = redis.call('PTTL', lk)
    if ttl < 0 then ttl = lease elseif ttl < 1 then ttl = 1 end
    redis.call('ZADD', KEYS[1], 'XX', now + ttl, occ)
  else
    local attempt = redis.call('HINCRBY', KEYS[3], occ, 1)
    local job = string.match(occ, '^(.*)@[^@]*$') or occ
    local token = redis.call('HINCRBY', KEYS[2], job, 1)
    redis.call('SET', lk, token, 'PX', lease)
    redis.call('ZADD', KEYS[1], 'XX', now + lease, occ)
    local pause = anyPaused and redis.call('HGET', KEYS[5], job) or ''
    lines[#lines + 1] = occ .. '\t' .. attempt .. '\t' .. token .. '\t' .. score .. '\t' .. pause
  end
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local h = ''
if head[2] then h = head[2] end
-- Redis' time now, at the end of the script: the tightest lower bound of its clock when the
-- reply arrives (what was due was decided at the start, above).
local t2 = redis.call('TIME')
local reply = t2[1] .. string.format('%06d', tonumber(t2[2])) .. '\n' .. h
if #lines > 0 then reply = reply .. '\n' .. table.concat(lines, '\n') end
redis.call('SET', KEYS[4], reply, 'PX', tonumber(ARGV[4]))
return reply
