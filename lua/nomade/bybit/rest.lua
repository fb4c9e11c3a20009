-- nomade.bybit.rest: the Bybit V5 REST client (protocols.md §1 in the shared
-- notes; README, "Bybit"). Requests are signed in C over exactly the bytes
-- sent. Failures come back as nil, err where err is a table with kind
-- (auth, timestamp, rate_limit, invalid_request, insufficient_balance,
-- not_found, exchange, network, timeout, bad_response), retCode, retMsg,
-- status and a message (tostring(err) gives it); the secret never appears
-- in any of them. The command line over it: nomade.bybit.cli.
local core = require "nomade._bybit"
local http = require "nomade.http"
local loop = require "nomade.loop"
local cjson = require "cjson.safe"
local candle_field = require("nomade._candles").field
local failure = require("nomade.errors").new
local COLUMNS = require "nomade.columns"
local INTERVALS = require("nomade.time").INTERVALS

local M = {}

M.BASES = {
  mainnet = "https://api.bybit.com",
  testnet = "https://api-testnet.bybit.com",
  demo = "https://api-demo.bybit.com",
}

-- nomade's intervals -> Bybit's
M.INTERVALS = { ["1m"] = "1", ["3m"] = "3", ["5m"] = "5", ["15m"] = "15", ["30m"] = "30",
  ["1h"] = "60", ["2h"] = "120", ["4h"] = "240", ["6h"] = "360", ["12h"] = "720", ["1d"] = "D", ["1w"] = "W" }

local KINDS = {
  [10003] = "auth", [10004] = "auth", [10005] = "auth", [10010] = "auth",
  [10002] = "timestamp", [10006] = "rate_limit",
  [10001] = "invalid_request", [10017] = "invalid_request", [10029] = "invalid_request",
  [170121] = "invalid_request", [170130] = "invalid_request", [170136] = "invalid_request",
  [170137] = "invalid_request", [170140] = "invalid_request", [170148] = "invalid_request",
  [170132] = "invalid_request", [170133] = "invalid_request", [170134] = "invalid_request",
  [170371] = "invalid_request", [170372] = "invalid_request",
  [110007] = "insufficient_balance", [170131] = "insufficient_balance",
  [110001] = "not_found", [170213] = "not_found", [170143] = "not_found",
  [110072] = "duplicate", [170141] = "duplicate",
}

M.failure = failure

-- the wall clock, not the loop's cached time: a timestamp must not lag
local function now_ms() return math.floor(loop.time() * 1000) end

local function int(v) return math.tointeger(tonumber(v)) end

-- query strings: keys sorted, values percent-encoded; what is signed is
-- this very string. A value {raw = s} is sent as it is: a cursor comes
-- percent-encoded already, and pybit sends it back untouched
local function encode(v)
  if type(v) == "table" then return v.raw end
  return (tostring(v):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

function M.query(params)
  local keys = {}
  for k in pairs(params or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = encode(k) .. "=" .. encode(params[k]) end
  return table.concat(parts, "&")
end

local C = {}
C.__index = C

-- bybit.new{base = "mainnet"|"testnet"|"demo"|URL, key =, secret =,
--           recv_window = 5000, timeout = 10, max_wait = 10}
function M.new(o)
  o = o or {}
  local base = M.BASES[o.base or "mainnet"] or o.base
  if type(base) ~= "string" or not base:match("^https?://[^/]+$") then
    error("bybit.new: base must be mainnet, testnet, demo or an http(s)://host[:port] URL", 2)
  end
  return setmetatable({ base = base, base_name = M.BASES[o.base or "mainnet"] and (o.base or "mainnet"),
    key = o.key, secret = o.secret, recv_window = o.recv_window or 5000,
    timeout = o.timeout or 10, max_wait = o.max_wait or 10, offset = nil, rtt = 0, limits = {} }, C)
end

-- the server clock: offset = server - local, measured at mid-flight
function C:sync_time()
  local t0 = now_ms()
  local res, err = self:call("GET", "/v5/market/time", nil, false)
  if not res then return nil, err end
  local t1 = now_ms()
  local server = tonumber(res.timeNano) and math.floor(tonumber(res.timeNano) / 1e6)
    or (tonumber(res.timeSecond) or 0) * 1000
  self.offset, self.rtt, self.synced = server - (t0 + t1) // 2, t1 - t0, t1
  return self.offset
end

-- never ahead of the server: its rule refuses timestamp >= server + 1000,
-- and half a round trip is the uncertainty of the offset
function C:timestamp()
  local ok, err = self:fresh_offset()
  if not ok then return nil, err end
  return now_ms() + self.offset - self.rtt // 2 - 50
end

-- the offset, measured again when it is ten minutes old (clocks drift)
function C:fresh_offset()
  if not self.offset or now_ms() - (self.synced or 0) > 600000 then return self:sync_time() end
  return self.offset
end

-- M.parse_response(path, status, headers, text) -> result, envelope or
-- nil, err; plus the rate-limit headers as {limit, remaining, reset} (each
-- nil when missing or not an integer). Pure, and never raises whatever the
-- bytes: tests/fuzz/fuzz_bybit.c holds it to that.
function M.parse_response(path, status, headers, text)
  local limits = { limit = int(headers["x-bapi-limit"]), remaining = int(headers["x-bapi-limit-status"]),
    reset = int(headers["x-bapi-limit-reset-timestamp"]) }
  if status == 429 or (status == 403 and text:lower():find("too frequent", 1, true)) then
    return nil, failure("rate_limit", string.format("bybit %s: HTTP %d, rate limited%s", path, status,
      status == 403 and " (the IP limit: every request stops for 10 minutes)" or ""),
      { status = status, reset = limits.reset, ip_ban = status == 403 }), limits
  end
  local doc = cjson.decode(text)
  local code = type(doc) == "table" and int(doc.retCode)
  if not code or (doc.retMsg ~= nil and type(doc.retMsg) ~= "string") then
    return nil, failure(status >= 500 and "exchange" or "bad_response",
      string.format("bybit %s: HTTP %d, not a V5 response", path, status), { status = status }), limits
  end
  if code ~= 0 then
    return nil, failure(KINDS[code] or "exchange", string.format("bybit %s: %d %s", path, code, doc.retMsg or ""),
      { retCode = code, retMsg = doc.retMsg, status = status, reset = code == 10006 and limits.reset or nil }), limits
  end
  if status ~= 200 then
    return nil, failure("bad_response", string.format("bybit %s: HTTP %d with retCode 0", path, status),
      { status = status }), limits
  end
  if doc.result ~= nil and type(doc.result) ~= "table" then
    return nil, failure("bad_response", "bybit " .. path .. ": result is not an object", { status = status }), limits
  end
  return doc.result or {}, doc, limits
end

-- the server's clock as we know it
function C:server_now() return now_ms() + (self.offset or 0) end

-- seconds to wait for a rate limit to reset: until its reset timestamp,
-- and at least until the rolling one-second window has moved on; bounded
function C:limit_wait(reset, seen)
  local wait = math.max((reset or 0) - self:server_now(), (seen or 0) + 1000 - now_ms()) / 1000
  return math.max(0.05, math.min(wait, self.max_wait))
end

-- the endpoint's budget, from the headers of its last answer: spent, we
-- wait for the window rather than earn a 10006; banned (HTTP 403 for the
-- IP), every request fails at once until the ban is over
function C:banned() return self.banned_until ~= nil and now_ms() < self.banned_until end

function C:budget(path)
  if self:banned() then
    return failure("rate_limit", string.format("bybit %s: the IP is rate limited for %d s more", path,
      (self.banned_until - now_ms()) // 1000 + 1), { status = 403 })
  end
  local l = self.limits[path]
  if l and l.remaining and l.remaining <= 0 then
    l.remaining = nil
    loop.sleep(self:limit_wait(l.reset, l.seen))
  end
end

-- one HTTP exchange: result, envelope or nil, err. gate = {shield, trigger}
-- for an order: signed only if the shield allows it (in C)
function C:exchange(method, path, params, signed, gate)
  local url, body, headers = self.base .. path, nil, { ["User-Agent"] = "nomade" }
  local payload
  if method == "GET" then
    payload = M.query(params)
    if payload ~= "" then url = url .. "?" .. payload end
  else
    body = cjson.encode(params or {})
    payload = body
    headers["Content-Type"] = "application/json"
  end
  if signed and (not self.key or not self.secret) then
    return nil, failure("auth", "bybit: this endpoint needs BYBIT_API_KEY and BYBIT_API_SECRET")
  end
  local banned = self:budget(path)
  if banned then return nil, banned end
  if signed then
    local ts, terr = self:timestamp()
    if not ts then return nil, terr end
    ts = string.format("%d", ts)
    local rw = string.format("%d", self.recv_window)
    headers["X-BAPI-API-KEY"] = self.key
    headers["X-BAPI-TIMESTAMP"] = ts
    headers["X-BAPI-RECV-WINDOW"] = rw
    local sig, why
    if gate then
      sig, why = core.sign_order(gate.shield, self.secret, ts, self.key, rw, payload)
      if not sig then return nil, failure("refused", "bybit " .. path .. ": " .. why) end
    else
      sig = core.sign(self.secret, ts, self.key, rw, payload)
    end
    headers["X-BAPI-SIGN"] = sig
    headers["X-BAPI-SIGN-TYPE"] = "2"
  end
  if gate and gate.trigger and not gate.sent then  -- the first attempt: a retry's wait is not nomade's
    gate.sent, self.latency = true, (loop.time() - gate.trigger) * 1e6
  end
  local status, rh, text = http.request { method = method, url = url, headers = headers, body = body,
    timeout = self.timeout }
  if not status then
    return nil, failure(rh == "timeout" and "timeout" or "network", "bybit " .. path .. ": " .. tostring(rh))
  end
  local res, doc, limits = M.parse_response(path, status, rh, text)
  limits.seen = now_ms()
  self.limits[path] = limits
  if not res and doc.kind == "rate_limit" then
    if doc.ip_ban then self.banned_until = now_ms() + 600000 end
    doc.wait = self:limit_wait(doc.reset, limits.seen)
  end
  return res, doc
end

-- C:call(method, path, params, signed [, once]): exchange with the rules:
-- a 10002 resyncs the clock and retries once; a rate limit waits for the
-- reset and retries; GETs retry network trouble with backoff. once: no
-- retry at all but the rate limit's, which the server refused explicitly
function C:call(method, path, params, signed, once, gate)
  local resynced, backoff, last = false, 0.2, nil
  for attempt = 1, 5 do
    local res, err = self:exchange(method, path, params, signed, gate)
    if res then return res, err end
    last = err
    err.attempts = attempt
    if err.kind == "timestamp" and not resynced then
      resynced = true
      self.offset = nil
    elseif err.kind == "rate_limit" and not self:banned() then
      loop.sleep(err.wait or 1)
    elseif not once and method == "GET" and (err.kind == "network" or err.kind == "timeout"
        or (err.kind == "exchange" and (err.status or 0) >= 500)) then
      loop.sleep(backoff)
      backoff = backoff * 2
    else
      return nil, err
    end
  end
  last.message = last.message .. string.format(" (%d attempts)", last.attempts)
  return nil, last
end

function C:server_time() return self:sync_time() end
function C:instruments(symbol) return self:call("GET", "/v5/market/instruments-info", { category = "spot", symbol = symbol }) end
function C:tickers(symbol) return self:call("GET", "/v5/market/tickers", { category = "spot", symbol = symbol }) end

-- M.kline_rows(list) -> rows {time, open, high, low, close, volume} as
-- numbers (time an integer, prices finite), in the order given; or nil, why.
-- Pure, never raises (fuzzed with parse_response).
function M.kline_rows(list)
  if type(list) ~= "table" then return nil, "result.list is not an array" end
  local rows = {}
  for k, r in ipairs(list) do
    if type(r) ~= "table" or #r < 6 then return nil, string.format("row %d is not 6+ strings", k) end
    local row = {}
    for c = 1, 6 do  -- the candle CSV's own grammar: "0x10", " 42 ", "1e999" are no numbers
      local v, why = candle_field(c - 1, r[c])
      if v == nil then return nil, string.format("row %d, field %d: %s", k, c, why) end
      row[c] = v
    end
    rows[k] = row
  end
  return rows
end

-- C:candles(symbol, interval, n [, {since =, ["end"] =, closed =}]) -> {time, open,
-- high, low, close, volume (ascending arrays of numbers), n, open_candle =
-- {time, close} or nil}. The n newest confirmed candles up to `end` (ms,
-- default now), or with n nil every one after `since` (ms, exclusive).
-- Pages of 1000, newest first, sending only `end`: each page is then the
-- newest candles before it, which is documented, where start+end is not.
function C:candles(symbol, interval, n, o)
  o = o or {}
  local code = M.INTERVALS[interval]
  if not code then error("bybit.candles: unknown interval '" .. tostring(interval) .. "'", 2) end
  if not n and not o.since then error("bybit.candles: give n or since", 2) end
  local step = INTERVALS[interval] * 1000
  local synced, serr = self:fresh_offset()
  if not synced then return nil, serr end
  -- o.closed: a time the exchange has shown to be past (a confirmed push
  -- of the candle starting then), whatever our estimate of its clock says
  local server_now = math.max(self:server_now(), o.closed or 0)
  local since = o.since or math.mininteger
  local rows, seen, open_row = {}, {}, nil
  local upto = o["end"]
  while true do
    local want = n and n - #rows or ((upto or server_now) - since) // step
    if want <= 0 then break end
    local limit = math.min(1000, want + 1)
    local res, err = self:call("GET", "/v5/market/kline", { category = "spot", symbol = symbol, interval = code,
      limit = limit, ["end"] = upto })
    if not res then return nil, err end
    local page, why = M.kline_rows(res.list)
    if not page then return nil, failure("bad_response", "bybit kline: " .. why) end
    local oldest
    for _, r in ipairs(page) do
      local t = r[1]
      if t + step > server_now then
        open_row = open_row or r  -- still open: not a confirmed candle
      elseif t > since and not seen[t] then
        seen[t] = true
        rows[#rows + 1] = r
      end
      oldest = math.min(oldest or t, t)
    end
    if upto and oldest and oldest > upto then
      return nil, failure("bad_response", "bybit kline: a page newer than the end asked for")
    end
    if #page < limit or oldest <= since then break end
    upto = oldest - 1
  end
  table.sort(rows, function(a, b) return a[1] < b[1] end)
  if n then
    while #rows > n do table.remove(rows, 1) end
  end
  local out = { time = {}, open = {}, high = {}, low = {}, close = {}, volume = {}, n = #rows }
  for k, r in ipairs(rows) do
    for c, col in ipairs(COLUMNS) do out[col][k] = r[c] end
  end
  out.open_candle = open_row and { time = open_row[1], close = open_row[5] }
  return out
end

function C:wallet(coin)
  return self:call("GET", "/v5/account/wallet-balance", { accountType = "UNIFIED", coin = coin }, true)
end

-- a list endpoint, all its pages: nextPageCursor followed, 20 pages at most
function C:pages(path, params)
  local all, cursor = {}, nil
  for _ = 1, 20 do
    params.cursor = cursor and { raw = cursor }
    local res, err = self:call("GET", path, params, true)
    if not res then return nil, err end
    if type(res.list) ~= "table" then return nil, failure("bad_response", "bybit " .. path .. ": no result.list") end
    table.move(res.list, 1, #res.list, #all + 1, all)
    cursor = res.nextPageCursor
    if cursor == nil or cursor == "" or cursor == cjson.null then
      res.list, res.nextPageCursor = all, nil
      return res
    end
    if type(cursor) ~= "string" or not cursor:match("^[%w%%%-%._~]+$") then
      return nil, failure("bad_response", "bybit " .. path .. ": a nextPageCursor that is not URL-safe")
    end
  end
  return nil, failure("bad_response", "bybit " .. path .. ": more than 20 pages")
end

-- open orders of a symbol (or the one with that orderLinkId, open or
-- recently closed)
function C:open_orders(symbol, link_id)
  return self:pages("/v5/order/realtime", { category = "spot", symbol = symbol, orderLinkId = link_id,
    limit = 50 })
end

-- executions of the last 7 days, newest first; of one order with link_id
function C:executions(symbol, link_id)
  return self:pages("/v5/execution/list", { category = "spot", symbol = symbol, orderLinkId = link_id,
    limit = 100 })
end

function C:cancel(symbol, link_id)
  return self:call("POST", "/v5/order/cancel", { category = "spot", symbol = symbol, orderLinkId = link_id }, true, true)
end

-- the private stream of each base
M.PRIVATE_WS = { mainnet = "wss://stream.bybit.com/v5/private", testnet = "wss://stream-testnet.bybit.com/v5/private",
  demo = "wss://stream-demo.bybit.com/v5/private" }

-- C:private_stream{url = (default: the base's), on_order = fn(list),
-- on_execution = fn(list), on_wallet = fn(list), on_ready = fn(ready, why),
-- timeout = s} -> a nomade.bybit.stream. It authenticates (op auth: expires a few
-- seconds ahead by the exchange's clock, signed in C), then subscribes to
-- order, execution and wallet; on_ready(true) once both are confirmed, and
-- again after every reconnect. A refused auth is logged and the stream
-- reconnects (the clock may have been off).
function C:private_stream(o)
  if not self.key or not self.secret then
    return nil, failure("auth", "bybit: the private stream needs BYBIT_API_KEY and BYBIT_API_SECRET")
  end
  local url = o.url or M.PRIVATE_WS[self.base_name or "mainnet"]
  if not url then return nil, failure("invalid_request", "bybit: no private stream for a custom base: give url") end
  local log = require "nomade.log"
  local function ready(up, why) if o.on_ready then o.on_ready(up, why) end end
  local handlers = { order = o.on_order, execution = o.on_execution, wallet = o.on_wallet }
  return require("nomade.bybit.stream").open {
    url = url, name = "private stream", timeout = o.timeout,
    on_open = function(st)
      local ok, err = self:fresh_offset()
      if not ok then return false, tostring(err) end
      local expires = self:server_now() + 5000
      local sent, serr = st:send { op = "auth", req_id = "nomade-auth",
        args = { self.key, expires, core.sign_ws(self.secret, string.format("%d", expires)) } }
      if not sent then return false, serr end
      return true
    end,
    on_message = function(st, doc)
      if doc.op == "auth" then
        if doc.success == true then
          return st:send { op = "subscribe", req_id = "nomade-sub", args = { "order", "execution", "wallet" } }
        end
        log.event("error", "auth", { ret_msg = doc.ret_msg }, "  error private stream: auth refused ("
          .. tostring(doc.ret_msg) .. ")")
        ready(false, "auth refused: " .. tostring(doc.ret_msg))
        return st.conn and st.conn:close(1000, "auth refused", true)
      elseif doc.op == "subscribe" then
        ready(doc.success == true, doc.success == true and nil or ("subscribe refused: " .. tostring(doc.ret_msg)))
      elseif handlers[doc.topic] and type(doc.data) == "table" then
        handlers[doc.topic](doc.data)
      end
    end,
    on_link = function(up, why) if not up then ready(false, why) end end,
  }
end

local link_counter = 0
function M.link_id()
  link_counter = link_counter + 1
  return string.format("nmd-%d-%d", now_ms(), link_counter)
end

-- C:create_order{symbol, side = "Buy"|"Sell", type = "Market"|"Limit",
-- qty = "string", price =, market_unit = "quoteCoin"|"baseCoin",
-- time_in_force =, link_id =, shield = (its gate judges a Sell as an exit,
-- anything else as an entry, from the body it signs),
-- trigger = (the loop.time() the decision began: client.latency is then
-- the µs from it to the request going out)}
-- -> {orderId, orderLinkId, recovered?} or nil, err. The shield's gate
-- decides in C whether the order is signed at all (kind "refused" if not).
-- Never sent twice: after a lost answer the order is looked up by its
-- orderLinkId; found, it is the answer; not found, it is unknown
-- (err.unknown), never "not placed": only a lookup after its recv_window
-- can say that.
function C:create_order(o)
  if type(o.shield) ~= "userdata" then error("bybit.create_order: a shield is required (its gate)", 2) end
  local link = o.link_id or M.link_id()
  local body = { category = "spot", symbol = o.symbol, side = o.side, orderType = o.type, qty = o.qty,
    price = o.price, marketUnit = o.market_unit, timeInForce = o.time_in_force, orderLinkId = link }
  local res, err = self:call("POST", "/v5/order/create", body, true, true, { shield = o.shield, trigger = o.trigger })
  if res then return res end
  if err.kind == "duplicate" or err.kind == "network" or err.kind == "timeout" or err.kind == "bad_response"
      or (err.kind == "exchange" and (err.status or 0) >= 500) then
    local found, ferr = self:open_orders(o.symbol, link)
    if not found then
      return nil, failure("network", "bybit order " .. link .. ": the answer was lost and the lookup failed: "
        .. tostring(ferr), { orderLinkId = link, unknown = true })
    end
    local order = found.list and found.list[1]
    if order then
      return { orderId = order.orderId, orderLinkId = link, recovered = true, status = order.orderStatus }
    end
    -- not found yet proves nothing: the request may still be on its way,
    -- and the exchange takes it until its recv_window has passed. The
    -- caller looks again (nomade.bybit.book: B:refresh) until then
    return nil, failure(err.kind, "bybit order " .. link .. ": not found yet after " .. err.message
      .. "; unknown until its recv_window has passed", { orderLinkId = link, unknown = true, retCode = err.retCode })
  end
  return nil, err
end

-- keys: BYBIT_API_KEY / BYBIT_API_SECRET (nomade.secrets) -> key,
-- secret, or nil, nil, err
function M.keys() return require("nomade.secrets").get("BYBIT_API_KEY", "BYBIT_API_SECRET") end

return M
