-- nomade.instruments: what an instrument's trading rules are made of,
-- whatever the exchange: a step (quantity step, tick size) read from its
-- decimal string, and the rounding of a quantity or price to one. An
-- adapter reads its exchange's records into rules {symbol, qty_step,
-- tick, min_qty, min_amt, ...} (Bybit's: nomade.bybit.instruments); the
-- risk limits and the books round with these.

local M = {}

-- decimals of a step written as "0.000001" (1e-6): 6
local function decimals(s)
  local frac = s:match("^%d+%.(%d+)$")
  return frac and #frac or 0
end

-- M.step(text, what, symbol) -> unit {value, scale, text} of a step
-- written as a decimal string, or nil, err naming the symbol and field
function M.step(s, what, symbol)
  local v = tonumber(s)
  if type(s) ~= "string" or not v or v <= 0 then
    return nil, string.format("instruments: %s: %s must be a positive decimal string, got %s",
      symbol, what, tostring(s))
  end
  return { value = v, scale = 10 ^ decimals(s), text = s }
end

-- rounds down (or up) to a step of 10^-d: floor(x * 10^d + 1e-9) / 10^d.
-- The 1e-9 absorbs binary rounding: 100 * 1.1 is 110.00000000000001,
-- which must round up to 110.0 on a 0.1 tick, not to 110.1.
local SLACK = 1e-9
function M.floor(x, unit) return math.floor(x * unit.scale + SLACK) / unit.scale end
function M.ceil(x, unit) return math.ceil(x * unit.scale - SLACK) / unit.scale end

return M
