-- expand.lua: add occurrences of jobs of one shard to the agenda, each at most once, ever.
--
-- KEYS[1] agenda (zset), KEYS[2] watermarks (hash job -> ms), KEYS[3] counts (hash job -> n),
-- KEYS[4] policy (hash job -> "OVERLAP CATCHUP WINDOWMS"), KEYS[5] next (hash occ -> ms),
-- KEYS[6] late (hash occ -> 1), KEYS[7] defs (hash job -> "HASH LOADEDMS NODE"),
-- KEYS[8] attempts (hash occ -> n), KEYS[9] epoch (hash, see guard in lib.lua),
-- KEYS[10] running (hash job -> occ), KEYS[11] alerts (hash job -> "KINDS LATEMS")
-- ARGV[1] number of jobs, ARGV[2] history key prefix, ARGV[3] history length, ARGV[4] lock
--         key prefix, ARGV[5] wait key prefix, ARGV[6] the shard's epoch as the caller knows
--         it, ARGV[7] the guard's parameters ("HOLD SETTLEAFTER", ms); then for each
--         job: name, count n, max runs (0: no cap), policy, dropped-until (ms, 0: none),
--         dropped record ("" for none), definition ("HASH LOADEDMS NODE"), floor (ms, 0:
--         none), alerts ("KINDS LATEMS", "" for none), the missed alert of the dropped
--         record ("" for none), then n quintuples (due ms, not-before ms, occurrence id,
--         the next occurrence's not-before ms or 0, its late watch's id or ""), ascending
--         by due time; an occurrence that a calendar excludes has its skipped record (JSON,
--         starting with "{") in place of the late watch
-- Returns: the guard's "ID SEQ FROM NOW", then for each job its watermark after the call
-- (ms, as a string; "" if none), prefixed with "+" when this call wrote the job's dropped
-- record, or "-NODE" when a newer definition of the job, loaded by NODE, is in force: the
-- caller does not plan it.
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
-- One definition per job: the newest loaded wins. KEYS[7] holds the hash of the definition
-- in force, when a node loaded it, and which node. A call with an older definition (loaded earlier; at
-- the same instant, the smaller hash) adds nothing for the job. A call with a newer one
-- replans the job before it adds: the occurrences the old definition added that nobody
-- claimed and that are not due yet leave the agenda (and the max runs count), and the
-- watermark moves back to now, so the new schedule's occurrences from now on are added;
-- an id that already has a lock (claimed, or just done) is not added again. A definition
-- "-" (with no occurrences) says the node dropped the job: the definition it put in force,
-- if any, is forgotten.
--
-- The job's policy and alerts (claim.lua reads them) are stored with the definition in
-- force. The late watch of an occurrence (an alert id, cron.AlertID) is added, due LATEMS
-- after the occurrence's not-before, by the same call and only when that call adds the
-- occurrence: it is added once, as the occurrence is, by whichever node expands first, and
-- claim.lua decides when it falls due whether the occurrence started. The missed alert of a
-- dropped record is added, due now, by the call that writes the record, once likewise. The next
-- occurrence's not-before lets claim.lua tell, after the fleet was away, whether a later
-- occurrence fell due too (catch-up "latest"). An occurrence of a known job added only
-- after its not-before passed was not expanded in time because no node was running: it is
-- marked late, for claim.lua's catch-up policy. A node that resumes a job whose
-- watermark is older than the job's catch-up window plans from the window's start and sends
-- the record of what it passes over (missed); the record is written once, by the call that
-- finds the watermark still before dropped-until.
--
-- An occurrence that a calendar excludes is never added: when new by the same rule, its
-- skipped record is written to history and the watermark moves past it, so it is recorded
-- once however many nodes send it; it does not count toward max runs, and past the cap it is
-- not recorded. A short-lived marker in its lock key, which outlives its due time, keeps a
-- replan or a floor (below), which look behind the watermark, from recording it again.
--
-- After Redis lost state, a node plans its jobs again from a floor: the last instant it knew
-- the shard's state sound. Occurrences due after the floor are added as if the watermark
-- were there, except those Redis still knows (on the agenda, waiting for the overlap slot,
-- holding it, or locked: running or just done, which includes what nodes wrote back as
-- done during the guard's hold). So what Redis forgot is planned again, and what falls due
-- before it is added is marked late, for the catch-up policies.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local njobs = tonumber(ARGV[1])
local hlen = tonumber(ARGV[3])
local ep = guard(KEYS[9], ARGV[6], now, ARGV[7])

-- newer tells whether definition a ("HASH MS NODE") was loaded after b.
local function newer(a, b)
  local ha, ta = string.match(a, '^(%S+) (%d+)')
  local hb, tb = string.match(b, '^(%S+) (%d+)')
  if not hb then return true end
  if not ha then return false end
  ta, tb = tonumber(ta), tonumber(tb)
  if ta ~= tb then return ta > tb end
  return ha > hb
end

-- replan takes job's unclaimed, not yet due, scheduled occurrences off the agenda, and
-- returns how many.
local function replan(job)
  local removed, cursor = 0, '0'
  local pattern = string.gsub(job, '[%*%?%[%]\\]', '\\%0') .. '@*'
  repeat
    local r = redis.call('ZSCAN', KEYS[1], cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = r[1]
    for k = 1, #r[2], 2 do
      local occ, score = r[2][k], tonumber(r[2][k + 1])
      local j, manual = split(occ)
      if j == job and not manual and score > now
          and not redis.call('HGET', KEYS[8], occ) then
        forget(KEYS[1], {KEYS[5], KEYS[6]}, occ)
        removed = removed + 1
      end
    end
  until cursor == '0'
  return removed
end

local i = 8
local out = {ep.reply}
for _ = 1, njobs do
  local job = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  local maxruns = tonumber(ARGV[i + 2])
  local policy, droppedUntil, dropped, def = ARGV[i + 3], tonumber(ARGV[i + 4]), ARGV[i + 5], ARGV[i + 6]
  local floor = tonumber(ARGV[i + 7])
  local alerts, droppedAlert = ARGV[i + 8], ARGV[i + 9]
  local lateAfter = tonumber(string.match(alerts, ' (%d+)$') or '0')
  if not alertsOn(alerts, 'late') then lateAfter = 0 end
  i = i + 10
  local inForce = redis.call('HGET', KEYS[7], job) or ''
  local hashIn = string.match(inForce, '^(%S+) ') or ''
  local hashMine = string.match(def, '^(%S+) ') or ''
  if hashMine == '-' then
    -- The node dropped the job from its files: a definition it put in force goes too.
    if string.match(inForce, '^%S+ %d+ (.*)$') == string.match(def, '^%S+ %d+ (.*)$') then
      redis.call('HDEL', KEYS[7], job)
    end
    out[#out + 1] = ''
  elseif hashIn ~= hashMine and not newer(def, inForce) then
    out[#out + 1] = '-' .. (string.match(inForce, '^%S+ %d+ (.*)$') or '')
  else
    -- HGET answers false (not nil) for a missing field.
    local wm = redis.call('HGET', KEYS[2], job)
    if wm then wm = tonumber(wm) else wm = nil end
    local replanned = false
    if hashIn ~= hashMine then
      redis.call('HSET', KEYS[7], job, def)
      if inForce ~= '' then
        local removed = replan(job)
        if removed > 0 and maxruns > 0 then redis.call('HINCRBY', KEYS[3], job, -removed) end
        if wm and wm > now then
          wm = now
          redis.call('HSET', KEYS[2], job, now)
        end
        replanned = true
      end
    end
    if redis.call('HGET', KEYS[4], job) ~= policy then redis.call('HSET', KEYS[4], job, policy) end
    local wrote = ''
    if alerts == '' then
      redis.call('HDEL', KEYS[11], job)
    elseif redis.call('HGET', KEYS[11], job) ~= alerts then
      redis.call('HSET', KEYS[11], job, alerts)
    end
    if dropped ~= '' and wm and wm < droppedUntil then
      wrote = '+'
      local hk = ARGV[2] .. job
      redis.call('LPUSH', hk, dropped)
      redis.call('LTRIM', hk, 0, hlen - 1)
      redis.call('HSET', KEYS[2], job, droppedUntil)
      wm = droppedUntil
      if droppedAlert ~= '' then redis.call('ZADD', KEYS[1], 'NX', now, droppedAlert) end
    end
    local count = 0
    if maxruns > 0 then count = tonumber(redis.call('HGET', KEYS[3], job) or '0') end
    local top = wm
    local base = wm
    if floor > 0 and (base == nil or floor < base) then base = floor end
    local wk = ARGV[5] .. job
    for j = 0, n - 1 do
      local due = tonumber(ARGV[i + 5 * j])
      local score = tonumber(ARGV[i + 5 * j + 1])
      local occ = ARGV[i + 5 * j + 2]
      local nx = tonumber(ARGV[i + 5 * j + 3])
      local watch = ARGV[i + 5 * j + 4]
      local excluded = string.sub(watch, 1, 1) == '{'
      local new
      if base then new = due > base else new = score >= now end
      if new and (replanned or floor > 0) and redis.call('EXISTS', ARGV[4] .. occ) == 1 then new = false end
      if new and floor > 0 and (redis.call('ZSCORE', wk, occ) or redis.call('HGET', KEYS[10], job) == occ) then
        new = false
      end
      if new and excluded then
        local lk = ARGV[4] .. occ
        if (maxruns == 0 or count < maxruns) and redis.call('EXISTS', lk) == 0
            and pushHistory(ARGV[2] .. job, watch, hlen) then
          redis.call('SET', lk, 'excluded', 'PX', math.max(due - now, 0) + 3600000)
        end
      elseif new then
        if maxruns == 0 or count < maxruns then
          -- The caller's strings, not the numbers read from them: Redis formats a Lua
          -- number given to a command with printf.
          if redis.call('ZADD', KEYS[1], 'NX', ARGV[i + 5 * j + 1], occ) == 1 then
            if nx > 0 then redis.call('HSET', KEYS[5], occ, ARGV[i + 5 * j + 3]) end
            if base and score < now then redis.call('HSET', KEYS[6], occ, 1) end
            if maxruns > 0 then count = redis.call('HINCRBY', KEYS[3], job, 1) end
            if lateAfter > 0 and watch ~= '' then redis.call('ZADD', KEYS[1], 'NX', score + lateAfter, watch) end
          end
        end
      end
      if (new or (replanned and due > wm) or (floor > 0 and due > base)) and (top == nil or due > top) then top = due end
    end
    if top ~= nil and top ~= wm then
      redis.call('HSET', KEYS[2], job, top)
    end
    if top == nil then out[#out + 1] = wrote else out[#out + 1] = wrote .. tostring(top) end
  end
  i = i + 5 * n
end
return out
