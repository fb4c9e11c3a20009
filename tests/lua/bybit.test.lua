-- The Bybit client against the stand-in (tests/stand-ins/bybit): time
-- sync, signed requests, candles with pagination, errors by kind, the
-- timestamp resync, rate limits, GET retries, and an order whose answer
-- is lost: looked up, never sent twice.
local t = require "testlib"
local bybit = require "nomade.bybit"
local http = require "nomade.http"
local cjson = require "cjson"
local _

local base, stop = t.serve("tests/stand-ins/bybit/server.py")
t.ok(base, "the stand-in started")

local function control(doc)
  local s, _, b = http.request { url = base .. "/__control", method = doc and "POST" or "GET",
    body = doc and cjson.encode(doc), headers = { "Content-Type: application/json" } }
  return s == 200 and cjson.decode(b)
end
local c = bybit.new { base = base, key = "test-key", secret = "test-secret-0123456789", max_wait = 3 }

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
_, err = c:create_order { symbol = "NOPEUSDT", side = "Buy", type = "Market", qty = "10" }
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
o, err = c:create_order { symbol = "BTCUSDT", side = "Buy", type = "Market", qty = "100", market_unit = "quoteCoin" }
local state = control()
local creates = 0
for _, r in ipairs(state and state.log or {}) do
  if r.method == "POST" and r.path == "/v5/order/create" then creates = creates + 1 end
end
t.ok(o and o.recovered and o.orderLinkId, "a lost answer: the order is found by its orderLinkId", tostring(err))
t.eq(creates, 1, "and it was sent once, never twice")
control { reset = true }
o, err = c:create_order { symbol = "BTCUSDT", side = "Buy", type = "Limit", qty = "0.001", price = "10000.0",
  link_id = "t-limit-1" }
t.ok(o and o.orderLinkId == "t-limit-1", "a limit order with our orderLinkId", tostring(err))
res = c:open_orders("BTCUSDT", "t-limit-1")
t.ok(res and res.list[1] and res.list[1].orderStatus == "New", "found open by its orderLinkId")
res, err = c:cancel("BTCUSDT", "t-limit-1")
t.ok(res, "cancelled", tostring(err))
_, err = c:create_order { symbol = "BTCUSDT", side = "Buy", type = "Market", qty = "1000000", market_unit = "quoteCoin" }
t.ok(err and err.kind == "insufficient_balance", "too big an order: insufficient_balance", tostring(err))
t.ok(not tostring(err):find("test-secret", 1, true), "the secret is in no message")

local rc, out = t.run("bybit candles BTCUSDT 1h --limit 3 --base-url " .. base)
t.ok(rc == 0 and out:match("^open_time_ms,open,high,low,close,volume\n%d+,") and select(2, out:gsub("\n", "")) == 4,
  "nomade bybit candles prints CSV in data/'s format", out)

stop()
t.done()
