-- bench_reload.lua: reload latency, from saving the strategy to the
-- runtime saying the new strategy is in place (target <= 50 ms); the
-- samples (ms) on a last line, for make bench's comparison.
--   nomade script tests/bench/bench_reload.lua NOMADE
local loop = require "nomade.loop"
local bin = ...
local dir = os.tmpname() .. ".reload"
os.execute("mkdir -p " .. dir)
local strat, out = dir .. "/s.lua", dir .. "/out"
local function write(text)
  local f = assert(io.open(strat, "w")); f:write(text); f:close()
end
local base = io.open("lua/strategy.lua"):read("a")
write(base)
os.execute(string.format("%s run %s --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv --speed 3600 "
  .. "--journal %s/j --socket %s/s > %s 2>&1 & echo $! > %s/pid", bin, strat, dir, dir, out, dir))
local pid = io.open(dir .. "/pid"):read("l")

local function reloads()
  local f = io.open(out)
  if not f then return 0 end
  local n = 0
  for line in f:lines() do if line:find("  reload ", 1, true) then n = n + 1 end end
  f:close()
  return n
end

-- one poll every 2 ms: save, wait for the reload line, rest, save again
local samples, round, t0, want, rest_until = {}, 0, 0, 0, 1.0 + loop.now()
loop.timer(0, 0.002, function(t)
  local now = loop.now()
  if want > 0 then
    if reloads() >= want then
      samples[#samples + 1] = (now - t0) * 1000
      want, rest_until = 0, now + 0.25
    elseif now - t0 > 3 then
      want, rest_until = 0, now  -- lost: count it as a miss and go on
    end
  elseif now >= rest_until then
    round = round + 1
    if round > 10 then
      t:stop()
      return loop.stop()
    end
    want, t0 = reloads() + 1, now
    write(base .. string.format("\n-- edit %d\n", round))
  end
end)
loop.run()
os.execute("kill -INT " .. pid)
table.sort(samples)
if #samples == 0 then
  print("reload    no reload seen (see " .. out .. ")")
else
  print(string.format("reload    save -> new strategy active: median %.0f ms, max %.0f ms over %d saves (target <= 50 ms)",
    samples[(#samples + 1) // 2], samples[#samples], #samples))
  local ms = {}
  for i, v in ipairs(samples) do ms[i] = string.format("%.1f", v) end
  print("reload    samples ms: " .. table.concat(ms, " "))
end
