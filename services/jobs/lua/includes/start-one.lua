--[[ START of one file (start.lua, start-batch.lua): A holds start.lua's ARGV. ]]
local function startOne(A)
  local jobId, idx, q, worker, now = A[2], A[3], tonumber(A[4]), A[5], tonumber(A[6])
  local jk = jkey(jobId)
  local jh = redis.call('HMGET', jk, 'state', 'canceled', 'params', 'owner', 'prio')
  if not jh[1] then return {'skip', 'job gone'} end
  local o = loadFs(jobId, idx)
  if o.q ~= q then return {'skip', 'stale generation'} end
  local specJson = redis.call('HGET', jk..J.spec, idx)
  local link = cjson.decode(specJson)[8]
  if o.s == 'ACTIVE' then
    local last = o.a[#o.a]
    local canceled = jh[2] == '1' or o.cx == 1
    if last and not last['end'] then
      last['end'] = now; last.outcome = canceled and 'canceled' or 'requeued'; last.errorCode = 'CARGO_ERR_WORKER_LOST'
      last.errorMessage = 'the worker running this attempt stopped renewing its lock (killed or starved)'
    end
    redis.call('HDEL', jk..J.progress, idx)
    local cp = redis.call('HGET', jk..J.checkpoints, idx)
    redis.call('HDEL', jk..J.checkpoints, idx)
    if canceled then
      o.s = 'CANCELED'; saveFs(jobId, idx, o); moveState(jobId, idx, 'ACTIVE', 'CANCELED')
      releaseSlots(link); redis.call('DECR', K.active); redis.call('ZREM', K.outbox, jobId..'_'..idx..'_'..q)
      publish({ t = 'file', job = jobId, file = tonumber(idx), state = 'CANCELED' })
      finishJobIfDone(jobId, now)
      return {'skip', 'canceled', specJson, tostring(o.r)}
    end
    -- continue from the lost run's last durable checkpoint, if it wrote one
    if cp then
      local c = cjson.decode(cp)
      if c.run == o.r and type(c.rs) == 'table' then o.rs = c.rs end
    end
  elseif o.s == 'QUEUED' then
    if jh[2] == '1' or o.cx == 1 then
      o.s = 'CANCELED'; saveFs(jobId, idx, o); moveState(jobId, idx, 'QUEUED', 'CANCELED')
      releaseSlots(link); redis.call('DECR', K.queued); redis.call('ZREM', K.outbox, jobId..'_'..idx..'_'..q)
      finishJobIfDone(jobId, now)
      return {'skip', 'canceled'}
    end
    redis.call('DECR', K.queued)
    if not linkRunnable(link, now) then
      o.s = 'SUBMITTED'; saveFs(jobId, idx, o); moveState(jobId, idx, 'QUEUED', 'SUBMITTED')
      releaseSlots(link)
      relane(jobId, idx, link, jh[4], (5 - tonumber(jh[5])) * 1e12)
      return {'deferred'}
    end
    moveState(jobId, idx, 'QUEUED', 'ACTIVE')
    redis.call('INCR', K.active)
  else
    return {'skip', 'state '..o.s}
  end
  o.s = 'ACTIVE'; o.r = (o.r or 0) + 1
  o.a[#o.a + 1] = { start = now, worker = worker }
  saveFs(jobId, idx, o)
  redis.call('ZREM', K.outbox, jobId..'_'..idx..'_'..q)
  return {'run', specJson, cjson.encode(o), jh[3], o.r}
end
