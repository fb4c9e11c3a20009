/*
 * fuzz_dashboard.c: libFuzzer target for the dashboard's request handling
 * (nomade.dashboard.handler over nomade.tree, in the real host), behind
 * libmicrohttpd's own parsing. An input is a method byte, then the path,
 * a newline, the query (k=v&...), a newline, and the body. Whatever the
 * bytes, the handler answers a status in 100..599, never raises, and a
 * control goes through only with the token, from a Host that is an
 * address or localhost, with no Origin but the Host's own (the query's
 * host= and origin= give the headers; 127.0.0.1:8080 without one).
 */
#include "lua_fuzz.h"

static const char harness[] =
	"local dashboard = require 'nomade.dashboard'\n"
	"local tree = require('nomade.tree').new()\n"
	"tree:put('/market/BTCUSDT/current', { price = 1, time = 2 })\n"
	"local done = 0\n"
	"local handle = dashboard.handler { tree = tree, token = 'tok', web = nil,\n"
	"  on_command = function(a) done = done + 1 return a end }\n"
	"local METHODS = { 'GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD' }\n"
	"return function(data)\n"
	"  local method = METHODS[data:byte(1) % #METHODS + 1]\n"
	"  local path, query, body = data:sub(2):match('^([^\\n]*)\\n([^\\n]*)\\n(.*)$')\n"
	"  if not path then path, query, body = data:sub(2), '', '' end\n"
	"  local q = {}\n"
	"  for k, v in query:gmatch('([^&=]+)=([^&]*)') do q[k] = v end\n"
	"  local before = done\n"
	"  local host = q.host or '127.0.0.1:8080'\n"
	"  local headers = { accept = q.accept, host = host, origin = q.origin }\n"
	"  local res = handle { method = method, path = path, query = q, headers = headers, body = body }\n"
	"  assert(type(res) == 'table' and math.type(res.status) == 'integer' and res.status >= 100\n"
	"    and res.status <= 599, 'no answer, or a bad status')\n"
	"  assert(done == before or q.auth == 'tok', 'a control without the token')\n"
	"  local h = host:lower():gsub(':%d+$', '')\n"
	"  local own = h == 'localhost' or h:find('^[%d.]+$') or h:find('^%[[%x:.]+%]$')\n"
	"  assert(done == before or own, 'a control from a Host that names a domain')\n"
	"  assert(done == before or not q.origin or q.origin:lower():find(host:lower(), 1, true),\n"
	"    'a control from another origin')\n"
	"  if res.stream then assert(type(res.stream) == 'function', 'a stream that is not a function') end\n"
	"end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= 1)
		lua_fuzz_run("=fuzz_dashboard", harness, sizeof harness - 1, data, size);
	return 0;
}
