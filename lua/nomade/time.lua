-- nomade.time: the vocabulary of candle time, for every layer: the
-- intervals a strategy may trade, and UTC times as text both ways. Plain
-- Lua, requiring nothing (scripts/layers: base).
local M = {}

-- interval name -> seconds
M.INTERVALS = {
  ["1m"] = 60, ["3m"] = 180, ["5m"] = 300, ["15m"] = 900, ["30m"] = 1800,
  ["1h"] = 3600, ["2h"] = 7200, ["4h"] = 14400, ["6h"] = 21600, ["12h"] = 43200,
  ["1d"] = 86400, ["1w"] = 604800,
}

-- UTC time in ms -> "2023-03-24 12:00", how a candle is named to a person
function M.iso(ms)
  return os.date("!%Y-%m-%d %H:%M", ms // 1000)
end

-- UTC time in ms (default: now) -> "2023-03-24T12:00:00Z", for documents
function M.stamp(ms)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", ms and ms // 1000)
end

-- days since 1970-01-01 of a proleptic Gregorian UTC date
local function days_from_civil(y, mo, d)
  y = mo <= 2 and y - 1 or y
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
end

-- "2023-03-24" or "2023-03-24T12:00[:00][Z]" (UTC) -> ms, and whether a
-- time of day was given; nil, err when it is not such a date
function M.parse_date(text)
  local y, mo, d, rest = tostring(text):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  local h, mi, sec = 0, 0, 0
  if rest and rest ~= "" then
    h, mi, sec = rest:match("^[T ](%d%d):(%d%d):?(%d?%d?)Z?$")
    if not h then y = nil end
    sec = (sec == nil or sec == "") and 0 or sec
  end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  local days = y and days_from_civil(y, mo, d)
  if not y or mo < 1 or mo > 12 or d < 1 or h > 23 or mi > 59 or sec > 59
      or os.date("!%d", days * 86400) ~= string.format("%02d", d) then
    return nil, string.format("not a date: '%s' (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)", tostring(text))
  end
  return ((days * 24 + h) * 60 + mi) * 60000 + sec * 1000, rest ~= ""
end

return M
