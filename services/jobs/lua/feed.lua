--[[
  Moves waiting files from the fair lanes into QUEUED (the run queue's look-ahead), within the queued-ahead budget,
  the link / endpoint slot limits (overrides in K.linkLimits / K.endpointLimits), the admin state and the circuit
  breakers. Fairness: owners in round-robin; inside an owner, strict priority, round-robin among equal priorities;
  inside a job, round-robin over its links. Every queued member is recorded in the outbox (due now), so a crash
  before the BullMQ add cannot lose it.

  Input:
    KEYS[1] routing key (P:owners; every key shares the prefix's {hash tag})
    ARGV[1] prefix P
    ARGV[2] most files to move this round
    ARGV[3] queued-ahead budget (files QUEUED port-wide at most)
    ARGV[4] default link limit         ARGV[5] default endpoint limit
    ARGV[6] now (ms)
    ARGV[7] bundle: largest declared size of a bundled small file (0: no bundles)
    ARGV[8] bundle: most files in one bundle
  Output:
    run-queue entries: a member `<jobId>_<idx>_<q>`, or a bundle of members joined by ','
]]
--- @include "includes/common"
local maxFiles = tonumber(ARGV[2])
local ahead = tonumber(ARGV[3])
local defLink = tonumber(ARGV[4])
local defEp = tonumber(ARGV[5])
local now = tonumber(ARGV[6])
local bundleBytes = tonumber(ARGV[7] or '0')
local bundleFiles = tonumber(ARGV[8] or '1')
local QUANTUM = math.max(8, bundleFiles)
if adminState('port:') ~= 'running' then return {} end
local queued = tonumber(redis.call('GET', K.queued) or '0')
local budget = math.min(maxFiles, ahead - queued)
if budget <= 0 then return {} end
local out = {}
local outbox = {}
local runnable = {}
-- Free slots on a link now: min(link headroom, both endpoints' headroom); 0 if not runnable.
local function headroom(link)
  local r = runnable[link]
  if r == nil then r = linkRunnable(link, now); runnable[link] = r end
  if not r then return 0 end
  local src, dst = linkEnds(link)
  local free = tonumber(redis.call('HGET', K.linkLimits, link) or defLink) - tonumber(redis.call('HGET', K.linkSlots, link) or '0')
  for i, ep in ipairs({src, dst}) do
    local act = tonumber(redis.call('HGET', K.endpointSlots, ep) or '0')
    local f = tonumber(redis.call('HGET', K.endpointLimits, ep) or defEp) - act
    -- half-open breaker: one transfer at a time finds out whether the endpoint is back
    if redis.call('HEXISTS', K.breakerOpenUntil, ep) == 1 and breakerHolds(ep, now) and breakerConcerns(ep, i == 1 and 'src' or 'dst') then
      f = math.min(f, 1 - act)
    end
    if f < free then free = f end
  end
  return free
end
-- Moves up to n files of one lane to QUEUED with batched counter updates.
local function take(jobId, link, n)
  local jk = jkey(jobId)
  local lane = K.lane..':'..jobId..':'..link
  local idxs = redis.call('LPOP', lane, n)
  if not idxs then return 0 end
  local zq = {}
  local bundle = {}
  for _, idx in ipairs(idxs) do
    local o = loadFs(jobId, idx)
    o.s = 'QUEUED'; o.q = (o.q or 0) + 1
    saveFs(jobId, idx, o)
    zq[#zq + 1] = tonumber(idx); zq[#zq + 1] = idx
    local member = jobId..'_'..idx..'_'..o.q
    outbox[#outbox + 1] = now; outbox[#outbox + 1] = member
    -- Small files of one lane travel together in one run-queue entry (members joined by ','), run one
    -- after another in one worker slot: the run queue's per-entry cost is paid once per bundle.
    local small = false
    if bundleFiles > 1 then
      local size = cjson.decode(redis.call('HGET', jk..J.spec, idx))[3]
      small = type(size) == 'number' and size <= bundleBytes
    end
    if small then
      bundle[#bundle + 1] = member
      if #bundle >= bundleFiles then out[#out + 1] = table.concat(bundle, ','); bundle = {} end
    else
      out[#out + 1] = member
    end
  end
  if #bundle > 0 then out[#out + 1] = table.concat(bundle, ',') end
  local c = #idxs
  redis.call('ZREM', jk..J.byState..':SUBMITTED', unpack(idxs))
  redis.call('ZADD', jk..J.byState..':QUEUED', unpack(zq))
  redis.call('HINCRBY', jk, 'c:SUBMITTED', -c)
  redis.call('HINCRBY', jk, 'c:QUEUED', c)
  local src, dst = linkEnds(link)
  redis.call('HINCRBY', K.linkSlots, link, c)
  redis.call('HINCRBY', K.endpointSlots, src, c)
  if dst ~= src then redis.call('HINCRBY', K.endpointSlots, dst, c) end
  redis.call('INCRBY', K.queued, c)
  return c
end
local idle = 0
while budget > 0 do
  local nOwners = redis.call('LLEN', K.owners)
  if nOwners == 0 or idle >= nOwners then break end
  local owner = redis.call('LMOVE', K.owners, K.owners, 'LEFT', 'RIGHT')
  local ownKey = K.ownerJobs..':'..owner
  local jobs = redis.call('ZRANGE', ownKey, 0, -1)
  local got = 0
  if #jobs == 0 then
    redis.call('LREM', K.owners, 0, owner)
  else
    for _, jobId in ipairs(jobs) do
      local jk = jkey(jobId)
      local linksKey = jk..J.links
      local nl = redis.call('LLEN', linksKey)
      for _ = 1, nl do
        local link = redis.call('LMOVE', linksKey, linksKey, 'LEFT', 'RIGHT')
        local free = headroom(link)
        if free > 0 then
          got = take(jobId, link, math.min(free, budget, QUANTUM))
          if redis.call('LLEN', K.lane..':'..jobId..':'..link) == 0 then redis.call('LREM', linksKey, 0, link) end
          if got > 0 then break end
        end
      end
      if redis.call('LLEN', linksKey) == 0 then
        redis.call('ZREM', ownKey, jobId)
      elseif got > 0 then
        -- round-robin among jobs of equal priority: move this one behind its peers
        local prio = tonumber(redis.call('HGET', jk, 'prio'))
        redis.call('ZADD', ownKey, (5 - prio) * 1e12 + redis.call('INCR', K.roundRobin), jobId)
      end
      if got > 0 then break end
    end
    if redis.call('ZCARD', ownKey) == 0 then redis.call('LREM', K.owners, 0, owner) end
  end
  if got > 0 then idle = 0; budget = budget - got else idle = idle + 1 end
end
if #outbox > 0 then redis.call('ZADD', K.outbox, unpack(outbox)) end
return out
