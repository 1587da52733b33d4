--[[
  Cancels one file of a job.

  Input:
    KEYS[1] routing key (P:owners)
    ARGV[1] prefix P     ARGV[2] job id     ARGV[3] file index     ARGV[4] now (ms)
  Output:
    the file's state afterwards: 'CANCELED'; 'ACTIVE' (its worker was asked to abort; END closes it as CANCELED);
    a terminal state it already had; or 'NOJOB' / 'NOFILE'
]]
--- @include "includes/common"
local jobId, idx, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local jk = jkey(jobId)
if not redis.call('HGET', jk, 'state') then return 'NOJOB' end
if redis.call('HEXISTS', jk..J.spec, idx) == 0 then return 'NOFILE' end
local o = loadFs(jobId, idx)
local link = fileLink(jobId, idx)
if o.s == 'SUBMITTED' then
  redis.call('LREM', K.lane..':'..jobId..':'..link, 1, idx)
elseif o.s == 'QUEUED' then
  releaseSlots(link); redis.call('DECR', K.queued); redis.call('ZREM', K.outbox, jobId..'_'..idx..'_'..o.q)
elseif o.s == 'ACTIVE' then
  o.cx = 1; saveFs(jobId, idx, o)
  redis.call('PUBLISH', K.control, cjson.encode({ op = 'cancel', job = jobId, file = tonumber(idx) }))
  return 'ACTIVE'
else
  return o.s
end
local from = o.s
o.s = 'CANCELED'; saveFs(jobId, idx, o); moveState(jobId, idx, from, 'CANCELED')
publish({ t = 'file', job = jobId, file = tonumber(idx), state = 'CANCELED' })
finishJobIfDone(jobId, now)
return 'CANCELED'
