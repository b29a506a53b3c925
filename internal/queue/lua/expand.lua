-- expand.lua: add occurrences of jobs of one shard to the agenda, each at most once, ever.
--
-- KEYS[1] agenda (zset), KEYS[2] watermarks (hash job -> ms), KEYS[3] counts (hash job -> n),
-- KEYS[4] policy (hash job -> "OVERLAP CATCHUP WINDOWMS"), KEYS[5] next (hash occ -> ms),
-- KEYS[6] late (hash occ -> 1)
-- ARGV[1] number of jobs, ARGV[2] history key prefix, ARGV[3] history length; then for each job: name, count n, max
--         runs (0: no cap), policy, dropped-until (ms, 0: none), dropped record ("" for
--         none), then n quadruples (due ms, not-before ms, occurrence id, the next
--         occurrence's not-before ms or 0), ascending by due time
-- Returns: for each job, its watermark after the call (ms, as a string; "" if none).
--
-- An occurrence is added only if its due time lies after the job's watermark, and the
-- watermark then moves to the newest added: so three nodes expanding the same job add it
-- once, and an occurrence that finished (and left the agenda) is never added again by
-- anyone. Its score is its not-before instant (the due time plus the job's jitter), which
-- need not follow the order of the due times: the watermark is on due times for that
-- reason. For a job never seen before, occurrences whose not-before is before Redis' now are
-- dropped: a new job starts now, it does not replay the past. A job with a max runs counts
-- what it adds and adds nothing past the cap, though its watermark moves on. The call is
-- idempotent, so a re-sent call is harmless.
--
-- The job's policy (claim.lua reads it) is stored as sent: the last node to expand sets it.
-- The next occurrence's not-before lets claim.lua tell, after the fleet was away, whether a
-- later occurrence fell due too (catch-up "latest"). An occurrence of a known job added only
-- after its not-before passed was not expanded in time because no node was running: it is
-- marked late, for claim.lua's catch-up policy. A node that resumes a job whose
-- watermark is older than the job's catch-up window plans from the window's start and sends
-- the record of what it passes over (missed); the record is written once, by the call that
-- finds the watermark still before dropped-until.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local njobs = tonumber(ARGV[1])
local hlen = tonumber(ARGV[3])
local i = 4
local out = {}
for _ = 1, njobs do
  local job = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  local maxruns = tonumber(ARGV[i + 2])
  local policy, droppedUntil, dropped = ARGV[i + 3], tonumber(ARGV[i + 4]), ARGV[i + 5]
  i = i + 6
  if redis.call('HGET', KEYS[4], job) ~= policy then redis.call('HSET', KEYS[4], job, policy) end
  -- HGET answers false (not nil) for a missing field.
  local wm = redis.call('HGET', KEYS[2], job)
  if wm then wm = tonumber(wm) else wm = nil end
  if dropped ~= '' and wm and wm < droppedUntil then
    local hk = ARGV[2] .. job
    redis.call('LPUSH', hk, dropped)
    redis.call('LTRIM', hk, 0, hlen - 1)
    redis.call('HSET', KEYS[2], job, droppedUntil)
    wm = droppedUntil
  end
  local count = 0
  if maxruns > 0 then count = tonumber(redis.call('HGET', KEYS[3], job) or '0') end
  local top = wm
  for j = 0, n - 1 do
    local due = tonumber(ARGV[i + 4 * j])
    local score = tonumber(ARGV[i + 4 * j + 1])
    local occ = ARGV[i + 4 * j + 2]
    local nx = tonumber(ARGV[i + 4 * j + 3])
    local new
    if wm then new = due > wm else new = score >= now end
    if new then
      if maxruns == 0 or count < maxruns then
        if redis.call('ZADD', KEYS[1], 'NX', score, occ) == 1 then
          if nx > 0 then redis.call('HSET', KEYS[5], occ, nx) end
          if wm and score < now then redis.call('HSET', KEYS[6], occ, 1) end
        end
        if maxruns > 0 then count = redis.call('HINCRBY', KEYS[3], job, 1) end
      end
      if top == nil or due > top then top = due end
    end
  end
  i = i + 4 * n
  if top ~= nil and top ~= wm then
    redis.call('HSET', KEYS[2], job, top)
  end
  if top == nil then out[#out + 1] = '' else out[#out + 1] = tostring(top) end
end
return out
