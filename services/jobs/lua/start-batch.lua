--[[
  A worker took a bundle of run-queue members: claims them all in one call, each exactly as start.lua claims one
  (group claim: one script call and one round trip for the bundle instead of one per file).

  Input:
    KEYS[1] routing key (P:owners)
    ARGV[1] prefix P     ARGV[2] worker id     ARGV[3] now (ms)
    ARGV[4..] per member: job id, file index, queue generation q (three values each)
  Output:
    one start.lua result per member, in order
]]
--- @include "includes/common"
--- @include "includes/start-one"
local worker, now = ARGV[2], ARGV[3]
local out = {}
for i = 4, #ARGV, 3 do
  out[#out + 1] = startOne({ ARGV[1], ARGV[i], ARGV[i + 1], ARGV[i + 2], worker, now })
end
return out
