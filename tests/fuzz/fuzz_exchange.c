/*
 * fuzz_exchange.c: libFuzzer target for what the Bybit private stream
 * pushes into live execution's book (nomade.bybit.book: order, execution and
 * wallet data, decoded by lua-cjson, in the real host). An input is a
 * topic byte then JSON. Whatever the bytes, the book must not raise, and
 * its position, coins held and balances must stay finite numbers; an
 * execution's fill is applied at most once.
 */
#include "lua_fuzz.h"

static const char harness[] =
	"local exchange = require 'nomade.bybit.book'\n"
	"local journal = require 'nomade.journal'\n"
	"local cjson = require 'cjson.safe'\n"
	"local path = os.tmpname()\n"
	"local j = assert(journal.open(path, { strategy = 'fuzz', symbol = 'BTCUSDT', interval = '1m', exec = 'bybit' }))\n"
	"os.remove(path)\n"
	"j.db:run(\"INSERT OR REPLACE INTO meta (key, value) VALUES ('tag', 'fuzz')\")  -- links the seeds know\n"
	"local sh = require('nomade._shield').new { interval = 60 }\n"
	"local unit = function(text, scale) return { text = text, scale = scale, value = 1 / scale } end\n"
	"local rules = { symbol = 'BTCUSDT', base = 'BTC', quote = 'USDT', qty_step = unit('0.000001', 1e6),\n"
	"  tick = unit('0.01', 100), min_qty = 0.000048, min_amt = 1 }\n"
	"local settings = { symbol = 'BTCUSDT', position_size = 0.5, stop_loss = 0.03, take_profit = false,\n"
	"  max_position_value = 1000, max_orders_per_hour = 12, max_daily_loss = 0.05 }\n"
	"local book = assert(exchange.new { client = {}, shield = sh, journal = j, settings = settings,\n"
	"  rules = rules, emit = function() end })\n"
	"local tag = j:tag()\n"
	"for k, side in ipairs({ 'Buy', 'Sell', 'Buy' }) do\n"
	"  local link = 'nmd' .. tag .. '-f' .. k\n"
	"  if not book.known[link] then\n"
	"    j:order { link = link, time = k, side = side, qty = '0.01', status = 'New' }\n"
	"  end\n"
	"end\n"
	"book:load()\n"
	"local TOPICS = { 'order', 'execution', 'wallet' }\n"
	"local function finite(x) return type(x) == 'number' and x == x and math.abs(x) ~= math.huge end\n"
	"return function(data)\n"
	"  local doc = cjson.decode(data:sub(2))\n"
	"  if type(doc) ~= 'table' then return end\n"
	"  local list = doc.data or doc\n"
	"  book:push(TOPICS[data:byte(1) % 3 + 1], list)\n"
	"  book:push(TOPICS[data:byte(1) % 3 + 1], list)  -- a repeat changes nothing more\n"
	"  assert(finite(book.quote) and finite(book.base), 'a balance that is not a finite number')\n"
	"  local p = book.position\n"
	"  assert(p == nil or (p.qty >= 0 and type(p.qty) == 'number'), 'a negative position')\n"
	"  assert(type(book.held) == 'number', 'held is not a number')\n"
	"end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= 1)
		lua_fuzz_run("=fuzz_exchange", harness, sizeof harness - 1, data, size);
	return 0;
}
