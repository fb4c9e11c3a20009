/*
 * fuzz_sse.c: libFuzzer target for the Server-Sent Events parser of the
 * Firebase commands stream (nomade.firebase.sse_parser, in the real host).
 * The input is cut into chunks at its 0xff bytes, as a network would cut
 * it. Whatever the bytes, the parser never raises, every event has a name
 * and a data string, and the same bytes in one chunk give the same events.
 */
#include "lua_fuzz.h"

static const char harness[] =
	"local firebase = require 'nomade.firebase'\n"
	"local function run(chunks)\n"
	"  local feed, all = firebase.sse_parser(), {}\n"
	"  for _, c in ipairs(chunks) do\n"
	"    for _, e in ipairs(feed(c)) do\n"
	"      assert(type(e.event) == 'string' and type(e.data) == 'string', 'an event without name or data')\n"
	"      all[#all + 1] = e.event .. '\\0' .. e.data\n"
	"    end\n"
	"  end\n"
	"  return table.concat(all, '\\1')\n"
	"end\n"
	"return function(data)\n"
	"  local chunks = {}\n"
	"  for c in (data .. '\\255'):gmatch('([^\\255]*)\\255') do chunks[#chunks + 1] = c end\n"
	"  local whole = data:gsub('\\255', '')\n"
	"  assert(run(chunks) == run({ whole }), 'chunking changed the events')\n"
	"end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_fuzz_run("=fuzz_sse", harness, sizeof harness - 1, data, size);
	return 0;
}
