-- make soak: a public stream that goes silent with TCP open, at the real
-- deadline (30 s, the default --stream-timeout): declared dead, the shield
-- RED, no order meanwhile, then reconnected, the missed candle caught up
-- over REST, GREEN again and trading.
local t = require "testlib"
local x = require "livex"

local ex = x.exchange()
ex.control { rate_limits = false }
local dir = x.tmpdir()
x.strategy(dir, "max_orders_per_hour = 100000")
-- the default deadline: this run does not pass --stream-timeout
local p = x.start(ex, dir)
t.ok(p.ready, "running and subscribed")
x.close_candle(ex)
t.ok(x.wait(p, 10, "fill"), "trading")
local before = #x.orders(ex)
local candles = x.repl(p, "status().candles")
ex.control { ws_fault = "silent", ms = 45000, path = "/v5/public/spot" }
local silenced = os.time()
x.close_candle(ex)  -- pushed into the silence
local down = x.wait(p, 40, "stream_down", function(e) return e.stream == "feed" end)
t.ok(down and os.time() - silenced >= 29, "the silent stream is declared dead at the deadline ("
  .. (os.time() - silenced) .. " s)", down and down.why)
t.ok(x.wait(p, 5, "shield", function(e) return e.to == "RED" end), "the shield is RED")
t.eq(#x.orders(ex), before, "no order while the stream was silent and the shield not GREEN")
local up
for _ = 1, 200 do
  local st = x.repl(p, "status().feed")
  if st and st.up and st.connects >= 2 then up = st break end
  x.sleep(0.1)
end
t.ok(up, "reconnected", up and up.last)
local greens = #x.all(p, "shield", function(e) return e.to == "GREEN" end)
x.close_candle(ex)
t.ok(x.wait(p, 15, "shield", function(e) return e.to == "GREEN" end, greens + 1), "GREEN again after a clean candle")
t.eq(x.repl(p, "status().candles"), candles + 2, "the candle pushed into the silence was caught up over REST")
local n = #x.orders(ex)
local filled = #x.all(p, "order", function(e) return e.status == "Filled" end)
x.close_candle(ex)
x.wait(p, 10, "order", function(e) return e.status == "Filled" end, filled + 1)
t.eq(#x.orders(ex), n + 1, "and trading again")
local ok, why = x.agrees(p, ex, 10)
t.ok(ok, "the book equals the exchange's", why)
x.stop(p)
ex.stop()
t.done()
