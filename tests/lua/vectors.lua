-- vectors: reads the reference files in tests/vectors/ (gzip CSV with a
-- header; "nan" for warm-up) into {column = {numbers...}}.
local M = {}

function M.load(name)
  local f = assert(io.popen("gzip -dc tests/vectors/" .. name .. ".csv.gz"))
  local header = f:read("l")
  local names, cols = {}, {}
  for c in header:gmatch("[^,]+") do names[#names + 1] = c; cols[c] = {} end
  local nan = 0 / 0
  for line in f:lines() do
    local i = 0
    for v in line:gmatch("[^,]+") do
      i = i + 1
      cols[names[i]][#cols[names[i]] + 1] = (v == "nan") and nan or tonumber(v)
    end
  end
  assert(f:close())
  return cols
end

M.files = {
  "binance-spot-btcusdt-1h-2022-2023",
  "binance-spot-ethusdt-1h-2022-2023",
  "binance-spot-solusdt-1h-2022-2023",
  "binance-spot-btcusdt-1m-2023-03-24-outage",
}

return M
