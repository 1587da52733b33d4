--[[ END of one run (end.lua, end-batch.lua): A holds end.lua's ARGV. ]]
local function endOne(A)
  local jobId, idx, run, outcome, now = A[2], A[3], tonumber(A[4]), A[5], tonumber(A[6])
  local att = cjson.decode(A[7])
  local retryable, retryDelayMs, link = A[8] == '1', tonumber(A[9]), A[10]
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
  local unreported, window = tonumber(A[11] or '0'), A[12]
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
  local fullEp = A[18] or ''
  local held = false
  if fullEp ~= '' and outcome == 'error' and not canceled and (o.h or 0) < tonumber(A[20] or '0') then
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
  -- an unreachable endpoint trips its breaker after A[14] failures in a row; a full destination at once
  local downEp, threshold, cause, detail = A[13] or '', tonumber(A[14]), 'unreachable', ''
  if fullEp ~= '' and outcome == 'error' then downEp, threshold, cause, detail = fullEp, 1, 'full', A[19] or '' end
  if downEp ~= '' and outcome == 'error' then
    local n = tonumber(redis.call('HINCRBY', K.breakerFailures, downEp, 1))
    local u = tonumber(redis.call('HGET', K.breakerOpenUntil, downEp) or '0')
    -- (re)trip only when not already open: transfers in flight when it tripped do not extend it
    if n >= threshold and u <= now then
      local cd = tonumber(A[15])
      if u > 0 then cd = math.min(tonumber(A[16]), 2 * tonumber(redis.call('HGET', K.breakerCooldown, downEp) or cd))
      else redis.call('HSET', K.breakerHoldUntil, downEp, now + tonumber(A[17])) end
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
end
