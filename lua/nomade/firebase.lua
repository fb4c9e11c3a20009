-- nomade.firebase: the dashboard's data tree (nomade.tree) published to a
-- Firebase Realtime Database over its REST API (protocols.md §4), so the
-- same pages can read it from anywhere. Changes are gathered as paths and
-- sent as one multi-location PATCH per interval, each path with the
-- tree's value at the time of sending; a failed PATCH keeps its paths,
-- and the next try waits longer (1, 2, 4 ... 60 s). All of it runs on
-- timers of its own: trading never waits for Firebase. The credential is
-- a query parameter on the wire only: never in a log line or an error.
local http = require "nomade.http"
local loop = require "nomade.loop"
local tree_mod = require "nomade.tree"
local log = require "nomade.log"

local M = {}

M.INTERVAL = 1      -- seconds between PATCHes, at most one in flight
M.MAX_BACKOFF = 60

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
  if not keys or covered(self.pending, keys) then return end
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
      for k, v in pairs(self.tree:get("/") or {}) do body[k] = v end
    else
      local v = self.tree:get(p)
      body[p:sub(2)] = v == nil and require("cjson.safe").null or v
    end
  end
  local status, headers, text = http.request { method = "PATCH", url = self.url .. "/.json?print=silent&auth="
    .. self.auth, headers = { ["Content-Type"] = "application/json" }, body = tree_mod.json(body), timeout = 10 }
  self.busy = false
  if status == 200 or status == 204 then
    self.sent, self.backoff, self.last_ok = self.sent + 1, 0, os.date("!%Y-%m-%dT%H:%M:%SZ")
    return true
  end
  -- kept for the next try (what changed meanwhile is marked already)
  for p in pairs(paths) do self:mark(p) end
  self.failed = self.failed + 1
  self.backoff = math.min(M.MAX_BACKOFF, math.max(1, self.backoff * 2))
  self.wait_until = loop.time() + self.backoff
  local why = status and string.format("HTTP %d %s", status, (text or ""):match('"error"%s*:%s*"([^"]*)"') or "")
    or tostring(headers)
  why = why:gsub(self.auth:gsub("%p", "%%%0"), "<auth>")  -- whatever the error quotes
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
  if self.sub then self.tree:unsubscribe(self.sub) end
end

function P:status()
  local n = 0
  for _ in pairs(self.pending) do n = n + 1 end
  return { sent = self.sent, failed = self.failed, pending = n, last_ok = self.last_ok, last_error = self.last_error }
end

return M
