-- expand.lua: add occurrences of jobs of one shard to the agenda, each at most once, ever.
--
-- KEYS[1] agenda (zset), KEYS[2] watermarks (hash job -> ms), KEYS[3] counts (hash job -> n)
-- ARGV[1] number of jobs; then for each job: name, count n, max runs (0: no cap), then n
--         triples (due ms, not-before ms, occurrence id), ascending by due time
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
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local njobs = tonumber(ARGV[1])
local i = 2
local out = {}
for _ = 1, njobs do
  local job = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  local maxruns = tonumber(ARGV[i + 2])
  i = i + 3
  -- HGET answers false (not nil) for a missing field.
  local wm = redis.call('HGET', KEYS[2], job)
  if wm then wm = tonumber(wm) else wm = nil end
  local count = 0
  if maxruns > 0 then count = tonumber(redis.call('HGET', KEYS[3], job) or '0') end
  local top = wm
  for j = 0, n - 1 do
    local due = tonumber(ARGV[i + 3 * j])
    local score = tonumber(ARGV[i + 3 * j + 1])
    local new
    if wm then new = due > wm else new = score >= now end
    if new then
      if maxruns == 0 or count < maxruns then
        redis.call('ZADD', KEYS[1], 'NX', score, ARGV[i + 3 * j + 2])
        if maxruns > 0 then count = redis.call('HINCRBY', KEYS[3], job, 1) end
      end
      if top == nil or due > top then top = due end
    end
  end
  i = i + 3 * n
  if top ~= nil and top ~= wm then
    redis.call('HSET', KEYS[2], job, top)
  end
  if top == nil then out[#out + 1] = '' else out[#out + 1] = tostring(top) end
end
return out
