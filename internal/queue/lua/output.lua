-- output.lua: append one batch of a run's output lines to its occurrence's output stream.
--
-- KEYS[1] the occurrence's output stream
-- ARGV[1] the stream's cap in entries (MAXLEN ~), ARGV[2] TTL while the run goes on (ms),
-- ARGV[3] TTL once the attempt ended (ms), ARGV[4] attempt, ARGV[5] the batch's number
-- within the attempt, ARGV[6] the attempt's end status ("" when it goes on), ARGV[7] "1"
-- when no other attempt follows the end (else "0"), ARGV[8..] the lines
-- Returns 1 if the batch was added, 0 if an identical earlier call added it already.
--
-- Entries: a line is {a = attempt, l = line}; the end of an attempt is {a = attempt, e =
-- status, f = final}. The last entry of a batch also carries b = its batch number, so a
-- call that go-redis re-sends after a lost reply finds its own batch at the stream's end
-- and adds nothing: the lines would show twice otherwise. Trimming takes the oldest
-- entries, never the last one, so the check survives the cap.
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if last then
  local f = last[2]
  local a, b
  for i = 1, #f, 2 do
    if f[i] == 'a' then a = f[i + 1] elseif f[i] == 'b' then b = f[i + 1] end
  end
  if a == ARGV[4] and b == ARGV[5] then
    return 0
  end
end
local cap = ARGV[1]
local ended = ARGV[6] ~= ''
for i = 8, #ARGV do
  if i == #ARGV and not ended then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', cap, '*', 'a', ARGV[4], 'l', ARGV[i], 'b', ARGV[5])
  else
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', cap, '*', 'a', ARGV[4], 'l', ARGV[i])
  end
end
local ttl = ARGV[2]
if ended then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', cap, '*', 'a', ARGV[4], 'e', ARGV[6], 'f', ARGV[7], 'b', ARGV[5])
  ttl = ARGV[3]
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
