/*
 * fuzz_bybit.c: libFuzzer target for the Bybit response parsing
 * (nomade.bybit.rest.parse_response and kline_rows: Lua over lua-cjson, in the
 * real host). An input is a status byte, header lines up to a blank line,
 * then the body; the parser must answer a result table or nil and an error
 * with a kind and a message, and never raise (lua_fuzz.h runs it).
 */
#include "lua_fuzz.h"

static const char harness[] =
	"local bybit = require 'nomade.bybit.rest'\n"
	"local STATUS = { 200, 200, 200, 200, 403, 429, 500, 502, 400, 404 }\n"
	"return function(data)\n"
	"  local status = STATUS[data:byte(1) % #STATUS + 1]\n"
	"  local head, body = data:sub(2):match('^(.-)\\n\\n(.*)$')\n"
	"  if not head then head, body = '', data:sub(2) end\n"
	"  local headers = {}\n"
	"  for name, value in head:gmatch('([^:\\n]+):%s*([^\\n]*)') do headers[name:lower()] = value end\n"
	"  local res, err = bybit.parse_response('/v5/market/kline', status, headers, body)\n"
	"  if res == nil then\n"
	"    assert(type(err.kind) == 'string' and type(tostring(err)) == 'string', 'an error without kind or message')\n"
	"    return\n"
	"  end\n"
	"  assert(type(res) == 'table', 'a result that is not a table')\n"
	"  local rows, why = bybit.kline_rows(res.list)\n"
	"  assert(rows or type(why) == 'string', 'a refusal without a reason')\n"
	"  for _, r in ipairs(rows or {}) do\n"
	"    assert(math.type(r[1]) == 'integer', 'a time that is not an integer')\n"
	"    for c = 2, 6 do assert(r[c] == r[c] and math.abs(r[c]) ~= math.huge, 'a price not finite') end\n"
	"  end\n"
	"end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= 1)
		lua_fuzz_run("=fuzz_bybit", harness, sizeof harness - 1, data, size);
	return 0;
}
