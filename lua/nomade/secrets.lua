-- nomade.secrets: API keys and tokens, from the environment or from the
-- file named by NOMADE_SECRETS (NAME=value lines), which is read only when
-- it is ours and 0600. Values are handed to the clients that send them and
-- never printed: no error, log line or REPL answer carries one.
local M = {}

-- every secret value handed out so far, longest first: what scrub hides
local known, seen = {}, {}

-- M.remember(value): one more secret for scrub (a key a script handed
-- over, the dashboard's token). Values under 6 bytes are not secrets
-- worth the name, and hiding them would mangle ordinary text.
function M.remember(v)
  if type(v) ~= "string" or #v < 6 or seen[v] then return end
  seen[v] = true
  known[#known + 1] = v
  table.sort(known, function(a, b) return #a > #b end)
end

-- M.scrub(text) -> text with every known secret replaced by <secret>.
-- Everything that leaves the process goes through here: log lines, the
-- journal, the dashboard's tree, Firebase, REPL answers, the tribunal's
-- cache, the host's own error reports. Servers echo what they are sent
-- (a Gemini 403 quotes the key, Bybit's 10004 the signed string), so no
-- message from outside is trusted to be clean.
function M.scrub(text)
  if type(text) ~= "string" then return text end
  for _, v in ipairs(known) do
    if text:find(v, 1, true) then text = text:gsub(v:gsub("%p", "%%%0"), "<secret>") end
  end
  return text
end

-- the file's NAME=value pairs, or nil, err (nil, nil: no file named)
local function file_values()
  local path = os.getenv("NOMADE_SECRETS")
  if not path then return nil, nil end
  local mode, ours, kind = require("nomade.host").file_mode(path)
  if not mode then return nil, ours end
  if kind ~= "file" then
    return nil, string.format("%s: is a %s, not a file; keys are not read from it", path, kind)
  end
  -- Lua has no octal literals: 0xE3F is 07077, the set-id, sticky, group
  -- and other bits, none of which a key file may have
  if mode & 0xE3F ~= 0 or not ours then
    return nil, string.format("%s: must be a file of ours with mode 0600 (it is %04o%s); keys are not read from it",
      path, mode, ours and "" or ", owned by another user")
  end
  local f = io.open(path)
  if not f then return nil, path .. ": unreadable" end
  local vals = {}
  for line in f:lines() do
    local k, v = line:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
    if k then vals[k] = v end
  end
  f:close()
  return vals
end

-- M.get(name, ...) -> the values of the names (all from the environment if
-- it has them all, else all from the file), or nil..., err
function M.get(...)
  local names, out, all = { ... }, {}, true
  for k, name in ipairs(names) do
    out[k] = os.getenv(name)
    if not out[k] or out[k] == "" then all = false end
  end
  if all then
    for k = 1, #names do M.remember(out[k]) end
    return table.unpack(out, 1, #names)
  end
  local vals, err = file_values()
  if err then
    out = {}
    out[#names + 1] = err
    return table.unpack(out, 1, #names + 1)
  end
  for k, name in ipairs(names) do
    out[k] = vals and vals[name]
    M.remember(out[k])
  end
  return table.unpack(out, 1, #names)
end

-- the host scrubs its own reports (a callback aborted, a failed command)
-- with it too
debug.getregistry()["nomade.scrub"] = M.scrub

return M
