-- luacheck configuration: Lua 5.4; `nomade` is the host's one global.
std = "lua54"
read_globals = { "nomade" }
max_line_length = 140
