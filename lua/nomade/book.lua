-- nomade.book: the contract every book implements, written down once. A
-- book is what the engine trades through and the runtime reports from:
-- the paper book (nomade.paper, in C) and the Bybit book (nomade.bybit.book)
-- both offer it, and tests/lua/book.test.lua holds them both to it. What
-- differs between books is said by book.capabilities, never by sniffing
-- for a field.
--
-- Methods
--   book:gate(entry) -> allowed, state
--       the Integrity Shield's rule (GREEN all, AMBER exits only, RED
--       nothing) and the book's own; a refusal is counted in
--       blocked_entries or blocked_exits
--   book:buy(intent, i[, max_qty]) -> true | false, state | false, nil, why
--       an entry ({type = "market"}; the paper book also takes {type =
--       "limit", price =, ttl =}) decided on candle i, through the gate, of
--       at most max_qty (the engine's risk cap): false and the shield's
--       state when the gate refuses, false, nil and why when the book does
--       (minimums, the exchange). Raises when a
--       position or an order is open
--   book:sell(reason, i) -> as buy
--       the whole position; raises without a position or with an order open
--   book:open_candle(i, time, open, high, low, close, live) -> changed
--       each candle the shield accepted: what it fills (stops and takes
--       too, only at the prices of a clean candle). true when an order
--       filled or was cancelled on it (fills_at = "next_open"); a book
--       whose fills come from the market reports them through on_change
--   book:equity(price) -> the quote balance plus the base at price
--   book:snapshot() -> a table of plain values, for the journal
--   book:restore(snapshot)     a snapshot put back into a new book; the
--       Bybit book keeps its orders and fills in the journal and folds them
--       at construction, so its snapshot holds only what the journal lacks
--   book:configure{position_size =, stop_loss =, take_profit =}  a
--       reloaded strategy's sizing, for the next entries
--
-- Fields (read them; the book writes them)
--   quote, base      balances (numbers)
--   position         nil, or {qty, price, time, index[, stop][, take][, dust]}
--   pending          true while an order is open
--   trades           closed trades, oldest first: {entry_time, exit_time,
--                    entry_price, exit_price, qty, pnl, reason, ...}
--   fees, refused, orders, blocked_entries, blocked_exits  counts (held is
--                    each book's own: candles held on paper, coins held live)
--   capabilities     read-only: {exchange = "paper"|"bybit",
--                    fills_at = "next_open"|"market", private_stream,
--                    reconcile, stop, cancel}; each true capability is a
--                    method more (below)
--
-- Events: a fill shows as the position appearing (a buy) or a new entry in
-- trades (a sell). With fills_at = "next_open" that happens only inside
-- open_candle, which says so; with fills_at = "market" it happens when the
-- exchange reports it, between candles: the book then calls
-- book.on_change() (set by the runtime), and book.on_shield() when it moved
-- the shield itself.
--
-- Capabilities and what each adds
--   private_stream   book:stream{url =, timeout =, on_ready = fn(up, why)}:
--                    fills, orders and balances as they happen
--   reconcile        book:reconcile(why) -> ok, problem, notes: the book
--                    matched with the exchange (the shield RED while they
--                    disagree)
--   stop             book:stop(): what it holds open, closed at the end
--   cancel           book:cancel_open() -> true | nil, err: the open order
--                    cancelled (the kill switch)
--
-- Beyond the contract, each book's own (what the runtime reads of one
-- book only, after asking its capabilities)
--   paper            book:guard(shield) (the live shield the gate reads),
--                    book:run{...} (the backtest loop), cancelled, current,
--                    in_state, shield
--   bybit            problem (the last disagreement, with reconcile),
--                    stream_up (with private_stream), open and known (the
--                    open order, every order by orderLinkId), risk_refused,
--                    client; written by the runtime: price (the last
--                    close), trigger (when the closing push arrived)
local M = {}

M.METHODS = { "gate", "buy", "sell", "open_candle", "equity", "snapshot", "restore", "configure" }
M.NUMBERS = { "quote", "base", "fees", "refused", "orders", "blocked_entries", "blocked_exits" }
M.FILLS_AT = { next_open = true, market = true }
-- the capabilities that are a method more, and its name
M.EXTRA = { private_stream = "stream", reconcile = "reconcile", stop = "stop", cancel = "cancel_open" }

local function fail(who, fmt, ...) error(who .. ": " .. string.format(fmt, ...), 3) end

local function check_capabilities(c, who)
  if type(c) ~= "table" and type(c) ~= "userdata" then fail(who, "the book has no capabilities table") end
  if type(c.exchange) ~= "string" or c.exchange == "" then fail(who, "capabilities.exchange must name the exchange") end
  if not M.FILLS_AT[c.fills_at] then fail(who, "capabilities.fills_at must be next_open or market") end
  for cap in pairs(M.EXTRA) do
    if type(c[cap]) ~= "boolean" then fail(who, "capabilities.%s must be a boolean", cap) end
  end
end

-- book.check(b[, who]) -> b, or an error naming what b lacks (who, e.g.
-- "engine.new", opens the message)
function M.check(b, who)
  who = who or "book.check"
  if type(b) ~= "table" and type(b) ~= "userdata" then fail(who, "a book must be a table or userdata, not %s", type(b)) end
  for _, name in ipairs(M.METHODS) do
    if type(b[name]) ~= "function" then fail(who, "the book lacks the method %s (see nomade.book)", name) end
  end
  for _, name in ipairs(M.NUMBERS) do
    if type(b[name]) ~= "number" then fail(who, "the book lacks the number %s (see nomade.book)", name) end
  end
  if type(b.pending) ~= "boolean" then fail(who, "the book's pending must be a boolean") end
  if type(b.trades) ~= "table" then fail(who, "the book lacks its trades table") end
  local p = b.position
  if p ~= nil and (type(p) ~= "table" or type(p.qty) ~= "number" or type(p.price) ~= "number") then
    fail(who, "the book's position must be nil or a table with qty and price")
  end
  local caps = b.capabilities
  check_capabilities(caps, who)
  for cap, method in pairs(M.EXTRA) do
    if caps[cap] and type(b[method]) ~= "function" then
      fail(who, "capabilities.%s is true and the book lacks the method %s", cap, method)
    end
  end
  return b
end

-- book.capabilities{...} -> the table, checked and read-only, for a book
-- written in Lua
function M.capabilities(t)
  check_capabilities(t, "book.capabilities")
  local copy = {}
  for k, v in pairs(t) do copy[k] = v end
  return setmetatable({}, {
    __index = copy,
    __newindex = function(_, k) error("book.capabilities is read-only (tried to set " .. tostring(k) .. ")", 2) end,
    __pairs = function() return function(_, k) return next(copy, k) end, nil, nil end,
    __metatable = false,
  })
end

return M
