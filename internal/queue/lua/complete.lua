-- complete.lua: finish or reschedule occurrences, only for the holder of their lease
-- (compare-and-delete), and record the run in the job's history.
--
-- KEYS[1] agenda (zset), KEYS[2] attempts (hash), KEYS[3] running (hash job -> occurrence),
-- KEYS[4] cancel (hash occurrence -> the one replacing it), KEYS[5] next (hash), KEYS[6] late (hash),
-- KEYS[7] epoch (hash, see guard in lib.lua), KEYS[8] tokens (hash occ -> last token),
-- KEYS[9] deps (hash "OCC\tJOB" -> the entry that runs JOB after OCC, drained by join.lua),
-- KEYS[10] fan (hash: the occurrences replaced by their parts; see fanout.lua), KEYS[11]
-- unplaced (hash job -> 1 while occurrences of the job wait in its unplaced zset; see claim.lua)
-- ARGV[1] lock key prefix, ARGV[2] history key prefix, ARGV[3] history length,
-- ARGV[4] marker TTL (ms), ARGV[5] wait key prefix, ARGV[6] the shard's epoch as the caller
-- knows it, ARGV[7] the guard's parameters ("HOLD SETTLEAFTER", ms), ARGV[8] lease (ms),
-- ARGV[9] unplaced key prefix (see claim.lua: an occurrence whose holder's lease ran out may
-- have been moved there meanwhile; done, it leaves it too), then groups of 9: occurrence id, job, token, attempt, action ("done" | "retry" |
-- "release" | "redo" | "reretry"), delay (ms; for "reretry" the instant, ms), history record
-- ("" for none), alert (an alert's id, cron.AlertID, added to the agenda due now when a
-- "done" is applied: the run failed for good and its job alerts on failure; "" for none),
-- dependents (lines "JOB\t…", one per job after this one whose after block this end
-- concerns, written to KEYS[9] when a "done" is applied; "" for none)
-- Returns: the guard's "ID SEQ FROM NOW", then for each group 1 if applied (now or by an
-- earlier identical call), 0 if refused because the caller no longer holds the lease, 2 if
-- applied and the job's overlap slot went to a waiting occurrence, which is due now, -1 if
-- nothing was applied because the job's history key holds another type.
--
-- Which completions count: the caller's, if its token is the lock's value (its lease is
-- live), or if its lease expired and nobody claimed the occurrence since: the occurrence's
-- last token (KEYS[8]) is still the caller's. Then the caller's run was the only one, and
-- recording it is exactly once, not a duplicate; this matters after a Redis outage, when
-- finished runs could not be recorded before their leases ran out. Anything else is refused:
-- a later claim exists, whether it is running, done, or gave its attempt back ("release"
-- does not make an older holder's completion count again). Right after Redis lost state
-- (until a lease past the guard's hold) a completion also counts when Redis forgot the
-- occurrence's token: nobody could claim it meanwhile.
--
-- The lock is replaced by a marker "done:TOKEN" or "retry:TOKEN" that lives a little while,
-- so when go-redis re-sends a call whose reply was lost, the second run sees its own marker
-- and answers 1 again instead of reporting a lost lease. "done" removes the occurrence from
-- the agenda for good (the expansion watermark keeps it from coming back) and frees its
-- job's overlap slot; "retry" makes it due again after the delay, when the next claim counts
-- attempt + 1 (claims take over a retry marker); "release" does the same but gives the
-- attempt back: the holder did not run it. An occurrence waiting for a retry still holds its
-- job's overlap slot: it has not finished.
--
-- "redo" and "reretry" write back what a node had completed when Redis lost state since (the
-- guard's recovery, see queue/guard.go): applied unless the occurrence finished or a later
-- claim exists, so an occurrence that finished is not run again from a restored snapshot.
-- "reretry" puts an occurrence waiting for a retry back on the agenda at its instant.
--
-- The failure alert is added by the same step that records the failure, so no node can die
-- between the two, and only by the completion that counts, so it is added once: a re-sent
-- call finds its done marker, and the occurrence never comes back. A write-back ("redo")
-- adds none: Redis lost state, and what it forgot may include an alert that already ran;
-- an alert is at most once across such a loss.
--
-- The jobs that run after this one may live in other shards, which a script cannot reach on
-- Redis Cluster; so the completion that counts writes what they need into its own shard's
-- deps outbox, in the same step, and nodes carry it over (join.lua) and then delete it. A
-- write-back adds none, as it adds no alert.
--
-- The join: a part (cron.PartID) that ends for good ("done") is counted for its parent in
-- KEYS[10], once (its index's field is set only if absent), in the step that records it.
-- The completion that ends the last part also ends the parent, as the parent's own "done"
-- would: its record (succeeded if every part succeeded, else failed, naming the parts that
-- did not), its failure alert, its dependents, its done marker, and its job's overlap slot,
-- with what fanout.lua kept in the join's state. A write-back ("redo") of a part counts too,
-- or a parent whose join Redis partly forgot would keep its job's overlap slot for ever;
-- as a write-back adds no alert and no dependents, the parent it ends adds none either.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hlen = tonumber(ARGV[3])
-- Passed on as the caller's string: Redis formats a Lua number given to a command with
-- printf, a cost each occurrence paid for nothing.
local marker_ttl = ARGV[4]

-- What an occurrence that ends leaves behind: its fields in the per-occurrence hashes. Most
-- of the time nothing is cancelled, nothing was added late and nothing waits to be placed:
-- those hashes are then empty, nothing here adds to them, and the occurrences need no
-- command each for them. (A key of another type is left to the command that would fail.)
local ended = {KEYS[2], KEYS[8], KEYS[5]}
for _, k in ipairs({KEYS[4], KEYS[6]}) do
  local n = redis.pcall('HLEN', k)
  if type(n) ~= 'number' or n > 0 then ended[#ended + 1] = k end
end
local unplaced = redis.pcall('HLEN', KEYS[11])
local anyUnplaced = type(unplaced) ~= 'number' or unplaced > 0

-- join counts the end of part index of parent, whose record (JSON) says how it ended, and
-- ends parent with the last, with its alert and dependents when effects. Returns 1 if that
-- let a waiting occurrence have the job's overlap slot, else 0.
local function join(parent, job, index, record, effects)
  local raw = redis.call('HGET', KEYS[10], parent)
  if not raw then return 0 end
  local status = 'failed'
  local okr, r = pcall(cjson.decode, record)
  if okr and type(r) == 'table' and type(r.status) == 'string' then status = r.status end
  if redis.call('HSETNX', KEYS[10], parent .. '\t' .. index, status) == 0 then return 0 end
  local st = cjson.decode(raw)
  local n = tonumber(st.n)
  if redis.call('HINCRBY', KEYS[10], parent .. '\t#', 1) < n then return 0 end
  local bad, fields = {}, {parent, parent .. '\t#'}
  for i = 0, n - 1 do
    local ps = redis.call('HGET', KEYS[10], parent .. '\t' .. i)
    if ps ~= 'succeeded' then bad[#bad + 1] = 'part ' .. i .. ' ' .. (ps or 'lost') end
    fields[#fields + 1] = parent .. '\t' .. i
  end
  local rec = {occurrence = parent, job = job, node = st.node, attempt = tonumber(st.attempt), fencing_token = 0,
    scheduled_at = st.at, started_at = st.started, ended_at = iso(now), status = 'succeeded',
    message = 'all ' .. n .. ' parts succeeded'}
  if #bad > 0 then
    rec.status, rec.message = 'failed', nil
    rec.error = #bad .. ' of ' .. n .. ' parts did not succeed: ' .. table.concat(bad, ', ')
  end
  -- cjson rounds numbers to fewer digits than a token has.
  local enc = string.gsub(cjson.encode(rec), '"fencing_token":0', '"fencing_token":' .. st.token, 1)
  pushHistory(ARGV[2] .. job, enc, hlen)
  redis.call('HDEL', KEYS[10], unpack(fields))
  forget(KEYS[1], ended, parent)
  redis.call('SET', ARGV[1] .. parent, 'done:' .. st.token, 'PX', marker_ttl)
  if effects and #bad > 0 and st.alert ~= '' then redis.call('ZADD', KEYS[1], 'NX', now, st.alert) end
  local lines = st.ok
  if #bad > 0 then lines = st.ko end
  if not effects then lines = '' end
  for line in string.gmatch(lines, '[^\n]+') do
    redis.call('HSET', KEYS[9], parent .. '\t' .. string.match(line, '^[^\t]*'), line)
  end
  return free(KEYS[3], KEYS[1], ARGV[5], job, parent)
end
local ep = guard(KEYS[7], ARGV[6], now, ARGV[7])
local recovering = ep.hold > 0 and now <= ep.hold + tonumber(ARGV[8])
local out = {ep.reply}
for i = 10, #ARGV, 9 do
  local occ, job, token, attempt = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local action, delay, record, alert = ARGV[i + 4], tonumber(ARGV[i + 5]), ARGV[i + 6], ARGV[i + 7]
  local lk = ARGV[1] .. occ
  local v = redis.call('GET', lk)
  local redo = action == 'redo' or action == 'reretry'
  local ok = not redo and v == token -- the common case, decided without the token hash
  if not ok and (redo or not v) then
    local tk = redis.call('HGET', KEYS[8], occ)
    if redo then
      -- The lock may still be this claim's own, when the state lost only what came after it.
      ok = (v == token or older(v, token)) and (not tk or tonumber(tk) <= tonumber(token))
    else
      ok = tk == token or (recovering and not tk)
    end
  end
  if ok and record ~= '' and not pushHistory(ARGV[2] .. job, record, hlen) then
    -- History first: its key holds another type, so nothing of this one is applied.
    out[#out + 1] = -1
  elseif ok then
    local res = 1
    if action == 'done' or action == 'redo' then
      forget(KEYS[1], ended, occ)
      if anyUnplaced then redis.pcall('ZREM', ARGV[9] .. job, occ) end
      redis.call('SET', lk, 'done:' .. token, 'PX', marker_ttl)
      res = res + free(KEYS[3], KEYS[1], ARGV[5], job, occ)
      if action == 'done' and alert ~= '' then redis.call('ZADD', KEYS[1], 'NX', now, alert) end
      if action == 'done' then
        for line in string.gmatch(ARGV[i + 8], '[^\n]+') do
          redis.call('HSET', KEYS[9], occ .. '\t' .. string.match(line, '^[^\t]*'), line)
        end
      end
      local parent, index = partOf(occ)
      if parent then
        redis.call('HDEL', KEYS[10], occ)
        res = math.max(res, 1 + join(parent, job, index, record, action == 'done'))
      end
    elseif action == 'reretry' then
      redis.call('ZADD', KEYS[1], 'NX', delay, occ)
      if tonumber(redis.call('HGET', KEYS[2], occ) or '0') < tonumber(attempt) then
        redis.call('HSET', KEYS[2], occ, attempt)
      end
      redis.call('HSET', KEYS[8], occ, token)
      redis.call('SET', lk, 'retry:' .. token, 'PX', marker_ttl)
      if not alertOf(occ) and not partOf(occ) and not redis.call('HGET', KEYS[3], job) then redis.call('HSET', KEYS[3], job, occ) end
    else
      if action == 'release' then redis.call('HINCRBY', KEYS[2], occ, -1) end
      if delay < 1 then delay = 1 end
      redis.call('ZADD', KEYS[1], 'XX', now + delay, occ)
      redis.call('SET', lk, 'retry:' .. token, 'PX', marker_ttl)
    end
    out[#out + 1] = res
  elseif v == 'done:' .. token or v == 'retry:' .. token or redo then
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
