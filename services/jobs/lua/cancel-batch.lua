--[[
  Cancels (or fails) up to ARGV[3] not-yet-active files of a job (SUBMITTED, then QUEUED); the caller loops until
  nothing is left. ACTIVE files are aborted by their workers (pub/sub) and closed by END as CANCELED.

  Input:
    KEYS[1] routing key (P:owners)
    ARGV[1] prefix P     ARGV[2] job id     ARGV[3] most files this call     ARGV[4] now (ms)
    ARGV[5] target state: CANCELED (user cancel, default) or FAILED (e.g. max time in queue exceeded)
    ARGV[6] error code and ARGV[7] error message for FAILED
  Output:
    files still left in SUBMITTED or QUEUED, or -1 if there is no such job
]]
--- @include "includes/common"
local jobId, limit, now = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local target, errCode, errMsg = ARGV[5] or 'CANCELED', ARGV[6], ARGV[7]
local jk = jkey(jobId)
if not redis.call('HGET', jk, 'state') then return -1 end
if target == 'CANCELED' then redis.call('HSET', jk, 'canceled', '1') end
local done = 0
for _, st in ipairs({'SUBMITTED', 'QUEUED'}) do
  local ids = redis.call('ZRANGE', jk..J.byState..':'..st, 0, limit - done - 1)
  for _, idx in ipairs(ids) do
    local o = loadFs(jobId, idx)
    if st == 'QUEUED' then
      releaseSlots(fileLink(jobId, idx)); redis.call('DECR', K.queued)
      redis.call('ZREM', K.outbox, jobId..'_'..idx..'_'..o.q)
    end
    o.s = target
    if target == 'FAILED' then o.e = { code = errCode, message = errMsg } end
    saveFs(jobId, idx, o); moveState(jobId, idx, st, target)
    done = done + 1
  end
  if done >= limit then break end
end
local left = redis.call('ZCARD', jk..J.byState..':SUBMITTED') + redis.call('ZCARD', jk..J.byState..':QUEUED')
if left == 0 then
  -- the lanes only hold canceled files now
  for _, link in ipairs(redis.call('LRANGE', jk..J.links, 0, -1)) do redis.call('DEL', K.lane..':'..jobId..':'..link) end
  redis.call('DEL', jk..J.links)
  redis.call('ZREM', K.ownerJobs..':'..redis.call('HGET', jk, 'owner'), jobId)
  finishJobIfDone(jobId, now)
end
return left
