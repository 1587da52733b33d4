--[[
  Closes run ARGV[4] of a file. A retryable error with tries left, or a requeue, puts the file back to QUEUED with a
  new generation, keeping its link slot, and records it in the outbox with its due time.
  Circuit breaker: ARGV[13] names the endpoint this attempt could not reach at all ('' if none); after ARGV[14] such
  failures in a row it trips for ARGV[15] ms, doubling on every re-trip up to ARGV[16] ms, and holds files back for at
  most ARGV[17] ms from its first trip. A success closes the breakers of both ends.
  A full destination: ARGV[18] names the endpoint that could take no more bytes ('' if none; ENOSPC, EDQUOT, EROFS,
  HTTP 507). Its breaker trips at once (cause 'full', ARGV[19] the detail), and the file is held: requeued without
  spending a try (attempt outcome 'held'; START then sends it back to its lane while the breaker is open), at most
  ARGV[20] times per file, and not once the breaker has held files for its give-up time: then it is an error as any.

  Input:
    KEYS[1] routing key (P:owners)
    ARGV[1] prefix P     ARGV[2] job id     ARGV[3] file index     ARGV[4] run number
    ARGV[5] outcome: ok | error | requeue | cancel
    ARGV[6] now (ms)
    ARGV[7] the attempt's report (JSON: bytes, rateBytesPerSec, remoteIp, protocol, streams, resumedBytes,
            errorCode, errorMessage, checksumValue, resume)
    ARGV[8] '1' if the error is retryable     ARGV[9] retry delay (ms)     ARGV[10] the file's link
    ARGV[11] bytes of this attempt not yet counted by progress reports     ARGV[12] current rate window
    ARGV[13] unreachable endpoint or ''       ARGV[14] breaker failures     ARGV[15] cool-down (ms)
    ARGV[16] longest cool-down (ms)           ARGV[17] give-up time (ms)
    ARGV[18] full destination endpoint or ''  ARGV[19] what made it full     ARGV[20] most holds per file
  Output:
    {'finished'} | {'failed'} | {'canceled'} | {'queued', member, delayMs} | {'stale'} (the run is no longer current)
]]
--- @include "includes/common"
local jobId, idx, run, outcome, now = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local att = cjson.decode(ARGV[7])
local retryable, retryDelayMs, link = ARGV[8] == '1', tonumber(ARGV[9]), ARGV[10]
local jk = jkey(jobId)
local o = loadFs(jobId, idx)
if o.s ~= 'ACTIVE' or o.r ~= run then return {'stale'} end
local last = o.a[#o.a]
for k, v in pairs(att) do if k ~= 'resume' and k ~= 'checksumValue' then last[k] = v end end
last['end'] = now
redis.call('HDEL', jk..J.progress, idx)
redis.call('HDEL', jk..J.checkpoints, idx)
redis.call('DECR', K.active)
-- bytes of this attempt not yet counted by progress reports go into the rate windows now
local unreported, window = tonumber(ARGV[11] or '0'), ARGV[12]
if unreported > 0 and window then
  for _, scope in ipairs({jobId, '_all'}) do
    local rk = K.rate..':'..scope..':'..window
    redis.call('INCRBY', rk, unreported)
    redis.call('EXPIRE', rk, 20)
  end
end
local jh = redis.call('HMGET', jk, 'retries', 'canceled')
local retries = tonumber(jh[1])
local canceled = jh[2] == '1' or o.cx == 1
if att.resume then o.rs = att.resume end
-- a full destination holds the file instead of spending its tries, while its breaker still holds files back
local fullEp = ARGV[18] or ''
local held = false
if fullEp ~= '' and outcome == 'error' and not canceled and (o.h or 0) < tonumber(ARGV[20] or '0') then
  local holdUntil = redis.call('HGET', K.breakerHoldUntil, fullEp)
  held = not holdUntil or tonumber(holdUntil) > now
end
local result
if held then
  last.outcome = 'held'; o.h = (o.h or 0) + 1
  o.s = 'QUEUED'; o.q = o.q + 1
  moveState(jobId, idx, 'ACTIVE', 'QUEUED')
  redis.call('INCR', K.queued)
  local member = jobId..'_'..idx..'_'..o.q
  redis.call('ZADD', K.outbox, now, member)
  result = {'queued', member, 0}
elseif outcome == 'ok' then
  o.s = 'FINISHED'; o.cv = att.checksumValue; o.bf = att.bytes; o.rs = nil; last.outcome = 'ok'
  moveState(jobId, idx, 'ACTIVE', 'FINISHED')
  redis.call('HINCRBY', jk, 'bytesFin', att.bytes or 0)
  releaseSlots(link)
  result = {'finished'}
elseif outcome == 'cancel' or (canceled and outcome ~= 'ok') then
  o.s = 'CANCELED'; last.outcome = 'canceled'
  moveState(jobId, idx, 'ACTIVE', 'CANCELED')
  releaseSlots(link)
  result = {'canceled'}
else
  local again = false
  if outcome == 'requeue' then
    last.outcome = 'requeued'; again = true; retryDelayMs = 0
  else
    last.outcome = 'error'
    o.t = (o.t or 0) + 1
    again = retryable and o.t <= retries
  end
  if again then
    o.s = 'QUEUED'; o.q = o.q + 1
    moveState(jobId, idx, 'ACTIVE', 'QUEUED')
    redis.call('INCR', K.queued)
    local member = jobId..'_'..idx..'_'..o.q
    redis.call('ZADD', K.outbox, now + retryDelayMs, member)
    result = {'queued', member, retryDelayMs}
  else
    o.s = 'FAILED'; o.e = { code = att.errorCode or 'CARGO_ERR_UNKNOWN', message = att.errorMessage or 'failed' }
    moveState(jobId, idx, 'ACTIVE', 'FAILED')
    releaseSlots(link)
    result = {'failed'}
  end
end
saveFs(jobId, idx, o)
publish({ t = 'file', job = jobId, file = tonumber(idx), state = o.s })
-- an unreachable endpoint trips its breaker after ARGV[14] failures in a row; a full destination at once
local downEp, threshold, cause, detail = ARGV[13] or '', tonumber(ARGV[14]), 'unreachable', ''
if fullEp ~= '' and outcome == 'error' then downEp, threshold, cause, detail = fullEp, 1, 'full', ARGV[19] or '' end
if downEp ~= '' and outcome == 'error' then
  local n = tonumber(redis.call('HINCRBY', K.breakerFailures, downEp, 1))
  local u = tonumber(redis.call('HGET', K.breakerOpenUntil, downEp) or '0')
  -- (re)trip only when not already open: transfers in flight when it tripped do not extend it
  if n >= threshold and u <= now then
    local cd = tonumber(ARGV[15])
    if u > 0 then cd = math.min(tonumber(ARGV[16]), 2 * tonumber(redis.call('HGET', K.breakerCooldown, downEp) or cd))
    else redis.call('HSET', K.breakerHoldUntil, downEp, now + tonumber(ARGV[17])) end
    redis.call('HSET', K.breakerOpenUntil, downEp, now + cd)
    redis.call('HSET', K.breakerCooldown, downEp, cd)
    redis.call('HSET', K.breakerCause, downEp, cjson.encode({ cause = cause, detail = detail }))
    publish({ t = 'endpoint', endpoint = downEp, state = 'unavailable', cause = cause, detail = detail, retryAt = now + cd, failures = n })
  end
elseif outcome == 'ok' and redis.call('HLEN', K.breakerFailures) > 0 then
  local src, dst = linkEnds(link)
  for i, ep in ipairs({src, dst}) do
    -- reading from a full destination proves nothing about its space (src == dst: the write side decides)
    if (i == 2 or ep ~= dst) and breakerConcerns(ep, i == 1 and 'src' or 'dst') then
      redis.call('HDEL', K.breakerFailures, ep)
      if redis.call('HDEL', K.breakerOpenUntil, ep) == 1 then
        redis.call('HDEL', K.breakerCooldown, ep)
        redis.call('HDEL', K.breakerHoldUntil, ep)
        redis.call('HDEL', K.breakerCause, ep)
        publish({ t = 'endpoint', endpoint = ep, state = 'available' })
      end
    end
  end
end
finishJobIfDone(jobId, now)
return result
