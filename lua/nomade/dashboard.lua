-- nomade.dashboard: what `nomade run --http` serves (README, "The
-- dashboard"): the pages of web/, and the data tree (nomade.tree) in the
-- Firebase REST shape, so the pages speak one protocol to nomade or to a
-- Firebase database: GET /<path>.json, the same with Accept:
-- text/event-stream for a stream of put/patch events (keep-alive
-- included), and POST /commands.json for the controls, which needs the
-- token printed at start-up. Everything else is read-only. A control runs
-- in the request's own coroutine: one that waits (a halt cancelling an
-- order on a slow exchange) holds its answer, never the loop.
-- Only the pages' own origin may ask: no CORS header, a foreign Origin
-- refused, and a Host that is not an address or localhost refused (a
-- DNS-rebinding page names its own domain). The pages need no more: from
-- nomade they are same-origin, and in Firebase mode (?db=) they read the
-- database, not nomade.
local httpd = require "nomade.httpd"
local loop = require "nomade.loop"
local tree_mod = require "nomade.tree"
local cjson = require "cjson.safe"
local controls = require "nomade.controls"

local M = {}

M.KEEPALIVE = 30  -- seconds between keep-alive events on a quiet stream

local TYPES = { html = "text/html; charset=utf-8", js = "text/javascript; charset=utf-8",
  mjs = "text/javascript; charset=utf-8", css = "text/css; charset=utf-8", json = "application/json",
  png = "image/png", svg = "image/svg+xml", ico = "image/x-icon", map = "application/json" }

local JSON = { ["Content-Type"] = "application/json; charset=utf-8", ["Cache-Control"] = "no-cache" }

local function reply(status, body, headers)
  return { status = status, headers = headers or JSON, body = body }
end

local function refuse(status, message)
  return reply(status, tree_mod.json({ error = message }))
end

-- a file of the web directory, or 404; no path outside it
local function static(dir, path)
  if path == "/" then return { status = 302, headers = { Location = "/trading.html" }, body = "" } end
  local ext = path:match("%.(%w+)$")
  if not dir or path:find("..", 1, true) or not path:match("^/[%w%-_./]+$") or not TYPES[ext] then
    return refuse(404, "Not found")
  end
  local f = io.open(dir .. path, "rb")
  if not f then return refuse(404, "Not found") end
  local body = f:read("a")
  f:close()
  return reply(200, body, { ["Content-Type"] = TYPES[ext], ["Cache-Control"] = "no-cache" })
end

-- Firebase's push ids: time-ordered, 20 characters
local PUSH = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
local last_push, last_rand = 0, {}
local function push_id(now)
  local out = {}
  local t = now
  for k = 8, 1, -1 do
    out[k] = PUSH:sub(t % 64 + 1, t % 64 + 1)
    t = t // 64
  end
  if now == last_push then  -- the same ms: the random part counts up
    for k = 12, 1, -1 do
      if last_rand[k] < 63 then last_rand[k] = last_rand[k] + 1 break end
      last_rand[k] = 0
    end
  else
    for k = 1, 12 do last_rand[k] = math.random(0, 63) end
  end
  last_push = now
  for k = 1, 12 do out[8 + k] = PUSH:sub(last_rand[k] + 1, last_rand[k] + 1) end
  return table.concat(out)
end

-- a Host naming this machine: localhost, an IPv4 address or a [IPv6]
-- one, with a port or not
local function own_host(host)
  host = (host or ""):lower()
  local name, port = host:match("^(%[[%x:.]+%])(.*)$")
  if not name then name, port = host:match("^([^:]*)(.*)$") end
  if port ~= "" and not port:match("^:%d+$") then return false end
  if name == "localhost" or name:match("^%[[%x:.]+%]$") then return true end
  local bytes = { name:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$") }
  if #bytes ~= 4 then return false end
  for _, b in ipairs(bytes) do if #b > 3 or tonumber(b) > 255 then return false end end
  return true
end

-- why a request may not be answered (its Host, its Origin), or nil
local function foreign(req)
  local host, origin = req.headers.host, req.headers.origin
  if not own_host(host) then return "the Host must be this machine's address or localhost" end
  if origin and origin:lower() ~= "http://" .. host:lower() and origin:lower() ~= "https://" .. host:lower() then
    return "cross-origin requests are refused: open the pages from this server, or read Firebase with ?db="
  end
end

-- the first key that one object of the JSON text has twice, or nil:
-- cjson keeps the last, and a control must say one thing
local function duplicate_key(text)
  local objects, want_key, at = {}, false, 1
  while true do
    local i, c = text:match('()([{}%[%],"])', at)
    if not i then return nil end
    at = i + 1
    if c == '"' then
      local j = i + 1
      repeat
        local q, e = text:match('()([\\"])', j)
        if not q then return nil end  -- unterminated: not JSON, refused anyway
        j = q + (e == "\\" and 2 or 0)
      until e == '"'
      at = j + 1
      if want_key then
        local key, top = cjson.decode(text:sub(i, j)), objects[#objects]
        if key == nil then return nil end
        if top[key] then return key end
        top[key], want_key = true, false
      end
    elseif c == "{" or c == "[" then
      objects[#objects + 1] = c == "{" and {} or false
      want_key = c == "{"
    elseif c == "," then
      want_key = objects[#objects] and true or false
    else
      objects[#objects], want_key = nil, false
    end
  end
end

local function authorized(req, token)
  local auth = req.query.auth or (req.headers.authorization or ""):match("^Bearer%s+(.+)$")
  return token ~= nil and auth == token
end

-- M.handler{tree, web = dir, token, on_command = fn(action, "dashboard")
-- -> result text, or nil, why} -> handle(req) for nomade.httpd, and the
-- open streams (id -> st).
-- Pure but for the tree: tests/fuzz/fuzz_dashboard.c throws requests at it
function M.handler(o)
  local tree = o.tree
  local streams = {}

  local function forget(id)
    tree:unsubscribe(id)
    streams[id] = nil
  end

  -- a stream of the tree at keys_path: a put of all of it, then its changes
  local function stream_of(keys_path)
    local id
    local function open(st)
      id = tree:subscribe(keys_path, function(kind, path, data)
        if not st:send(tree_mod.event(kind, path, data)) then forget(id) end
      end)
      streams[id] = st
      st:send(tree_mod.event("put", "/", tree:get(keys_path)))
    end
    return open, function() if id then forget(id) end end
  end

  local function command(req)
    if not authorized(req, o.token) then return refuse(401, "Permission denied") end
    local doc = cjson.decode(req.body)
    local twice = type(doc) == "table" and duplicate_key(req.body)
    if twice then return refuse(400, "the body has the key " .. tree_mod.json(twice) .. " twice") end
    if type(doc) ~= "table" or not controls.ACTIONS[doc.action] then
      return refuse(400, "the body must be {\"action\": \"pause\"|\"resume\"|\"halt\"|\"unhalt\"}")
    end
    local now = math.floor(loop.time() * 1000)
    local name = push_id(now)
    tree:put("/commands/" .. name, { action = doc.action, time = now, source = "dashboard" })
    local result = controls.carry_out(o.on_command, doc.action, "dashboard")
    tree:put("/commands/" .. name .. "/result", result)
    return reply(200, tree_mod.json({ name = name, result = result }))
  end

  local function handle(req)
    local path = req.path
    local refused = foreign(req)
    if refused then return refuse(403, refused) end
    if not path:match("%.json$") then
      if req.method ~= "GET" and req.method ~= "HEAD" then return refuse(405, "Method not allowed") end
      return static(o.web, path)
    end
    local keys_path = path:gsub("%.json$", "")
    if keys_path == "" then keys_path = "/" end
    local keys, why = tree_mod.split(keys_path)
    if not keys then return refuse(400, why) end
    if req.method == "POST" and keys_path:gsub("/+$", "") == "/commands" then return command(req) end
    if req.method ~= "GET" then return refuse(401, "Permission denied") end
    if (req.headers.accept or ""):find("text/event-stream", 1, true) then
      local open, closed = stream_of(keys_path)
      return { status = 200, headers = { ["Content-Type"] = "text/event-stream", ["Cache-Control"] = "no-cache" },
        stream = open, on_close = closed }
    end
    if req.query.print == "silent" then return reply(204, "") end
    return reply(200, tree_mod.json(tree:get(keys_path)))
  end
  return handle, streams, forget
end

-- M.serve{host, port, keepalive = s, and M.handler's} -> server
-- (server.port, server:close()) or nil, err
function M.serve(o)
  local handle, streams, forget = M.handler(o)
  local srv, err = httpd.listen { host = o.host or "127.0.0.1", port = o.port or 8080, handler = handle }
  if not srv then return nil, err end
  -- keep-alives: a quiet stream still shows it lives, and a dead client is
  -- found by the write that fails
  local ticker = loop.timer(o.keepalive or M.KEEPALIVE, o.keepalive or M.KEEPALIVE, function()
    for id, st in pairs(streams) do
      if not st:send(tree_mod.event("keep-alive")) then forget(id) end
    end
  end)
  return setmetatable({ port = srv.port }, { __index = {
    close = function()
      ticker:stop()
      for id, st in pairs(streams) do
        st:close()
        forget(id)
      end
      srv:close()
    end } })
end

return M
