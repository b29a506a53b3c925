-- trigger.lua: add an occurrence by hand (runner trigger), due now by Redis' clock, once.
--
-- KEYS[1] agenda (zset), KEYS[2] the trigger's marker key
-- ARGV[1] occurrence id (cron.TriggeredID), ARGV[2] marker TTL (ms)
-- Returns 1 if this call added the occurrence, 0 if an earlier call with the same id did.
--
-- The marker, not the agenda, says whether the trigger was applied: the occurrence leaves the
-- agenda once it ran, and go-redis may re-send a call whose reply was lost after that.
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', tonumber(ARGV[2])) then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[1], 'NX', now, ARGV[1])
  return 1
end
return 0
