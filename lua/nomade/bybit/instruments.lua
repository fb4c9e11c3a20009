-- nomade.bybit.instruments: an instrument's trading rules (quantity step,
-- minimum quantity and amount, tick size) from a Bybit instruments-info
-- response. The default, used when no --instrument file is given, is
-- Bybit's own documented BTCUSDT spot record (below, verbatim); any
-- other symbol needs its record, never a guess.
local cjson = require "cjson.safe"
local instruments = require "nomade.instruments"

local M = {}

-- docs/v5/market/instrument.mdx, response example, spot
M.DEFAULT = [==[
{
    "retCode": 0,
    "retMsg": "OK",
    "result": {
        "category": "spot",
        "list": [
            {
                "symbolId": 9,
                "symbol": "BTCUSDT",
                "baseCoin": "BTC",
                "quoteCoin": "USDT",
                "innovation": "0",
                "status": "Trading",
                "marginTrading": "utaOnly",
                "stTag": "0",
                "lotSizeFilter": {
                    "basePrecision": "0.000001",
                    "quotePrecision": "0.0000001",
                    "minOrderQty": "0.000011",
                    "maxOrderQty": "83",
                    "minOrderAmt": "5",
                    "maxOrderAmt": "8000000",
                    "maxLimitOrderQty": "83",
                    "maxMarketOrderQty": "41.5",
                    "postOnlyMaxLimitOrderSize":"60000"

                },
                "priceFilter": {
                    "tickSize": "0.1"
                },
                "riskParameters": {
                    "priceLimitRatioX": "0.005",
                    "priceLimitRatioY": "0.01"
                },
                "symbolType": ""
            }
        ]
    },
    "retExtInfo": {},
    "time": 1760027412300
}
]==]

-- M.parse(json_text, symbol) -> rules or nil, err
function M.parse(text, symbol)
  local doc, err = cjson.decode(text)
  if not doc then return nil, "instruments: not JSON (" .. tostring(err) .. ")" end
  return M.from_list(type(doc) == "table" and type(doc.result) == "table" and doc.result.list, symbol)
end

-- the rules of `symbol` from an instruments-info result.list
function M.from_list(list, symbol)
  if type(list) ~= "table" then return nil, "instruments: no result.list" end
  for _, r in ipairs(list) do
    if type(r) == "table" and r.symbol == symbol then
      local lot, price = r.lotSizeFilter or {}, r.priceFilter or {}
      local qty, e1 = instruments.step(lot.basePrecision, "lotSizeFilter.basePrecision", symbol)
      local tick, e2 = instruments.step(price.tickSize, "priceFilter.tickSize", symbol)
      local min_qty, min_amt = tonumber(lot.minOrderQty), tonumber(lot.minOrderAmt)
      if not qty or not tick then return nil, e1 or e2 end
      if not min_qty or not min_amt then
        return nil, "instruments: " .. symbol .. ": minOrderQty and minOrderAmt must be decimal strings"
      end
      return { symbol = symbol, qty_step = qty, tick = tick, min_qty = min_qty, min_amt = min_amt,
        max_market_qty = tonumber(lot.maxMarketOrderQty), status = r.status, base = r.baseCoin, quote = r.quoteCoin }
    end
  end
  return nil, "instruments: no record for " .. symbol
end

-- M.load(path or nil, symbol): from a file, or the bundled default
function M.load(path, symbol)
  if path == nil then
    local rules, err = M.parse(M.DEFAULT, symbol)
    if not rules then
      return nil, err .. " in the bundled default (only BTCUSDT); pass --instrument FILE with "
        .. "a Bybit /v5/market/instruments-info?category=spot response"
    end
    return rules
  end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  local rules, perr = M.parse(text, symbol)
  if not rules then return nil, path .. ": " .. perr end
  return rules
end

return M
