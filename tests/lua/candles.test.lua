-- Loading candle files: the real data, gzip, and errors naming the file,
-- line and field.
local t = require "testlib"
local candles = require "nomade.candles"

local c = assert(candles.load_csv("data/binance-spot-btcusdt-1h-2023-03-20-to-27-outage.csv"))
t.eq(c.n, 191, "the outage file has 191 candles")
t.ok(#c.time == 191 and #c.open == 191 and #c.volume == 191, "six columns of the same length")
t.eq(c.time[1], 1679270400000, "times in ms")
t.eq(c.close[1], 27825.47, "first close")

local function write(text, gz)
  local p = os.tmpname()
  local f = assert(io.open(p, "w")); f:write(text); f:close()
  if gz then
    assert(os.execute("gzip -n -c " .. p .. " > " .. p .. ".gz"))
    return p .. ".gz"
  end
  return p
end

local header = "open_time_ms,open,high,low,close,volume\n"
local gz = assert(candles.load_csv(write(header .. "1000,1,2,0.5,1.5,10\n", true)))
t.ok(gz.n == 1 and gz.close[1] == 1.5, "gzip files load too")

-- a truncated archive, cut anywhere, is an error naming the file (zlib's
-- last read is 0 bytes either way: only gzerror tells them apart)
do
  local rows = {}
  for k = 1, 40 do rows[k] = string.format("%d,%d,%d,%d,%d,%d", k * 1000, 100 + k, 110 + k, 90 + k, 100 + k, k) end
  local whole = write(header .. table.concat(rows, "\n") .. "\n", true)
  local f = assert(io.open(whole, "rb"))
  local bytes = f:read("a")
  f:close()
  t.eq(assert(candles.load_csv(whole)).n, 40, "the whole archive loads")
  local loaded, named = {}, 0
  local cut = whole .. ".cut.gz"
  for n = 1, #bytes - 1 do
    local out = assert(io.open(cut, "wb"))
    out:write(bytes:sub(1, n))
    out:close()
    local ok, why = candles.load_csv(cut)
    if ok then loaded[#loaded + 1] = n elseif why:find(cut .. ": ", 1, true) == 1 then named = named + 1 end
  end
  t.eq(#loaded, 0, "no cut of the archive loads", table.concat(loaded, " "))
  t.eq(named, #bytes - 1, "every cut is an error naming the file")
  os.remove(cut)
end

local p = write(header .. "1000,1,2,0.5,1.5,10\n2000,1,2,x,1.5,10\n")
local none, err = candles.load_csv(p)
t.ok(none == nil and err == p .. ": line 3: field 'low': not a number ('x')", "a bad row names file, line and field", err)
none, err = candles.load_csv("/nonexistent.csv")
t.ok(none == nil and err == "/nonexistent.csv: No such file or directory", "a missing file", err)
none, err = candles.load_csv(write("garbage"))
t.ok(none == nil and err:find("line 1: expected the header", 1, true), "not a candle file", err)
t.raises(function() candles.load_csv() end, "bad argument #1 to 'load_csv'", "path required")


-- Bybit kline JSON: newest first, strings; read ascending as numbers
local k = assert(candles.load("tests/fixtures/bybit/rest_market_kline.json"))
t.ok(k.n == 3 and k.time[1] == 1670601600000 and k.time[3] == 1670608800000, "kline rows come out ascending")
t.ok(k.open[1] == 17086.5 and k.close[3] == 17055.5 and k.volume[2] == 4177, "kline strings become numbers")
local function jpath(text)
  local path = os.tmpname() .. ".json"
  local f = assert(io.open(path, "w")); f:write(text); f:close()
  return path
end
none, err = candles.load(jpath('{"retCode":10001,"retMsg":"params error","result":{}}'))
t.ok(none == nil and err:find("not a successful kline response (retCode 10001, retMsg params error)", 1, true),
  "an error response is named", err)
none, err = candles.load(jpath('{"retCode":0,"result":{"list":[["2000","1","2","0.5","x","1"],["1000","1","2","0.5","1","1"]]}}'))
t.ok(none == nil and err:find("result.list[1]: field 'close': not a number (\"x\")", 1, true),
  "a bad kline field names its row and field", err)
-- as strict as the CSV: exponent or out-of-range times, 1e999, an object
-- for a list, a file too large to be one answer
local function kline(list) return jpath('{"retCode":0,"result":{"list":' .. list .. '}}') end
local loaded = {}
for _, case in ipairs {
  '[["1e3","1","2","0.5","1","1"]]', '[["9007199254740993","1","2","0.5","1","1"]]',
  '[["1000","1","2","0.5","1e999","1"]]', '[["1000","0x10","2","0.5","1","1"]]', '[["1000"," 1","2","0.5","1","1"]]',
  '{"a":["1000","1","2","0.5","1","1"]}', '{"1":["1000","1","2","0.5","1","1"],"x":1}',
} do
  if candles.load(kline(case)) then loaded[#loaded + 1] = case end
end
t.eq(#loaded, 0, "kline JSON: the CSV's grammar for every field, and result.list an array", table.concat(loaded, " "))
do
  local big = os.tmpname() .. ".json"
  local f = assert(io.open(big, "wb"))
  f:write('{"retCode":0,"result":{"list":[', string.rep('["1000","1","2","0.5","1","1"],', (candles.MAX_JSON // 30) + 1),
    ']}}')
  f:close()
  local no, why = candles.load(big)
  t.ok(no == nil and why:find("more than a kline answer", 1, true), "a JSON file too large to be one answer: refused",
    why)
  os.remove(big)
end
none, err = candles.load(jpath('{"retCode":0,"result":{"list":[["1000","1","2","0.5","1","1"],["2000","1","2","0.5","1","1"]]}}'))
t.ok(none == nil and err:find("is not before", 1, true), "kline rows oldest first are refused, not reordered", err)
none, err = candles.load(jpath("{nope"))
t.ok(none == nil and err:find("not JSON", 1, true), "not JSON")

-- CSV order: a repeated or earlier time is an error, never reordered
none, err = candles.load_csv(write(header .. "2000,1,2,0.5,1.5,10\n1000,1,2,0.5,1.5,10\n"))
t.ok(none == nil and err:find("line 3: open_time_ms 1000 is before the previous row's 2000", 1, true),
  "rows out of order are refused", err)
-- a file read in pieces: lines across the 64 KB reads, and a long line refused
local rows = { header:sub(1, -2) }
for i = 1, 5000 do rows[#rows + 1] = string.format("%d,1.00000001,2,0.5,1.5,10", i * 1000) end
local big = assert(candles.load_csv(write(table.concat(rows, "\n"))))
t.ok(big.n == 5000 and big.time[5000] == 5000000 and big.open[4321] == 1.00000001, "a file larger than one read")
none, err = candles.load_csv(write(header .. "1," .. string.rep("1", 5000) .. ",2,0.5,1.5,10\n"))
t.ok(none == nil and err:find("line 2: longer than 4096 bytes", 1, true), "an absurd line is refused", err)

t.done()
