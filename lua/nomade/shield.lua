-- nomade.shield: the Integrity Shield as the runtime uses it. The checks,
-- states and the order gate are C (runtime/shield.c, lib_paper.c); this
-- builds a shield for a strategy, reads --shield thresholds, and words
-- its state for people.
local core = require "nomade._shield"
local time = require "nomade.time"

local M = {}

-- the thresholds --shield may set (README, "The Integrity Shield"). They
-- come from the command line, never from the strategy: a strategy cannot
-- loosen the shield that guards it. Each is bounded in C, so none of them
-- can switch a check off.
M.THRESHOLDS = { grace = true, heartbeat = true, jump_atr = true, jump_pct = true, max_skew = true,
  zero_volume_run = true, flat_run = true, atr_period = true, api_errors = true, strategy_errors = true,
  recovery = true }

-- candles an indicator needs before its value means anything
local WARMUP = {
  ema = function(p) return p[1] end, sma = function(p) return p[1] end,
  stddev = function(p) return p[1] end, bbands = function(p) return p[1] end,
  highest = function(p) return p[1] end, lowest = function(p) return p[1] end,
  rsi = function(p) return p[1] + 1 end, rsi_sma = function(p) return p[1] + 1 end,
  atr = function(p) return p[1] + 1 end, macd = function(p) return p[2] + p[3] - 1 end,
}

function M.warmup(decl)
  local need = 0
  for _, d in ipairs(decl) do
    local f = WARMUP[d.spec.name]
    need = math.max(need, f and f(d.spec.params) or 0)
  end
  return need
end

-- "recovery=5,jump_pct=0.2" -> table, or nil, err
function M.parse(text)
  local out = {}
  if not text then return out end
  for item in text:gmatch("[^,]+") do
    local k, v = item:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
    if not k or not M.THRESHOLDS[k] or not tonumber(v) then
      local names = {}
      for name in pairs(M.THRESHOLDS) do names[#names + 1] = name end
      table.sort(names)
      return nil, string.format("--shield: '%s' is not NAME=number with NAME one of %s", item,
        table.concat(names, ", "))
    end
    out[k] = tonumber(v)
  end
  return out
end

local function build(text, interval, warmup)
  local cfg, err = M.parse(text)
  if not cfg then return nil, err end
  cfg.interval, cfg.warmup = interval, warmup
  local ok, sh = pcall(core.new, cfg)
  if not ok then return nil, "--shield: " .. tostring(sh):gsub("^.-shield%.new: ", "") end
  return sh
end

-- M.new(strategy, text) -> a shield for the strategy's interval and
-- indicators, with --shield's thresholds, or nil, err
function M.new(strat, text)
  return build(text, time.INTERVALS[strat.settings.interval], M.warmup(strat.indicators))
end

-- M.check(text, streamed) -> true or nil, err: --shield as the command
-- line gives it. Only a streamed feed beats, so heartbeat= anywhere else
-- would be a check that never fires: refused
function M.check(text, streamed)
  local ok, err = build(text, 3600, 0)
  if ok and not streamed and M.parse(text).heartbeat then
    return nil, "--shield heartbeat= needs a streamed feed (nomade run --feed bybit): nothing else beats"
  end
  return ok and true, err
end


-- one line per reason: "RED zero_volume (since 12:00): ..."
function M.reason_lines(sh)
  local out = {}
  for _, r in ipairs(sh:reasons()) do
    out[#out + 1] = string.format("%-5s %-12s since %s  %s", r.severity, r.check, time.iso(r.since), r.detail)
  end
  return out
end

-- a transition as a line
function M.transition_line(t)
  return string.format("%s  %s -> %s  %s: %s", time.iso(t.time), t.from, t.to, t.check, t.detail)
end

-- what the REPL's shield.explain() prints
function M.explain(sh, n)
  local lines = { "state " .. sh:state() }
  local reasons = M.reason_lines(sh)
  lines[#lines + 1] = #reasons > 0 and "reasons:" or "reasons: none"
  for _, l in ipairs(reasons) do lines[#lines + 1] = "  " .. l end
  local trans = sh:transitions()
  lines[#lines + 1] = #trans > 0 and "last transitions:" or "transitions: none"
  for k = math.max(1, #trans - (n or 10) + 1), #trans do lines[#lines + 1] = "  " .. M.transition_line(trans[k]) end
  return table.concat(lines, "\n")
end

-- why the gate is shut, in a line: the state and its chief reasons
function M.why(sh)
  local reasons = sh:reasons()
  local parts = {}
  for _, r in ipairs(reasons) do parts[#parts + 1] = r.check .. ": " .. r.detail end
  return sh:state() .. (#parts > 0 and " (" .. table.concat(parts, "; ") .. ")" or " (recovering: clean candles needed)")
end

return M
