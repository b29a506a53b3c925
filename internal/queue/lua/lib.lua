-- lib.lua: functions shared by the agenda scripts (claim, complete, renew, expand). queue.go
-- prepends this file to each of them, so all apply the same rules (the guard, the token
-- rule, what forgetting an occurrence means); it defines functions only. Before it, queue.go
-- writes the Go constants the scripts share (scriptConstants): DEFAULT_PRIORITY and
-- MAX_PRIORITY are queue.DefaultPriority and queue.MaxPriority.

-- iso formats a Unix time in ms as RFC 3339 UTC with milliseconds, as Go's encoding/json
-- reads a time.Time: Redis' Lua has no date functions (civil-from-days arithmetic).
local function iso(ms)
  local s = math.floor(ms / 1000)
  local days = math.floor(s / 86400)
  local rem = s - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d,
    math.floor(rem / 3600), math.floor(rem % 3600 / 60), rem % 60, ms % 1000)
end

-- free gives up job's overlap slot, if occ holds it, to the first of the job's waiting
-- occurrences (its wait zset, waitPrefix .. job): that one goes back to the agenda at its
-- own due time, which has passed, so it is claimed at once, and holds the slot from now on,
-- so nothing that falls due meanwhile overtakes it. Returns 1 if one was let in.
local function free(running, agenda, waitPrefix, job, occ)
  if redis.call('HGET', running, job) ~= occ then return 0 end
  -- A wait list of another type holds no waiting occurrence: the slot is freed (claim.lua
  -- reports the key when an occurrence would wait in it).
  local w = redis.pcall('ZPOPMIN', waitPrefix .. job)
  if w.err then w = {} end
  if w[1] then
    redis.call('ZADD', agenda, w[2], w[1])
    redis.call('HSET', running, job, w[1])
    return 1
  end
  redis.call('HDEL', running, job)
  return 0
end

-- guard checks that Redis still holds the shard's state as the caller last saw it, and
-- counts this call. The shard's epoch (key: a hash) has an id, fixed when the epoch began,
-- and seq, which every guarded call bumps; the caller knows the id and the highest seq it
-- was answered, and names itself ("ID SEQ NODE"; "- 0 NODE" when it knows nothing yet, a new
-- node; "" when the guard is off; a caller of an earlier version sends "ID SEQ" alone). Each
-- named caller's seq is kept apart too (field n:NODE): only its own calls write it, so it is
-- never below what the caller was answered unless Redis lost the caller's writes. The seq
-- alone cannot show that: after a failover to a replica that missed one call, another node's
-- call bumps the seq back to where it was, and the caller that made the lost call would
-- find nothing amiss. Redis lost state when the epoch vanished while the caller knew one (a
-- restart without persistence, FLUSHALL, a new empty server), or when the seq or the
-- caller's own seq is below what the caller was answered (a restore of an older snapshot, a
-- failover to a replica that missed writes). The call that finds so begins a new epoch,
-- remembering since when (lost), until when claims are held (hold: every lease granted
-- before the loss has expired or been taken back by its holder by then) and what state it
-- found (from: the time of its last guarded write, 0 when nothing was left; previd and
-- prevseq: its epoch, "-" and 0 when nothing was left; p:NODE: each caller's own seq in it),
-- so that nodes can tell exactly which of their writes it holds: a named caller is answered
-- its own p:NODE as prevseq (0 when the state held none of its writes). The other nodes
-- learn of the loss from the new id.
-- A gap without any guarded call longer than settleAfter means the shard was unreachable
-- (Redis restarted or failed over; nodes call each shard of their jobs every second): the
-- holders of leases that expired meanwhile could not renew them or report their runs, so
-- for a while (settle: as long as the gap, at least settleMin, at most holdFor) a lease that
-- expired without a later claim still counts as held (claim.lua). Holders that are alive
-- renew or complete it; those that are not are taken over at the end of the settle.
-- Returns the epoch as a table, and as the string "ID SEQ FROM NOW PREVID PREVSEQ" for the
-- caller.
-- The same gap, if longer than away (queue.Config.Away), is remembered (afrom, ato) as a time
-- when no node was calling: what fell due then was missed by the fleet, and the jobs'
-- catch-up policies apply to it (claim.lua).
-- params is "HOLD SETTLEAFTER AWAY" (ms): the hold after a loss (a lease), the gap that makes
-- a settle (queue.Config.SettleAfter), and the gap that counts as the fleet away.
local settleMin = 2000
local function guard(key, known, now, params)
  local holdFor, settleAfter, away = string.match(params, '^(%d+) (%d+) (%d+)$')
  holdFor, settleAfter, away = tonumber(holdFor), tonumber(settleAfter), tonumber(away)
  local kid, kseq, knode = string.match(known, '^(%S+) (%d+) ?(.*)$')
  if kid == '-' then kid = nil end
  -- A caller that does not name itself asks for fields "n:" and "p:", which never exist.
  local own = 'n:' .. (knode or '')
  local e = redis.call('HMGET', key, 'id', 'seq', 'at', 'lost', 'hold', 'from', 'previd', 'prevseq', 'settle', 'afrom', 'ato',
    own, 'p:' .. (knode or ''))
  local named = knode ~= nil and knode ~= ''
  local lost
  if e[1] then
    lost = kid == e[1] and (tonumber(e[2]) < tonumber(kseq) or (named and tonumber(e[12] or '0') < tonumber(kseq)))
  else
    lost = kid ~= nil
  end
  local ep
  if e[1] and not lost then
    ep = {id = e[1], seq = tonumber(e[2]) + 1, lost = tonumber(e[4] or '0'),
      hold = tonumber(e[5] or '0'), from = tonumber(e[6] or '0'), previd = e[7] or '-', prevseq = tonumber(e[8] or '0'),
      settle = tonumber(e[9] or '0'), afrom = tonumber(e[10] or '0'), ato = tonumber(e[11] or '0')}
    if named and ep.previd ~= '-' then ep.prevseq = tonumber(e[13] or '0') end
    local at = tonumber(e[3] or now)
    local gap = now - at
    local set = {'seq', ep.seq, 'at', now}
    if gap > settleAfter or gap > away then
      if gap > settleAfter then ep.settle = now + math.min(math.max(gap, settleMin), holdFor) end
      if gap > away then ep.afrom, ep.ato = at, now end
      for _, v in ipairs({'settle', ep.settle, 'afrom', ep.afrom, 'ato', ep.ato}) do set[#set + 1] = v end
    end
    if named then set[#set + 1], set[#set + 2] = own, ep.seq end
    redis.call('HSET', key, unpack(set))
  else
    local t = redis.call('TIME')
    ep = {id = t[1] .. string.format('%06d', tonumber(t[2])), seq = 1, lost = 0, hold = 0, from = 0,
      previd = '-', prevseq = 0, settle = 0, afrom = 0, ato = 0}
    local prev = {}
    if lost then
      ep.lost, ep.hold = now, now + holdFor
      if e[1] then
        ep.from, ep.previd, ep.prevseq = tonumber(e[3] or '0'), e[1], tonumber(e[2])
        -- Each caller's own seq in the state found, for it to tell which of its writes it holds.
        local all = redis.call('HGETALL', key)
        for i = 1, #all, 2 do
          if string.sub(all[i], 1, 2) == 'n:' and #all[i] > 2 then
            prev[#prev + 1] = 'p:' .. string.sub(all[i], 3)
            prev[#prev + 1] = all[i + 1]
          end
        end
      end
    end
    if named then prev[#prev + 1], prev[#prev + 2] = own, 1 end
    redis.call('DEL', key)
    redis.call('HSET', key, 'id', ep.id, 'seq', 1, 'at', now, 'lost', ep.lost, 'hold', ep.hold,
      'from', ep.from, 'previd', ep.previd, 'prevseq', ep.prevseq, unpack(prev))
    if named and ep.previd ~= '-' then
      ep.prevseq = 0
      for i = 1, #prev, 2 do
        if prev[i] == 'p:' .. knode then ep.prevseq = tonumber(prev[i + 1]) end
      end
    end
  end
  ep.reply = ep.id .. ' ' .. ep.seq .. ' ' .. string.format('%d', ep.from) .. ' ' .. string.format('%d', now) ..
    ' ' .. ep.previd .. ' ' .. ep.prevseq
  return ep
end

-- nextToken hands out job's next fencing token (KEY fence: hash job -> last token): one
-- more than the last, and at least Redis' time in ms times 1000. Tokens then grow even
-- when Redis forgot the last one, once its clock has passed the time it was handed out;
-- the guard's hold makes sure it has. They stay exact in Lua's doubles for centuries.
local function nextToken(fence, job, now)
  local last = tonumber(redis.call('HGET', fence, job) or '0')
  local tok = string.format('%d', math.max(last + 1, now * 1000))
  redis.call('HSET', fence, job, tok)
  return tok
end

-- later tells whether the lock value v is older than the caller's token: missing, or a token
-- (possibly behind a retry marker) below it. A done marker is never older: the occurrence
-- finished.
local function older(v, token)
  if not v then return true end
  local n = tonumber(string.match(v, '^retry:(%d+)$') or v)
  return n ~= nil and n < tonumber(token)
end

-- split returns the job of an occurrence id (the part before its last '@') and whether it
-- was added by hand (trigger, backfill: cron.TriggeredID puts '~' after the last '@').
local function split(occ)
  local job, rest = string.match(occ, '^(.*)@([^@]*)$')
  if not job then return occ, false end
  return job, string.find(rest, '~', 1, true) ~= nil
end

-- alertOf returns, for an alert's id (cron.AlertID: WATCHED~alert-KIND), the id of the
-- occurrence it is about and its kind; nil for every other id. An alert is an occurrence of
-- its job like any other, except that it never holds the job's overlap slot.
local function alertOf(occ)
  local watched, kind = string.match(occ, '^(.*@[^@]*)~alert%-(%a+)$')
  if kind == 'failure' or kind == 'missed' or kind == 'late' then return watched, kind end
  return nil
end

-- partOf returns, for a part's id (cron.PartID: PARENT~part-INDEX-of-COUNT), the id of the
-- occurrence it is a part of, its index and the count; nil for every other id. A part is
-- an occurrence of its job like any other, except that it never takes or waits for the
-- job's overlap slot (its parent holds it) and no policy decides it (its parent was).
local function partOf(occ)
  local parent, i, n = string.match(occ, '^(.*@[^@]*)~part%-(%d+)%-of%-(%d+)$')
  if parent then return parent, tonumber(i), tonumber(n) end
  return nil
end

-- words returns the set of the space-separated words of s.
local function words(s)
  local t = {}
  for w in string.gmatch(s or '', '%S+') do t[w] = true end
  return t
end

-- passing returns the function that tells which entries of a shard the caller passes over
-- (see Targeting in claim.lua), and whether any may be: those of the jobs it leaves to a
-- newer definition (yield), those of the jobs it may not run (inel; not their alerts), and
-- parts pinned to another node that called the shard within lease (fan: part -> node,
-- calls: node -> ms). claim.lua and rank.lua pass over the same entries.
local function passing(yield, inel, fan, calls, node, now, lease)
  local anyPins = redis.call('HLEN', fan) > 0
  local function pinnedElsewhere(occ)
    if not partOf(occ) then return false end
    local pin = redis.call('HGET', fan, occ)
    local seen = pin and pin ~= node and tonumber(redis.call('HGET', calls, pin) or '')
    return seen and now - seen <= lease
  end
  local function pass(occ)
    local job = split(occ)
    return yield[job] or (inel[job] and not alertOf(occ)) or (anyPins and pinnedElsewhere(occ))
  end
  return pass, next(yield) ~= nil or next(inel) ~= nil or anyPins
end

-- alertsOn tells whether a job's alert settings (KEY alerts: "KINDS LATEMS", KINDS a comma
-- list; false or "" for none) include kind.
local function alertsOn(raw, kind)
  local kinds = string.match(raw or '', '^(%S+)')
  return kinds ~= nil and string.find(',' .. kinds .. ',', ',' .. kind .. ',', 1, true) ~= nil
end

-- pushHistory adds rec to the history list hk, keeping hlen records. It answers false, with
-- nothing written, when hk cannot take it (a key of another type): its caller then applies
-- nothing else of that item, so that no run is recorded done without its record, and the
-- other items of the call go on.
local trimTo = {} -- hlen -> the last index kept, as a string: Redis formats Lua numbers with printf
local function pushHistory(hk, rec, hlen)
  local r = redis.pcall('LPUSH', hk, rec)
  if type(r) == 'table' and r.err then return false end
  local last = trimTo[hlen]
  if not last then
    last = string.format('%d', hlen - 1)
    trimTo[hlen] = last
  end
  redis.call('LTRIM', hk, '0', last)
  return true
end

-- keepTables gives each hash in keys a field that names no job and no occurrence (the empty
-- name), whose value is longer than Redis keeps in a hash's compact encoding (the server's
-- hash-max-listpack-value). The hashes of claimed occurrences fill with each burst and empty
-- after it; empty, Redis deletes them, and each burst rebuilt them in the compact encoding,
-- where every lookup scans the hash from end to end. With the field they are hash tables from
-- the first claim on, and stay so. Nothing reads these hashes whole, so the field is never
-- taken for an entry.
local KEEP_TABLE = 'kept so that this hash never empties and stays a hash table: see internal/queue/doc.go'
local function keepTables(keys)
  -- A key of another type fails where it failed before this, not every call of its shard.
  for _, k in ipairs(keys) do redis.pcall('HSETNX', k, '', KEEP_TABLE) end
end

-- forget takes an occurrence that is over (finished, or decided not to run) off the agenda
-- and out of the hashes that hold something of it (attempts, tokens, cancel, next, late).
local function forget(agenda, hashes, occ)
  redis.call('ZREM', agenda, occ)
  for _, h in ipairs(hashes) do redis.call('HDEL', h, occ) end
end

-- Priority (see queue.Placement.Priorities): spec is "STEPMS FLOOR SETTLEMS TOPPRIO
-- TOPREMAINMS JOB P JOB P ..." from the caller's job set, listing only the jobs whose
-- priority is not the default; FLOOR is -1 for none; SETTLEMS is queue.PrioritySettle;
-- TOPPRIO (-1 for none) is the highest priority that any shard's recent ranked claims took,
-- as the caller's ranking read it, and TOPREMAINMS what was left of its settle (see
-- claim.lua). parsePriority
-- returns the jobs' priorities (the others have the default), the aging step, the floor and
-- the settle, or nil when there is nothing to rank by (then due time alone orders).
local function parsePriority(spec)
  local step, fl, settle, topPrio, topRemain, rest = string.match(spec or '', '^(%d+) (%-?%d+) (%d+) (%-?%d+) (%d+) (.*)$')
  if not step then return nil end
  local p, any = {}, false
  for j, n in string.gmatch(rest, '(%S+) (%d+)') do
    p[j] = tonumber(n)
    any = true
  end
  -- A floor applies to a shard whose jobs all have the default priority as well.
  if not any and tonumber(fl) < 0 then return nil end
  return {jobs = p, step = math.max(tonumber(step), 1), floor = tonumber(fl), settle = tonumber(settle),
    topPrio = tonumber(topPrio), topRemain = tonumber(topRemain)}
end

-- rankDue reads what is due in agenda up to upto, in bounded batches and at most scan
-- entries (the oldest), and returns them in score order as {occ, score string, eff, score},
-- with how many there are of each effective priority (counts[eff]). An entry's effective
-- priority is its job's priority plus one per aging step it is overdue (past its score, by
-- Redis' clock), capped at the top priority: so an entry overdue long enough ranks with the
-- highest and then by age alone, which bounds how long any priority waits. Entries of jobs
-- the caller passes over (pass, a function of the id, or nil for none) are not ranked but
-- appended to passed as {occ, score string}: claim.lua defers them, so that the head it
-- reports passes over them. It also returns whether it stopped at scan with more due.
local function rankDue(agenda, now, upto, pr, scan, pass, passed)
  local out, counts, off, batch = {}, {}, 0, 500
  while off < scan do
    local r = redis.call('ZRANGEBYSCORE', agenda, '-inf', upto, 'WITHSCORES', 'LIMIT', off, math.min(batch, scan - off))
    for k = 1, #r, 2 do
      local occ, score = r[k], tonumber(r[k + 1])
      if pass and pass(occ) then
        passed[#passed + 1] = {occ, r[k + 1]}
      else
        local eff = pr.jobs[split(occ)] or DEFAULT_PRIORITY
        if now > score then eff = eff + math.floor((now - score) / pr.step) end
        if eff > MAX_PRIORITY then eff = MAX_PRIORITY end
        out[#out + 1] = {occ, r[k + 1], eff, score}
        counts[eff] = (counts[eff] or 0) + 1
      end
    end
    if #r < 2 * batch then return out, counts, false end
    off = off + batch
  end
  return out, counts, true
end

-- topRanked returns the first n of ranked entries (rankDue) by effective priority, highest
-- first, then oldest first, none below floor. It sorts only what it returns: the entries
-- come in score order, so those of the effective priority where n runs out are taken
-- oldest first as they come.
local function topRanked(entries, counts, n, floor)
  local cut, above = floor, 0
  for e = MAX_PRIORITY, math.max(floor, 0), -1 do
    local c = counts[e] or 0
    if above + c >= n then
      cut = e
      break
    end
    above = above + c
  end
  local top, atCut = {}, n - above
  for _, e in ipairs(entries) do
    if e[3] > cut then
      top[#top + 1] = e
    elseif e[3] == cut and atCut > 0 then
      top[#top + 1] = e
      atCut = atCut - 1
    end
  end
  table.sort(top, function(a, b)
    if a[3] ~= b[3] then return a[3] > b[3] end
    if a[4] ~= b[4] then return a[4] < b[4] end
    return a[1] < b[1]
  end)
  return top
end
