--[[
  Closes several runs in one call (group commit of END): each exactly as end.lua closes one, in order, so a batch
  applies the same state changes as its files' END calls one after another.

  Input:
    KEYS[1] routing key (P:owners)
    ARGV[1] prefix P     ARGV[2] now (ms)     ARGV[3] current rate window
    ARGV[4] breaker failures     ARGV[5] cool-down (ms)     ARGV[6] longest cool-down (ms)     ARGV[7] give-up time (ms)
    ARGV[8] most holds per file
    ARGV[9..] per run, twelve values: job id, file index, run number, outcome, report (JSON), '1' if retryable,
              retry delay (ms), link, unreported bytes, unreachable endpoint or '', full destination endpoint or '',
              what made it full  (end.lua's ARGV[2..5], 7..11, 13, 18, 19)
  Output:
    one end.lua result per run, in order
]]
--- @include "includes/common"
--- @include "includes/end-one"
local now, window = ARGV[2], ARGV[3]
local out = {}
for i = 9, #ARGV, 12 do
  out[#out + 1] = endOne({
    ARGV[1], ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], now, ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7],
    ARGV[i + 8], window, ARGV[i + 9], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[i + 10], ARGV[i + 11], ARGV[8],
  })
end
return out
