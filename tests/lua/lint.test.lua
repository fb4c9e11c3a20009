-- The lints of `make lint` over small fake trees: scripts/layers fails on
-- an upward require (top-level, inline, in a module folder) and on a
-- module in no layer, and ignores requires in strings and comments;
-- scripts/funclen fails on a function over 80 lines and not on a long
-- table constructor. Both pass on the real tree.
local t = require "testlib"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"rc=$?\""))
  local out = p:read("a")
  p:close()
  return tonumber(out:match("rc=(%d+)%s*$")), out:gsub("rc=%d+%s*$", "")
end

-- a fake tree of files {relative path = text}; returns its root
local function tree(files)
  local root = assert(io.popen("mktemp -d")):read("l")
  for path, text in pairs(files) do
    os.execute("mkdir -p '" .. root .. "/" .. path:match("^(.*)/") .. "'")
    local f = assert(io.open(root .. "/" .. path, "w"))
    f:write(text)
    f:close()
  end
  return root
end

local function lines(n, text) return string.rep(text, n) end

-- script over a fake tree of files: exits with rc, its output the one
-- line that holds want (none when it passes)
local roots = {}
local function case(script, files, rc, want, name)
  roots[#roots + 1] = tree(files)
  local got, out = sh(script .. " " .. roots[#roots])
  local lines_out = select(2, out:gsub("\n", "\n"))
  t.ok(got == rc and lines_out == (want and 1 or 0) and (not want or out:find(want, 1, true)), name, out)
end

-- 1. the layers
local rc, out = sh("scripts/layers")
t.ok(rc == 0, "layers: the real tree points one way", out)

case("scripts/layers", {
  ["lua/nomade/strategy.lua"] = 'local time = require "nomade.time"\n-- require "nomade.live"\n'
    .. 'local s = "require(\'nomade.backtest\')"\nreturn { time = time, s = s }\n',
  ["lua/nomade/time.lua"] = "return {}\n",
}, 0, nil, "layers: a downward require passes; requires in comments and strings are no requires")

case("scripts/layers", {
  ["lua/nomade/bybit.lua"] = '-- the REST client\nlocal ta = require "nomade.ta"\n'
    .. 'local step = require("nomade.strategy").INTERVALS["1h"]\nreturn { ta = ta, step = step }\n',
  ["lua/nomade/strategy.lua"] = "return { INTERVALS = {} }\n",
}, 1, "lua/nomade/bybit.lua:3: nomade.bybit (adapters) requires nomade.strategy (domain), a higher layer",
  "layers: an inline upward require fails, naming file:line and both layers")

case("scripts/layers", {
  ["lua/nomade/bybit/rest.lua"] = 'local live = require "nomade.live"\nreturn live\n',
  ["lua/nomade/live.lua"] = "return {}\n",
}, 1, "lua/nomade/bybit/rest.lua:1: nomade.bybit.rest (adapters) requires nomade.live (runtime)",
  "layers: nomade.bybit.* are adapters by their path")

case("scripts/layers", { ["lua/nomade/widget.lua"] = "return {}\n" }, 1, "module nomade.widget is in no layer",
  "layers: a module in no layer fails")

-- 2. function length
rc, out = sh("scripts/funclen")
t.ok(rc == 0, "funclen: the real tree has no function over 80 lines but its allowances", out)

local long = "local M = {}\nfunction M.ok()\n" .. lines(78, "  local _ = 1\n") .. "end\n"
  .. "local function too_long()\n  if true then\n" .. lines(77, "    local _ = 'end'\n") .. "  end\nend\n"
  .. "M.DATA = {\n" .. lines(100, "  { 1, 2, 3 },\n") .. "}\nreturn M, too_long\n"
case("scripts/funclen", { ["lua/nomade/x.lua"] = long }, 1,
  "funclen: lua/nomade/x.lua:82: function too_long is 81 lines (at most 80)",
  "funclen: 81 lines fail, 80 pass, a table constructor is no function")

for _, root in ipairs(roots) do os.execute("rm -rf '" .. root .. "'") end
t.done()
