-- nomade.bybit.stream: a Bybit-style WebSocket stream that stays up. Over
-- nomade.ws it adds what every Bybit stream needs: the application ping
-- every 20 s, a deadline after which a silent stream is dead even though
-- TCP looks open, reconnects with jittered exponential back-off (reset
-- after M.HEALTHY_S of a link up), and the
-- messages handled one at a time, in order (a handler may wait on HTTP).
--   stream.open{url =, name =, timeout = s (30),
--               on_open = fn(st) (subscribe, auth, catch up; runs in order
--                 with the messages; false, why drops the connection, else
--                 the link is up),
--               on_message = fn(st, doc) (doc: the decoded JSON),
--               on_link = fn(up, why),
--               on_beat = fn() (each frame, as it arrives: the shield's
--                 heartbeat)} -> st
--   st:send(table) -> true or nil, err;  st:stop();  st.up, st.connects,
--   st.messages, st.malformed
local cjson = require "cjson.safe"
local loop = require "nomade.loop"
local log = require "nomade.log"
local ws = require "nomade.ws"

local M = {}

M.PING_S = 20       -- Bybit's advice: an application ping every 20 s
M.DEAD_S = 30       -- no message for this long: the stream is dead
M.MAX_BACKOFF = 60  -- reconnects back off up to this, jittered
M.HEALTHY_S = 30    -- up this long, a stream's back-off starts again from 1 s

local S = {}
S.__index = S

function S:send(doc)
  if not self.conn then return nil, self.name .. ": the stream is down" end
  return self.conn:send(cjson.encode(doc))
end

-- the link is up (on_open agreed) or down. The back-off starts again only
-- once a link has stayed up a while: a stream that connects and is then
-- refused (a private auth) must not reconnect every second
function S:link(up, why)
  self.up = up
  if up then self.timers.healthy = loop.timer(M.HEALTHY_S, 0, function() self.backoff = 1 end) end
  if self.on_link then self.on_link(up, why) end
end

local OPENED = {}  -- the queue's marker for on_open

-- the queue, one item at a time; a failing handler is logged, not fatal
function S:drain()
  if self.busy then return end
  self.busy = true
  while #self.queue > 0 do
    local item = table.remove(self.queue, 1)
    if item ~= OPENED then self.arrived, item = item[2], item[1] end  -- when it came off the socket
    local ok, err = pcall(function()
      if item == OPENED then
        local fine, why = self.on_open(self)
        if fine ~= false then return self:link(true) end
        log.event("error", "stream_open", { stream = self.name, why = why }, "  error " .. self.name .. ": " .. tostring(why))
        if self.conn then self.conn:close(1000, "refused", true) end
        return
      end
      local doc = cjson.decode(item)
      if type(doc) ~= "table" then
        self.malformed = self.malformed + 1
        log.event("warn", "stream_malformed", { stream = self.name },
          "  warn  " .. self.name .. ": a message that is not JSON, ignored")
      elseif doc.op ~= "pong" and doc.ret_msg ~= "pong" then
        self.on_message(self, doc)
      end
    end)
    if not ok then log.event("error", "stream_error", { stream = self.name, error = tostring(err) },
      "  error " .. self.name .. ": " .. tostring(err)) end
  end
  self.busy = false
end

function S:stop_timers()
  for _, t in pairs(self.timers) do t:stop() end
  self.timers = {}
end

function S:retry(why)
  if self.stopped then return end
  local delay = self.backoff * (0.8 + 0.4 * math.random())
  self.backoff = math.min(M.MAX_BACKOFF, self.backoff * 2)
  log.event("warn", "stream_down", { stream = self.name, why = why, retry_in = delay },
    string.format("  warn  %s: the stream is down (%s); reconnecting in %.1f s", self.name, why, delay))
  self.timers.reconnect = loop.timer(delay, 0, function() self:connect() end)
end

function S:connect()
  self.connects = self.connects + 1
  local c, err = ws.connect(self.url, {
    on_message = function(_, data)
      self.messages, self.last_msg = self.messages + 1, loop.time()
      if self.on_beat then self.on_beat() end
      self.queue[#self.queue + 1] = { data, self.last_msg }
      self:drain()
    end,
    on_close = function(_, code, reason)
      self.conn = nil
      self:stop_timers()
      self:link(false, string.format("the stream closed (%s %s)", tostring(code), tostring(reason)))
      self:retry("closed " .. tostring(code))
    end,
  })
  if not c then
    self:link(false, "no stream: " .. tostring(err))
    return self:retry(tostring(err))
  end
  self.conn, self.last_msg = c, loop.time()
  self.timers.ping = loop.timer(M.PING_S, M.PING_S, function() self:send { op = "ping", req_id = "nomade" } end)
  self.timers.watch = loop.timer(1, 1, function()
    if self.conn and loop.time() - self.last_msg > self.timeout then  -- TCP may look open: the stream is not
      self.conn:close(1000, "silent", true)
    end
  end)
  self.queue[#self.queue + 1] = OPENED
  self:drain()
end

function S:stop()
  self.stopped = true
  self:stop_timers()
  if self.conn then self.conn:close(1000, "bye", true) end
end

function M.open(o)
  local st = setmetatable({ url = o.url, name = o.name or "stream", timeout = o.timeout or M.DEAD_S,
    on_open = o.on_open or function() return true end, on_message = o.on_message, on_link = o.on_link, on_beat = o.on_beat,
    queue = {}, timers = {}, backoff = 1, connects = 0, messages = 0, malformed = 0, up = false }, S)
  st.timers.reconnect = loop.timer(0, 0, function() st:connect() end)
  return st
end

return M
