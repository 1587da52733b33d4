/**
 * Every multi-key state change of jobs and files is one of these Lua scripts, so it applies whole or not at
 * all (the BullMQ rule: cf. moveToFinished). All keys share the prefix's {hash tag}, so they live in one
 * Redis Cluster slot. ARGV[1] is always the prefix.
 *
 * Per-file mutable state is a small JSON object in `job:<id>:fs` (absent = SUBMITTED, never tried):
 *   s  state        q  queue generation (a BullMQ job is valid only for its q)
 *   r  run number   t  failed tries (admin requeues do not count)
 *   a  attempts     e  final error {code,message}   cv checksum value   rs resume state   cx cancel requested
 *   bf bytes moved when finished
 */

/** Shared Lua helpers, prepended to every script. */
const COMMON = `
local P = ARGV[1]
local function jkey(jobId) return P..':job:'..jobId end
local function loadFs(jobId, idx)
  local raw = redis.call('HGET', jkey(jobId)..':fs', idx)
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
  redis.call('HSET', jkey(jobId)..':fs', idx, enc)
end
local function moveState(jobId, idx, from, to)
  local jk = jkey(jobId)
  redis.call('ZREM', jk..':st:'..from, idx)
  redis.call('ZADD', jk..':st:'..to, tonumber(idx), idx)
  redis.call('HINCRBY', jk, 'c:'..from, -1)
  redis.call('HINCRBY', jk, 'c:'..to, 1)
end
local function linkEnds(link)
  local src, dst = string.match(link, '^(.*)>(.*)$')
  return src, dst
end
local function takeSlots(link)
  local src, dst = linkEnds(link)
  redis.call('HINCRBY', P..':act:link', link, 1)
  redis.call('HINCRBY', P..':act:ep', src, 1)
  if dst ~= src then redis.call('HINCRBY', P..':act:ep', dst, 1) end
end
local function releaseSlots(link)
  local src, dst = linkEnds(link)
  if tonumber(redis.call('HINCRBY', P..':act:link', link, -1)) <= 0 then redis.call('HDEL', P..':act:link', link) end
  if tonumber(redis.call('HINCRBY', P..':act:ep', src, -1)) <= 0 then redis.call('HDEL', P..':act:ep', src) end
  if dst ~= src then
    if tonumber(redis.call('HINCRBY', P..':act:ep', dst, -1)) <= 0 then redis.call('HDEL', P..':act:ep', dst) end
  end
end
local function adminState(scopeKey)
  return redis.call('HGET', P..':admin', scopeKey) or 'running'
end
-- Per-endpoint circuit breaker: trip holds, per endpoint that stopped answering, the time (ms) until which no
-- transfer touching it starts; after that it is half-open (one transfer at a time, see FEED) until a transfer
-- through it succeeds. epfail counts unreachable failures since its last success; tripcd the last cool-down;
-- triphold the time after which it holds files back no more (they then run, and fail by their retries, as
-- without a breaker: an endpoint gone for good must not keep a job waiting for weeks).
local function breakerHolds(ep, now)
  local h = redis.call('HGET', P..':triphold', ep)
  return h and tonumber(h) > now
end
local function endpointTripped(ep, now)
  local u = redis.call('HGET', P..':trip', ep)
  return u and tonumber(u) > now and breakerHolds(ep, now)
end
local function linkRunnable(link, now)
  if adminState('link:'..link) ~= 'running' then return false end
  local src, dst = linkEnds(link)
  if adminState('endpoint:'..src) ~= 'running' then return false end
  if adminState('endpoint:'..dst) ~= 'running' then return false end
  if endpointTripped(src, now) or endpointTripped(dst, now) then return false end
  return true
end
local function fileLink(jobId, idx)
  local spec = cjson.decode(redis.call('HGET', jkey(jobId)..':spec', idx))
  return spec[8]
end
local function publish(msg)
  redis.call('PUBLISH', P..':events', cjson.encode(msg))
end
-- Puts a file back at the head of its lane (it was QUEUED and must wait for its link again).
local function relane(jobId, idx, link, owner, prioScore)
  local jk = jkey(jobId)
  redis.call('LPUSH', P..':lane:'..jobId..':'..link, idx)
  if not redis.call('LPOS', jk..':links', link) then redis.call('RPUSH', jk..':links', link) end
  redis.call('ZADD', P..':own:'..owner, 'NX', prioScore, jobId)
  if not redis.call('LPOS', P..':owners', owner) then redis.call('RPUSH', P..':owners', owner) end
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
  redis.call('SREM', P..':jobs:active', jobId)
  local owner = redis.call('HGET', jk, 'owner')
  redis.call('ZREM', P..':own:'..owner, jobId)
  publish({ t = 'job', job = jobId, state = st })
end
`;

/**
 * feed: moves up to ARGV[2] files from the fair lanes into QUEUED, respecting the queued-ahead budget
 * (ARGV[3]), link / endpoint slot limits (ARGV[4], ARGV[5] defaults; overrides in lim:link / lim:ep) and
 * admin state. Fairness: owners in round-robin; inside an owner, strict priority, round-robin among equal
 * priorities; inside a job, round-robin over its links. Returns {jobId, idx, q, ...} triples and records each
 * in the outbox so a crash before the BullMQ add cannot lose it.
 */
export const FEED = COMMON + `
local K = tonumber(ARGV[2])
local ahead = tonumber(ARGV[3])
local defLink = tonumber(ARGV[4])
local defEp = tonumber(ARGV[5])
local now = tonumber(ARGV[6])
local bundleBytes = tonumber(ARGV[7] or '0')
local bundleFiles = tonumber(ARGV[8] or '1')
local QUANTUM = math.max(8, bundleFiles)
if adminState('port:') ~= 'running' then return {} end
local queued = tonumber(redis.call('GET', P..':queued') or '0')
local budget = math.min(K, ahead - queued)
if budget <= 0 then return {} end
local out = {}
local outbox = {}
local actLink, actEp = P..':act:link', P..':act:ep'
local runnable = {}
-- Free slots on a link now: min(link headroom, both endpoints' headroom); 0 if not runnable.
local function headroom(link)
  local r = runnable[link]
  if r == nil then r = linkRunnable(link, now); runnable[link] = r end
  if not r then return 0 end
  local src, dst = linkEnds(link)
  local free = tonumber(redis.call('HGET', P..':lim:link', link) or defLink) - tonumber(redis.call('HGET', actLink, link) or '0')
  for _, ep in ipairs({src, dst}) do
    local act = tonumber(redis.call('HGET', actEp, ep) or '0')
    local f = tonumber(redis.call('HGET', P..':lim:ep', ep) or defEp) - act
    -- half-open breaker: one transfer at a time finds out whether the endpoint is back
    if redis.call('HEXISTS', P..':trip', ep) == 1 and breakerHolds(ep, now) then f = math.min(f, 1 - act) end
    if f < free then free = f end
  end
  return free
end
-- Moves up to n files of one lane to QUEUED with batched counter updates.
local function take(jobId, link, n)
  local jk = jkey(jobId)
  local lane = P..':lane:'..jobId..':'..link
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
      local size = cjson.decode(redis.call('HGET', jk..':spec', idx))[3]
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
  redis.call('ZREM', jk..':st:SUBMITTED', unpack(idxs))
  redis.call('ZADD', jk..':st:QUEUED', unpack(zq))
  redis.call('HINCRBY', jk, 'c:SUBMITTED', -c)
  redis.call('HINCRBY', jk, 'c:QUEUED', c)
  local src, dst = linkEnds(link)
  redis.call('HINCRBY', actLink, link, c)
  redis.call('HINCRBY', actEp, src, c)
  if dst ~= src then redis.call('HINCRBY', actEp, dst, c) end
  redis.call('INCRBY', P..':queued', c)
  return c
end
local ownersKey = P..':owners'
local idle = 0
while budget > 0 do
  local nOwners = redis.call('LLEN', ownersKey)
  if nOwners == 0 or idle >= nOwners then break end
  local owner = redis.call('LMOVE', ownersKey, ownersKey, 'LEFT', 'RIGHT')
  local ownKey = P..':own:'..owner
  local jobs = redis.call('ZRANGE', ownKey, 0, -1)
  local got = 0
  if #jobs == 0 then
    redis.call('LREM', ownersKey, 0, owner)
  else
    for _, jobId in ipairs(jobs) do
      local jk = jkey(jobId)
      local linksKey = jk..':links'
      local nl = redis.call('LLEN', linksKey)
      for _ = 1, nl do
        local link = redis.call('LMOVE', linksKey, linksKey, 'LEFT', 'RIGHT')
        local free = headroom(link)
        if free > 0 then
          got = take(jobId, link, math.min(free, budget, QUANTUM))
          if redis.call('LLEN', P..':lane:'..jobId..':'..link) == 0 then redis.call('LREM', linksKey, 0, link) end
          if got > 0 then break end
        end
      end
      if redis.call('LLEN', linksKey) == 0 then
        redis.call('ZREM', ownKey, jobId)
      elseif got > 0 then
        -- round-robin among jobs of equal priority: move this one behind its peers
        local prio = tonumber(redis.call('HGET', jk, 'prio'))
        redis.call('ZADD', ownKey, (5 - prio) * 1e12 + redis.call('INCR', P..':rr'), jobId)
      end
      if got > 0 then break end
    end
    if redis.call('ZCARD', ownKey) == 0 then redis.call('LREM', ownersKey, 0, owner) end
  end
  if got > 0 then idle = 0; budget = budget - got else idle = idle + 1 end
end
if #outbox > 0 then redis.call('ZADD', P..':outbox', unpack(outbox)) end
return out
`;

/**
 * start: a worker took BullMQ job <jobId>_<idx>_<q>. Returns
 *   {'run', spec, fs, params, run}  → go
 *   {'skip', reason}                 → stale or canceled delivery, nothing to do
 *   {'deferred'}                     → its link/endpoint is not running; it went back to its lane
 * A redelivery of the same q while ACTIVE means the previous holder lost its lock (killed worker):
 * that attempt is closed as requeued and a new run starts.
 */
export const START = COMMON + `
local jobId, idx, q, worker, now = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local jk = jkey(jobId)
local jh = redis.call('HMGET', jk, 'state', 'canceled', 'params', 'owner', 'prio')
if not jh[1] then return {'skip', 'job gone'} end
local o = loadFs(jobId, idx)
if o.q ~= q then return {'skip', 'stale generation'} end
local specJson = redis.call('HGET', jk..':spec', idx)
local link = cjson.decode(specJson)[8]
if o.s == 'ACTIVE' then
  local last = o.a[#o.a]
  if last and not last['end'] then
    last['end'] = now; last.outcome = 'requeued'; last.errorCode = 'CARGO_ERR_WORKER_LOST'
    last.errorMessage = 'the worker running this attempt stopped renewing its lock (killed or starved)'
  end
  redis.call('HDEL', jk..':prog', idx)
  -- continue from the lost worker's last durable checkpoint, if it wrote one
  local cp = redis.call('HGET', jk..':cp', idx)
  if cp then o.rs = cjson.decode(cp) end
elseif o.s == 'QUEUED' then
  if jh[2] == '1' or o.cx == 1 then
    o.s = 'CANCELED'; saveFs(jobId, idx, o); moveState(jobId, idx, 'QUEUED', 'CANCELED')
    releaseSlots(link); redis.call('DECR', P..':queued'); redis.call('ZREM', P..':outbox', jobId..'_'..idx..'_'..q)
    finishJobIfDone(jobId, now)
    return {'skip', 'canceled'}
  end
  redis.call('DECR', P..':queued')
  if not linkRunnable(link, now) then
    o.s = 'SUBMITTED'; saveFs(jobId, idx, o); moveState(jobId, idx, 'QUEUED', 'SUBMITTED')
    releaseSlots(link)
    relane(jobId, idx, link, jh[4], (5 - tonumber(jh[5])) * 1e12)
    return {'deferred'}
  end
  moveState(jobId, idx, 'QUEUED', 'ACTIVE')
  redis.call('INCR', P..':active')
else
  return {'skip', 'state '..o.s}
end
o.s = 'ACTIVE'; o.r = (o.r or 0) + 1
o.a[#o.a + 1] = { start = now, worker = worker }
saveFs(jobId, idx, o)
redis.call('ZREM', P..':outbox', jobId..'_'..idx..'_'..q)
return {'run', specJson, cjson.encode(o), jh[3], o.r}
`;

/**
 * end: closes run ARGV[4] of a file. ARGV[5] outcome: ok | error | requeue | cancel. A retryable error
 * with tries left, or a requeue, puts the file back to QUEUED with a new generation, keeping its link slot,
 * and records it in the outbox with its due time. Returns {'stale'} if the run is no longer current.
 * Circuit breaker: ARGV[13] names the endpoint this attempt could not reach at all ('' if none); after ARGV[14]
 * such failures in a row it trips for ARGV[15] ms, doubling on every re-trip up to ARGV[16] ms, and holds files
 * back for at most ARGV[17] ms from its first trip. A success closes the breakers of both ends.
 */
export const END = COMMON + `
local jobId, idx, run, outcome, now = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local att = cjson.decode(ARGV[7])
local retryable, retryDelayMs, link = ARGV[8] == '1', tonumber(ARGV[9]), ARGV[10]
local jk = jkey(jobId)
local o = loadFs(jobId, idx)
if o.s ~= 'ACTIVE' or o.r ~= run then return {'stale'} end
local last = o.a[#o.a]
for k, v in pairs(att) do if k ~= 'resume' and k ~= 'checksumValue' then last[k] = v end end
last['end'] = now
redis.call('HDEL', jk..':prog', idx)
redis.call('HDEL', jk..':cp', idx)
redis.call('DECR', P..':active')
-- bytes of this attempt not yet counted by progress reports go into the rate windows now
local unreported, window = tonumber(ARGV[11] or '0'), ARGV[12]
if unreported > 0 and window then
  for _, scope in ipairs({jobId, '_all'}) do
    local rk = P..':rate:'..scope..':'..window
    redis.call('INCRBY', rk, unreported)
    redis.call('EXPIRE', rk, 20)
  end
end
local jh = redis.call('HMGET', jk, 'retries', 'canceled')
local retries = tonumber(jh[1])
local canceled = jh[2] == '1' or o.cx == 1
if att.resume then o.rs = att.resume end
local result
if outcome == 'ok' then
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
    redis.call('INCR', P..':queued')
    local member = jobId..'_'..idx..'_'..o.q
    redis.call('ZADD', P..':outbox', now + retryDelayMs, member)
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
local downEp = ARGV[13] or ''
if downEp ~= '' then
  local n = tonumber(redis.call('HINCRBY', P..':epfail', downEp, 1))
  local u = tonumber(redis.call('HGET', P..':trip', downEp) or '0')
  -- (re)trip only when not already open: transfers in flight when it tripped do not extend it
  if n >= tonumber(ARGV[14]) and u <= now then
    local cd = tonumber(ARGV[15])
    if u > 0 then cd = math.min(tonumber(ARGV[16]), 2 * tonumber(redis.call('HGET', P..':tripcd', downEp) or cd))
    else redis.call('HSET', P..':triphold', downEp, now + tonumber(ARGV[17])) end
    redis.call('HSET', P..':trip', downEp, now + cd)
    redis.call('HSET', P..':tripcd', downEp, cd)
    publish({ t = 'endpoint', endpoint = downEp, state = 'unavailable', retryAt = now + cd, failures = n })
  end
elseif outcome == 'ok' and redis.call('HLEN', P..':epfail') > 0 then
  local src, dst = linkEnds(link)
  for _, ep in ipairs({src, dst}) do
    redis.call('HDEL', P..':epfail', ep)
    if redis.call('HDEL', P..':trip', ep) == 1 then
      redis.call('HDEL', P..':tripcd', ep)
      redis.call('HDEL', P..':triphold', ep)
      publish({ t = 'endpoint', endpoint = ep, state = 'available' })
    end
  end
end
finishJobIfDone(jobId, now)
return result
`;

/**
 * cancelBatch: cancels up to ARGV[3] not-yet-active files of a canceled job (SUBMITTED, then QUEUED).
 * Returns the number still left to cancel in those states; the caller loops until 0. ACTIVE files are
 * aborted by their workers (pub/sub) and closed by END as CANCELED.
 */
export const CANCEL_BATCH = COMMON + `
local jobId, limit, now = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
-- target: CANCELED (user cancel) or FAILED with an error (e.g. max time in queue exceeded)
local target, errCode, errMsg = ARGV[5] or 'CANCELED', ARGV[6], ARGV[7]
local jk = jkey(jobId)
if not redis.call('HGET', jk, 'state') then return -1 end
if target == 'CANCELED' then redis.call('HSET', jk, 'canceled', '1') end
local done = 0
for _, st in ipairs({'SUBMITTED', 'QUEUED'}) do
  local ids = redis.call('ZRANGE', jk..':st:'..st, 0, limit - done - 1)
  for _, idx in ipairs(ids) do
    local o = loadFs(jobId, idx)
    if st == 'QUEUED' then
      releaseSlots(fileLink(jobId, idx)); redis.call('DECR', P..':queued')
      redis.call('ZREM', P..':outbox', jobId..'_'..idx..'_'..o.q)
    end
    o.s = target
    if target == 'FAILED' then o.e = { code = errCode, message = errMsg } end
    saveFs(jobId, idx, o); moveState(jobId, idx, st, target)
    done = done + 1
  end
  if done >= limit then break end
end
local left = redis.call('ZCARD', jk..':st:SUBMITTED') + redis.call('ZCARD', jk..':st:QUEUED')
if left == 0 then
  -- the lanes only hold canceled files now
  for _, link in ipairs(redis.call('LRANGE', jk..':links', 0, -1)) do redis.call('DEL', P..':lane:'..jobId..':'..link) end
  redis.call('DEL', jk..':links')
  redis.call('ZREM', P..':own:'..redis.call('HGET', jk, 'owner'), jobId)
  finishJobIfDone(jobId, now)
end
return left
`;

/** cancelFile: cancels one file. Returns its state afterwards ('ACTIVE' means its worker was asked to abort). */
export const CANCEL_FILE = COMMON + `
local jobId, idx, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local jk = jkey(jobId)
if not redis.call('HGET', jk, 'state') then return 'NOJOB' end
if not redis.call('HEXISTS', jk..':spec', idx) then return 'NOFILE' end
local o = loadFs(jobId, idx)
local link = fileLink(jobId, idx)
if o.s == 'SUBMITTED' then
  redis.call('LREM', P..':lane:'..jobId..':'..link, 1, idx)
elseif o.s == 'QUEUED' then
  releaseSlots(link); redis.call('DECR', P..':queued'); redis.call('ZREM', P..':outbox', jobId..'_'..idx..'_'..o.q)
elseif o.s == 'ACTIVE' then
  o.cx = 1; saveFs(jobId, idx, o)
  redis.call('PUBLISH', P..':ctl', cjson.encode({ op = 'cancel', job = jobId, file = tonumber(idx) }))
  return 'ACTIVE'
else
  return o.s
end
local from = o.s
o.s = 'CANCELED'; saveFs(jobId, idx, o); moveState(jobId, idx, from, 'CANCELED')
publish({ t = 'file', job = jobId, file = tonumber(idx), state = 'CANCELED' })
finishJobIfDone(jobId, now)
return 'CANCELED'
`;

/**
 * register: makes a fully written job visible in one step: job hash, listing, owner ring, and PERSIST of
 * the keys written beforehand with a safety TTL (so a gateway crash mid-submission leaves nothing behind).
 * ARGV: prefix, jobId, owner, prio, created, then field/value pairs count N, pairs…, then keys to persist.
 */
export const REGISTER = COMMON + `
local jobId, owner, prio, created = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local nf = tonumber(ARGV[6])
local jk = jkey(jobId)
local fields = {}
for i = 7, 6 + nf * 2 do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', jk, unpack(fields))
for i = 7 + nf * 2, #ARGV do redis.call('PERSIST', ARGV[i]) end
redis.call('ZADD', P..':jobs', created, jobId)
redis.call('SADD', P..':jobs:active', jobId)
local seq = redis.call('INCR', P..':rr')
redis.call('ZADD', P..':own:'..owner, (5 - prio) * 1e12 + seq, jobId)
if not redis.call('LPOS', P..':owners', owner) then redis.call('RPUSH', P..':owners', owner) end
publish({ t = 'job', job = jobId, state = 'ACTIVE' })
return 1
`;
