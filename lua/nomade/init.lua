-- nomade: the root module. Submodules load on first use, so
-- `nomade.ta.ema(...)` works in scripts, eval and (later) the REPL without
-- a require line, and nothing is loaded that is not used.
local host = require "nomade.host"

local M = { version = host.version }

function M.version_string()
  local v = host.versions()
  return string.format("nomade %s (%s, libev %s, libcurl %s, %s, SQLite %s)",
    v.nomade, v.lua, v.libev, v.libcurl, v.openssl, v.sqlite)
end

return setmetatable(M, {
  __index = function(t, k)
    if type(k) ~= "string" then return nil end
    local ok, mod = pcall(require, "nomade." .. k)
    if not ok then
      if tostring(mod):find("module 'nomade." .. k .. "' not found", 1, true) then
        return nil
      end
      error(mod, 2)
    end
    rawset(t, k, mod)
    return mod
  end,
})
