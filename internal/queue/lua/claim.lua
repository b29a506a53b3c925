-- claim.lua: claim the due occurrences of one shard, decided by Redis' clock, and apply the
-- jobs' pause, catch-up and overlap policies to them.
--
-- KEYS[1] agenda (zset), KEYS[2] fence (hash job -> token), KEYS[3] attempts (hash occ -> n),
-- KEYS[4] request cache key for this call, KEYS[5] paused (hash job -> pause JSON),
-- KEYS[6] policy (hash job -> "OVERLAP CATCHUP WINDOWMS"), KEYS[7] running (hash job -> occ),
-- KEYS[8] cancel (hash occ -> the occ replacing it), KEYS[9] next (hash occ -> ms),
-- KEYS[10] late (hash occ -> 1), KEYS[11] epoch (hash, see guard in lib.lua), KEYS[12] tokens
-- (hash occ -> the last token handed out for it), KEYS[13] alerts (hash job -> "KINDS LATEMS"),
-- KEYS[14] share (hash node -> "LASTMS ROUNDS": the nodes' recent calls, for the fair share),
-- KEYS[15] capped (hash job -> 1 while occurrences of the job wait for its max_concurrent),
-- KEYS[16] unplaced (hash job -> 1 while occurrences of the job wait for a node that may run it),
-- KEYS[17] top (string "PRIORITY MS": the highest priority this shard's ranked claims took
-- within the last settle, and when),
-- KEYS[18] fan (hash: the occurrences replaced by their parts, and the parts' pins; see
-- fanout.lua), KEYS[19] calls (hash node -> ms: each node's last call of this script)
-- ARGV[1] lock key prefix, ARGV[2] lease (ms), ARGV[3] max claims, ARGV[4] request cache TTL (ms),
-- ARGV[5] the caller's deadline (ms, Redis clock): past it the caller stopped waiting,
-- ARGV[6] lead (ms): also claim what becomes due within this much of NOW,
-- ARGV[7] wait key prefix, ARGV[8] history key prefix, ARGV[9] history length,
-- ARGV[10] the caller's node name, ARGV[11] the most occurrences of a job that may wait,
-- ARGV[12] the policy of a job that has none in KEYS[6] (queue.Policy's zero value),
-- ARGV[13] the shard's epoch as the caller knows it ("ID SEQ", or ""), ARGV[14] the guard's
-- parameters ("HOLD SETTLEAFTER AWAY", ms; see guard in lib.lua),
-- ARGV[15] the lease of a claim made ahead of its not-before, past it (ms): held short, so
-- that a node that dies before the run starts delays it by little; its holder renews it to
-- the full lease once the run has started,
-- ARGV[16] the fair share's inputs, "NODES FREE RAND WINDOWMS" (or "" for none): the live
-- nodes, the caller's free share of its capacity (0..1), a random number in [0, 1) for
-- rounding, and how long a node's call counts as its part of the same burst,
-- ARGV[17] holders key prefix (.. job: set of the job's occurrences claimed, for its
-- max_concurrent), ARGV[18] capped wait key prefix (.. job: zset of the job's occurrences
-- waiting for its max_concurrent -> due ms), ARGV[19] the jobs' max_concurrent, "JOB N JOB N"
-- (the caller's definitions, which are those in force: see ARGV[20..]),
-- ARGV[20] the jobs' priorities, "STEPMS FLOOR SETTLEMS TOPPRIO TOPREMAINMS JOB P JOB P" (or
-- "" when every job has the default): the aging step, the least effective priority to claim
-- (-1 for any; see queue.Placement), the settle and the top the caller's ranking round read
-- (parsePriority in lib.lua), and the caller's jobs whose priority is not the default,
-- ARGV[21] unplaced key prefix (.. job: zset of the job's occurrences that no live node
-- may run -> due ms), ARGV[22] the jobs no live node may run, as the caller sees the fleet
-- (its labels and the other nodes' announced ones against the jobs' constraints): lines
-- "JOB\tCONSTRAINTS" ("" for none), ARGV[23] the jobs the caller may not run, its labels
-- failing their constraints, space-separated ("" for none),
-- ARGV[24..] jobs the caller leaves to other nodes: a newer definition than its own is in
-- force (see expand.lua); their entries are neither claimed nor decided by this call
-- Returns one string: "NOWUS EPOCH\nHEAD" then one line per claim "OCC\tATTEMPT\tTOKEN\tNOTBEFORE\tTTL"
--   (TTL: the lease it was given, ms),
--   a line "+share" when the call stopped at its fair share while more was due (the caller
--   lets the others claim before it asks again),
--   and one line per occurrence it recorded without running "!STATUS\tOCC\tREASON", for the
--   caller's log, or "?OCC\tKEY" if a key of the occurrence's own (its lock, its job's
--   history or wait list) holds another type, so that nothing about it could be decided: it
--   is left where it was, due again a lease later, and the rest of the shard goes on.
--   NOTBEFORE is the claimed entry's score: the caller must not start it before Redis' clock
--   reads NOTBEFORE. Claiming a little ahead (the lead) lets a node prepare a burst of runs
--   and start each on time; the start is still never early by Redis' clock, because Redis'
--   time in this reply plus the time elapsed since is a lower bound of Redis' clock.
--   NOWUS is Redis' time in microseconds at the end of the script (a precise lower bound of
--   its clock when the reply arrives); HEAD is when the shard is next worth asking, as the
--   score of an entry claimed ahead ("" when the agenda is empty). EPOCH is the guard's
--   "ID SEQ FROM NOW" (lib.lua).
--
-- Due means score <= NOW by Redis' TIME, never by a node's clock, so a node with a wrong clock
-- cannot fire anything early. Each claim takes the occurrence's lock (SET NX semantics: only
-- when no live lock exists), hands out the job's next fencing token (strictly increasing per
-- job, see nextToken in lib.lua) and remembers it as the occurrence's (KEYS[12]: which
-- completion counts, see complete.lua), counts the attempt, and moves the occurrence's score to the lease's expiry: while the
-- lease lives nobody sees it as due, and if the holder dies it becomes due again by itself.
-- The reply is cached under KEYS[4] so a re-sent call returns the same claims. A call that
-- reaches Redis after its caller's deadline (it sat in a socket while Redis was frozen or
-- slow) claims nothing: nobody would run what it claimed, and the occurrences would wait a
-- whole lease for nothing.
--
-- After Redis lost state (guard in lib.lua) nothing is claimed until the epoch's hold ends:
-- a lease granted before the loss that Redis forgot may still be running, and its holder
-- takes it back by renewing (renew.lua) within the hold. What fell due from the loss to the
-- end of the hold was not claimable: the jobs' catch-up policies apply to it, as after a
-- gap without claim calls.
--
-- The fair share: with several live nodes, whichever wakes first would claim a whole burst
-- (every node wakes at the same head). So a call takes at most its share of what is due
-- (ZCOUNT up to NOW + lead): DUE x FREE / (1 + W), randomly rounded so that no node gains by
-- rounding, where W counts the live nodes expected to come for the same burst: those that
-- have not called this shard within the window, less one per earlier call of the caller's
-- own in the window (a node that yielded and finds the rest still due presumes one more
-- node absent each time, so a burst whose other nodes are gone is taken in at most NODES
-- calls). With W at zero the call takes at least one. A busier node (smaller FREE) takes
-- less, and the last node to come takes the rest. The nodes' calls are kept in KEYS[14],
-- one field per node, dropped a minute after its last call.
--
-- A job's max_concurrent caps its runs at once across the fleet. Its holders are the
-- occurrences claimed for it whose lock is still a live lease (not a done or retry marker,
-- not expired: a holder that died stops counting when its lease runs out, with no completion
-- needed), kept in a set per job and pruned as it is read. An occurrence that would pass the
-- cap leaves the agenda for the job's capped wait zset, keeping its due time, so it neither
-- holds up the entries behind it nor is skipped; each call first moves back as many of the
-- oldest waiting as the jobs have room for (for a job no longer capped, all), and they are
-- claimed, oldest first, like any due entry. Alerts are not runs of their job: never capped.
--
-- Priority: when more is due (up to NOW + lead) than the call may take, or the caller set a
-- floor, the call takes the due entries by effective priority, highest first, then oldest
-- first (rankDue in lib.lua: a job's priority, queue.DefaultPriority for a job the caller did
-- not name, plus one per aging step overdue, capped at queue.MaxPriority), instead of by score
-- alone, and none below the floor. The agenda stays
-- scored by due time, so nothing else changes; only which due entries a call takes. The
-- ranking reads at most rankScan entries, the oldest due: priority orders within them.
-- Otherwise (nothing over what the call may take, or no priorities) the call reads only
-- what it takes, as before.
--
-- The settle: runs claimed together, or by two nodes a moment apart, start in no set order,
-- so a ranked claim of a job of lower priority than one claimed within the last settle
-- (SETTLEMS in ARGV[20]) is told to start no earlier than the settle after that claim (its
-- NOTBEFORE): whether the higher one was claimed by the same call, by an earlier call in the
-- shard (KEYS[17]), or in another shard, as the caller's ranking round read it (TOPPRIO,
-- TOPREMAINMS: what was left of its settle then, counted from this script's clock, since
-- the shards of a Cluster have clocks of their own). Only a call that ranks because its
-- node's capacity, not its fair share, leaves some of what is due behind applies it. So the higher-priority runs of a backlog start first as long as their nodes
-- start them within the settle. The jobs' priorities compare, not the effective ones: a
-- backlog of one priority, whose effective priorities differ by age alone, is not held back.
--
-- Targeting: a caller passes over the entries of the jobs it may not run (ARGV[23]; not
-- their alerts, which run anywhere) as it does over those it leaves to a newer definition:
-- it reads past them for what it may take (at most rankScan entries), and the head it
-- reports passes over them. An entry of a job that no live node may run (ARGV[22]) that is
-- due and not held leaves the agenda for the job's unplaced zset, keeping its due time, is
-- recorded "unplaced" in history once, and is marked as having waited (KEYS[10], "u"): so
-- it neither holds up the entries behind it nor is dropped. Each call by a node that may run
-- such a job moves its unplaced entries back first, and each then runs in its turn, as one
-- added by hand does: it was not missed by a fleet that was down, it waited to be placed, so
-- no catch-up policy drops it and the overlap slot makes it wait rather than skip it. Only
-- the catch-up window bounds the wait: any call records missed, and drops, those older.
--
-- Policies, decided here so that no two nodes can act apart, in this order; an occurrence
-- that is not run is recorded in its job's history by this script and leaves the agenda:
--   cancelled  a newer occurrence replaced it (cancel_other) while nobody ran it;
--   paused     its job is paused fleet-wide: skipped;
--   catch-up   it fell due while no node was calling this shard (the last gap between two
--              calls was longer than queue.Config.Away: the fleet or Redis was down; see
--              guard in lib.lua), or it was
--              added only after it was due (KEYS[10]: no node was expanding), and it was
--              never claimed: missed if older than the job's window, under "none", or under
--              "latest" when the job's next occurrence (KEYS[9]) is due too;
--   overlap    another occurrence of its job holds the job's slot (KEYS[7]) and has not
--              finished: "skip" records it skipped, "buffer_one" and "buffer_all" move it to
--              the job's wait zset (ARGV[7] .. job) until the slot frees, "cancel_other"
--              marks the holder cancelled (renew.lua tells its node) and waits likewise,
--              "allow" ignores the slot. Occurrences added by hand (trigger, backfill) always
--              wait their turn. An entry claimed ahead of its due time is not decided before
--              it is due, since the holder may finish in between: it stays, and HEAD says
--              when to ask again.
--
-- Parts (cron.PartID: PARENT~part-INDEX-of-COUNT, added by fanout.lua once their parent was
-- claimed) are, like alerts, occurrences of their job that none of these policies apply to:
-- the parent was decided by them, and holds the job's overlap slot until its last part ended
-- (active below). A part pinned to a node (broadcast, KEYS[18]) is left to that node while
-- it calls this script (KEYS[19], written by every call) within a lease: a pinned node that
-- died, or stalled for longer, has its part taken over by any node, like a dead holder's
-- occurrence.
--
-- Alerts (cron.AlertID: WATCHED~alert-KIND) are occurrences of their job that none of these
-- policies apply to: they never take or wait for the job's overlap slot, are never missed,
-- cancelled or skipped, and fire while the job is paused (the event happened). A failure
-- alert is added by complete.lua with the failure's record; a missed one here, by record,
-- with the missed record, when the job alerts on missed (KEYS[13]); so each is added by the
-- step that records its event, once. A late watch (added by expand.lua with its occurrence)
-- is decided when due, not ahead, at its first claim: it runs if its job still alerts on
-- late, is not paused, and the watched occurrence has not started, that is was never claimed
-- (no attempt counted) and still waits, on the agenda or for the overlap slot. Otherwise it
-- leaves the agenda without a trace (no history record, no reply line): a watch that found
-- its occurrence on time is not an event. Once claimed, a watch runs on its retries whatever
-- the watched occurrence did since.
local cached = redis.call('GET', KEYS[4])
if cached then return cached end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local lead = tonumber(ARGV[6])
local waitMax = tonumber(ARGV[11])
if now > tonumber(ARGV[5]) then limit = 0 end
local ep = guard(KEYS[11], ARGV[13], now, ARGV[14])
local held = now < ep.hold
redis.call('HSET', KEYS[19], ARGV[10], now)
-- Node names come and go (a default name has the process id): past a few dozen, those
-- silent for a minute are dropped, as in the fair share's hash.
if redis.call('HLEN', KEYS[19]) > 64 then
  local c = redis.call('HGETALL', KEYS[19])
  for i = 1, #c, 2 do
    local last = tonumber(c[i + 1])
    if not last or now - last > 60000 then redis.call('HDEL', KEYS[19], c[i]) end
  end
end
if held then limit = 0 end
-- Fence, attempts, running and tokens: their fields are the claims' (keepTables in lib.lua),
-- and a call that may claim nothing writes none.
if limit > 0 then keepTables({KEYS[2], KEYS[3], KEYS[7], KEYS[12]}) end

-- The last gap without calls to the shard (guard in lib.lua; every call counts as a sign of
-- life, even one that claims nothing).
local awayFrom, awayTo = ep.afrom, ep.ato

-- max_concurrent (see the header): what each capped job holds, and its waiting let back in.
local caps = {}
for j, n in string.gmatch(ARGV[19], '(%S+) (%d+)') do caps[j] = tonumber(n) end
local holding = {}
-- holders returns how many live leases the capped job holds, pruning the others.
local function holders(job)
  local c = holding[job]
  if c then return c end
  c = 0
  local hk = ARGV[17] .. job
  local ms = redis.pcall('SMEMBERS', hk)
  if type(ms) == 'table' and not ms.err then
    for _, o in ipairs(ms) do
      local v = redis.pcall('GET', ARGV[1] .. o)
      if type(v) == 'string' and string.sub(v, 1, 5) ~= 'done:' and string.sub(v, 1, 6) ~= 'retry:' then
        c = c + 1
      else
        redis.call('SREM', hk, o)
      end
    end
  end
  holding[job] = c
  return c
end
if limit > 0 then
  local waiting = redis.call('HKEYS', KEYS[15])
  for _, job in ipairs(waiting) do
    local wk = ARGV[18] .. job
    if redis.call('TYPE', wk).ok ~= 'zset' then
      redis.call('HDEL', KEYS[15], job)
    else
      local room = -1
      if caps[job] then room = caps[job] - holders(job) end
      if room ~= 0 then
        local w = redis.call('ZRANGE', wk, 0, room > 0 and room - 1 or -1, 'WITHSCORES')
        for k = 1, #w, 2 do
          redis.call('ZADD', KEYS[1], w[k + 1], w[k])
          redis.call('ZREM', wk, w[k])
        end
      end
      if redis.call('ZCARD', wk) == 0 then redis.call('HDEL', KEYS[15], job) end
    end
  end
end

-- The fair share (see the header): it lowers limit, and says whether it did.
local capLimit = limit -- before the fair share: what the caller's capacity allows
local shared = false
do
  local nodes, freeShare, rnd, window = string.match(ARGV[16], '^(%d+) (%S+) (%S+) (%d+)$')
  nodes, freeShare, rnd, window = tonumber(nodes), tonumber(freeShare), tonumber(rnd), tonumber(window)
  if limit > 0 and nodes and nodes > 1 and freeShare and rnd and window then
    local dueN = redis.call('ZCOUNT', KEYS[1], '-inf', now + lead)
    if dueN > 0 then
      local me, others, rounds = ARGV[10], 0, 1
      local sh = redis.call('HGETALL', KEYS[14])
      for i = 1, #sh, 2 do
        local last, n = string.match(sh[i + 1], '^(%d+) (%d+)$')
        last, n = tonumber(last), tonumber(n)
        if not last or now - last > 60000 then
          redis.call('HDEL', KEYS[14], sh[i])
        elseif now - last <= window then
          if sh[i] == me then rounds = n + 1 else others = others + 1 end
        end
      end
      redis.call('HSET', KEYS[14], me, string.format('%d %d', now, rounds))
      local waiting = math.max(nodes - others - rounds, 0)
      local x = dueN * math.min(math.max(freeShare, 0), 1) / (1 + waiting)
      local share = math.floor(x)
      if rnd < x - share then share = share + 1 end
      if waiting == 0 then share = math.max(share, 1) end
      if share < limit then
        limit = share
        shared = dueN > share
      end
    end
  end
end

local function parsePolicy(raw)
  local o, c, w = string.match(raw, '^(%S+) (%S+) (%d+)$')
  if o then return {overlap = o, catchup = c, window = tonumber(w)} end
end
local defaultPolicy = parsePolicy(ARGV[12])
local policies = {}
local function policy(job)
  local p = policies[job]
  if p == nil then
    p = parsePolicy(redis.call('HGET', KEYS[6], job) or '') or defaultPolicy
    policies[job] = p
  end
  return p
end

local lines = {}
-- stuck leaves occ, which cannot be decided because key holds another type, a lease (so
-- that it does not hold up the shard's head), and tells the caller.
local function stuck(occ, key)
  redis.call('ZADD', KEYS[1], 'XX', now + lease, occ)
  lines[#lines + 1] = '?' .. occ .. '\t' .. key
end

-- record writes the history record of an occurrence this script decided not to run, due
-- at ms, and forgets it; if it held its job's overlap slot, the slot goes on. If the job's
-- history key holds another type, the occurrence is stuck instead; record returns false.
local function record(occ, job, at, status, reason)
  local rec = cjson.encode({occurrence = occ, job = job, node = ARGV[10],
    attempt = tonumber(redis.call('HGET', KEYS[3], occ) or '0'), fencing_token = 0,
    scheduled_at = iso(at), started_at = iso(now), ended_at = iso(now), status = status, error = reason})
  local hk = ARGV[8] .. job
  if not pushHistory(hk, rec, tonumber(ARGV[9])) then
    stuck(occ, hk)
    return false
  end
  lines[#lines + 1] = '!' .. status .. '\t' .. occ .. '\t' .. string.gsub(reason, '[\t\r\n]', ' ')
  forget(KEYS[1], {KEYS[3], KEYS[12], KEYS[8], KEYS[9], KEYS[10]}, occ)
  free(KEYS[7], KEYS[1], ARGV[7], job, occ)
  if status == 'missed' and alertsOn(redis.call('HGET', KEYS[13], job), 'missed') then
    redis.call('ZADD', KEYS[1], 'NX', now, occ .. '~alert-missed')
  end
  return true
end

-- active returns the occurrence holding job's overlap slot, if it has not finished: on the
-- agenda, or replaced by parts that have not all ended. A slot whose holder left the agenda
-- without a completion (it cannot, short of a lost key) goes to the first waiting
-- occurrence, or is freed.
local function active(job)
  local r = redis.call('HGET', KEYS[7], job)
  if r and (redis.call('ZSCORE', KEYS[1], r) or redis.call('HEXISTS', KEYS[18], r) == 1) then return r end
  if r and free(KEYS[7], KEYS[1], ARGV[7], job, r) == 1 then return redis.call('HGET', KEYS[7], job) end
  return nil
end

local function pauseReason(raw)
  local ok, p = pcall(cjson.decode, raw)
  if not ok or type(p) ~= 'table' then return 'job paused' end
  local r = 'job paused'
  if type(p.by) == 'string' and p.by ~= '' then r = r .. ' by ' .. p.by end
  if type(p.at) == 'string' and p.at ~= '' then r = r .. ' at ' .. p.at end
  if type(p.note) == 'string' and p.note ~= '' then r = r .. ': ' .. p.note end
  return r
end

local deferred, ndeferred, hold = {}, 0, nil

-- What the caller passes over (see Targeting in the header).
local yield, inel, unplacedJobs = {}, words(ARGV[23]), {}
for k = 24, #ARGV do yield[ARGV[k]] = true end
for j, c in string.gmatch(ARGV[22], '([^\t\n]+)\t([^\n]*)') do unplacedJobs[j] = c end
-- Parts pinned to a node are passed over by the others while it calls (see Parts above).
local passOver, anyPass = passing(yield, inel, KEYS[18], KEYS[19], ARGV[10], now, lease)
-- At most this many unplaced entries are let back, recorded missed or unplaced per job and
-- call: the rest at the next calls, so that no call holds Redis long.
local unplacedBatch = 1000

-- The unplaced entries (see the header): back to the agenda for a caller that may run
-- their job, missed past their job's catch-up window for any.
if limit > 0 then
  for _, job in ipairs(redis.call('HKEYS', KEYS[16])) do
    local uk = ARGV[21] .. job
    if redis.call('TYPE', uk).ok ~= 'zset' then
      redis.call('HDEL', KEYS[16], job)
    else
      if not inel[job] and not yield[job] then
        local w = redis.call('ZRANGE', uk, 0, unplacedBatch - 1, 'WITHSCORES')
        for k = 1, #w, 2 do
          redis.call('ZADD', KEYS[1], w[k + 1], w[k])
          redis.call('ZREM', uk, w[k])
        end
      elseif not yield[job] then
        -- A job left to a newer definition is decided by the nodes that have it.
        local p = policy(job)
        local old = redis.call('ZRANGEBYSCORE', uk, '-inf', now - p.window - 1, 'WITHSCORES', 'LIMIT', 0, unplacedBatch)
        for k = 1, #old, 2 do
          local occ, c = old[k], unplacedJobs[job] or 'its constraints'
          local v = redis.pcall('GET', ARGV[1] .. occ)
          if type(v) == 'string' and string.sub(v, 1, 6) ~= 'retry:' and string.sub(v, 1, 5) ~= 'done:' then
            -- Its holder took its lease back (renew.lua): it runs, and is not missed.
            redis.call('ZADD', KEYS[1], 'NX', old[k + 1], occ)
            redis.call('ZREM', uk, occ)
          elseif type(v) ~= 'table' and record(occ, job, tonumber(old[k + 1]), 'missed', 'missed: no live node could run it (' .. c ..
              ') within its catch-up window (' .. math.floor(p.window / 1000) .. 's)') then
            redis.call('ZREM', uk, occ)
          end
        end
      end
      if redis.call('EXISTS', uk) == 0 then redis.call('HDEL', KEYS[16], job) end
    end
  end
end

-- unplace moves occ, due at score, of a job no live node may run, to the job's unplaced
-- zset, with a record once; false if it must stay (held, or a key holds another type).
local function unplace(occ, job, score)
  local v = redis.pcall('GET', ARGV[1] .. occ)
  if type(v) == 'table' or (v and string.sub(v, 1, 6) ~= 'retry:') then return false end
  -- Expired during an outage: its holder may still report (the settle, as below).
  if not v and now < ep.settle and redis.call('HEXISTS', KEYS[12], occ) == 1 then return false end
  local uk = ARGV[21] .. job
  local ut = redis.call('TYPE', uk).ok
  if ut ~= 'zset' and ut ~= 'none' then return false end
  local rec = cjson.encode({occurrence = occ, job = job, node = ARGV[10],
    attempt = tonumber(redis.call('HGET', KEYS[3], occ) or '0'), fencing_token = 0,
    scheduled_at = iso(score), started_at = iso(now), ended_at = iso(now), status = 'unplaced',
    error = 'no live node may run it (' .. unplacedJobs[job] .. '): it waits for one, within its catch-up window'})
  if not pushHistory(ARGV[8] .. job, rec, tonumber(ARGV[9])) then return false end
  redis.call('ZREM', KEYS[1], occ)
  redis.call('ZADD', uk, score, occ)
  redis.call('HSET', KEYS[16], job, 1)
  redis.call('HSET', KEYS[10], occ, 'u') -- waited to be placed: see the header
  lines[#lines + 1] = '!unplaced\t' .. occ .. '\t' .. string.gsub(unplacedJobs[job], '[\t\r\n]', ' ')
  return true
end

-- The due entries this call may take. Those it passes over are deferred (the head passes
-- over them) or, due and of a job no live node may run, unplaced.
local rankScan = 10000
local passed = {}
local due = {}
local pr = parsePriority(ARGV[20])
local prioOf = nil -- a ranked call's entries' priorities (their jobs'), for the settle
local cut = false -- the due entries' scan stopped at rankScan with more due
local dueCount = 0
if limit > 0 and pr then dueCount = redis.call('ZCOUNT', KEYS[1], '-inf', now + lead) end
if limit > 0 and pr and (pr.floor >= 0 or dueCount > limit) then
  local entries, counts
  entries, counts, cut = rankDue(KEYS[1], now, now + lead, pr, rankScan, anyPass and passOver, passed)
  -- The settle only where the caller's capacity, not its fair share, left some due behind.
  if pr.floor >= 0 or dueCount > capLimit then prioOf = {} end
  for _, e in ipairs(topRanked(entries, counts, limit, pr.floor)) do
    due[#due + 1] = e[1]
    due[#due + 1] = e[2]
    if prioOf then prioOf[e[1]] = pr.jobs[split(e[1])] or DEFAULT_PRIORITY end
  end
elseif limit > 0 and anyPass then
  local off, batch = 0, math.max(limit, 500)
  while #due < 2 * limit and off < rankScan do
    local r = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now + lead, 'WITHSCORES', 'LIMIT', off, batch)
    for k = 1, #r, 2 do
      if passOver(r[k]) then
        passed[#passed + 1] = {r[k], r[k + 1]}
      elseif #due < 2 * limit then
        due[#due + 1] = r[k]
        due[#due + 1] = r[k + 1]
      end
    end
    if #r < 2 * batch then break end
    off = off + batch
  end
  cut = off >= rankScan
elseif limit > 0 then
  due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now + lead, 'WITHSCORES', 'LIMIT', 0, limit)
end
local nUnplaced = 0
for _, e in ipairs(passed) do
  local occ, score = e[1], tonumber(e[2])
  local job = split(occ)
  -- A part waits for a node that may run it without a record: its occurrence was decided,
  -- and its end belongs to its parent's join.
  local moved = unplacedJobs[job] and not yield[job] and score <= now and nUnplaced < unplacedBatch
    and not alertOf(occ) and not partOf(occ) and unplace(occ, job, score)
  if moved then
    nUnplaced = nUnplaced + 1
  else
    deferred[occ] = true
    ndeferred = ndeferred + 1
  end
end

-- The settle (see the header): the highest priority this call granted so far (it grants in
-- rank order), and that of the shard's recent ranked claims, with when its settle ends.
local markTop, markUntil, granted = -1, 0, -1
if prioOf then
  local e, ms = string.match(redis.call('GET', KEYS[17]) or '', '^(%d+) (%d+)$')
  if e then markTop, markUntil = tonumber(e), tonumber(ms) + pr.settle end
end
-- notBefore is when occ, due at score, may start: its score, or later by the settle.
local function notBefore(occ, score)
  local e = prioOf and prioOf[occ]
  if not e then return score end
  local nb = score
  if granted > e then nb = math.max(nb, now + pr.settle) end
  if markTop > e then nb = math.max(nb, markUntil) end
  if pr.topPrio > e then nb = math.max(nb, now + pr.topRemain) end
  return nb
end

-- grant claims occ (due entry d of the call), due at score: its lock, its job's next
-- fencing token, an attempt, and a lease on the agenda.
local aheadGrace = tonumber(ARGV[15])
-- The numbers a grant passes on are strings, made once per call where they can be: Redis
-- formats a Lua number given to a command with printf, and Lua one joined to a string.
local leaseMs, leaseEnd = ARGV[2], string.format('%d', now + lease)
local function grant(occ, job, score, lk, d)
  local attempt = redis.call('HINCRBY', KEYS[3], occ, '1')
  local token = nextToken(KEYS[2], job, now)
  redis.call('HSET', KEYS[12], occ, token)
  local nb = notBefore(occ, score)
  local ttl, ttls, ends = lease, leaseMs, leaseEnd
  if nb > now then
    ttl = math.min(lease, nb - now + aheadGrace)
    ttls, ends = string.format('%d', ttl), string.format('%d', now + ttl)
  end
  redis.call('SET', lk, token, 'PX', ttls)
  redis.call('ZADD', KEYS[1], 'XX', ends, occ)
  local nbs = due[d + 1]
  if nb ~= score then nbs = string.format('%d', nb) end
  lines[#lines + 1] = occ .. '\t' .. string.format('%d', attempt) .. '\t' .. token .. '\t' .. nbs .. '\t' .. ttls
  if prioOf and prioOf[occ] then granted = math.max(granted, prioOf[occ]) end
end

-- Most of the time no job is paused, nothing is cancelled and nothing was added late: then
-- no claim needs to look.
local anyPaused = #due > 0 and redis.call('HLEN', KEYS[5]) > 0

-- lateFires tells whether the late watch of watched, an occurrence of job, alerts: see the
-- header. A release gives its attempt back, so an attempt count of 0 is no start.
local function lateFires(job, watched, occ)
  if tonumber(redis.call('HGET', KEYS[3], occ) or '0') > 0 then return true end
  if anyPaused and redis.call('HEXISTS', KEYS[5], job) == 1 then return false end
  if not alertsOn(redis.call('HGET', KEYS[13], job), 'late') then return false end
  if tonumber(redis.call('HGET', KEYS[3], watched) or '0') > 0 then return false end
  if redis.call('ZSCORE', KEYS[1], watched) then return true end
  -- Still waiting: for the overlap slot, room under max_concurrent, or a node that may run it.
  for _, wk in ipairs({ARGV[7] .. job, ARGV[18] .. job, ARGV[21] .. job}) do
    if redis.call('TYPE', wk).ok == 'zset' and redis.call('ZSCORE', wk, watched) ~= false then return true end
  end
  return false
end
local anyCancel = #due > 0 and redis.call('HLEN', KEYS[8]) > 0
local anyLate = #due > 0 and redis.call('HLEN', KEYS[10]) > 0
for d = 1, #due, 2 do
  local occ, score = due[d], tonumber(due[d + 1])
  local lk = ARGV[1] .. occ
  local v = redis.pcall('GET', lk)
  local job, manual = split(occ)
  if type(v) == 'table' and v.err then
    stuck(occ, lk)
  elseif (v and string.sub(v, 1, 6) ~= 'retry:' and string.sub(v, 1, 5) ~= 'done:')
      or (not v and now < ep.settle and redis.call('HEXISTS', KEYS[12], occ) == 1) then
    -- Expired during an outage, and nobody claimed it since: its holder may still report
    -- (see settle in lib.lua). Look again when the settle ends.
    if not v then
      redis.call('ZADD', KEYS[1], 'XX', ep.settle, occ)
    else
    -- Still held (its holder renews it): look again when that lease would expire.
    -- PTTL is 0 for a lock expiring within the millisecond (look again at once), -1 for a
    -- lock without expiry (never written by cronfleet: give it a lease).
    local ttl = redis.call('PTTL', lk)
    if ttl < 0 then ttl = lease elseif ttl < 1 then ttl = 1 end
    redis.call('ZADD', KEYS[1], 'XX', now + ttl, occ)
    end
  elseif alertOf(occ) then
    local watched, kind = alertOf(occ)
    if kind ~= 'late' then
      grant(occ, job, score, lk, d)
    elseif score > now then
      -- Decided when due: the watched occurrence may start in between.
      deferred[occ] = true
      ndeferred = ndeferred + 1
      if hold == nil or score < hold then hold = score end
    elseif lateFires(job, watched, occ) then
      grant(occ, job, score, lk, d)
    else
      forget(KEYS[1], {KEYS[3], KEYS[12]}, occ)
    end
  elseif partOf(occ) then
    -- One pinned to another live node was passed over (pinnedElsewhere).
    grant(occ, job, score, lk, d)
  else
    local p = policy(job)
    local away = (awayTo > 0 and score > awayFrom and score <= awayTo) or (ep.hold > 0 and score > ep.lost and score <= ep.hold)
    local lateV = anyLate and redis.call('HGET', KEYS[10], occ)
    -- One that waited for a node that may run it (Targeting) takes its turn as one added by
    -- hand does: neither a catch-up policy nor an overlap skip drops it.
    local waited = lateV == 'u'
    local queued = manual or waited
    local status, why = 'skipped', nil
    local replacedBy = anyCancel and redis.call('HGET', KEYS[8], occ)
    local pause = anyPaused and redis.call('HGET', KEYS[5], job)
    if replacedBy then
      status, why = 'cancelled', 'cancelled: ' .. replacedBy .. ' replaced it (overlap cancel_other)'
    elseif pause then
      why = pauseReason(pause)
    elseif waited and now - score > p.window then
      status, why = 'missed', 'missed: it waited for a node that may run it for longer than its catch-up window (' .. math.floor(p.window / 1000) .. 's)'
    elseif not queued and (away or lateV)
        and not redis.call('HGET', KEYS[3], occ) then -- never claimed: its catch-up is open
      local when = 'it fell due while no node was running'
      if ep.hold > 0 and score > ep.lost and score <= ep.hold then
        when = 'Redis lost its state and claims were held from ' .. iso(ep.lost) .. ' to ' .. iso(ep.hold)
      elseif away then
        when = 'no node was claiming from ' .. iso(awayFrom) .. ' to ' .. iso(awayTo)
      end
      if now - score > p.window then
        status, why = 'missed', 'missed: ' .. when .. ', and it is older than the catch-up window (' .. math.floor(p.window / 1000) .. 's)'
      elseif p.catchup == 'none' then
        status, why = 'missed', 'missed: ' .. when .. ' (catchup none)'
      elseif p.catchup == 'latest' then
        local nx = tonumber(redis.call('HGET', KEYS[9], occ) or '')
        if nx and nx <= now then
          status, why = 'missed', 'missed: ' .. when .. ', and a later occurrence is due too (catchup latest)'
        end
      end
    end
    local run = why == nil
    if why then
      record(occ, job, score, status, why)
    elseif caps[job] and holders(job) >= caps[job] then
      run = false
      local ck = ARGV[18] .. job
      local ct = redis.call('TYPE', ck).ok
      if ct ~= 'zset' and ct ~= 'none' then
        stuck(occ, ck)
      else
        -- Its catch-up was decided: once let back in, it runs.
        redis.call('HDEL', KEYS[10], occ)
        redis.call('ZREM', KEYS[1], occ)
        redis.call('ZADD', ck, score, occ)
        redis.call('HSET', KEYS[15], job, 1)
      end
    elseif p.overlap ~= 'allow' then
      local x = active(job)
      if not x then
        redis.call('HSET', KEYS[7], job, occ)
      elseif x ~= occ then
        run = false
        local wk = ARGV[7] .. job
        local busy = x .. ' was still running'
        local wt = redis.call('TYPE', wk).ok
        if wt ~= 'zset' and wt ~= 'none' then
          stuck(occ, wk)
        elseif score > now then
          deferred[occ] = true
          ndeferred = ndeferred + 1
          if hold == nil or score < hold then hold = score end
        elseif p.overlap == 'skip' and not queued then
          record(occ, job, score, 'skipped', 'skipped: ' .. busy .. ' (overlap skip)')
        elseif p.overlap == 'buffer_one' and not queued and redis.call('ZCARD', wk) > 0 then
          record(occ, job, score, 'skipped', 'skipped: ' .. busy .. ' and another occurrence already waited (overlap buffer_one)')
        elseif redis.call('ZCARD', wk) >= waitMax then
          record(occ, job, score, 'skipped', 'skipped: ' .. busy .. ' and ' .. waitMax .. ' occurrences already waited')
        else
          if p.overlap == 'cancel_other' and not queued then
            -- Only the newest runs next: those waiting for the cancellation give way.
            local w = redis.call('ZRANGE', wk, 0, -1, 'WITHSCORES')
            for k = 1, #w, 2 do
              local wocc = w[k]
              if not select(2, split(wocc)) and record(wocc, job, tonumber(w[k + 1]), 'skipped', 'skipped: ' .. occ .. ' replaced it before it started (overlap cancel_other)') then
                redis.call('ZREM', wk, wocc)
              end
            end
            redis.call('HSET', KEYS[8], x, occ)
            -- A holder that is not running it (waiting for a retry, or its node gone and
            -- its lock expired) learns it at its next claim: make that now.
            local xv = redis.call('GET', ARGV[1] .. x)
            if not xv or string.sub(xv, 1, 6) == 'retry:' then
              redis.call('ZADD', KEYS[1], 'XX', now, x)
            end
          end
          -- Its catch-up was decided: once let in, it runs.
          redis.call('HDEL', KEYS[10], occ)
          redis.call('ZREM', KEYS[1], occ)
          redis.call('ZADD', wk, score, occ)
        end
      end
    end
    if run then
      grant(occ, job, score, lk, d)
      if caps[job] then
        local c = holders(job)
        redis.call('SADD', ARGV[17] .. job, occ)
        holding[job] = c + 1
      end
    end
  end
end
-- The shard's top, for the settle of the next ranked calls (see the header).
if granted >= 0 and granted >= markTop then
  redis.call('SET', KEYS[17], string.format('%d %d', granted, now), 'PX', pr.settle)
end
-- The head: the first entry not left for its due time; those are asked for again when due
-- (HEAD is a score from which the caller claims ahead by the lead).
local h = nil
local head = redis.call('ZRANGE', KEYS[1], 0, ndeferred, 'WITHSCORES')
for k = 1, #head, 2 do
  if not deferred[head[k]] then
    h = tonumber(head[k + 1])
    break
  end
end
if hold and (h == nil or h > hold + lead) then h = hold + lead end
if held and h ~= nil and h < ep.hold then h = ep.hold end
-- Past the entries a call reads, the head may be one it passes over: due, and asked for again
-- at once, for ever. Then it is asked for at the pace of a node's idle poll instead.
if cut and h ~= nil and h <= now + lead then h = math.max(h, now + 1000) end
local hs = ''
if h then hs = string.format('%d', h) end
-- Redis' time now, at the end of the script: the tightest lower bound of its clock when the
-- reply arrives (what was due was decided at the start, above).
local t2 = redis.call('TIME')
local reply = t2[1] .. string.format('%06d', tonumber(t2[2])) .. ' ' .. ep.reply .. '\n' .. hs
if shared then lines[#lines + 1] = '+share' end
if #lines > 0 then reply = reply .. '\n' .. table.concat(lines, '\n') end
redis.call('SET', KEYS[4], reply, 'PX', tonumber(ARGV[4]))
return reply
