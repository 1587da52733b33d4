--[[
  A worker process crashed (its supervisor saw it exit without being asked to): closes the open attempt of every
  file that process was running, at once rather than when its BullMQ locks expire, with outcome 'crashed' and
  CARGO_ERR_WORKER_CRASHED. Each such file counts one crash (o.k, no try spent: the crash may be another file's
  doing); a file that was running in ARGV[4] crashes is failed with that code, so a file that kills its worker
  every time ends instead of crash-looping the port. The others go back to QUEUED under a new generation (the dead
  process's BullMQ entries become stale), resuming from the crashed run's last durable checkpoint, and are
  recorded in the outbox for the caller to enqueue. A file canceled meanwhile is closed CANCELED.

  Input:
    KEYS[1] routing key (P:owners)
    ARGV[1] prefix P     ARGV[2] worker id of the crashed process     ARGV[3] now (ms)
    ARGV[4] crashes after which a file is failed     ARGV[5] what happened (exit code / signal, last stderr line)
  Output:
    { {member, ...} requeued queue members,
      {jobId, idx, run, spec, ...} closed files (failed or canceled), four entries each, whose part files the
      caller removes }
]]
--- @include "includes/common"
local worker, now, limit, what = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local queued, closed = {}, {}
for _, jobId in ipairs(redis.call('SMEMBERS', K.activeJobs)) do
  local jk = jkey(jobId)
  for _, idx in ipairs(redis.call('ZRANGE', jk..J.byState..':ACTIVE', 0, -1)) do
    local o = loadFs(jobId, idx)
    local last = o.a[#o.a]
    if o.s == 'ACTIVE' and last and not last['end'] and last.worker == worker then
      o.k = (o.k or 0) + 1
      last['end'] = now; last.outcome = 'crashed'; last.errorCode = 'CARGO_ERR_WORKER_CRASHED'
      last.errorMessage = 'the worker process running this attempt crashed ('..what..')'
      redis.call('HDEL', jk..J.progress, idx)
      local cp = redis.call('HGET', jk..J.checkpoints, idx)
      redis.call('HDEL', jk..J.checkpoints, idx)
      redis.call('DECR', K.active)
      redis.call('ZREM', K.outbox, jobId..'_'..idx..'_'..o.q)
      local specJson = redis.call('HGET', jk..J.spec, idx)
      local link = cjson.decode(specJson)[8]
      if redis.call('HGET', jk, 'canceled') == '1' or o.cx == 1 then
        o.s = 'CANCELED'
        moveState(jobId, idx, 'ACTIVE', 'CANCELED')
        releaseSlots(link)
        closed[#closed + 1] = jobId; closed[#closed + 1] = idx; closed[#closed + 1] = tostring(o.r); closed[#closed + 1] = specJson
      elseif o.k >= limit then
        o.s = 'FAILED'
        o.e = { code = 'CARGO_ERR_WORKER_CRASHED', message = 'its worker process crashed '..o.k..' times while running this file (last: '..what..'); not retried again' }
        moveState(jobId, idx, 'ACTIVE', 'FAILED')
        releaseSlots(link)
        closed[#closed + 1] = jobId; closed[#closed + 1] = idx; closed[#closed + 1] = tostring(o.r); closed[#closed + 1] = specJson
      else
        if cp then
          local c = cjson.decode(cp)
          if c.run == o.r and type(c.rs) == 'table' then o.rs = c.rs end
        end
        -- keeps its link slot, as any requeue does
        o.s = 'QUEUED'; o.q = o.q + 1
        moveState(jobId, idx, 'ACTIVE', 'QUEUED')
        redis.call('INCR', K.queued)
        local member = jobId..'_'..idx..'_'..o.q
        redis.call('ZADD', K.outbox, now, member)
        queued[#queued + 1] = member
      end
      saveFs(jobId, idx, o)
      publish({ t = 'file', job = jobId, file = tonumber(idx), state = o.s })
      finishJobIfDone(jobId, now)
    end
  end
end
return {queued, closed}
