-- nomade.indicators: the indicators a strategy declared, computed in batch
-- over whole columns (a backtest, `tribunal ask`). The same C code as the
-- streams a run keeps; tests hold the two forms equal.
local ta = require "nomade.ta"
local engine = require "nomade.engine"

local M = {}

-- indicators.series(decl, c) -> {{name =, series =}, ...}: a multi-output
-- indicator gives one entry a result, under engine.SUFFIXES' names
function M.series(decl, c)
  local out = {}
  for _, d in ipairs(decl) do
    local spec, results = d.spec
    if spec.inputs == 3 then
      results = { ta[spec.name](c.high, c.low, c.close, table.unpack(spec.params)) }
    else
      results = { ta[spec.name](c[d.field], table.unpack(spec.params)) }
    end
    local suffixes = engine.SUFFIXES[spec.name] or { "" }
    for k, s in ipairs(results) do out[#out + 1] = { name = d.name .. suffixes[k], series = s } end
  end
  return out
end

return M
