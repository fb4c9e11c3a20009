-- nomade.strategy: loads a user's strategy.lua into a sandbox and checks
-- the contract (README, "The strategy contract"), then calls it with the
-- return types checked. A load is a transaction: compile, run the top
-- level in a fresh environment under an instruction budget, check; any
-- failure returns nil and a message naming the file (and line), and
-- nothing of the half-loaded strategy escapes.
local host = require "nomade.host"
local ta = require "nomade.ta"
local INTERVALS = require("nomade.time").INTERVALS

local M = {}

-- instructions the top level may run (it should only define things)
M.LOAD_BUDGET = 10000000

M.INTERVALS = INTERVALS  -- nomade.time's, for strategy tools and old callers

-- name = {default, check(value) -> ok, what it must be}
local SETTINGS = {
  symbol = { "BTCUSDT", function(v) return type(v) == "string" and v:match("^%u[%u%d]+$") end,
    "an upper-case symbol such as BTCUSDT" },
  interval = { "1h", function(v) return INTERVALS[v] ~= nil end,
    "one of 1m 3m 5m 15m 30m 1h 2h 4h 6h 12h 1d 1w" },
  history = { 200, function(v) return math.type(v) == "integer" and v >= 1 end,
    "an integer >= 1 (candles needed before the first decision)" },
  position_size = { 0.95, function(v) return type(v) == "number" and v > 0 and v <= 1 end,
    "a fraction of the quote balance in (0, 1]" },
  min_score = { 70, function(v) return math.type(v) == "integer" and v >= 0 and v <= 100 end,
    "an integer in 0..100" },
  stop_loss = { false, function(v) return v == false or (type(v) == "number" and v > 0 and v < 1) end,
    "false or a fraction in (0, 1)" },
  take_profit = { false, function(v) return v == false or (type(v) == "number" and v > 0) end,
    "false or a fraction > 0" },
  -- risk limits of live execution (--exec bybit; README, "Going live")
  max_position_value = { 1000, function(v) return type(v) == "number" and v > 0 and v < math.huge end,
    "a value in the quote coin > 0 (an entry is capped to it)" },
  max_orders_per_hour = { 12, function(v) return math.type(v) == "integer" and v >= 1 end,
    "an integer >= 1 (entries beyond it are refused)" },
  max_daily_loss = { 0.05, function(v) return type(v) == "number" and v > 0 and v < 1 end,
    "a fraction in (0, 1) of the equity at the day's start (beyond it no entry for the rest of the day)" },
  on_daily_loss = { "hold", function(v) return v == "hold" or v == "flatten" end,
    "\"hold\" (keep the position, exits still go out) or \"flatten\" (sell it too)" },
}

-- a file's bytes, or nil and why ("PATH: Is a directory"): a directory
-- opens, but cannot be read
local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local src, rerr = f:read("a")
  f:close()
  if not src then return nil, path .. ": " .. tostring(rerr) end
  return src
end

-- require for a strategy: modules from its own folder only (a.b is
-- DIR/a/b.lua), run in the same sandbox, loaded afresh with each (re)load;
-- every file it reads is listed in files, for the watcher
local function folder_require(env, dir, files)
  local loaded = {}
  return function(name)
    if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") and not name:match("^[%a_][%w_]*%.[%w_.]*[%w_]$") then
      error("require: '" .. tostring(name) .. "' is not a module name (letters, digits, _ and dots)", 2)
    end
    if loaded[name] ~= nil then return loaded[name] end
    if not dir then error("require: only a strategy file on disk can require modules from its folder", 2) end
    local path = dir .. "/" .. name:gsub("%.", "/") .. ".lua"
    local src, rerr = read_file(path)
    if not src then error("require: module '" .. name .. "': " .. rerr, 2) end
    files[#files + 1] = path
    local chunk, err = load(src, "@" .. path, "t", env)
    if not chunk then error(err, 0) end
    local mod = chunk(name)
    if mod == nil then mod = true end
    loaded[name] = mod
    return mod
  end
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- M.sandbox(state, log) -> the globals a strategy sees (the REPL's start
-- from them too): no io, no os.execute, no load, no debug; libraries are
-- copies, so redefining string.format or ta.ema changes nothing outside;
-- the metatables of strings and userdata (the host's) are out of reach,
-- and no finalizer (__gc) can be set, since one would run outside any
-- budget. The caller adds require.
function M.sandbox(state, log)
  local env = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, rawequal = rawequal, rawget = rawget, rawlen = rawlen,
    select = select, tonumber = tonumber,
    tostring = tostring, type = type, xpcall = xpcall,
    getmetatable = function(v) if type(v) ~= "table" then return nil end return getmetatable(v) end,
    setmetatable = function(t, mt)
      if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
        error("setmetatable: __gc is not allowed here (a finalizer would run outside the budget)", 2)
      end
      return setmetatable(t, mt)
    end,
    math = copy(math), string = copy(string), table = copy(table), utf8 = copy(utf8),
    os = { time = os.time, date = os.date, clock = os.clock, difftime = os.difftime },
    ta = copy(ta), state = state,
    print = function(...)
      local parts = {}
      for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
      log(table.concat(parts, "\t"))
    end,
  }
  env._G = env
  return env
end

local KNOWN = {}
for k in pairs(SETTINGS) do KNOWN[#KNOWN + 1] = k end
table.sort(KNOWN)
KNOWN = table.concat(KNOWN, ", ")

local function check_settings(s, name)
  if s == nil then s = {} end
  if type(s) ~= "table" then
    return nil, string.format("%s: settings must be a table, got %s", name, type(s))
  end
  local out = {}
  for k, v in pairs(s) do
    local spec = SETTINGS[k]
    if not spec then
      return nil, string.format("%s: settings.%s: unknown setting (known: %s)", name, tostring(k), KNOWN)
    end
    if not spec[2](v) then
      return nil, string.format("%s: settings.%s must be %s, got %s", name, k, spec[3], tostring(v))
    end
    out[k] = v
  end
  for k, spec in pairs(SETTINGS) do
    if out[k] == nil then out[k] = spec[1] end
  end
  return out
end

-- indicators = { name = ta.X(...) or { ta.X(...), "field" } }
local FIELDS = { open = true, high = true, low = true, close = true, volume = true }

local function check_indicators(decl, name)
  if decl == nil then return {} end
  if type(decl) ~= "table" then
    return nil, string.format("%s: indicators must be a table, got %s", name, type(decl))
  end
  local out = {}
  for k, v in pairs(decl) do
    local stream, field = v, nil
    if type(v) == "table" then stream, field = v[1], v[2] end
    local ok, spec = pcall(function() return stream:spec() end)
    if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then
      return nil, string.format("%s: indicators: '%s' is not a plain name", name, tostring(k))
    end
    if not ok then
      return nil, string.format("%s: indicators.%s must be a nomade.ta stream such as ta.ema(200), or {stream, field}", name, k)
    end
    if field ~= nil and not FIELDS[field] then
      return nil, string.format("%s: indicators.%s: field must be open, high, low, close or volume, got %s",
        name, k, tostring(field))
    end
    if spec.inputs > 1 and field ~= nil then
      return nil, string.format("%s: indicators.%s: %s reads high, low and close; it takes no field", name, k, spec.name)
    end
    out[#out + 1] = { name = k, spec = spec, field = field or "close" }
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

-- M.load(source, chunkname [, state [, log]]) -> strategy or nil, err.
-- A strategy loaded from a file (chunkname "@path") may require modules
-- from its folder; s.files lists the file and every module it read,
-- s.source is the text it was loaded from (the journal keeps it).
function M.load(source, chunkname, state, log)
  local name = chunkname:gsub("^[@=]", "")
  state = state or {}
  local env = M.sandbox(state, log or function(line) io.stderr:write(name, ": ", line, "\n") end)
  local files = { chunkname:sub(1, 1) == "@" and name or nil }
  local dir = chunkname:sub(1, 1) == "@" and (name:match("^(.*)/[^/]*$") or ".") or nil
  env.require = folder_require(env, dir, files)
  local chunk, err = load(source, chunkname, "t", env)
  if not chunk then return nil, err end
  local ok, rerr = host.limit(M.LOAD_BUDGET, chunk)
  if not ok then return nil, tostring(rerr) end
  for _, f in ipairs({ "regime", "prompt", "entry" }) do
    if type(env[f]) ~= "function" then
      return nil, string.format("%s: %s must be a function (the contract needs regime, prompt and entry), got %s",
        name, f, type(env[f]))
    end
  end
  for _, f in ipairs({ "exit", "on_reload" }) do
    if env[f] ~= nil and type(env[f]) ~= "function" then
      return nil, string.format("%s: %s must be a function when defined, got %s", name, f, type(env[f]))
    end
  end
  local settings, serr = check_settings(env.settings, name)
  if not settings then return nil, serr end
  local indicators, ierr = check_indicators(env.indicators, name)
  if not indicators then return nil, ierr end
  return setmetatable({ name = name, env = env, state = state, settings = settings,
    indicators = indicators, files = files, source = source }, { __index = M })
end

-- M.load_file(path) or, with no path, the bundled default strategy
function M.load_file(path, state, log)
  if path == nil then
    local src = host.embedded("lua/strategy.lua")
    return M.load(src, "=lua/strategy.lua (bundled)", state, log)
  end
  local src, err = read_file(path)
  if not src then return nil, err end
  return M.load(src, "@" .. path, state, log)
end

local function bad(self, what, got)
  error(string.format("%s: %s returned %s", self.name, what, got), 0)
end

-- the calls, with their results checked; errors raise with the file
function M:regime(m)
  local r = self.env.regime(m)
  if type(r) ~= "string" or r == "" then bad(self, "regime(m)", "a " .. type(r) .. ", expected a non-empty string") end
  return r
end

function M:prompt(m, regime)
  local p = self.env.prompt(m, regime)
  if type(p) ~= "string" or p == "" then bad(self, "prompt(m, regime)", "a " .. type(p) .. ", expected a non-empty string") end
  return p
end

-- with no verdict: is this a candidate? (true/false)
function M:candidate(m, regime)
  local c = self.env.entry(m, regime, nil)
  if c ~= nil and type(c) ~= "boolean" then
    bad(self, "entry(m, regime, nil)", "a " .. type(c) .. ", expected true or false (is this a candidate?)")
  end
  return c == true
end

-- with the verdict: false, true (a market buy) or {type = "limit", price = p [, ttl = n]}
function M:entry(m, regime, verdict)
  local e = self.env.entry(m, regime, verdict)
  if e == nil or e == false then return nil end
  if e == true then return { type = "market" } end
  if type(e) ~= "table" then bad(self, "entry(m, regime, verdict)", "a " .. type(e) .. ", expected true, false or an order table") end
  if e.type == "market" then return { type = "market" } end
  -- (written so that a NaN price is refused too)
  if e.type ~= "limit" or type(e.price) ~= "number" or not (e.price > 0) then  -- luacheck: ignore 581
    bad(self, "entry(m, regime, verdict)",
      "an order table that is not {type = \"market\"} or {type = \"limit\", price = p > 0}")
  end
  local ttl = e.ttl or 1
  if math.type(ttl) ~= "integer" or ttl < 1 then
    bad(self, "entry(m, regime, verdict)", "a limit order whose ttl is not an integer >= 1")
  end
  return { type = "limit", price = e.price, ttl = ttl }
end

-- false/nil: hold; true or a string (the reason): sell at the next open
function M:exit(m, position)
  if not self.env.exit then return nil end
  local x = self.env.exit(m, position)
  if x == nil or x == false then return nil end
  if x == true then return "exit" end
  if type(x) ~= "string" then bad(self, "exit(m, position)", "a " .. type(x) .. ", expected true, false or a reason string") end
  return x
end

return M
