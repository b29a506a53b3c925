-- lib.lua: functions shared by claim.lua and complete.lua. queue.go prepends this file to
-- each of them, so both apply the same rules; it defines functions only.

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
  local w = redis.call('ZPOPMIN', waitPrefix .. job)
  if w[1] then
    redis.call('ZADD', agenda, w[2], w[1])
    redis.call('HSET', running, job, w[1])
    return 1
  end
  redis.call('HDEL', running, job)
  return 0
end
