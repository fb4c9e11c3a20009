-- nomade.candles: candle files into packed series, ascending, checked.
--   candles.load(path)            .json: Bybit kline JSON, else CSV
--   candles.load_csv(path)        open_time_ms,open,high,low,close,volume
--                                 (plain or gzip; the parser is C)
--   candles.load_bybit_json(path) a /v5/market/kline response body
-- Each returns {time, open, high, low, close, volume (series), n, path} or
-- nil and a message naming the file, the row and the field. Nothing is
-- skipped or reordered: rows out of order or repeated are errors.
--   candles.check_interval(c, interval) -> true, or nil and why the
--                                 candles are not that interval apart
local core = require "nomade._candles"
local ta = require "nomade.ta"
local cjson = require "cjson.safe"
local COLUMNS = require "nomade.columns"
local INTERVALS = require("nomade.time").INTERVALS

local M = { load_csv = core.load_csv }

-- one kline row [start, open, high, low, close, volume, turnover]: values
-- by the CSV parser's own grammar (C), or the reason it is refused
local function kline_row(row)
  if type(row) ~= "table" or #row < 6 then return nil, "expected an array of at least 6 strings" end
  local v = {}
  for f = 1, 6 do
    local x, why = core.field(f - 1, row[f])
    if x == nil then
      return nil, string.format("field '%s': %s (%s)", f == 1 and "startTime" or COLUMNS[f], why,
        cjson.encode(row[f]))
    end
    v[f] = x
  end
  return v
end

-- is t a JSON array (keys 1..n, nothing else)?
local function array(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

-- a /v5/market/kline answer holds at most 1000 rows, some 150 KB: a file
-- beyond this is no such answer (and would be decoded whole); CSV is the
-- format for long histories
M.MAX_JSON = 16 << 20

function M.load_bybit_json(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local size = f:seek("end")
  if size and size > M.MAX_JSON then
    f:close()
    return nil, string.format("%s: %d bytes, more than a kline answer's %d at most (convert it to CSV)", path, size,
      M.MAX_JSON)
  end
  f:seek("set")
  local text, rerr = f:read("a")
  f:close()
  if not text then return nil, path .. ": " .. tostring(rerr) end
  local doc, jerr = cjson.decode(text)
  if doc == nil then return nil, path .. ": not JSON (" .. tostring(jerr) .. ")" end
  if type(doc) ~= "table" or doc.retCode ~= 0 then
    local code = type(doc) == "table" and doc.retCode
    return nil, string.format("%s: not a successful kline response (retCode %s, retMsg %s)",
      path, tostring(math.tointeger(code) or code), tostring(type(doc) == "table" and doc.retMsg))
  end
  local list = type(doc.result) == "table" and doc.result.list
  if not array(list) then return nil, path .. ": result.list is not an array" end
  local out = { path = path, n = #list }
  for _, c in ipairs(COLUMNS) do out[c] = ta.series() end
  -- Bybit lists the newest first; read from the end to get ascending rows
  local prev
  for k = #list, 1, -1 do
    local v, why = kline_row(list[k])
    if not v then return nil, string.format("%s: result.list[%d]: %s", path, k, why) end
    if prev and v[1] <= prev then
      return nil, string.format("%s: result.list[%d]: startTime %d is not before result.list[%d]'s %d",
        path, k + 1, prev, k, v[1])
    end
    prev = v[1]
    for col, c in ipairs(COLUMNS) do out[c]:push(v[col]) end
  end
  return out
end

function M.load(path)
  if type(path) ~= "string" then error("candles.load: path must be a string", 2) end
  if path:match("%.json$") then return M.load_bybit_json(path) end
  return core.load_csv(path)
end

-- the data's spacing must be the strategy's interval (gaps are allowed)
function M.check_interval(c, interval)
  local want = INTERVALS[interval] * 1000
  local smallest = math.huge
  for i = 2, math.min(c.n, 1000) do smallest = math.min(smallest, c.time[i] - c.time[i - 1]) end
  if c.n >= 2 and smallest ~= want then
    return nil, string.format("%s: candles are %d s apart but the strategy's interval is %s",
      c.path, smallest // 1000, interval)
  end
  return true
end

return M
