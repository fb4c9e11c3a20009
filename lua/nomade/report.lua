-- nomade.report: the figures of a backtest, and the files that show them.
-- Every figure is defined in README ("The report"); the JSON is written
-- with sorted keys and fixed number formatting, so the same run gives the
-- same bytes.
local host = require "nomade.host"
local pretty = require "nomade.pretty"
local time = require "nomade.time"

local M = {}

local YEAR = 365.25 * 86400

local iso = time.stamp

-- per-candle returns of the equity curve: mean, population deviation and
-- downside deviation (root mean square of the negative returns)
local function return_stats(eq)
  local n, sum = #eq - 1, 0
  if n < 1 then return 0, 0, 0 end
  for i = 2, #eq do sum = sum + (eq[i] / eq[i - 1] - 1) end
  local mean, var, down = sum / n, 0, 0
  for i = 2, #eq do
    local r = eq[i] / eq[i - 1] - 1
    var = var + (r - mean) ^ 2
    if r < 0 then down = down + r * r end
  end
  return mean, math.sqrt(var / n), math.sqrt(down / n)
end

local function max_drawdown(eq)
  local peak, worst = -math.huge, 0
  for i = 1, #eq do
    local e = eq[i]
    if e > peak then peak = e end
    local dd = 1 - e / peak
    if dd > worst then worst = dd end
  end
  return worst
end

-- M.figures(result) -> a table of the report's numbers
function M.figures(r)
  local c, book, eq = r.c, r.book, r.equity
  local interval = time.INTERVALS[r.strategy.settings.interval]
  local candles = r.last - r.first + 1
  local final = eq[#eq]
  local years = candles * interval / YEAR
  local mean, sd, down = return_stats(eq)
  local per_year = math.sqrt(YEAR / interval)
  local wins = 0
  for _, t in ipairs(book.trades) do if t.pnl > 0 then wins = wins + 1 end end
  local p = book.position
  return {
    strategy = r.strategy.name, symbol = r.strategy.settings.symbol,
    interval = r.strategy.settings.interval, data = c.path,
    start = iso(c.time[r.first]), ["end"] = iso(c.time[r.last]), candles = candles,
    initial_cash = r.cash, fee_rate = r.fee, final_equity = final,
    total_return = final / r.cash - 1,
    cagr = years > 0 and (final / r.cash) ^ (1 / years) - 1 or 0,
    max_drawdown = max_drawdown(eq),
    sharpe = sd > 0 and mean / sd * per_year or 0,
    sortino = down > 0 and mean / down * per_year or 0,
    exposure = r.held / candles,
    fees = book.fees, trades = #book.trades, wins = wins,
    win_rate = #book.trades > 0 and wins / #book.trades or 0,
    buy_and_hold = c.close[r.last] / c.close[r.first] - 1,
    orders = book.orders, refused = book.refused, cancelled = book.cancelled,
    open_position = p and { qty = p.qty, price = p.price, time = iso(p.time) } or false,
    tribunal = r.tribunal,
    shield = r.shield and {
      candles = r.shield.candles, blocked_entries = r.shield.blocked_entries,
      blocked_exits = r.shield.blocked_exits, gaps_unfilled = r.shield.gaps_unfilled,
      refused = #r.shield.refused, transitions = #r.shield.transitions,
      history = M.shield_history(r.shield),
    },
  }
end

-- the transitions and refusals, in time order, as strings a person reads
function M.shield_history(sh)
  local out = setmetatable({}, M.ARRAY)
  for _, t in ipairs(sh.transitions) do
    out[#out + 1] = string.format("%s %s -> %s %s: %s", iso(t.time), t.from, t.to, t.check, t.detail)
  end
  for _, r in ipairs(sh.refused) do out[#out + 1] = string.format("%s refused: %s", iso(r.time), r.detail) end
  table.sort(out)
  return out
end

local function json_string(v)
  return '"' .. v:gsub('[%c"\\]', function(ch) return string.format("\\u%04x", ch:byte()) end) .. '"'
end

-- deterministic JSON: sorted keys, numbers in the shortest form that
-- reads back exactly, no spaces
local function json(v, out)
  local t = type(v)
  if t == "table" then
    if #v > 0 or next(v) == nil and getmetatable(v) == M.ARRAY then
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        json(x, out)
      end
      out[#out + 1] = "]"
      return
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    out[#out + 1] = "{"
    for i, k in ipairs(keys) do
      if i > 1 then out[#out + 1] = "," end
      out[#out + 1] = json_string(k) .. ":"
      json(v[k], out)
    end
    out[#out + 1] = "}"
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then out[#out + 1] = "null"
    else out[#out + 1] = pretty.number(v) end
  elseif t == "string" then
    out[#out + 1] = json_string(v)
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  else out[#out + 1] = "null" end
end
M.ARRAY = {}

function M.json(v)
  local out = {}
  json(v, out)
  return table.concat(out)
end

local function pct(x) return string.format("%.2f%%", x * 100) end

-- the terminal summary
function M.summary(f)
  local tr = f.tribunal
  local lines = {
    string.format("backtest  %s on %s %s, %s .. %s (%d candles)", f.strategy, f.symbol, f.interval,
      f.start, f["end"], f.candles),
    string.format("equity    %.2f -> %.2f   return %s   CAGR %s   buy & hold %s", f.initial_cash,
      f.final_equity, pct(f.total_return), pct(f.cagr), pct(f.buy_and_hold)),
    string.format("risk      max drawdown %s   Sharpe %.2f   Sortino %.2f   exposure %s", pct(f.max_drawdown),
      f.sharpe, f.sortino, pct(f.exposure)),
    string.format("trades    %d   win rate %s   fees %.2f   refused %d   cancelled %d", f.trades,
      pct(f.win_rate), f.fees, f.refused, f.cancelled),
    string.format("tribunal  %s: %d candidates, %d calls, %d BUY, %d WAIT, %d below min score, %d cache misses%s",
      tr.mode, tr.candidates, tr.calls, tr.buy, tr.wait, tr.below_min, tr.misses,
      tr.mode == "off" and "  (OFF: every candidate passed as BUY)" or ""),
  }
  local sh = f.shield
  if sh then
    local n = sh.candles.GREEN + sh.candles.AMBER + sh.candles.RED
    lines[#lines + 1] = string.format("shield    GREEN %s  AMBER %s  RED %s of the candles; %d entries and %d exits "
      .. "blocked; %d transitions, %d candle(s) refused, %d gap(s) (a backtest cannot backfill them)",
      pct(sh.candles.GREEN / n), pct(sh.candles.AMBER / n), pct(sh.candles.RED / n), sh.blocked_entries,
      sh.blocked_exits, sh.transitions, sh.refused, sh.gaps_unfilled)
  end
  if f.open_position then
    lines[#lines + 1] = string.format("open      %.6f at %.2f since %s (valued at the last close)",
      f.open_position.qty, f.open_position.price, f.open_position.time)
  end
  return table.concat(lines, "\n") .. "\n"
end

local function write(path, text)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(text)
  f:close()
  return true
end

local function trades_csv(r)
  local out = { "entry_time,entry_price,exit_time,exit_price,qty,fees,pnl,return,reason" }
  for _, t in ipairs(r.book.trades) do
    local n = pretty.number
    out[#out + 1] = string.format("%s,%s,%s,%s,%s,%s,%s,%s,%s", iso(t.entry_time), n(t.entry_price),
      iso(t.exit_time), n(t.exit_price), n(t.qty), n(t.fees), n(t.pnl), n(t.ret), t.reason)
  end
  return table.concat(out, "\n") .. "\n"
end

local function equity_csv(r)
  local out, eq, peak = { "time,equity,drawdown" }, r.equity, -math.huge
  for k = 1, #eq do
    peak = math.max(peak, eq[k])
    out[#out + 1] = string.format("%s,%s,%s", iso(r.c.time[r.first + k - 1]), pretty.number(eq[k]),
      pretty.number(1 - eq[k] / peak))
  end
  return table.concat(out, "\n") .. "\n"
end

-- an SVG polyline chart of ys (at most `width` points kept, min and max of
-- each bucket, so spikes survive the thinning)
local function svg_chart(ys, title, color, invert)
  local w, h, n = 900, 220, #ys
  local lo, hi = math.huge, -math.huge
  for i = 1, n do lo = math.min(lo, ys[i]); hi = math.max(hi, ys[i]) end
  if hi == lo then hi = lo + 1 end
  local pts, step = {}, math.max(1, n / w)
  local function y(v)
    local t = (v - lo) / (hi - lo)
    if invert then t = 1 - t end
    return string.format("%.1f", h - 10 - t * (h - 20))
  end
  local x = 0
  local i = 1
  while i <= n do
    local j = math.min(n, math.floor(i + step) - 1)
    local a, b = math.huge, -math.huge
    for k = i, j do a = math.min(a, ys[k]); b = math.max(b, ys[k]) end
    pts[#pts + 1] = string.format("%.1f,%s %.1f,%s", x, y(a), x, y(b))
    x = x + w / math.ceil(n / step)
    i = j + 1
  end
  return string.format([[<figure><figcaption>%s (%.2f .. %.2f)</figcaption>
<svg viewBox="0 0 %d %d" width="100%%" role="img" aria-label="%s"><rect width="%d" height="%d" fill="#fafafa"/>
<polyline fill="none" stroke="%s" stroke-width="1" points="%s"/></svg></figure>
]], title, lo, hi, w, h, title, w, h, color, table.concat(pts, " "))
end

local function html_escape(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

local function report_html(r, f)
  local eq, dd, peak = {}, {}, -math.huge
  for k = 1, #r.equity do
    eq[k] = r.equity[k]
    peak = math.max(peak, eq[k])
    dd[k] = -(1 - eq[k] / peak) * 100
  end
  local rows = {}
  for _, t in ipairs(r.book.trades) do
    rows[#rows + 1] = string.format("<tr><td>%s</td><td>%.2f</td><td>%s</td><td>%.2f</td><td>%.6f</td>"
      .. "<td>%.2f</td><td class=%s>%.2f</td><td>%s</td></tr>", iso(t.entry_time), t.entry_price,
      iso(t.exit_time), t.exit_price, t.qty, t.fees, t.pnl >= 0 and "up" or "down", t.pnl, html_escape(t.reason))
  end
  return table.concat({ [[<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nomade backtest</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:960px}pre{background:#f4f4f4;padding:1em;white-space:pre-wrap}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}
.up{color:#070}.down{color:#a00}figure{margin:1em 0}figcaption{font-weight:bold}</style></head><body>
<h1>nomade backtest</h1>
<pre id="summary">]], html_escape(M.summary(f)), "</pre>\n",
    svg_chart(eq, "Equity", "#1f5fbf"), svg_chart(dd, "Drawdown %", "#bf1f1f"),
    "<h2>Trades</h2>\n<table id=\"trades\"><tr><th>entry</th><th>price</th><th>exit</th><th>price</th>"
      .. "<th>qty</th><th>fees</th><th>pnl</th><th>reason</th></tr>\n",
    table.concat(rows, "\n"), "\n</table>\n</body></html>\n" })
end

-- M.write(dir, result, figures): trades.csv, equity.csv, report.json, report.html
function M.write(dir, r, f)
  local made, merr = host.mkdir(dir)
  if not made then return nil, merr end
  for name, text in pairs({ ["trades.csv"] = trades_csv(r), ["equity.csv"] = equity_csv(r),
    ["report.json"] = M.json(f) .. "\n", ["report.html"] = report_html(r, f) }) do
    local ok, err = write(dir .. "/" .. name, text)
    if not ok then return nil, err end
  end
  return true
end

return M
