-- The Bybit client against the stand-in (tests/stand-ins/bybit): time
-- sync, signed requests, candles with pagination, errors by kind, the
-- timestamp resync, rate limits, GET retries, and an order whose answer
-- is lost: looked up, never sent twice.
local t = require "testlib"
local bybit = require "nomade.bybit.rest"
local cjson = require "cjson"
local _

local base, stop, listening = t.serve("tests/stand-ins/bybit/server.py")
t.ok(base, "the stand-in started")

local control = t.control(base)
local c = bybit.new { base = base, key = "test-key", secret = "test-secret-0123456789", max_wait = 3 }
-- a shield that has seen one good candle: GREEN, so orders are signed
local shield = require "nomade._shield"
local green = shield.new { interval = 60 }
green:candle(1672531200000, 100, 101, 99, 100, 1)

t.ok(type(c:sync_time()) == "number", "server time synced")
local res, err = c:wallet("USDT")
t.ok(res and res.list, "a signed GET (wallet balance)", tostring(err))
local function faulted()
  local st = control()
  for _, r in ipairs(st and st.log or {}) do if r.fault and r.fault ~= cjson.null then return true end end
  return false
end
local k = c:candles("BTCUSDT", "1h", 2500)
local asc, step = k and k.n == 2500, true
for i = 2, (k and k.n or 0) do step = step and k.time[i] - k.time[i - 1] == 3600000 end
t.ok(asc and step, "2500 candles over three pages, ascending, no gap or overlap")
t.ok(k and k.open_candle and k.open_candle.time == k.time[k.n] + 3600000, "the open candle is set apart")

local bad = bybit.new { base = base, key = "wrong", secret = "x" }
_, err = bad:wallet()
t.ok(err and err.kind == "auth" and err.retCode == 10003, "a wrong key is an auth error", tostring(err))
_, err = c:create_order { shield = green, symbol = "NOPEUSDT", side = "Buy", type = "Market", qty = "10" }
t.ok(err and err.kind == "invalid_request", "an unknown symbol is invalid_request", tostring(err))

control { reset = true }
control { fault = "timestamp", path = "/v5/account/wallet-balance" }
res, err = c:wallet()
t.ok(res and faulted(), "10002 resyncs the clock and retries once", tostring(err))
control { reset = true }
control { fault = "rate_limit", path = "/v5/account/wallet-balance" }
res, err = c:wallet()
t.ok(res and faulted(), "10006 waits for the reset and retries", tostring(err))
control { reset = true }
control { fault = "http5xx", path = "/v5/market/tickers" }
res = c:tickers("BTCUSDT")
t.ok(res and faulted(), "a GET retries a 502")
control { reset = true }
control { fault = "malformed", path = "/v5/market/tickers", count = 10 }
_, err = c:tickers("BTCUSDT")
t.ok(err and err.kind == "bad_response", "malformed JSON is bad_response", tostring(err))

control { reset = true }
control { fault = "lose_response", path = "/v5/order/create" }
local o
o, err = c:create_order { shield = green, symbol = "BTCUSDT", side = "Buy", type = "Market", qty = "100", market_unit = "quoteCoin" }
local state = control()
local creates = 0
for _, r in ipairs(state and state.log or {}) do
  if r.method == "POST" and r.path == "/v5/order/create" then creates = creates + 1 end
end
t.ok(o and o.recovered and o.orderLinkId, "a lost answer: the order is found by its orderLinkId", tostring(err))
t.eq(creates, 1, "and it was sent once, never twice")
control { reset = true }
o, err = c:create_order { shield = green, symbol = "BTCUSDT", side = "Buy", type = "Limit", qty = "0.001", price = "10000.0",
  link_id = "t-limit-1" }
t.ok(o and o.orderLinkId == "t-limit-1", "a limit order with our orderLinkId", tostring(err))
res = c:open_orders("BTCUSDT", "t-limit-1")
t.ok(res and res.list[1] and res.list[1].orderStatus == "New", "found open by its orderLinkId")
res, err = c:cancel("BTCUSDT", "t-limit-1")
t.ok(res, "cancelled", tostring(err))
_, err = c:create_order { shield = green, symbol = "BTCUSDT", side = "Buy", type = "Market", qty = "1000000", market_unit = "quoteCoin" }
t.ok(err and err.kind == "insufficient_balance", "too big an order: insufficient_balance", tostring(err))
t.ok(not tostring(err):find("test-secret", 1, true), "the secret is in no message")

-- every fault mode on a GET and on the order path
local function count(method, path)
  local st, c2 = control(), 0
  for _, r in ipairs(st and st.log or {}) do
    if r.method == method and r.path == path then c2 = c2 + 1 end
  end
  return c2
end
local function codes(code)
  local st, c2 = control(), 0
  for _, r in ipairs(st and st.log or {}) do if r.retCode == code then c2 = c2 + 1 end end
  return c2
end
local quick = bybit.new { base = base, key = "test-key", secret = "test-secret-0123456789", timeout = 1, max_wait = 3 }
for _, f in ipairs({ "truncated", "reset", "no_answer" }) do
  control { reset = true }
  control { fault = f, path = "/v5/market/tickers", hold_ms = 3000 }
  res, err = quick:tickers("BTCUSDT")
  t.ok(res and res.list and faulted() and count("GET", "/v5/market/tickers") == 2,
    "a GET survives " .. f .. " by one retry", tostring(err))
end
control { reset = true }
control { fault = "reset", path = "/v5/market/tickers", count = 10 }
_, err = quick:tickers("BTCUSDT")
t.ok(err and err.kind == "network" and err.attempts == 5, "a GET gives up after 5 attempts, a network error",
  tostring(err))
control { reset = true }
control { fault = "no_answer", path = "/v5/market/tickers", count = 10, hold_ms = 3000 }
_, err = quick:tickers("BTCUSDT")
t.ok(err and err.kind == "timeout", "no answer at all is a timeout", tostring(err))
control { reset = true }
control { fault = "latency", path = "/v5/market/tickers", ms = 300 }
local t0 = require("nomade.loop").time()
res = c:tickers("BTCUSDT")
t.ok(res and require("nomade.loop").time() - t0 >= 0.3 and count("GET", "/v5/market/tickers") == 1,
  "a slow answer inside the timeout is just slow")

for _, f in ipairs({ "truncated", "no_answer" }) do
  control { reset = true }
  control { fault = f, path = "/v5/order/create", apply = true, hold_ms = 3000 }
  o, err = quick:create_order { shield = green, symbol = "BTCUSDT", side = "Buy", type = "Market", qty = "50" }
  t.ok(o and o.recovered and count("POST", "/v5/order/create") == 1,
    "an order placed whose answer is " .. f .. ": found by orderLinkId, sent once", tostring(err))
end
control { reset = true }
control { fault = "reset", path = "/v5/order/create" }
o, err = quick:create_order { shield = green, symbol = "BTCUSDT", side = "Buy", type = "Market", qty = "50" }
t.ok(not o and err.unknown and err.placed == nil and count("POST", "/v5/order/create") == 1
  and count("GET", "/v5/order/realtime") == 1,
  "a connection reset before the order was taken: looked up, unknown (not 'not placed' before its recv_window), "
  .. "not resent", tostring(err))
control { reset = true }
control { fault = "http5xx", path = "/v5/order/create", status = 503 }
o, err = quick:create_order { shield = green, symbol = "BTCUSDT", side = "Buy", type = "Market", qty = "50" }
t.ok(not o and err.unknown and count("POST", "/v5/order/create") == 1,
  "a 503 on create: looked up, unknown, not resent", tostring(err))

-- rate limits: HTTP 429 waits and retries; HTTP 403 (the IP limit) stops
-- every request of the client at once; a spent budget waits for its window
control { reset = true }
control { fault = "rate_limit", variant = "http429", path = "/v5/market/tickers", reset_ms = 200 }
res, err = c:tickers("BTCUSDT")
t.ok(res and count("GET", "/v5/market/tickers") == 2, "HTTP 429: waited, retried", tostring(err))
control { reset = true }
control { fault = "rate_limit", variant = "http403", path = "/v5/market/tickers" }
local banned = bybit.new { base = base }
_, err = banned:tickers("BTCUSDT")
local _, err2 = banned:instruments("BTCUSDT")
t.ok(err and err.kind == "rate_limit" and err.status == 403 and err2 and err2.kind == "rate_limit"
  and count("GET", "/v5/market/tickers") == 1 and count("GET", "/v5/market/instruments-info") == 0,
  "HTTP 403 'access too frequent': no retry, and the client stops sending", tostring(err2))
control { reset = true }
local placed = 0
for i = 1, 25 do
  o = c:create_order { shield = green, symbol = "BTCUSDT", side = "Buy", type = "Limit", qty = "0.001", price = "10000",
    link_id = "budget-" .. i }
  if o then placed = placed + 1 end
end
t.ok(placed == 25 and codes(10006) == 0, "25 orders against a 20/s budget: all placed, not one 10006 earned",
  "placed " .. placed .. ", 10006 x" .. codes(10006))

-- pagination of list endpoints, executions
res, err = c:open_orders("BTCUSDT")
t.ok(res and #res.list == 25, "open orders: 25 over two pages of 20 (cursor followed)", tostring(err)
  .. " " .. tostring(res and #res.list))
control { reset = true }
o, err = c:create_order { shield = green, symbol = "BTCUSDT", side = "Buy", type = "Market", qty = "100", link_id = "t-exec-1" }
t.ok(o, "a market order", tostring(err))
res, err = c:executions("BTCUSDT", "t-exec-1")
local ex = res and res.list[1]
t.ok(ex and ex.orderLinkId == "t-exec-1" and tonumber(ex.execQty) > 0 and tonumber(ex.execPrice) > 0,
  "the execution list has the market order's fill", tostring(err))

-- candles after a time: what the live feed polls. The stand-in's clock is
-- put in the middle of an hour first, so no 1h candle closes between the
-- fetches whatever the wall clock says
local clock = control()
control { clock_offset_ms = clock.clock_offset_ms + clock.server_time // 3600000 * 3600000 + 1800000 - clock.server_time }
k = c:candles("BTCUSDT", "1h", 2500)
local since = k.time[k.n - 5]
local later = c:candles("BTCUSDT", "1h", nil, { since = since })
t.ok(later and later.n == 5 and later.time[1] == k.time[k.n - 4] and later.close[5] == k.close[k.n],
  "candles since a time: exactly the ones after it", later and later.n)
local gap = c:candles("BTCUSDT", "1h", nil, { since = k.time[1] - 3600000 })
t.ok(gap and gap.n == 2500 and gap.time[1] == k.time[1], "since 2500 candles ago: paged back to it", gap and gap.n)
control { clock_offset_ms = clock.clock_offset_ms }

-- the parser alone: whatever the bytes, nil, err and never a raise
local function parse(status, headers, text) return bybit.parse_response("/p", status, headers, text) end
_, err = parse(200, {}, '{"retCode":0,"retMsg":"OK","result":"x"}')
t.ok(err and err.kind == "bad_response", "a result that is not an object is bad_response")
_, err = parse(500, {}, "<html>")
t.ok(err and err.kind == "exchange" and err.status == 500, "an HTML 500 is an exchange error")
local _, _, lim = parse(200, { ["x-bapi-limit"] = "10", ["x-bapi-limit-status"] = "x" }, '{"retCode":0}')
t.ok(lim.limit == 10 and lim.remaining == nil and lim.reset == nil, "rate-limit headers missing or garbled: nil")
_, err = parse(403, {}, "<p>access too frequent</p>")
t.ok(err and err.kind == "rate_limit" and err.ip_ban, "a 403 'access too frequent' is the IP limit")
local rows, why = bybit.kline_rows({ { "1", "2", "3", "1e999", "4", "5" } })
t.ok(not rows and why:find("out of range", 1, true), "a kline price of 1e999 is refused", why)
-- the class: whatever tonumber would take but the candle grammar does not
local taken = {}
for _, text in ipairs { "0x10", " 42 ", "42 ", "\t42", "inf", "nan", "1e999", "", "1,5", "1.", ".5", "+-1", "0b1",
  "1_000", "\u{661}" } do
  if bybit.kline_rows({ { "1000", text, "3", "1", "2", "5" } }) then taken[#taken + 1] = string.format("%q", text) end
end
for _, bad_time in ipairs { "1.6e12", "1e3", "-1000", "1000.0", "9007199254740993" } do
  if bybit.kline_rows({ { bad_time, "2", "3", "1", "2", "5" } }) then taken[#taken + 1] = bad_time end
end
t.eq(#taken, 0, "REST kline strings go by the candle CSV's grammar: hex, spaces, exponent times refused",
  table.concat(taken, " "))
rows = bybit.kline_rows({ { "1672531200000", "16500.5", "16600", "16400", "16550.25", "12.5" } })
t.ok(rows and rows[1][1] == 1672531200000 and math.type(rows[1][1]) == "integer" and rows[1][5] == 16550.25,
  "a good row: the time an integer, the prices numbers")

local rc, out = t.run("bybit candles BTCUSDT 1h --limit 3 --base-url " .. base)
t.ok(rc == 0 and out:match("^open_time_ms,open,high,low,close,volume\n%d+,") and select(2, out:gsub("\n", "")) == 4,
  "nomade bybit candles prints CSV in data/'s format", out)
control { fault = "malformed", path = "/v5/market/kline", count = 5,
  body = '{"retCode":10001,"retMsg":"\\u001b[31mbad\\u0007\\u202e","result":{},"retExtInfo":{},"time":1}' }
local _, _, ansi = t.run("bybit candles BTCUSDT 1h --limit 3 --base-url " .. base)
t.ok(ansi:find("<1b>[31mbad<07><U+202E>", 1, true) and not ansi:find("[\27\7]") and not ansi:find("\226\128\174", 1, true),
  "a retMsg with terminal codes reaches stderr as marks, never raw", ansi)
control { clear_faults = true }

-- the shield's gate on the exchange's order path, in C: no signature, no order
control { reset = true }
local red = shield.new { interval = 60 }
red:candle(1672531200000, 100, 90, 99, 100, 1)  -- high under low: RED
local amber = shield.new { interval = 60 }
amber:candle(1672531200000, 100, 101, 99, 100, 1)
amber:signal("tribunal", true, "down", 1672531260000)
local r1, e1 = c:create_order { shield = red, symbol = "BTCUSDT", side = "Sell", type = "Market", qty = "0.001" }
local r2, e2 = c:create_order { shield = amber, symbol = "BTCUSDT", side = "Buy", type = "Market", qty = "50" }
c:create_order { shield = amber, symbol = "BTCUSDT", side = "Sell", type = "Market", qty = "0.0001" }
t.ok(not r1 and e1.kind == "refused" and e1.message:find("RED", 1, true) and not r2 and e2.kind == "refused"
  and count("POST", "/v5/order/create") == 1,
  "RED: no order at all; AMBER: no entry, an exit goes out; the refused ones never reach the exchange",
  tostring(e1) .. " / " .. tostring(e2))
-- the gate reads entry or exit from the bytes it signs, not from its caller
local core = require "nomade._bybit"
local judged = {}
for _, case in ipairs {
  { '{"category":"spot","side":"Sell","qty":"1"}', true },
  { '{"side":"Buy"}', false }, { '{"qty":"1"}', false }, { '{"side":"Sell","side":"Buy"}', false },
  { '{"side":"Buy","side":"Sell"}', false }, { '{"orderLinkId":"\\"side\\":\\"Sell\\"","side":"Buy"}', false },
  { '{"side":"Sellx"}', false }, { '{"side":"sell"}', false }, { '{"side" : "Sell"}', false }, { '"side":', false },
} do
  local sig = core.sign_order(amber, "secret-0123456789", "1", "k", "5000", case[1])
  if (sig ~= nil) ~= case[2] then judged[#judged + 1] = case[1] end
end
t.eq(#judged, 0, "AMBER signs a body whose one side is Sell, and no other (a duplicated or smuggled side, "
  .. "none, another value)", table.concat(judged, "  "))
t.raises(function() c:create_order { symbol = "BTCUSDT", side = "Buy", type = "Market", qty = "50" } end,
  "bybit.create_order: a shield is required", "an order without a shield is a usage error")

-- the private stream: auth, subscribe, then order, execution and wallet
-- pushes for an order placed over REST; a refused auth reconnects
do
  local loop = require "nomade.loop"
  require("nomade.log").configure("text", "error")  -- the refusal below is expected
  local private = "ws://127.0.0.1:" .. tostring(listening:match("LISTENING %d+ (%d+)")) .. "/v5/private"
  control { reset = true }
  control { ws_fault = "reject_auth", count = 3 }
  local got, readiness = { order = {}, execution = {}, wallet = {} }, {}
  local st = assert(c:private_stream { url = private,
    on_order = function(list) for _, x in ipairs(list) do got.order[#got.order + 1] = x end end,
    on_execution = function(list) for _, x in ipairs(list) do got.execution[#got.execution + 1] = x end end,
    on_wallet = function(list) got.wallet[#got.wallet + 1] = list end,
    on_ready = function(ready) readiness[#readiness + 1] = ready end })
  local ws_order
  loop.timer(0.1, 0.1, function(tm)
    if readiness[#readiness] == true and not ws_order then
      ws_order = c:create_order { shield = green, symbol = "BTCUSDT", side = "Buy", type = "Market", qty = "20",
        link_id = "ws-1" }
    end
    if (#got.execution > 0 and #got.wallet > 0) or loop.time() > (st.t0 or 0) + 15 then
      tm:stop()
      st:stop()
      loop.stop()
    end
  end)
  st.t0 = loop.time()
  loop.run()
  local auths, at = 0, {}
  for _, r in ipairs(control().log or {}) do
    if r.ws and r.event == "auth" then auths, at[#at + 1] = auths + 1, r.mono_us / 1e6 end
  end
  t.ok(#at >= 4 and at[3] - at[2] >= 1.5 and at[4] - at[3] >= 3,
    "refused auths reconnect after 1, 2, 4 s (jittered): a connect that is then refused does not reset the back-off",
    #at >= 4 and string.format("%.1f %.1f %.1f", at[2] - at[1], at[3] - at[2], at[4] - at[3]) or #at)
  local became_ready = false
  for j = 2, #readiness do became_ready = became_ready or readiness[j] == true end
  t.ok(readiness[1] == false and became_ready and auths >= 2,
    "a refused auth: not ready, reconnect, auth again, subscribed", #readiness .. " readiness changes")
  local order = got.order[#got.order]
  t.ok(ws_order and order and order.orderLinkId == "ws-1" and got.execution[1].orderLinkId == "ws-1"
    and tonumber(got.execution[1].execQty) > 0 and got.wallet[1][1].coin,
    "an order placed over REST comes back on the private stream: order, execution, wallet")
end

-- the CLI with keys from the environment, from a 0600 file, and refused
-- from a file others can read; the secret printed nowhere
local env = "BYBIT_API_KEY=test-key BYBIT_API_SECRET=test-secret-0123456789"
local err_out
rc, out, err_out = t.run("bybit balance --base-url " .. base, env)
t.ok(rc == 0 and out:find("^coin,walletBalance,locked,usdValue\nUSDT,%d") and not (out .. err_out):find("test-secret", 1, true),
  "nomade bybit balance with keys from the environment", out .. err_out)
local secrets = os.tmpname()
local sf = assert(io.open(secrets, "w"))
sf:write("BYBIT_API_KEY=test-key\nBYBIT_API_SECRET = test-secret-0123456789\n")
sf:close()
os.execute("chmod 600 " .. secrets)
c:create_order { shield = green, symbol = "BTCUSDT", side = "Buy", type = "Limit", qty = "0.001", price = "10000", link_id = "cli-1" }
rc, out, err_out = t.run("bybit orders BTCUSDT --base-url " .. base, "NOMADE_SECRETS=" .. secrets)
t.ok(rc == 0 and out:find("^orderId,orderLinkId,side,orderType,price,qty,cumExecQty,orderStatus,createdTime\n%d+,cli%-1,Buy,Limit,10000")
  and not (out .. err_out):find("test-secret", 1, true),
  "nomade bybit orders with keys from a 0600 NOMADE_SECRETS file", out .. err_out)
-- every mode class: only the owner's bits pass (Lua has no
-- octal literals: a test of `mode & 0077` reads 77 decimal)
local passed_modes, refused_modes = {}, {}
for _, mode in ipairs { "600", "400", "644", "640", "660", "620", "602", "622", "642", "604", "601", "610",
  "700", "4600", "2600", "1600", "6600" } do
  os.execute("chmod " .. mode .. " " .. secrets)
  rc, out, err_out = t.run("bybit balance --base-url " .. base, "NOMADE_SECRETS=" .. secrets)
  if (out .. err_out):find("test-secret", 1, true) then refused_modes[#refused_modes + 1] = mode .. " (leaked)"
  elseif rc == 0 then passed_modes[#passed_modes + 1] = mode
  elseif err_out:find(string.format("must be a file of ours with mode 0600 (it is %04d)", tonumber(mode)), 1, true) then
    refused_modes[#refused_modes + 1] = mode
  end
end
t.eq(table.concat(passed_modes, " "), "600 400 700", "a secrets file is read with the owner's bits only")
t.eq(#refused_modes, 14, "any group, other, set-id or sticky bit is refused, saying why",
  table.concat(refused_modes, " "))
os.remove(secrets)
os.execute("mkdir -p " .. secrets .. " && chmod 700 " .. secrets)
rc, _, err_out = t.run("bybit balance --base-url " .. base, "NOMADE_SECRETS=" .. secrets)
t.ok(rc == 1 and err_out:find("is a directory, not a file", 1, true) and not err_out:find("traceback", 1, true),
  "a directory as the secrets file: a clear error", err_out)
os.execute("rmdir " .. secrets)
rc, _, err_out = t.run("bybit balance --base-url " .. base)
t.ok(rc == 1 and err_out:find("needs BYBIT_API_KEY and BYBIT_API_SECRET", 1, true), "no keys: says which are needed",
  err_out)
res, err = c:instruments("BTCUSDT")
local rules = res and require("nomade.bybit.instruments").from_list(res.list, "BTCUSDT")
t.ok(rules and rules.qty_step.value > 0 and rules.tick.value > 0 and rules.min_amt > 0,
  "instruments-info gives the symbol's steps and minimums", tostring(err))

stop()
t.done()
