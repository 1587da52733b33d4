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
--- @include "includes/end-one"
return endOne(ARGV)
