-- join.lua: carry the ends of upstream runs, drained from their shards' deps outboxes, into
-- the shard of the job that runs after them, and add its occurrence once every upstream of
-- its instant has ended as its after blocks require.
--
-- KEYS[1] agenda (zset)
-- ARGV[1] join key prefix, ARGV[2] join key TTL (ms), ARGV[3] history key prefix,
-- ARGV[4] history length, ARGV[5] the caller's node name,
-- then groups of 8: the downstream occurrence (cron.DependentID), its job, the upstream job,
-- the upstream occurrence, how many upstreams the downstream job has (its after blocks),
-- "1" if this upstream ended as the downstream's after block requires else "0", the
-- upstream run's status, the downstream's scheduled instant (ms)
-- Returns for each group 1 if it added the occurrence, 2 if it recorded it skipped (every
-- upstream ended, not all as required), 0 if it only noted the upstream's end (or had done
-- so before), -1 if the job's history key holds another type.
--
-- The join key (prefix .. downstream occurrence) is a hash: upstream job -> "OCC MET STATUS",
-- and "!" once the occurrence was decided. Every step is idempotent: an upstream noted twice
-- is the same field, and a decided occurrence is never decided again while its key lives
-- (a day, far longer than any outbox entry waits), so a drain that is repeated, because its
-- node died before deleting what it carried or two nodes drained at once, adds nothing.
-- The key also tells a downstream run its upstream occurrences (queue.Upstream).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl, hlen = tonumber(ARGV[2]), tonumber(ARGV[4])
local out = {}
for i = 6, #ARGV, 8 do
  local occ, job, upjob, upocc = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local needed, met, status, at = tonumber(ARGV[i + 4]), ARGV[i + 5], ARGV[i + 6], tonumber(ARGV[i + 7])
  local jk = ARGV[1] .. occ
  local res = 0
  if not redis.call('HGET', jk, '!') then
    redis.call('HSET', jk, upjob, upocc .. ' ' .. met .. ' ' .. status)
    redis.call('PEXPIRE', jk, ttl)
    if redis.call('HLEN', jk) >= needed then
      local all = redis.call('HGETALL', jk)
      local ups, wrong = {}, {}
      for k = 1, #all, 2 do
        local uocc, umet, ustatus = string.match(all[k + 1], '^(%S+) (%d) (%S*)$')
        ups[#ups + 1] = uocc
        if umet ~= '1' then wrong[#wrong + 1] = uocc .. ' ' .. ustatus end
      end
      table.sort(ups)
      if #wrong == 0 then
        redis.call('ZADD', KEYS[1], 'NX', now, occ)
        redis.call('HSET', jk, '!', 'added')
        res = 1
      else
        table.sort(wrong)
        local rec = cjson.encode({occurrence = occ, job = job, node = ARGV[5], attempt = 0, fencing_token = 0,
          scheduled_at = iso(at), started_at = iso(now), ended_at = iso(now), status = 'skipped',
          error = 'skipped: not every upstream run ended as required: ' .. table.concat(wrong, ', '),
          upstream = ups})
        if pushHistory(ARGV[3] .. job, rec, hlen) then
          redis.call('HSET', jk, '!', 'skipped')
          res = 2
        else
          res = -1
        end
      end
    end
  end
  out[#out + 1] = res
end
return out
