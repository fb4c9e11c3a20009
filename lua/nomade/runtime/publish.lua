-- nomade.runtime.publish: the dashboard's tree (nomade.board), served over
-- HTTP (nomade.dashboard) and published to Firebase. Candles, equity and
-- verdicts go in as they happen; the book's nodes (positions, orders,
-- trades) when the book changes (a fill, an order's news), once per turn
-- of the loop however many changes it brings; the status, the shield and
-- the live price are looked at each second (the status carries the time).
-- Methods of the runtime object (nomade.runtime).
local loop = require "nomade.loop"
local host = require "nomade.host"
local dashboard = require "nomade.dashboard"
local board_mod = require "nomade.board"
local events = require "nomade.runtime.events"

local emit = events.emit

local M = {}
local R = {}
M.methods = R

-- 16 random bytes in hex: the dashboard's controls token
local function random_token()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(16)
  f:close()
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

function M.has_pages(dir)
  local f = io.open(dir .. "/trading.html", "rb")
  if f then f:close() end
  return f ~= nil
end

-- where the pages are: web/ of the source tree the binary was built in
-- (build/nomade, build/asan/nomade), else where an install puts them;
-- nil when there are none
function M.web_dir()
  local dir = host.argv0():match("^(.*)/[^/]+$") or "."
  for _, cand in ipairs({ dir .. "/../web", dir .. "/../../web", "/usr/local/share/nomade/web" }) do
    if M.has_pages(cand) then return cand end
  end
end

-- the book's nodes, put again at once
function R:sync_book()
  local board, book = self.board, self.book
  local p = book.position
  board:sync("/positions", p and { [self.s.symbol] = { qty = p.qty, price = p.price, time = p.time, stop = p.stop,
    take = p.take } } or nil)
  local orders = {}
  for link, o in pairs(book.known or {}) do
    orders[link] = { link = link, side = o.side, qty = o.qty, status = o.status, time = o.time, reason = o.reason }
  end
  board:sync("/orders", orders)
  board:sync("/trades", board_mod.trades(book.trades))
end

-- the book changed: its nodes put again on the loop's next turn (a burst
-- of changes is one sync, and none delays the order being sent)
function R:publish_book()
  if not self.publishing or self.book_due then return end
  self.book_due = loop.timer(0, 0, function()
    self.book_due = nil
    self:sync_book()
  end)
end

-- the status and the shield (each second: the status carries the time)
function R:sync_status()
  local board, sh, reloads = self.board, self.sh, self.reloads
  local st = self:status()
  board:sync("/bot/status", { mode = st.exec, symbol = st.symbol, interval = st.interval, feed = self.feed.name,
    strategy = st.strategy, started = self.started, updated = math.floor(loop.time() * 1000), paused = st.paused,
    halted = st.halted, candles = st.candles, reload = { count = reloads.count, ok = reloads.ok,
      last = reloads.last, error = reloads.error }, errors = st.errors })
  local reasons, transitions = {}, {}
  for _, r in ipairs(sh:reasons()) do reasons[r.check] = r end
  for _, tr in ipairs(sh:transitions(math.max(0, self.seen_seq - 50))) do transitions[string.format("%d", tr.seq)] = tr end
  board:sync("/shield", { state = sh:state(), reasons = reasons, transitions = transitions })
end

-- the ticker's price between closes
function R:sync_price()
  local feed = self.feed.status()
  local live_price = feed.ticker or feed.open_candle
  if live_price then self.board:price(live_price.price or live_price.close, live_price.time or self:clock()) end
end

-- the dashboard, when --http is not off; false when it must listen and cannot
function R:serve_dashboard()
  local opts = self.opts
  if not opts.http_host then return true end
  -- a configured token is a secret, never printed; a fresh one is, once
  local token = os.getenv("NOMADE_DASHBOARD_TOKEN")
  local shown = "NOMADE_DASHBOARD_TOKEN"
  if not token or token == "" then
    token = random_token()
    shown = token
  else
    require("nomade.secrets").remember(token)
  end
  local dir = opts.web or M.web_dir()
  if not dir or not M.has_pages(dir) then
    emit("warn", "dashboard", { web = dir }, "  warn  no pages in %s: the dashboard serves its data only (--web DIR)",
      dir or "web/ near the binary")
  end
  local web, werr = dashboard.serve { host = opts.http_host, port = opts.http_port, tree = self.tree, web = dir,
    token = token, on_command = function(action, source) return self:command(action, source) end }
  if not web and opts.http then
    io.stderr:write("nomade run: the dashboard cannot listen: ", tostring(werr), " (--http off to go without)\n")
    return false
  elseif not web then  -- the default address is taken (another run?): said, and trading goes on
    emit("warn", "dashboard", { error = tostring(werr) }, "  warn  no dashboard: %s (give --http HOST:PORT)",
      tostring(werr))
  else
    emit("info", "hint", { url = string.format("http://%s:%d/", opts.http_host, web.port), web = dir },
      "  dashboard http://%s:%d/  (controls token: %s)", opts.http_host, web.port, shown)
  end
  self.web = web
  return true
end

-- --firebase: the tree published, and its /commands obeyed when asked
function R:serve_firebase()
  local opts = self.opts
  if not opts.firebase then return true end
  local publisher, perr = require("nomade.firebase").new { url = opts.firebase, tree = self.tree,
    auth = require("nomade.secrets").get("FIREBASE_AUTH") }
  if not publisher then
    io.stderr:write("nomade run: --firebase: ", tostring(perr), "\n")
    return false
  end
  self.publisher = publisher
  publisher:start()
  if opts["firebase-commands"] then
    publisher:listen(function(action, source) return self:command(action, source) end)
  end
  emit("info", "hint", { firebase = opts.firebase, commands = opts["firebase-commands"] or false },
    "  firebase: the tree is published to %s%s", opts.firebase,
    opts["firebase-commands"] and "; its /commands are obeyed" or "")
  return true
end

-- the dashboard and Firebase, then the tree kept current
function R:publish()
  self.started = math.floor(loop.time() * 1000)
  if not self:serve_dashboard() or not self:serve_firebase() then return false end
  if self.web or self.publisher then
    self.publishing = true
    self:sync_status()
    self:sync_book()
    self:sync_price()
    self.timers[#self.timers + 1] = loop.timer(1, 1, function()
      self:sync_status()
      self:sync_price()
    end)
  end
  return true
end

return M
