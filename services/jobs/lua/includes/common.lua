--[[
  Helpers shared by every script of the job store (included with `--- @include "includes/common"`).
  Expects the loader's preamble: P (the prefix, ARGV[1]), K (port-wide keys) and J (job key suffixes), from
  services/jobs/redis-keys.ts.

  Per-file mutable state is a small JSON object in `job:<id>:fs` (absent = SUBMITTED, never tried):
    s  state        q  queue generation (a BullMQ job is valid only for its q)
    r  run number   t  failed tries (admin requeues do not count)
    a  attempts     e  final error {code,message}   cv checksum value   rs resume state   cx cancel requested
    bf bytes moved when finished   h  times held by a full destination (those spend no try)
    k  times a worker process crashed while running it (crash.lua; those spend no try either)
]]
local function jkey(jobId) return K.job..':'..jobId end
local function loadFs(jobId, idx)
  local raw = redis.call('HGET', jkey(jobId)..J.fileState, idx)
  if raw then
    local o = cjson.decode(raw)
    if type(o.a) ~= 'table' or o.a[1] == nil then o.a = {} end
    return o
  end
  return { s = 'SUBMITTED', q = 0, r = 0, t = 0, a = {} }
end
local function saveFs(jobId, idx, o)
  local enc = cjson.encode(o)
  -- cjson encodes an empty array as {}; keep the shape stable for readers
  redis.call('HSET', jkey(jobId)..J.fileState, idx, enc)
end
local function moveState(jobId, idx, from, to)
  local jk = jkey(jobId)
  redis.call('ZREM', jk..J.byState..':'..from, idx)
  redis.call('ZADD', jk..J.byState..':'..to, tonumber(idx), idx)
  redis.call('HINCRBY', jk, 'c:'..from, -1)
  redis.call('HINCRBY', jk, 'c:'..to, 1)
end
local function linkEnds(link)
  local src, dst = string.match(link, '^(.*)>(.*)$')
  return src, dst
end
local function releaseSlots(link)
  local src, dst = linkEnds(link)
  if tonumber(redis.call('HINCRBY', K.linkSlots, link, -1)) <= 0 then redis.call('HDEL', K.linkSlots, link) end
  if tonumber(redis.call('HINCRBY', K.endpointSlots, src, -1)) <= 0 then redis.call('HDEL', K.endpointSlots, src) end
  if dst ~= src then
    if tonumber(redis.call('HINCRBY', K.endpointSlots, dst, -1)) <= 0 then redis.call('HDEL', K.endpointSlots, dst) end
  end
end
local function adminState(scopeKey)
  return redis.call('HGET', K.admin, scopeKey) or 'running'
end
-- Per-endpoint circuit breaker: breakerOpenUntil holds, per endpoint that stopped answering, the time (ms) until
-- which no transfer touching it starts; after that it is half-open (one transfer at a time, see FEED) until a
-- transfer through it succeeds. breakerFailures counts unreachable failures since its last success; breakerCooldown
-- the last cool-down; breakerHoldUntil the time after which it holds files back no more (they then run, and fail by
-- their retries, as without a breaker: an endpoint gone for good must not keep a job waiting for weeks).
local function breakerHolds(ep, now)
  local h = redis.call('HGET', K.breakerHoldUntil, ep)
  return h and tonumber(h) > now
end
-- A breaker tripped by a full destination (cause 'full') concerns only what writes to that endpoint: reading from it
-- goes on, and a transfer that read from it says nothing about its free space. An unreachable endpoint concerns both.
local function breakerConcerns(ep, side)
  if side == 'dst' then return true end
  local why = redis.call('HGET', K.breakerCause, ep)
  return not (why and cjson.decode(why).cause == 'full')
end
local function endpointTripped(ep, now, side)
  local u = redis.call('HGET', K.breakerOpenUntil, ep)
  return u and tonumber(u) > now and breakerHolds(ep, now) and breakerConcerns(ep, side)
end
local function linkRunnable(link, now)
  if adminState('link:'..link) ~= 'running' then return false end
  local src, dst = linkEnds(link)
  if adminState('endpoint:'..src) ~= 'running' then return false end
  if adminState('endpoint:'..dst) ~= 'running' then return false end
  if endpointTripped(src, now, 'src') or endpointTripped(dst, now, 'dst') then return false end
  return true
end
local function fileLink(jobId, idx)
  local spec = cjson.decode(redis.call('HGET', jkey(jobId)..J.spec, idx))
  return spec[8]
end
local function publish(msg)
  redis.call('PUBLISH', K.events, cjson.encode(msg))
end
-- Puts a file back at the head of its lane (it was QUEUED and must wait for its link again).
local function relane(jobId, idx, link, owner, prioScore)
  local jk = jkey(jobId)
  redis.call('LPUSH', K.lane..':'..jobId..':'..link, idx)
  if not redis.call('LPOS', jk..J.links, link) then redis.call('RPUSH', jk..J.links, link) end
  redis.call('ZADD', K.ownerJobs..':'..owner, 'NX', prioScore, jobId)
  if not redis.call('LPOS', K.owners, owner) then redis.call('RPUSH', K.owners, owner) end
end
local function finishJobIfDone(jobId, now)
  local jk = jkey(jobId)
  local h = redis.call('HMGET', jk, 'n', 'c:FINISHED', 'c:FAILED', 'c:CANCELED', 'canceled', 'state')
  local n, fin, fail, canc = tonumber(h[1]), tonumber(h[2] or '0'), tonumber(h[3] or '0'), tonumber(h[4] or '0')
  if h[6] ~= 'ACTIVE' or fin + fail + canc < n then return end
  local st
  if h[5] == '1' then st = 'CANCELED'
  elseif fin == n then st = 'FINISHED'
  elseif fin == 0 then st = 'FAILED'
  else st = 'FINISHED_DIRTY' end
  redis.call('HSET', jk, 'state', st, 'finished', now)
  redis.call('SREM', K.activeJobs, jobId)
  local owner = redis.call('HGET', jk, 'owner')
  redis.call('ZREM', K.ownerJobs..':'..owner, jobId)
  -- Retention (jobs.fileRetentionSec / jobs.retentionSec, written at submission; absent = kept): the file records,
  -- most of a giant job's bytes, go first; the summary (state, counts, bytes) stays until the job's own retention.
  local ret = redis.call('HMGET', jk, 'fret', 'jret')
  local fret, jret = tonumber(ret[1] or '0'), tonumber(ret[2] or '0')
  if fret > 0 then
    for _, part in ipairs({ J.spec, J.fileState, J.links, J.progress, J.checkpoints }) do redis.call('EXPIRE', jk..part, fret) end
    for _, s in ipairs(FILE_STATE_NAMES) do redis.call('EXPIRE', jk..J.byState..':'..s, fret) end
  end
  if jret > 0 then redis.call('EXPIRE', jk, math.max(jret, fret)) end
  publish({ t = 'job', job = jobId, state = st })
end
