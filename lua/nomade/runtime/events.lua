-- nomade.runtime.events: what happens in a run, said and journaled: the
-- shield's transitions, a refused candle, the fills, a dust position, the
-- strategy's turns (decisions, blocks, refusals, failures) and the candle
-- line. Methods of the runtime object (nomade.runtime); the engine does no
-- I/O, this says what its step returned.
local log_mod = require "nomade.log"
local shield_mod = require "nomade.shield"
local journal_mod = require "nomade.journal"

local M = {}

-- where a control came from, in the log's words
M.FROM = { repl = "the REPL", dashboard = "the dashboard", firebase = "Firebase" }

M.iso = require("nomade.time").iso
local iso = M.iso

-- an event: its level, name and fields (for json), and its text line
function M.emit(level, event, fields, fmt, ...)
  log_mod.event(level, event, fields, string.format(fmt, ...))
end
local emit = M.emit

local R = {}
M.methods = R

-- the strategy's print()
function R.print(_, line) emit("info", "print", { text = line }, "  log   %s", line) end

-- the shield's transitions since the last look: logged and journaled
local LEVEL = { GREEN = "info", AMBER = "warn", RED = "error" }
function R:report_shield()
  if self.e then self.e.show_shield() end  -- (the Bybit book's start may move the shield before it is made)
  for _, tr in ipairs(self.sh:transitions(self.seen_seq)) do
    self.seen_seq = tr.seq
    emit(LEVEL[tr.to], "shield", tr, "  shield %s -> %s  %s: %s", tr.from, tr.to, tr.check, tr.detail)
    self.journal:event("shield", tr)
  end
end

-- a position whose sell the exchange's minimums refuse: kept, flagged
-- dust by the book, and said once (its later refusals are only counted)
function R:report_dust()
  local p, close, rules = self.book.position, self.inner.close, self.rules
  if not (p and p.dust) then return false end
  if self.dust_said ~= p.time then
    self.dust_said = p.time
    emit("warn", "dust", { qty = p.qty, price = close, min_qty = rules.min_qty, min_amt = rules.min_amt },
      "  dust  the position (%.8g at %.2f) is under the exchange's minimum order (minOrderQty %g, minOrderAmt %g): "
      .. "kept as dust, not sold", p.qty, close, rules.min_qty, rules.min_amt)
    self.journal:event("dust", { qty = p.qty, price = close })
  end
  return true
end

-- a candle the shield did not accept
function R:say_unaccepted(row, out)
  if out.verdict == "refused" then
    emit("error", "refused", { time = iso(row.time), why = out.refusal }, "  error the shield refused a candle: %s",
      out.refusal)
    self.journal:event("refused", { time = row.time, why = out.refusal, candle = { row.open, row.high, row.low,
      row.close, row.volume } })
  end
  self:report_shield()
end

function R:say_fills(fills)
  for _, f in ipairs(fills) do
    if f.side == "sell" then
      emit("info", "fill", { side = "sell", qty = f.qty, price = f.price, reason = f.reason, pnl = f.pnl },
        "  sell  %.6f at %.2f (%s), pnl %.2f", f.qty, f.price, f.reason, f.pnl)
      self.journal:event("fill", { side = "sell", qty = f.qty, price = f.price, reason = f.reason })
    else
      emit("info", "fill", { side = "buy", qty = f.qty, price = f.price }, "  buy   %.6f at %.2f", f.qty, f.price)
      self.journal:event("fill", { side = "buy", qty = f.qty, price = f.price })
    end
  end
end

-- the strategy's failed turns: counted, the last kept (status(), the
-- dashboard, the end line), a run of identical ones logged once and
-- then counted; strategy_errors of them in a row turn the shield AMBER
function R:failed_calls()
  local failures = self.failures
  if failures.count == 0 then return nil end
  return { count = failures.count, in_a_row = failures.in_a_row, last = failures.last, candle = failures.candle }
end

function R:flush_repeats()
  local failures = self.failures
  if failures.repeats == 0 then return end
  emit("error", "strategy_error_repeated", { count = failures.repeats, error = failures.last },
    "  error ... repeated %d times", failures.repeats)
  failures.repeats = 0
end

function R:strategy_turn(ok, why)
  local inner, failures, sh = self.inner, self.failures, self.sh
  local close = inner.time + self.step_ms
  if ok then
    failures.in_a_row = 0
    self:flush_repeats()
    sh:strategy(true, nil, close)
    return self:report_shield()
  end
  local phase = self.e.phase()
  local text = string.format("strategy failed in %s: %s", phase, tostring(why))
  failures.count, failures.in_a_row = failures.count + 1, failures.in_a_row + 1
  if text == failures.last then
    failures.repeats = failures.repeats + 1
  else
    self:flush_repeats()
    emit("error", "strategy_error", { ["function"] = phase, error = tostring(why), time = iso(inner.time) },
      "  error %s (the candle of %s is skipped)", text, iso(inner.time))
  end
  failures.last, failures.candle = text, iso(inner.time)
  self.journal:event("error", text)
  sh:strategy(false, string.format("in %s: %s", phase, tostring(why)), close)
  self:report_shield()
end

-- a tribunal verdict: kept for verdicts() and the dashboard
function R:record_verdict(what, v)
  table.insert(self.verdicts, 1, { time = iso(self.inner.time), signal = v.signal, score = v.score,
    source = v.source, reasoning = v.reasoning, outcome = what, cause = v.cause,
    latency_ms = v.latency_ms, tokens = v.tokens and v.tokens.total, model = v.model })
  self.verdicts[51] = nil
  self.board:verdict(self.verdicts[1], self.inner.time)
end

-- what a turn did, in a line: an order, a sell, a wait or a pass
function R:say_decision(what, detail)
  local verdict = type(detail) == "table" and detail or nil
  local v = verdict and string.format(" (tribunal %s: %s %d%s)", verdict.source,
    verdict.signal, verdict.score, verdict.cause and ", cause " .. verdict.cause or "")
    or (detail and " (" .. detail .. ")" or "")
  local later = self.caps.fills_at == "next_open" and " at the next open" or ""
  emit("info", "decision", { outcome = what, regime = self.inner.regime, verdict = verdict
    and { signal = verdict.signal, score = verdict.score, source = verdict.source, cause = verdict.cause,
      reasoning = verdict.reasoning, latency_ms = verdict.latency_ms } or nil },
    "  %-5s %s%s", what == "buy" and "order" or what, what == "buy" and "market buy" .. later
    or what == "sell" and "sell" .. later or "no entry", v)
end

-- the strategy's turn on the candle (the engine's ok, what, detail and a
-- buy's intent), reported and journaled
function R:decided(ok, what, detail, intent)
  local inner = self.inner
  if ok and type(detail) == "table" then self:record_verdict(what, detail) end
  self:strategy_turn(ok, what)
  if ok and what then
    self.journal:event("decision", journal_mod.decision(what, inner.regime, detail, intent))
  end
  if not ok then
    return
  elseif what == "blocked" then
    local why = shield_mod.why(self.sh)
    emit("warn", "blocked", { shield = detail, why = why }, "  block %s refused by the shield: %s",
      inner.position and "the exit" or "the entry", why)
    self.journal:event("blocked", { shield = detail, why = why })
  elseif what == "refused" and not self:report_dust() then  -- a dust position's exits: said once
    emit("warn", "refused_order", { why = detail }, "  refuse %s: %s", inner.position and "the exit" or "the entry",
      detail)
    self.journal:event("refused_order", { why = detail })
  elseif what == "buy" or what == "sell" or what == "wait" or what == "pass" then
    self:say_decision(what, detail)
  end
  local long = self.book.position and "long" or "flat"
  emit("info", "candle", { time = iso(inner.time), close = inner.close, regime = inner.regime,
    position = long, equity = inner.equity, shield = inner.shield },
    "%s  close %.2f  %-10s %-4s equity %.2f%s", iso(inner.time), inner.close, tostring(inner.regime),
    long, inner.equity, inner.shield == "GREEN" and "" or "  shield " .. inner.shield)
end

return M
