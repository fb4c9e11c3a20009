-- nomade.log: one line per event on stdout. In text the line is written
-- for a person; in json it is one object with ts, level, event and the
-- event's fields, for a log shipper. Levels: debug, info, warn, error.
local cjson = require "cjson"
local scrub = require("nomade.secrets").scrub
local stamp = require("nomade.time").stamp

local M = { format = "text", level = "info" }
local LEVELS = { debug = 1, info = 2, warn = 3, error = 4 }

-- log.configure(format, level) -> true or nil, err
function M.configure(format, level)
  if format ~= "text" and format ~= "json" then
    return nil, "--log-format must be text or json, got '" .. tostring(format) .. "'"
  end
  if not LEVELS[level] then
    return nil, "--log-level must be debug, info, warn or error, got '" .. tostring(level) .. "'"
  end
  M.format, M.level = format, level
  return true
end

-- log.event(level, event, fields, text): fields go to json, text to text
function M.event(level, event, fields, text)
  if LEVELS[level] < LEVELS[M.level] then return end
  local line = text
  if M.format == "json" then
    local doc = { ts = stamp(), level = level, event = event, msg = text }
    for k, v in pairs(fields or {}) do
      if doc[k] == nil then doc[k] = (v ~= v or v == math.huge) and tostring(v) or v end
    end
    line = cjson.encode(doc)
  end
  io.stdout:write(scrub(line), "\n")
  io.stdout:flush()
end

return M
