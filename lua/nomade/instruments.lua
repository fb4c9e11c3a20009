-- nomade.instruments: rounding to an instrument's steps, whatever the
-- exchange. The rules themselves ({qty_step = {value, scale, text}, tick,
-- min_qty, min_amt, base, quote, ...}) come from an adapter: Bybit's from
-- nomade.bybit.instruments.
local M = {}

-- rounds down (or up) to a step of 10^-d: floor(x * 10^d + 1e-9) / 10^d.
-- The 1e-9 absorbs binary rounding: 100 * 1.1 is 110.00000000000001,
-- which must round up to 110.0 on a 0.1 tick, not to 110.1.
local SLACK = 1e-9
function M.floor(x, unit) return math.floor(x * unit.scale + SLACK) / unit.scale end
function M.ceil(x, unit) return math.ceil(x * unit.scale - SLACK) / unit.scale end

return M
