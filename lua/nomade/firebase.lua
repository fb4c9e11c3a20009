-- nomade.firebase: the dashboard's data tree (nomade.tree) published to a
-- Firebase Realtime Database over its REST API (protocols.md §4), so the
-- same pages can read it from anywhere. Changes are gathered as paths and
-- sent as one multi-location PATCH per interval, each path with the
-- tree's value at the time of sending; a failed PATCH keeps its paths,
-- and the next try waits longer (1, 2, 4 ... 60 s). All of it runs on
-- timers of its own: trading never waits for Firebase. The credential is
-- a query parameter on the wire only: never in a log line or an error.
-- /commands is not published: it is the dashboard's input, which listen()
-- streams (SSE) when the user enables remote control.
local http = require "nomade.http"
local loop = require "nomade.loop"
local tree_mod = require "nomade.tree"
local log = require "nomade.log"
local controls = require "nomade.controls"
local time = require "nomade.time"

local M = {}

M.INTERVAL = 1      -- seconds between PATCHes, at most one in flight
M.MAX_BACKOFF = 60
M.HEALTHY_S = 30    -- a commands stream up this long starts its back-off again from 1 s
M.COMMAND_TTL = 600 -- seconds: an older command found unhandled is not carried out
M.IDLE = 90         -- a stream with nothing, keep-alives included, for this long is cut

local P = {}
P.__index = P

-- firebase.new{url = "https://<db>.firebaseio.com" (or http://host:port),
--              auth = secret or token, tree, interval = s} -> publisher,
-- or nil, err
function M.new(o)
  if type(o.url) ~= "string" or not o.url:match("^https?://[^/?#]+$") then
    return nil, "firebase: the database URL must be https://<name>.firebaseio.com (no path)"
  end
  if type(o.auth) ~= "string" or o.auth == "" then
    return nil, "firebase: FIREBASE_AUTH (a database secret or an ID token) is needed"
  end
  return setmetatable({ url = o.url, auth = o.auth, tree = o.tree, interval = o.interval or M.INTERVAL,
    pending = {}, backoff = 0, sent = 0, failed = 0, last_error = nil, wait_until = 0 }, P)
end

-- is a path, or one above it, waiting already?
local function covered(pending, keys)
  local path = ""
  if pending["/"] then return true end
  for _, k in ipairs(keys) do
    path = path .. "/" .. k
    if pending[path] then return true end
  end
  return false
end

-- a change at path: remembered once, and what it covers forgotten
function P:mark(path)
  local keys = tree_mod.split(path)
  if not keys or keys[1] == "commands" or covered(self.pending, keys) then return end
  local norm = #keys == 0 and "/" or "/" .. table.concat(keys, "/")
  for p in pairs(self.pending) do
    if norm == "/" or p:sub(1, #norm + 1) == norm .. "/" then self.pending[p] = nil end
  end
  self.pending[norm] = true
end

-- one PATCH of everything pending, read from the tree now
function P:flush()
  if self.busy or next(self.pending) == nil or loop.time() < self.wait_until then return end
  local paths, body = self.pending, {}
  self.pending, self.busy = {}, true
  for p in pairs(paths) do
    if p == "/" then  -- the whole tree: each top-level child
      for k, v in pairs(self.tree:get("/") or {}) do
        if k ~= "commands" then body[k] = v end
      end
    else
      local v = self.tree:get(p)
      body[p:sub(2)] = v == nil and require("cjson.safe").null or v
    end
  end
  local status, headers, text = http.request { method = "PATCH", url = self.url .. "/.json?print=silent&auth="
    .. self.auth, headers = { ["Content-Type"] = "application/json" }, body = tree_mod.json(body), timeout = 10 }
  self.busy = false
  if status == 200 or status == 204 then
    self.sent, self.backoff, self.last_ok = self.sent + 1, 0, time.stamp()
    return true
  end
  -- kept for the next try (what changed meanwhile is marked already)
  for p in pairs(paths) do self:mark(p) end
  self.failed = self.failed + 1
  self.backoff = math.min(M.MAX_BACKOFF, math.max(1, self.backoff * 2))
  self.wait_until = loop.time() + self.backoff
  local why = status and string.format("HTTP %d %s", status, (text or ""):match('"error"%s*:%s*"([^"]*)"') or "")
    or tostring(headers)
  why = self:scrub(why)  -- whatever the error quotes
  self.last_error = why
  log.event("warn", "firebase", { error = why, retry_in = self.backoff },
    string.format("  warn  firebase: the update failed (%s); again in %d s", why, self.backoff))
  return nil, why
end

-- starts publishing: the whole tree first, then its changes
function P:start()
  self.sub = self.tree:subscribe("/", function(kind, path, data)
    if kind == "patch" then
      for k in pairs(data) do self:mark((path == "/" and "" or path) .. "/" .. k) end
    else
      self:mark(path)
    end
  end)
  self:mark("/")
  self.timer = loop.timer(0, self.interval, function() self:flush() end)
end

function P:stop()
  if self.timer then self.timer:stop() end
  if self.listener then self.listener:stop() end
  if self.sub then self.tree:unsubscribe(self.sub) end
end

-- M.sse_parser() -> feed(chunk) -> the events {event, data} it completes.
-- Lines end with \n, \r or \r\n; ":" starts a comment; data lines are
-- joined with \n; a blank line ends an event (protocols.md §4.6). Pure,
-- never raises (tests/fuzz/fuzz_sse.c holds it to that).
function M.sse_parser()
  local buf, name, data = "", nil, nil
  return function(chunk)
    buf = buf .. chunk
    local out, pos = {}, 1
    while true do
      local s, e = buf:find("[\r\n]", pos)
      if not s then break end
      if buf:sub(s, s) == "\r" then
        if s == #buf then break end  -- a \r\n may be split across chunks
        if buf:sub(s + 1, s + 1) == "\n" then e = s + 1 end
      end
      local line = buf:sub(pos, s - 1)
      pos = e + 1
      if line == "" then
        if data or name then out[#out + 1] = { event = name or "message", data = data or "" } end
        name, data = nil, nil
      elseif line:sub(1, 1) ~= ":" then
        local field, value = line:match("^([^:]*):? ?(.*)$")
        if field == "event" then
          name = value
        elseif field == "data" then
          data = data and data .. "\n" .. value or value
        end
      end
    end
    buf = buf:sub(pos)
    return out
  end
end

-- the commands of a stream event: {id = command} (a put or patch at "/",
-- or a put at "/<id>"); nothing for writes deeper down
local function commands_in(path, data)
  if type(data) ~= "table" then return {} end
  if path == "/" then return data end
  local id = path:match("^/([^/]+)$")
  return id and { [id] = data } or {}
end

-- one command from the dashboard: carried out once, unless stale, and
-- answered with its result
function P:command(id, c, on_command)
  if type(c) ~= "table" or c.result ~= nil or self.handled[id] then return end
  self.handled[id] = true
  local now = math.floor(loop.time() * 1000)
  local result
  local age = type(c.time) == "number" and now - c.time
  if not age or age ~= age or age > M.COMMAND_TTL * 1000 then  -- (NaN: cjson reads "nan")
    result = "expired: not carried out"
  elseif not controls.ACTIONS[c.action] then
    result = "refused: unknown action"
  else
    result = controls.carry_out(on_command, c.action, "firebase")
  end
  http.request { method = "PATCH", url = self.url .. "/commands/" .. id .. ".json?print=silent&auth=" .. self.auth,
    headers = { ["Content-Type"] = "application/json" }, body = tree_mod.json({ result = result, handled = now }) }
end

-- the credential out of a message
function P:scrub(text) return (text:gsub(self.auth:gsub("%p", "%%%0"), "<auth>")) end

-- listen(on_command): the dashboard's /commands streamed (SSE), each new
-- command carried out (on_command(action, "firebase"), as the dashboard's,
-- in the coroutine of the stream's chunk: a slow one waits without
-- holding the loop); the stream reconnects with back-off when it ends
function P:listen(on_command)
  self.handled = {}
  local wait = 1
  local function connect()
    local parser, ended, began = M.sse_parser(), nil, loop.time()
    local status, _, text = http.request { url = self.url .. "/commands.json?auth=" .. self.auth,
      headers = { Accept = "text/event-stream", ["Cache-Control"] = "no-cache" }, timeout = 7 * 86400,
      idle = M.IDLE, on_data = function(chunk)
        for _, e in ipairs(parser(chunk)) do
          if e.event == "auth_revoked" or e.event == "cancel" then
            ended = e.event
            return false
          end
          local doc = (e.event == "put" or e.event == "patch") and require("cjson.safe").decode(e.data)
          if type(doc) == "table" and type(doc.path) == "string" then
            -- on_data runs where nothing can yield: each command in a handler of its own
            for id, c in pairs(commands_in(doc.path, doc.data)) do
              loop.timer(0, 0, function() self:command(tostring(id), c, on_command) end)
            end
          end
        end
      end }
    local why = self:scrub(ended or (status and ("HTTP " .. status) or tostring(text)))
    self.listen_error = why
    if loop.time() - began >= M.HEALTHY_S then wait = 1 end  -- it had been up a while: not a refusal loop
    log.event("warn", "firebase_commands", { error = why, retry_in = wait },
      string.format("  warn  firebase: the commands stream ended (%s); again in %d s", why, wait))
    self.listener = loop.timer(wait, 0, connect)
    wait = math.min(M.MAX_BACKOFF, wait * 2)
  end
  self.listener = loop.timer(0, 0, connect)
end

function P:status()
  local n = 0
  for _ in pairs(self.pending) do n = n + 1 end
  return { sent = self.sent, failed = self.failed, pending = n, last_ok = self.last_ok, last_error = self.last_error }
end

return M
