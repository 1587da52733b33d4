--[[
  A worker took run-queue member <jobId>_<idx>_<q>: claims the file for a new run.
  A redelivery of the same q while ACTIVE means the previous holder lost its lock (killed worker): that attempt is
  closed as requeued (CARGO_ERR_WORKER_LOST) and a new run starts from the lost run's last durable checkpoint (one
  saved by that very run: an older one may name a part file a later run has since removed or rewritten). A file
  canceled meanwhile (its job or itself) is closed as CANCELED instead: cancel is final whatever its holder's state.

  Input:
    KEYS[1] routing key (P:owners)
    ARGV[1] prefix P     ARGV[2] job id     ARGV[3] file index     ARGV[4] queue generation q
    ARGV[5] worker id    ARGV[6] now (ms)
  Output:
    {'run', spec, fs, params, run}  go
    {'skip', reason}                 stale or canceled delivery: nothing to do
    {'skip', 'canceled', spec, run}  a lost run's file found canceled: closed; `run` names the lost run (whose
                                     part files the caller removes)
    {'deferred'}                     its link/endpoint is not running; it went back to its lane
]]
--- @include "includes/common"
--- @include "includes/start-one"
return startOne(ARGV)
