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

local p = write(header .. "1000,1,2,0.5,1.5,10\n2000,1,2,x,1.5,10\n")
local none, err = candles.load_csv(p)
t.ok(none == nil and err == p .. ": line 3: field 'low': not a number ('x')", "a bad row names file, line and field", err)
none, err = candles.load_csv("/nonexistent.csv")
t.ok(none == nil and err == "/nonexistent.csv: No such file or directory", "a missing file", err)
none, err = candles.load_csv(write("garbage"))
t.ok(none == nil and err:find("line 1: expected the header", 1, true), "not a candle file", err)
t.raises(function() candles.load_csv() end, "bad argument #1 to 'load_csv'", "path required")

t.done()
