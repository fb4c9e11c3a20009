/*
 * test_verdict.c: the tribunal's verdict parser (verdict.c) accepts exactly
 * one JSON object {"signal": "BUY"|"WAIT", "score": 0..100, "reasoning":
 * string} in any key order and any JSON white space, decodes every string
 * escape to the right UTF-8 bytes, and refuses everything else with the
 * right kind (NOT_JSON: not that JSON text; SCHEMA: JSON, wrong shape) and
 * a reason, even into a why buffer of 1 or 0 bytes.
 */
#include <stdlib.h>
#include <string.h>
#include "verdict.h"
#include "unit.h"

/* a verdict whose reasoning is the JSON string body r */
#define WITH_REASONING(r) "{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"" r "\"}"
#define WITH_SIGNAL(s) "{\"signal\":" s ",\"score\":80,\"reasoning\":\"x\"}"
#define WITH_SCORE(s) "{\"signal\":\"BUY\",\"score\":" s ",\"reasoning\":\"x\"}"
#define GOOD "{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"x\"}"

static struct verdict v;
static char why[200];
/* room for a reasoning of MAX escapes ("\n": 2 bytes each) and the rest */
static char big[2 * VERDICT_REASONING_MAX + 200];

static const char *kind_name(int kind)
{
	return kind == VERDICT_OK ? "OK" : kind == VERDICT_NOT_JSON ? "NOT_JSON"
	       : kind == VERDICT_SCHEMA ? "SCHEMA" : "?";
}

static int parse(const char *text, size_t len)
{
	memset(why, 'X', sizeof why);
	return verdict_parse(text, len, &v, why, sizeof why);
}

static void accepted_n(const char *text, size_t len, int buy, int score,
                       const char *reasoning, size_t rlen, const char *name)
{
	int rc = parse(text, len);
	int ok = rc == VERDICT_OK && v.buy == buy && v.score == score && v.reasoning_len == rlen
	         && memcmp(v.reasoning, reasoning, rlen) == 0 && v.reasoning[rlen] == '\0';

	unit_ok(ok, name);
	if (!ok)
		printf("#   rc %s, why '%.*s', buy %d, score %d, reasoning_len %zu (wanted %zu)\n",
		       kind_name(rc), (int)sizeof why - 1, rc == VERDICT_OK ? "" : why,
		       v.buy, v.score, v.reasoning_len, rlen);
}

static void accepted(const char *text, int buy, int score, const char *reasoning, const char *name)
{
	accepted_n(text, strlen(text), buy, score, reasoning, strlen(reasoning), name);
}

/* the same refusal into a why of 1 byte and of 0 bytes: the same kind, and
   not a byte written past whylen (malloc'd to size: ASan sees an overrun) */
static int tiny_why_agrees(const char *text, size_t len, int kind)
{
	char *w = (char *)malloc(2);
	struct verdict *tv = (struct verdict *)malloc(sizeof *tv);
	int ok;

	if (!w || !tv)
		abort();
	w[0] = 'X', w[1] = 'Y';
	ok = verdict_parse(text, len, tv, w, 1) == kind && w[0] == '\0' && w[1] == 'Y';
	w[0] = 'X';
	ok = ok && verdict_parse(text, len, tv, w, 0) == kind && w[0] == 'X';
	ok = ok && verdict_parse(text, len, tv, NULL, 0) == kind;
	free(w);
	free(tv);
	return ok;
}

/* refused as kind, with msg (when not NULL) in a non-empty, terminated why */
static void refused_n(const char *text, size_t len, int kind, const char *msg, const char *name)
{
	int rc = parse(text, len);
	int terminated = memchr(why, '\0', sizeof why) != NULL;
	int ok = rc == kind && terminated && why[0] != '\0' && why[0] != 'X'
	         && (!msg || strstr(why, msg)) && tiny_why_agrees(text, len, kind);

	unit_ok(ok, name);
	if (!ok)
		printf("#   rc %s (wanted %s), why '%.*s' (wanted '%s')\n", kind_name(rc), kind_name(kind),
		       terminated ? (int)strlen(why) : 0, why, msg ? msg : "");
}

static void refused(const char *text, int kind, const char *msg, const char *name)
{
	refused_n(text, strlen(text), kind, msg, name);
}

/* refused, either kind: inputs whose kind is not pinned here */
static void refused_any(const char *text, const char *name)
{
	int rc = parse(text, strlen(text));
	int ok = rc != VERDICT_OK && memchr(why, '\0', sizeof why) != NULL && why[0] != '\0'
	         && tiny_why_agrees(text, strlen(text), rc);

	unit_ok(ok, name);
	if (!ok)
		printf("#   rc %s\n", kind_name(rc));
}

/* every order of the three members */
static void key_orders(void)
{
	static const char *const member[3] = {
		"\"signal\":\"WAIT\"", "\"score\":42", "\"reasoning\":\"flat\""
	};
	static const int order[6][3] = {
		{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}
	};
	char text[100];
	int i, all = 1;

	for (i = 0; i < 6; i++) {
		snprintf(text, sizeof text, "{%s,%s,%s}", member[order[i][0]], member[order[i][1]],
		         member[order[i][2]]);
		if (parse(text, strlen(text)) != VERDICT_OK || v.buy != 0 || v.score != 42
		    || strcmp(v.reasoning, "flat") != 0) {
			printf("#   refused: %s (%s)\n", text, why);
			all = 0;
		}
	}
	unit_ok(all, "all six key orders");
}

/* big = a verdict whose reasoning is n copies of the JSON string body unit,
   then tail (also a JSON string body); returns its length */
static size_t big_reasoning(const char *unit, size_t n, const char *tail)
{
	static const char head[] = "{\"signal\":\"WAIT\",\"score\":0,\"reasoning\":\"";
	size_t len = sizeof head - 1, ulen = strlen(unit), i;

	memcpy(big, head, len);
	for (i = 0; i < n; i++, len += ulen)
		memcpy(big + len, unit, ulen);
	len += (size_t)sprintf(big + len, "%s\"}", tail);
	return len;
}

static void lengths(void)
{
	size_t len;
	int ok;

	len = big_reasoning("a", VERDICT_REASONING_MAX, "");
	ok = parse(big, len) == VERDICT_OK && v.reasoning_len == VERDICT_REASONING_MAX
	     && v.reasoning[0] == 'a' && v.reasoning[VERDICT_REASONING_MAX - 1] == 'a'
	     && v.reasoning[VERDICT_REASONING_MAX] == '\0';
	unit_ok(ok, "a reasoning of VERDICT_REASONING_MAX bytes");
	len = big_reasoning("a", VERDICT_REASONING_MAX + 1, "");
	refused_n(big, len, VERDICT_SCHEMA, "longer than", "a reasoning of VERDICT_REASONING_MAX + 1 bytes");
	len = big_reasoning("a", VERDICT_REASONING_MAX * 2, "");
	refused_n(big, len, VERDICT_SCHEMA, "longer than", "a reasoning of twice the maximum");

	/* the limit is on the decoded bytes, not on the JSON text */
	len = big_reasoning("\\n", VERDICT_REASONING_MAX, "");
	ok = parse(big, len) == VERDICT_OK && v.reasoning_len == VERDICT_REASONING_MAX
	     && v.reasoning[VERDICT_REASONING_MAX - 1] == '\n';
	unit_ok(ok, "MAX escapes decode to MAX bytes: accepted");
	len = big_reasoning("\\n", VERDICT_REASONING_MAX + 1, "");
	refused_n(big, len, VERDICT_SCHEMA, "longer than", "MAX + 1 escapes are refused");

	/* a multi-byte character that ends exactly at the limit, or crosses it */
	len = big_reasoning("a", VERDICT_REASONING_MAX - 2, "\xC3\xA9");
	ok = parse(big, len) == VERDICT_OK && v.reasoning_len == VERDICT_REASONING_MAX
	     && (unsigned char)v.reasoning[VERDICT_REASONING_MAX - 1] == 0xA9;
	unit_ok(ok, "raw UTF-8 ending exactly at MAX");
	len = big_reasoning("a", VERDICT_REASONING_MAX - 1, "\xC3\xA9");
	refused_n(big, len, VERDICT_SCHEMA, "longer than", "raw UTF-8 crossing MAX");
	len = big_reasoning("a", VERDICT_REASONING_MAX - 3, "\\u20ac");
	ok = parse(big, len) == VERDICT_OK && v.reasoning_len == VERDICT_REASONING_MAX;
	unit_ok(ok, "a \\u escape ending exactly at MAX");
	len = big_reasoning("a", VERDICT_REASONING_MAX - 2, "\\u20ac");
	refused_n(big, len, VERDICT_SCHEMA, "longer than", "a \\u escape crossing MAX");
	len = big_reasoning("a", VERDICT_REASONING_MAX - 3, "\\ud83d\\ude00");
	refused_n(big, len, VERDICT_SCHEMA, "longer than", "a surrogate pair crossing MAX");
}

/* the why buffer of 1 and 0 bytes, malloc'd to size */
static void tiny_why(void)
{
	static const char notjson[] = "Sure! " GOOD;
	static const char schema[] = WITH_SCORE("101");
	char *w1 = (char *)malloc(1);
	int rc;

	if (!w1)
		abort();
	w1[0] = 'X';
	rc = verdict_parse(notjson, sizeof notjson - 1, &v, w1, 1);
	unit_ok(rc == VERDICT_NOT_JSON && w1[0] == '\0', "whylen 1: NOT_JSON and an empty why");
	w1[0] = 'X';
	rc = verdict_parse(schema, sizeof schema - 1, &v, w1, 1);
	unit_ok(rc == VERDICT_SCHEMA && w1[0] == '\0', "whylen 1: SCHEMA and an empty why");
	w1[0] = 'X';
	rc = verdict_parse(notjson, sizeof notjson - 1, &v, w1, 0);
	unit_ok(rc == VERDICT_NOT_JSON && w1[0] == 'X', "whylen 0: NOT_JSON, why untouched");
	rc = verdict_parse(schema, sizeof schema - 1, &v, w1, 0);
	unit_ok(rc == VERDICT_SCHEMA && w1[0] == 'X', "whylen 0: SCHEMA, why untouched");
	rc = verdict_parse(schema, sizeof schema - 1, &v, NULL, 0);
	unit_ok(rc == VERDICT_SCHEMA, "whylen 0 and why NULL");
	rc = verdict_parse(GOOD, strlen(GOOD), &v, w1, 0);
	unit_ok(rc == VERDICT_OK && v.score == 80 && w1[0] == 'X', "whylen 0 and an accepted verdict");
	free(w1);
}

int main(void)
{
	/* NUL bytes counted in len: after the object, inside a string, before it */
	static const char nul_after[] = GOOD "\0";
	static const char nul_in_reasoning[] = WITH_REASONING("a\0b");
	static const char nul_before[] = "\0" GOOD;
	static const char nul_escaped[] = WITH_REASONING("a\\u0000b");

	/* accepted forms */
	accepted(GOOD, 1, 80, "x", "a compact verdict");
	accepted("{\"signal\":\"WAIT\",\"score\":0,\"reasoning\":\"\"}", 0, 0, "", "WAIT, score 0, empty reasoning");
	accepted(WITH_SCORE("100"), 1, 100, "x", "score 100");
	accepted(WITH_SCORE("7"), 1, 7, "x", "a one-digit score");
	key_orders();
	accepted(" \t\r\n{ \t\r\n\"signal\" \t\r\n: \t\r\n\"BUY\" \t\r\n, \t\r\n\"score\"\n:\n55\n,\n"
	         "\"reasoning\"\r:\r\"ws\"\r\n} \t\r\n", 1, 55, "ws", "white space everywhere JSON allows it");
	accepted("{\n  \"signal\": \"WAIT\",\n  \"score\": 35,\n  \"reasoning\": \"RSI is neutral; no edge.\"\n}\n",
	         0, 35, "RSI is neutral; no edge.", "pretty-printed");
	accepted("{\r\n\t\"reasoning\": \"tabs\",\r\n\t\"score\": 90,\r\n\t\"signal\": \"BUY\"\r\n}",
	         1, 90, "tabs", "pretty-printed with tabs and CRLF");
	accepted(WITH_REASONING("q\\\"b\\\\s\\/B\\bF\\fN\\nR\\rT\\t."), 1, 80, "q\"b\\s/B\bF\fN\nR\rT\t.",
	         "the escapes \\\" \\\\ \\/ \\b \\f \\n \\r \\t");
	accepted(WITH_REASONING("caf\\u00e9"), 1, 80, "caf\xC3\xA9", "\\u00e9 is C3 A9");
	accepted(WITH_REASONING("caf\\u00E9"), 1, 80, "caf\xC3\xA9", "upper-case hex in \\u");
	accepted(WITH_REASONING("\\u0041\\u007f"), 1, 80, "A\x7F", "\\u0041 and \\u007f: one byte");
	accepted(WITH_REASONING("\\u0080\\u07ff"), 1, 80, "\xC2\x80\xDF\xBF", "\\u0080 and \\u07ff: two bytes");
	accepted(WITH_REASONING("\\u20ac\\uffff"), 1, 80, "\xE2\x82\xAC\xEF\xBF\xBF", "\\u20ac and \\uffff: three bytes");
	accepted(WITH_REASONING("\\ud83d\\ude00"), 1, 80, "\xF0\x9F\x98\x80", "a surrogate pair: F0 9F 98 80");
	accepted(WITH_REASONING("\\uD834\\uDD1E"), 1, 80, "\xF0\x9D\x84\x9E", "an upper-case surrogate pair");
	accepted(WITH_REASONING("\\ud800\\udc00\\udbff\\udfff"), 1, 80, "\xF0\x90\x80\x80\xF4\x8F\xBF\xBF",
	         "the first and last surrogate pairs");
	accepted(WITH_REASONING("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"), 1, 80,
	         "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF", "raw UTF-8 passes through");
	accepted(WITH_REASONING("\xEF\xBF\xBD\x7F"), 1, 80, "\xEF\xBF\xBD\x7F", "raw U+FFFD and DEL pass through");
	accepted_n(nul_escaped, sizeof nul_escaped - 1, 1, 80, "a\0b", 3, "\\u0000 is a NUL byte counted in reasoning_len");
	accepted("{\"signal\":\"BUY\",\"score\":0,\"reasoning\":\"{\\\"signal\\\":\\\"WAIT\\\"}\"}", 1, 0,
	         "{\"signal\":\"WAIT\"}", "JSON inside the reasoning string");
	accepted("{\"sig\\u006eal\":\"B\\u0055Y\",\"score\":1,\"reasoning\":\"e\"}", 1, 1, "e",
	         "escapes in a key and in the signal");

	/* not that JSON text: NOT_JSON */
	refused("", VERDICT_NOT_JSON, "empty", "empty input");
	refused(" \t\r\n", VERDICT_NOT_JSON, "empty", "white space only");
	refused("Sure! " GOOD, VERDICT_NOT_JSON, "not a JSON object", "prose before the object");
	refused(GOOD " Hope this helps", VERDICT_NOT_JSON, "more after", "prose after the object");
	refused(GOOD "\n\nHope this helps!", VERDICT_NOT_JSON, "more after", "prose after a blank line");
	refused("```json\n" GOOD "\n```", VERDICT_NOT_JSON, "not a JSON object", "a markdown fence");
	refused("```\n" GOOD "\n```\n", VERDICT_NOT_JSON, "not a JSON object", "a bare markdown fence");
	refused(GOOD "\n```", VERDICT_NOT_JSON, "more after", "a fence after the object");
	refused("[" GOOD "]", VERDICT_NOT_JSON, "not a JSON object", "an array around the object");
	refused("[ " GOOD " ]", VERDICT_NOT_JSON, "not a JSON object", "an array with spaces");
	refused(GOOD GOOD, VERDICT_NOT_JSON, "more after", "two objects");
	refused(GOOD ",", VERDICT_NOT_JSON, "more after", "a comma after the object");
	refused("\"BUY\"", VERDICT_NOT_JSON, "not a JSON object", "a bare string");
	refused("80", VERDICT_NOT_JSON, "not a JSON object", "a bare number");
	refused("null", VERDICT_NOT_JSON, "not a JSON object", "null");
	refused("\xEF\xBB\xBF" GOOD, VERDICT_NOT_JSON, "not a JSON object", "a byte order mark");
	refused("\f" GOOD, VERDICT_NOT_JSON, "not a JSON object", "form feed is not JSON white space");
	refused("\xC2\xA0" GOOD, VERDICT_NOT_JSON, "not a JSON object", "a no-break space is not JSON white space");
	refused(GOOD "\v", VERDICT_NOT_JSON, "more after", "vertical tab after the object");
	refused("{'signal':'BUY','score':80,'reasoning':'x'}", VERDICT_NOT_JSON, "string expected", "single quotes");
	refused("{signal:\"BUY\",score:80,reasoning:\"x\"}", VERDICT_NOT_JSON, "string expected", "unquoted keys");
	refused("{\"signal\" \"BUY\",\"score\":80,\"reasoning\":\"x\"}", VERDICT_NOT_JSON, "':' expected", "a missing colon");
	refused("{\"signal\"=\"BUY\",\"score\":80,\"reasoning\":\"x\"}", VERDICT_NOT_JSON, "':' expected", "= for :");
	refused("{\"signal\":\"BUY\" \"score\":80,\"reasoning\":\"x\"}", VERDICT_NOT_JSON, "',' or '}'", "a missing comma");
	refused("{\"signal\":\"BUY\";\"score\":80,\"reasoning\":\"x\"}", VERDICT_NOT_JSON, "',' or '}'", "; for ,");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"x\",}", VERDICT_NOT_JSON, "string expected",
	        "a trailing comma");
	refused("{,\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"x\"}", VERDICT_NOT_JSON, "string expected",
	        "a leading comma");
	refused("{\"signal\":\"BUY\",,\"score\":80,\"reasoning\":\"x\"}", VERDICT_NOT_JSON, "string expected",
	        "two commas");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"x\" // why\n}", VERDICT_NOT_JSON, "',' or '}'",
	        "a comment");
	refused("{", VERDICT_NOT_JSON, "string expected", "an unterminated object: {");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"x\"", VERDICT_NOT_JSON, "',' or '}'",
	        "an unterminated object: no }");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"x\",", VERDICT_NOT_JSON, "string expected",
	        "an unterminated object: after a comma");
	refused("{\"signal\":\"BUY\",\"score\":80", VERDICT_NOT_JSON, "',' or '}'", "an unterminated object: after a number");
	refused("{\"signal\"", VERDICT_NOT_JSON, "':' expected", "an unterminated object: after a key");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"x", VERDICT_NOT_JSON, "not closed",
	        "an unterminated string");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"x}", VERDICT_NOT_JSON, "not closed",
	        "an unterminated string swallowing the }");
	refused("{\"sign", VERDICT_NOT_JSON, "not closed", "an unterminated key");
	refused("{\"signal\":\"BU", VERDICT_NOT_JSON, "not closed", "an unterminated signal");

	/* numbers that are not JSON */
	refused(WITH_SCORE("080"), VERDICT_NOT_JSON, "leading zero", "score 080");
	refused(WITH_SCORE("00"), VERDICT_NOT_JSON, "leading zero", "score 00");
	refused(WITH_SCORE("-01"), VERDICT_NOT_JSON, "leading zero", "score -01");
	refused(WITH_SCORE("8."), VERDICT_NOT_JSON, "nothing after its point", "score 8.");
	refused(WITH_SCORE("8e"), VERDICT_NOT_JSON, "empty exponent", "score 8e");
	refused(WITH_SCORE("8e+"), VERDICT_NOT_JSON, "empty exponent", "score 8e+");
	refused(WITH_SCORE("80x"), VERDICT_NOT_JSON, "',' or '}'", "score 80x");
	refused(WITH_SCORE("0x50"), VERDICT_NOT_JSON, "',' or '}'", "score 0x50");
	refused(WITH_SCORE("8 0"), VERDICT_NOT_JSON, "',' or '}'", "score 8 0");

	/* control characters raw in strings */
	refused(WITH_REASONING("line\nbreak"), VERDICT_NOT_JSON, "control character", "a raw newline in a string");
	refused(WITH_REASONING("a\tb"), VERDICT_NOT_JSON, "control character", "a raw tab in a string");
	refused(WITH_REASONING("a\x1f" "b"), VERDICT_NOT_JSON, "control character", "a raw 0x1F in a string");
	refused(WITH_REASONING("a\rb"), VERDICT_NOT_JSON, "control character", "a raw CR in a string");
	refused("{\"sig\nnal\":\"BUY\",\"score\":80,\"reasoning\":\"x\"}", VERDICT_NOT_JSON, "control character",
	        "a raw newline in a key");
	refused(WITH_SIGNAL("\"BUY\n\""), VERDICT_NOT_JSON, "control character", "a raw newline in the signal");

	/* invalid UTF-8 */
	refused(WITH_REASONING("\xC0\xAF"), VERDICT_NOT_JSON, "UTF-8", "overlong 2 bytes: C0 AF");
	refused(WITH_REASONING("\xC1\xBF"), VERDICT_NOT_JSON, "UTF-8", "overlong 2 bytes: C1 BF");
	refused(WITH_REASONING("\xE0\x80\xAF"), VERDICT_NOT_JSON, "UTF-8", "overlong 3 bytes: E0 80 AF");
	refused(WITH_REASONING("\xE0\x9F\xBF"), VERDICT_NOT_JSON, "UTF-8", "overlong 3 bytes: E0 9F BF");
	refused(WITH_REASONING("\xF0\x80\x80\xAF"), VERDICT_NOT_JSON, "UTF-8", "overlong 4 bytes: F0 80 80 AF");
	refused(WITH_REASONING("\xF0\x8F\xBF\xBF"), VERDICT_NOT_JSON, "UTF-8", "overlong 4 bytes: F0 8F BF BF");
	refused(WITH_REASONING("\x80"), VERDICT_NOT_JSON, "UTF-8", "a lone continuation byte 80");
	refused(WITH_REASONING("a\xBF" "b"), VERDICT_NOT_JSON, "UTF-8", "a lone continuation byte BF");
	refused(WITH_REASONING("\xED\xA0\x80"), VERDICT_NOT_JSON, "UTF-8", "a surrogate in UTF-8: ED A0 80");
	refused(WITH_REASONING("\xED\xBF\xBF"), VERDICT_NOT_JSON, "UTF-8", "a surrogate in UTF-8: ED BF BF");
	refused(WITH_REASONING("\xED\xA0\xBD\xED\xB8\x80"), VERDICT_NOT_JSON, "UTF-8", "CESU-8 surrogate pair");
	refused(WITH_REASONING("\xF4\x90\x80\x80"), VERDICT_NOT_JSON, "UTF-8", "beyond U+10FFFF: F4 90 80 80");
	refused(WITH_REASONING("\xF5\x80\x80\x80"), VERDICT_NOT_JSON, "UTF-8", "a lead byte F5");
	refused(WITH_REASONING("\xFF"), VERDICT_NOT_JSON, "UTF-8", "a byte FF");
	refused(WITH_REASONING("\xFE"), VERDICT_NOT_JSON, "UTF-8", "a byte FE");
	refused(WITH_REASONING("\xE2\x82"), VERDICT_NOT_JSON, "UTF-8", "a cut sequence before the quote: E2 82");
	refused(WITH_REASONING("\xC3 "), VERDICT_NOT_JSON, "UTF-8", "a cut sequence before a space: C3");
	refused(WITH_REASONING("\xF0\x9F\x98"), VERDICT_NOT_JSON, "UTF-8", "a cut sequence: F0 9F 98");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"\xE2\x82", VERDICT_NOT_JSON, "cut short",
	        "a sequence cut by the end of the input");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"\xF0", VERDICT_NOT_JSON, "cut short",
	        "a lead byte at the end of the input");
	refused("{\"sign\xC3\xA0l\":\"BUY\",\"score\":80,\"reasoning\":\"x\"}", VERDICT_SCHEMA, "a field other",
	        "valid UTF-8 in a key is merely another field");
	refused("{\"sign\xC0\xAF\":\"BUY\",\"score\":80,\"reasoning\":\"x\"}", VERDICT_NOT_JSON, "UTF-8",
	        "invalid UTF-8 in a key");
	refused(WITH_SIGNAL("\"B\xFFY\""), VERDICT_NOT_JSON, "UTF-8", "invalid UTF-8 in the signal");

	/* surrogate escapes */
	refused(WITH_REASONING("\\ud83d"), VERDICT_NOT_JSON, "lone high surrogate", "a lone high surrogate");
	refused(WITH_REASONING("\\ud83dx"), VERDICT_NOT_JSON, "lone high surrogate", "a high surrogate then a letter");
	refused(WITH_REASONING("\\ud83d\\n"), VERDICT_NOT_JSON, "lone high surrogate", "a high surrogate then \\n");
	refused(WITH_REASONING("\\ud83d\\u0041"), VERDICT_NOT_JSON, "without its low half",
	        "a high surrogate then \\u0041");
	refused(WITH_REASONING("\\ud83d\\ud83d"), VERDICT_NOT_JSON, "without its low half", "two high surrogates");
	refused(WITH_REASONING("\\ude00"), VERDICT_NOT_JSON, "lone low surrogate", "a lone low surrogate");
	refused(WITH_REASONING("\\ude00\\ud83d"), VERDICT_NOT_JSON, "lone low surrogate", "a reversed surrogate pair");
	refused(WITH_REASONING("\\ud83d\\ude0"), VERDICT_NOT_JSON, "non-hex", "a low half cut short");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"\\ud83d\\ude0", VERDICT_NOT_JSON, "cut short",
	        "a low half cut by the end of the input");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"\\ud83d", VERDICT_NOT_JSON, "lone high surrogate",
	        "a high surrogate at the end of the input");

	/* bad escapes */
	refused(WITH_REASONING("\\x41"), VERDICT_NOT_JSON, "unknown escape", "\\x");
	refused(WITH_REASONING("\\a"), VERDICT_NOT_JSON, "unknown escape", "\\a");
	refused(WITH_REASONING("\\'"), VERDICT_NOT_JSON, "unknown escape", "\\'");
	refused(WITH_REASONING("\\U0041"), VERDICT_NOT_JSON, "unknown escape", "\\U");
	refused(WITH_REASONING("\\0"), VERDICT_NOT_JSON, "unknown escape", "\\0");
	refused(WITH_REASONING("\\u12"), VERDICT_NOT_JSON, "non-hex", "\\u with two digits");
	refused(WITH_REASONING("\\u12g4"), VERDICT_NOT_JSON, "non-hex", "\\u with a non-hex digit");
	refused(WITH_REASONING("\\u 123"), VERDICT_NOT_JSON, "non-hex", "\\u with a space");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"\\u12", VERDICT_NOT_JSON, "cut short",
	        "\\u cut by the end of the input");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"\\", VERDICT_NOT_JSON, "cut short",
	        "a backslash at the end of the input");

	/* NUL bytes inside the text (len includes them) */
	refused_n(nul_after, sizeof nul_after - 1, VERDICT_NOT_JSON, "more after", "a NUL byte after the object");
	refused_n(nul_in_reasoning, sizeof nul_in_reasoning - 1, VERDICT_NOT_JSON, "control character",
	          "a NUL byte inside the reasoning");
	refused_n(nul_before, sizeof nul_before - 1, VERDICT_NOT_JSON, "not a JSON object", "a NUL byte before the object");
	refused_n(GOOD, 12, VERDICT_NOT_JSON, "not closed", "len cuts the text short");
	refused_n(GOOD, 0, VERDICT_NOT_JSON, "empty", "len 0 of a good text");

	/* JSON, but not the verdict: SCHEMA */
	refused("{}", VERDICT_SCHEMA, "missing signal", "an empty object");
	refused(" { \n } ", VERDICT_SCHEMA, "missing signal", "an empty object with white space");
	refused("{\"score\":80,\"reasoning\":\"x\"}", VERDICT_SCHEMA, "missing signal", "no signal");
	refused("{\"signal\":\"BUY\",\"reasoning\":\"x\"}", VERDICT_SCHEMA, "missing score", "no score");
	refused("{\"signal\":\"BUY\",\"score\":80}", VERDICT_SCHEMA, "missing reasoning", "no reasoning");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"x\",\"confidence\":\"high\"}", VERDICT_SCHEMA,
	        "a field other", "an extra field");
	refused("{\"confidence\":\"high\",\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"x\"}", VERDICT_SCHEMA,
	        "a field other", "an extra field first");
	refused("{\"Signal\":\"BUY\",\"score\":80,\"reasoning\":\"x\"}", VERDICT_SCHEMA, "a field other",
	        "a key in the wrong case");
	refused("{\"signal \":\"BUY\",\"score\":80,\"reasoning\":\"x\"}", VERDICT_SCHEMA, "a field other",
	        "a key with a trailing space");
	refused("{\"\":\"BUY\",\"score\":80,\"reasoning\":\"x\"}", VERDICT_SCHEMA, "a field other", "an empty key");
	refused("{\"signal\\u0000\":\"BUY\",\"score\":80,\"reasoning\":\"x\"}", VERDICT_SCHEMA, "a field other",
	        "a key with an escaped NUL");
	refused("{\"reasoning_reasoning_reasoning_reasoning\":\"x\",\"signal\":\"BUY\",\"score\":80}", VERDICT_SCHEMA,
	        "a field other", "a key longer than the key buffer");
	refused("{\"signal\":\"BUY\",\"signal\":\"WAIT\",\"score\":80,\"reasoning\":\"x\"}", VERDICT_SCHEMA,
	        "signal twice", "signal twice");
	refused("{\"signal\":\"BUY\",\"score\":80,\"score\":80,\"reasoning\":\"x\"}", VERDICT_SCHEMA,
	        "score twice", "score twice");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"x\",\"reasoning\":\"x\"}", VERDICT_SCHEMA,
	        "reasoning twice", "reasoning twice");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":\"x\",\"sign\\u0061l\":\"BUY\"}", VERDICT_SCHEMA,
	        "signal twice", "signal twice, the second spelled with an escape");

	refused(WITH_SIGNAL("\"buy\""), VERDICT_SCHEMA, "neither BUY nor WAIT", "signal buy");
	refused(WITH_SIGNAL("\"wait\""), VERDICT_SCHEMA, "neither BUY nor WAIT", "signal wait");
	refused(WITH_SIGNAL("\"HOLD\""), VERDICT_SCHEMA, "neither BUY nor WAIT", "signal HOLD");
	refused(WITH_SIGNAL("\"SELL\""), VERDICT_SCHEMA, "neither BUY nor WAIT", "signal SELL");
	refused(WITH_SIGNAL("\"\""), VERDICT_SCHEMA, "neither BUY nor WAIT", "signal empty");
	refused(WITH_SIGNAL("\"BUY \""), VERDICT_SCHEMA, "neither BUY nor WAIT", "signal BUY with a space");
	refused(WITH_SIGNAL("\"BUY\\u0000\""), VERDICT_SCHEMA, "neither BUY nor WAIT", "signal BUY and an escaped NUL");
	refused(WITH_SIGNAL("\"WAITING\""), VERDICT_SCHEMA, "neither BUY nor WAIT", "signal WAITING (fills the buffer)");
	refused(WITH_SIGNAL("\"STRONG BUY\""), VERDICT_SCHEMA, "neither BUY nor WAIT", "signal longer than the buffer");
	refused(WITH_SIGNAL("1"), VERDICT_SCHEMA, "signal is not a string", "signal a number");
	refused(WITH_SIGNAL("null"), VERDICT_SCHEMA, "signal is not a string", "signal null");
	refused(WITH_SIGNAL("true"), VERDICT_SCHEMA, "signal is not a string", "signal true");
	refused(WITH_SIGNAL("[\"BUY\"]"), VERDICT_SCHEMA, "signal is not a string", "signal an array");

	refused(WITH_SCORE("80.0"), VERDICT_SCHEMA, "not an integer", "score 80.0");
	refused(WITH_SCORE("8e1"), VERDICT_SCHEMA, "not an integer", "score 8e1");
	refused(WITH_SCORE("80E0"), VERDICT_SCHEMA, "not an integer", "score 80E0");
	refused(WITH_SCORE("0.5"), VERDICT_SCHEMA, "not an integer", "score 0.5");
	refused(WITH_SCORE("1e-1"), VERDICT_SCHEMA, "not an integer", "score 1e-1");
	refused(WITH_SCORE("-1"), VERDICT_SCHEMA, "out of 0..100", "score -1");
	refused(WITH_SCORE("101"), VERDICT_SCHEMA, "out of 0..100", "score 101");
	refused(WITH_SCORE("1000"), VERDICT_SCHEMA, "out of 0..100", "score 1000");
	refused(WITH_SCORE("99999999999999999999999999"), VERDICT_SCHEMA, "out of 0..100", "a score of 26 digits");
	refused(WITH_SCORE("\"80\""), VERDICT_SCHEMA, "not a number", "score \"80\"");
	refused(WITH_SCORE("null"), VERDICT_SCHEMA, "not a number", "score null");
	refused(WITH_SCORE("true"), VERDICT_SCHEMA, "not a number", "score true");
	refused(WITH_SCORE("[80]"), VERDICT_SCHEMA, "not a number", "score [80]");

	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":42}", VERDICT_SCHEMA, "reasoning is not a string",
	        "reasoning a number");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":null}", VERDICT_SCHEMA, "reasoning is not a string",
	        "reasoning null");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":[\"x\"]}", VERDICT_SCHEMA, "reasoning is not a string",
	        "reasoning an array");
	refused("{\"signal\":\"BUY\",\"score\":80,\"reasoning\":{\"a\":\"b\"}}", VERDICT_SCHEMA,
	        "reasoning is not a string", "reasoning an object");

	/* refused, whichever kind: not JSON, but the first fault the parser
	   meets is the schema's */
	refused_any(WITH_SCORE("-"), "score a lone minus");
	refused_any(WITH_SCORE(""), "score empty");
	refused_any(WITH_SCORE("+80"), "score +80");
	refused_any(WITH_SCORE("-0"), "score -0");
	refused_any(WITH_SIGNAL("BUY"), "signal BUY unquoted");
	refused_any("{\"reasoning_reasoning_reasoning_reasoning", "a long key cut by the end of the input");
	refused_any("{\"signal\":", "cut after the colon of signal");
	refused_any("{\"signal\":\"BUY\",\"score\":", "cut after the colon of score");

	lengths();
	tiny_why();
	return unit_done();
}
