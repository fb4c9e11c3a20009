-- The strategy contract: what loads, what is refused at load time, what
-- fails at the first call, and the sandbox. Every message names the file
-- and the function.
local t = require "testlib"
local bt = require "btlib"
local strategy = require "nomade.strategy"

local GOOD = [[
settings = { interval = "1h", history = 3 }
indicators = { e = ta.ema(3), bands = ta.bbands(3), vol = { ta.sma(2), "volume" }, a = ta.atr(2) }
function regime(m) return "R" end
function entry(m, r, v) return false end
function prompt(m, r) return "p" end
]]

local function load(src) return strategy.load(src, "=test.lua") end

local s = assert(load(GOOD))
t.ok(s.settings.symbol == "BTCUSDT" and s.settings.min_score == 70 and s.settings.stop_loss == false,
  "defaults fill the settings not given")
t.eq(#s.indicators, 4, "indicators are declared")
t.ok(select(2, load(GOOD:gsub("function entry.-end\n", ""))):find("test.lua: entry must be a function", 1, true),
  "a missing entry is named at load time")
t.ok(select(2, load(GOOD .. "exit = 3\n")):find("test.lua: exit must be a function when defined", 1, true),
  "a non-function exit is refused")
t.ok(select(2, load(GOOD .. "settings.stoploss = 0.1\n")):find("settings.stoploss: unknown setting", 1, true),
  "a misspelt setting is refused, not ignored")
t.ok(select(2, load(GOOD .. "settings.position_size = 2\n")):find("settings.position_size must be a fraction", 1, true),
  "an out-of-range setting is refused")
t.eq(s.settings.on_daily_loss, "hold", "a day's loss holds the position by default")
t.ok(select(2, load(GOOD .. "settings.on_daily_loss = 'sell'\n")):find('settings.on_daily_loss must be "hold"', 1, true),
  "on_daily_loss is hold or flatten, nothing else")
t.ok(select(2, load(GOOD .. "settings.interval = '7m'\n")):find("settings.interval must be one of", 1, true),
  "an unknown interval is refused")
t.ok(select(2, load(GOOD .. "indicators.x = 5\n")):find("indicators.x must be a nomade.ta stream", 1, true),
  "an indicator that is not a stream is refused")
t.ok(select(2, load(GOOD .. "indicators.y = { ta.ema(2), 'bid' }\n")):find("field must be open, high", 1, true),
  "an unknown indicator field is refused")
t.ok(select(2, load("x = = 1")):find("test.lua:1:", 1, true), "a syntax error names file:line")
t.ok(select(2, load(GOOD .. "error('boom')\n")):find("test.lua:6: boom", 1, true), "an error in the top level names file:line")
t.ok(select(2, load(GOOD .. "while true do end\n")):find("instruction budget exceeded", 1, true),
  "a top level that never ends is stopped")

-- the sandbox
local sb = assert(load(GOOD .. [[
assert(io == nil and load == nil and dofile == nil and debug == nil and package == nil, "escape")
assert(os.execute == nil and os.remove == nil and os.exit == nil, "os")
assert(getmetatable("") == nil, "string metatable")
assert(getmetatable(ta.series()) == nil, "userdata metatables")
assert(not pcall(setmetatable, {}, { __gc = print }), "finalizers")
math.floor = nil  -- a copy: the host's math is untouched
ta.ema = nil      -- and so is the host's ta
state.loaded = true
]]))
t.ok(sb and math.floor ~= nil and require("nomade.ta").ema ~= nil and sb.state.loaded,
  "no io, load, package, debug, os.execute, host metatables or __gc; libraries are copies")

-- require reaches the strategy's own folder only
do
  local dir = os.tmpname() .. ".mods"
  os.execute("mkdir -p " .. dir .. "/lib")
  local f = assert(io.open(dir .. "/lib/util.lua", "w"))
  f:write("local M = {}\nfunction M.two() return 2 end\nreturn M\n")
  f:close()
  local src = GOOD .. "local util = require 'lib.util'\nassert(util.two() == 2 and require('lib.util') == util)\n"
  local mod, err = strategy.load(src, "@" .. dir .. "/s.lua")
  t.ok(mod and #mod.files == 2 and mod.files[2] == dir .. "/lib/util.lua",
    "require loads a module from the strategy's folder, once, and lists it for the watcher", err)
  local _, e1 = strategy.load(GOOD .. "require '../x'\n", "@" .. dir .. "/s.lua")
  t.ok(e1 and e1:find("is not a module name", 1, true), "require refuses paths", e1)
  local _, e2 = strategy.load(GOOD .. "require 'missing'\n", "@" .. dir .. "/s.lua")
  t.ok(e2 and e2:find("module 'missing': " .. dir .. "/missing.lua", 1, true), "a missing module is named", e2)
  os.execute("mkdir -p " .. dir .. "/adir.lua")
  local _, e4 = strategy.load(GOOD .. "require 'adir'\n", "@" .. dir .. "/s.lua")
  t.ok(e4 and e4:find("adir.lua: Is a directory", 1, true), "a module that is a directory is named as one", e4)
  for _, cmd in ipairs { "backtest " .. dir .. " --data data/binance-spot-btcusdt-1h-2022-2023.csv",
    "run " .. dir .. " --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv" } do
    local rc, _, out = t.run(cmd)
    t.ok(rc == 1 and out:find(dir .. ": Is a directory", 1, true) and not out:find("traceback", 1, true),
      cmd:match("^%a+") .. " with a directory as the strategy: exit 1 saying so, no traceback", out)
  end
  local _, e3 = strategy.load(GOOD .. "require 'x'\n", "=bundled")
  t.ok(e3 and e3:find("only a strategy file on disk", 1, true), "the bundled strategy has no folder")
end

-- first-call checks: wrong return types, writing to m
local data = bt.csv({ { 100, 101, 99.5, 100 }, { 100, 101, 99.5, 100 }, { 100, 101, 99.5, 100 },
  { 100, 101, 99.5, 100 }, { 100, 101, 99.5, 100 } })
local function fails(src, want, name)
  local r, err = bt.run { strategy = bt.file(src), data = data }
  t.ok(r == nil and tostring(err):find(want, 1, true), name, err)
end
fails(GOOD:gsub('return "R"', "return 5"), "regime(m) returned a number, expected a non-empty string",
  "regime returning a number")
fails(GOOD:gsub("return false", "return 'yes'"), "entry(m, regime, nil) returned a string, expected true or false",
  "entry returning a string for a candidate")
fails(GOOD:gsub('return "R"', 'm.close = 1; return "R"'), "m is read-only (tried to set close)", "writing to m")
fails(GOOD:gsub('return "R"', 'm.close = 1; return "R"'), "failed in regime(m) on the candle of", "errors name the function")
fails(GOOD:gsub("return false", "m.x = 1"), "failed in entry(m, regime, nil)", "errors in entry name it")
fails(GOOD:gsub('return "R"', 'm.ind.e = 1; return "R"'), "m.ind is read-only (tried to set e)", "writing to m.ind")
fails(GOOD:gsub('return "R"', 'm.candles.close[1] = 1; return "R"'), "read-only view", "writing to a candle series")
fails(GOOD:gsub('return "R"', 'return nil + 1'), "failed in regime(m) on the candle of 2023-01-01 02:00: ", "an error names the candle")
fails(GOOD:gsub("return false", "return true"):gsub('return "p"', "return 42"),
  "prompt(m, regime) returned a number", "prompt returning a number")
fails(GOOD:gsub("return false", "if v == nil then return true end return 5"),
  "entry(m, regime, verdict) returned a number", "entry returning a number for a verdict")

-- m carries what the contract promises
local probe = bt.file([[
settings = { interval = "1h", history = 2, position_size = 0.5 }
indicators = { e = ta.ema(2), bands = ta.bbands(2), vol = { ta.sma(2), "volume" } }
function regime(m)
  assert(m.symbol == "BTCUSDT" and m.interval == "1h" and m.shield == "GREEN")
  assert(m.time == m.candles.time[m.index] and m.close == m.candles.close:last())
  assert(m.ind.e == m.series.e[m.index] and m.ind.bands_upper >= m.ind.bands_lower)
  assert(m.ind.vol == (m.candles.volume[m.index] + m.candles.volume[m.index - 1]) / 2)
  assert(m.balance.quote > 0 and m.equity > 0 and m.settings.position_size == 0.5)
  return m.position and "IN" or "OUT"
end
function entry(m, r, v) if v == nil then return r == "OUT" end return true end
function prompt(m, r) return "p" end
function exit(m, p) assert(p.qty > 0 and p.price > 0 and m.position.qty == p.qty) return true end
]])
local rows = {}
for i = 1, 8 do rows[i] = { 100 + i, 102 + i, 99 + i, 101 + i, i } end
local r, err = bt.run { strategy = probe, data = bt.csv(rows) }
t.ok(r and #r.book.trades >= 2, "m: candle, indicators (multi-output and fields), balance, position, settings", err)

t.done()
