-- nomade.bybit.cli: `nomade bybit candles|balance|orders`, the REST
-- client (nomade.bybit.rest) from the command line; runtime/main.c
-- dispatches `nomade bybit` here.
local rest = require "nomade.bybit.rest"
local cli = require "nomade.cli"

local M = {}

M.USAGE = [[
usage: nomade bybit candles SYMBOL INTERVAL [--limit N] [--base-url URL]
       nomade bybit balance [--base-url URL]
       nomade bybit orders SYMBOL [--base-url URL]
  candles  prints confirmed candles as CSV in data/'s format (the still-open
           one left out), paginating past 1000
  balance  prints the UNIFIED account's coins as CSV
  orders   prints the symbol's open orders as CSV
  balance and orders need BYBIT_API_KEY and BYBIT_API_SECRET in the
           environment, or in the file named by NOMADE_SECRETS (0600)
  --base-url mainnet (default), testnet, demo or http(s)://host:port
]]

function M.main(cmd, ...)
  local args, opts = { ... }, {}
  local pos = {}
  local i = 1
  while i <= #args do
    if args[i] == "--limit" or args[i] == "--base-url" then
      if not args[i + 1] then return cli.refuse("bybit", args[i] .. " needs a value", M.USAGE) end
      opts[args[i]] = args[i + 1]
      i = i + 2
    elseif args[i] == "--help" or args[i] == "-h" then  -- after a command too: its usage, nothing run
      io.stdout:write(M.USAGE)
      return 0
    else
      pos[#pos + 1] = args[i]
      i = i + 1
    end
  end
  if cmd == nil or cmd == "--help" or cmd == "-h" then
    io.stdout:write(M.USAGE)
    return cmd == nil and 2 or 0
  end
  local key, secret, kerr = rest.keys()
  if kerr then io.stderr:write("nomade bybit: ", kerr, "\n") return 1 end
  local ok, client = pcall(rest.new, { base = opts["--base-url"], key = key, secret = secret })
  if not ok then return cli.refuse("bybit", tostring(client):gsub("^.-: ", ""), M.USAGE) end
  if cmd == "candles" then
    local limit = math.tointeger(tonumber(opts["--limit"] or "200"))
    if #pos ~= 2 or not rest.INTERVALS[pos[2]] or not limit or limit < 1 then
      return cli.refuse("bybit", "candles needs SYMBOL INTERVAL (1m .. 1w) and --limit N >= 1", M.USAGE)
    end
    local c, err = client:candles(pos[1], pos[2], limit)
    if not c then io.stderr:write("nomade bybit: ", tostring(err), "\n") return 1 end
    local pretty = require "nomade.pretty"
    io.stdout:write("open_time_ms,open,high,low,close,volume\n")
    for k = 1, c.n do
      io.stdout:write(string.format("%d,%s,%s,%s,%s,%s\n", c.time[k], pretty.number(c.open[k]),
        pretty.number(c.high[k]), pretty.number(c.low[k]), pretty.number(c.close[k]), pretty.number(c.volume[k])))
    end
    return 0
  end
  local res, err, rows, fields
  if cmd == "balance" then
    res, err = client:wallet()
    local account = res and type(res.list) == "table" and res.list[1] or {}
    rows, fields = account.coin, { "coin", "walletBalance", "locked", "usdValue" }
  elseif cmd == "orders" and pos[1] then
    res, err = client:open_orders(pos[1])
    rows, fields = res and res.list, { "orderId", "orderLinkId", "side", "orderType", "price", "qty", "cumExecQty",
      "orderStatus", "createdTime" }
  else
    return cli.refuse("bybit", "unknown command '" .. tostring(cmd) .. "'", M.USAGE)
  end
  if not res then io.stderr:write("nomade bybit: ", tostring(err), "\n") return 1 end
  io.stdout:write(table.concat(fields, ","), "\n")
  for _, r in ipairs(type(rows) == "table" and rows or {}) do
    local line = {}
    for k, name in ipairs(fields) do line[k] = type(r[name]) == "string" and r[name] or "" end
    io.stdout:write(table.concat(line, ","), "\n")
  end
  return 0
end

return M
