--[[
  Makes a fully written job visible in one step: job hash, listing, owner ring, and PERSIST of the keys written
  beforehand under a safety TTL (so a gateway crash mid-submission leaves nothing behind).

  Input:
    KEYS[1] routing key (P:owners)
    ARGV[1] prefix P     ARGV[2] job id     ARGV[3] owner     ARGV[4] priority     ARGV[5] created (ms)
    ARGV[6] N, the number of field/value pairs of the job hash that follow
    ARGV[7 .. 6+2N] field, value, …
    ARGV[7+2N ..] keys to persist
  Output:
    1
]]
--- @include "includes/common"
local jobId, owner, prio, created = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local nf = tonumber(ARGV[6])
local jk = jkey(jobId)
local fields = {}
for i = 7, 6 + nf * 2 do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', jk, unpack(fields))
for i = 7 + nf * 2, #ARGV do redis.call('PERSIST', ARGV[i]) end
redis.call('ZADD', K.jobs, created, jobId)
redis.call('SADD', K.activeJobs, jobId)
local seq = redis.call('INCR', K.roundRobin)
redis.call('ZADD', K.ownerJobs..':'..owner, (5 - prio) * 1e12 + seq, jobId)
if not redis.call('LPOS', K.owners, owner) then redis.call('RPUSH', K.owners, owner) end
publish({ t = 'job', job = jobId, state = 'ACTIVE' })
return 1
