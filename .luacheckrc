-- luacheck configuration: Lua 5.4; `nomade` is the host's one global.
std = "lua54"
read_globals = { "nomade" }
max_line_length = 140

-- strategy files define the contract's globals and read the sandbox's
files["lua/strategy.lua"] = {
  std = "lua54",
  globals = { "settings", "indicators", "regime", "prompt", "entry", "exit", "on_reload" },
  read_globals = { "ta", "state" },
}
files["tests/lua/strategies/*.lua"] = files["lua/strategy.lua"]
