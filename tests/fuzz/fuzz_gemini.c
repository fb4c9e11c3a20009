/*
 * fuzz_gemini.c: libFuzzer target for the tribunal's reply parsing: a
 * Gemini generateContent answer or an OpenAI-compatible one (the first
 * byte picks which, and the HTTP status), then the strict verdict parser
 * on whatever text came out. Each must give an answer or a cause, never
 * raise; a verdict that passes must be exactly the schema.
 */
#include "lua_fuzz.h"

static const char harness[] =
	"local gemini, openai = require 'nomade.gemini', require 'nomade.openai'\n"
	"local core = require 'nomade._gemini'\n"
	"local STATUS = { 200, 200, 200, 200, 400, 403, 404, 429, 500, 503 }\n"
	"return function(data)\n"
	"  local b = data:byte(1)\n"
	"  local status, body = STATUS[b % #STATUS + 1], data:sub(2)\n"
	"  local out, err\n"
	"  if b >= 128 then out, err = openai.parse_response(status, { ['retry-after'] = '2' }, body)\n"
	"  else out, err = gemini.parse_response(status, body) end\n"
	"  if not out then\n"
	"    assert(type(err.cause) == 'string' and type(tostring(err)) == 'string', 'a failure without a cause')\n"
	"    assert(err.retry_after == nil or type(err.retry_after) == 'number', 'a retry_after not a number')\n"
	"    return\n"
	"  end\n"
	"  assert(status == 200 and type(out.text) == 'string' and out.text ~= '', 'an answer without text')\n"
	"  for _, k in ipairs({ 'prompt', 'output', 'thoughts', 'total' }) do\n"
	"    assert(math.type(out.usage[k]) == 'integer', 'a token count not an integer')\n"
	"  end\n"
	"  local v, cause, why = core.verdict(out.text)\n"
	"  if v then\n"
	"    assert((v.signal == 'BUY' or v.signal == 'WAIT') and math.type(v.score) == 'integer'\n"
	"      and v.score >= 0 and v.score <= 100 and type(v.reasoning) == 'string', 'a verdict off the schema')\n"
	"  else\n"
	"    assert((cause == 'not_json' or cause == 'schema') and type(why) == 'string', 'a refusal without a cause')\n"
	"  end\n"
	"end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= 1)
		lua_fuzz_run("=fuzz_gemini", harness, sizeof harness - 1, data, size);
	return 0;
}
