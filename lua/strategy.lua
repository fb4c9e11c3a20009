-- strategy.lua: nomade's default strategy, the seed's logic. Copy it and
-- edit it: while `nomade run` runs, saving the file reloads it.
--
-- Regime: UPTREND while the close is above its 200-candle EMA.
-- Candidate: in an UPTREND, when the seed's RSI(14) has pulled back below
-- 40 (a dip inside a trend, not a collapse: the EMA still holds).
-- The tribunal then judges the prompt below; the runtime only enters on
-- a BUY scoring at least settings.min_score.
-- Exits: the stop-loss and take-profit below (run by the runtime on every
-- candle), and a regime flip to DOWNTREND (sold at the next open).

settings = {
  symbol = "BTCUSDT",
  interval = "1h",
  history = 200,        -- candles before the first decision (EMA200's warm-up)
  position_size = 0.95, -- of the quote balance, per entry
  min_score = 70,       -- the tribunal's minimum score for a BUY
  stop_loss = 0.03,     -- 3% under the entry price
  take_profit = 0.06,   -- 6% over the entry price
}

indicators = {
  ema200 = ta.ema(200),
  rsi = ta.rsi_sma(14),   -- the seed's RSI (rolling means); ta.rsi(14) is Wilder's
}

function regime(m)
  if m.close > m.ind.ema200 then return "UPTREND" end
  return "DOWNTREND"
end

function entry(m, regime, verdict)
  if regime ~= "UPTREND" then return false end
  if verdict == nil then return m.ind.rsi < 40 end  -- a candidate?
  return true                                       -- BUY at or above min_score
end

function prompt(m, regime)
  local closes = {}
  for k = 5, 1, -1 do closes[#closes + 1] = string.format("%.2f", m.candles.close:last(k)) end
  return string.format([[
You are a cautious crypto spot trader. Decide whether to buy %s now.
Market regime: %s (close %.2f, EMA200 %.2f, %.2f%% above it).
RSI(14): %.1f. Last five %s closes: %s.
Answer BUY only if the pullback looks like an entry inside the trend,
else WAIT. Score your confidence from 0 to 100.]],
    m.symbol, regime, m.close, m.ind.ema200, (m.close / m.ind.ema200 - 1) * 100,
    m.ind.rsi, m.interval, table.concat(closes, ", "))
end

function exit(m, _position)
  if m.regime == "DOWNTREND" then return "regime flip" end
  return false
end
