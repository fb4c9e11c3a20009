/*
 * verdict.c: the strict parser of verdict.h. JSON as RFC 8259 has it, for
 * the one object the tribunal may answer; anything else is refused with a
 * reason, never guessed at: the runtime must not trade on a reply it half
 * understood.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "verdict.h"

typedef struct {
	const unsigned char *p, *end;
	char *why;
	size_t whylen;
	int failure;
	int overflow;  /* the string being read did not fit: known once it ends */
} parser;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail(parser *ps, int kind, const char *fmt, ...)
{
	va_list ap;

	if (ps->failure == VERDICT_OK) {
		ps->failure = kind;
		va_start(ap, fmt);
		vsnprintf(ps->why, ps->whylen, fmt, ap);
		va_end(ap);
	}
	return 0;
}

static void skip_ws(parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

/* appends code point c as UTF-8 to out[*n] (room: cap) */
static int put_utf8(parser *ps, unsigned long c, char *out, size_t *n, size_t cap)
{
	unsigned char b[4];
	size_t k, len;

	if (c < 0x80) {
		b[0] = (unsigned char)c, len = 1;
	} else if (c < 0x800) {
		b[0] = (unsigned char)(0xC0 | (c >> 6)), b[1] = (unsigned char)(0x80 | (c & 0x3F)), len = 2;
	} else if (c < 0x10000) {
		b[0] = (unsigned char)(0xE0 | (c >> 12)), b[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
		b[2] = (unsigned char)(0x80 | (c & 0x3F)), len = 3;
	} else {
		b[0] = (unsigned char)(0xF0 | (c >> 18)), b[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
		b[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F)), b[3] = (unsigned char)(0x80 | (c & 0x3F)), len = 4;
	}
	if (*n + len > cap) {
		ps->overflow = 1;  /* read on: a string cut short is not JSON */
		return 1;
	}
	for (k = 0; k < len; k++)
		out[(*n)++] = (char)b[k];
	return 1;
}

static int hex4(parser *ps, unsigned long *c)
{
	int k;

	*c = 0;
	if (ps->end - ps->p < 4)
		return fail(ps, VERDICT_NOT_JSON, "a \\u escape cut short");
	for (k = 0; k < 4; k++) {
		unsigned char h = *ps->p++;
		int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
		        : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
		if (d < 0)
			return fail(ps, VERDICT_NOT_JSON, "a \\u escape with a non-hex digit");
		*c = *c * 16 + (unsigned long)d;
	}
	return 1;
}

/* one raw UTF-8 sequence starting at p (a byte >= 0x80), well-formed */
static int utf8_seq(parser *ps, char *out, size_t *n, size_t cap)
{
	const unsigned char *p = ps->p;
	unsigned long c;
	int len, k;

	if (*p >= 0xC2 && *p <= 0xDF)
		len = 2, c = *p & 0x1F;
	else if (*p >= 0xE0 && *p <= 0xEF)
		len = 3, c = *p & 0x0F;
	else if (*p >= 0xF0 && *p <= 0xF4)
		len = 4, c = *p & 0x07;
	else
		return fail(ps, VERDICT_NOT_JSON, "invalid UTF-8");
	if (ps->end - p < len)
		return fail(ps, VERDICT_NOT_JSON, "invalid UTF-8 (cut short)");
	for (k = 1; k < len; k++) {
		if ((p[k] & 0xC0) != 0x80)
			return fail(ps, VERDICT_NOT_JSON, "invalid UTF-8");
		c = c << 6 | (p[k] & 0x3F);
	}
	if ((len == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)))
		return fail(ps, VERDICT_NOT_JSON, "invalid UTF-8 (overlong or a surrogate)");
	ps->p += len;
	return put_utf8(ps, c, out, n, cap);
}

/* a JSON string at p into out (NUL-terminated, at most cap bytes) */
static int string(parser *ps, char *out, size_t cap, size_t *outlen)
{
	size_t n = 0;

	if (ps->p >= ps->end || *ps->p != '"')
		return fail(ps, VERDICT_NOT_JSON, "a string expected");
	ps->p++;
	ps->overflow = 0;
	for (;;) {
		unsigned char ch;
		unsigned long c, lo;
		if (ps->p >= ps->end)
			return fail(ps, VERDICT_NOT_JSON, "a string not closed");
		ch = *ps->p;
		if (ch == '"') {
			ps->p++;
			break;
		}
		if (ch < 0x20)
			return fail(ps, VERDICT_NOT_JSON, "a control character in a string");
		if (ch >= 0x80) {
			if (!utf8_seq(ps, out, &n, cap))
				return 0;
			continue;
		}
		ps->p++;
		if (ch != '\\') {
			c = ch;
		} else {
			if (ps->p >= ps->end)
				return fail(ps, VERDICT_NOT_JSON, "an escape cut short");
			ch = *ps->p++;
			switch (ch) {
			case '"': case '\\': case '/': c = ch; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u':
				if (!hex4(ps, &c))
					return 0;
				if (c >= 0xDC00 && c <= 0xDFFF)
					return fail(ps, VERDICT_NOT_JSON, "a lone low surrogate");
				if (c >= 0xD800 && c <= 0xDBFF) {
					if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
						return fail(ps, VERDICT_NOT_JSON, "a lone high surrogate");
					ps->p += 2;
					if (!hex4(ps, &lo))
						return 0;
					if (lo < 0xDC00 || lo > 0xDFFF)
						return fail(ps, VERDICT_NOT_JSON, "a high surrogate without its low half");
					c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
				}
				break;
			default:
				return fail(ps, VERDICT_NOT_JSON, "an unknown escape (byte 0x%02X after \\)", ch);
			}
		}
		if (!put_utf8(ps, c, out, &n, cap))
			return 0;
	}
	if (ps->overflow)
		return fail(ps, VERDICT_SCHEMA, "a string longer than %zu bytes", cap);
	out[n] = '\0';
	*outlen = n;
	return 1;
}

/* a JSON number that must be an integer in 0..100 */
static int score(parser *ps, int *out)
{
	const unsigned char *start = ps->p;
	long v = 0;
	int digits = 0, frac = 0;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
		if (v < 1000)
			v = v * 10 + (*ps->p - '0');
		ps->p++;
		digits++;
	}
	if (digits == 0)
		return fail(ps, *start == '-' ? VERDICT_NOT_JSON : VERDICT_SCHEMA,
		            *start == '-' ? "a '-' without digits" : "score is not a number");
	if (digits > 1 && start[*start == '-'] == '0')
		return fail(ps, VERDICT_NOT_JSON, "a number with a leading zero");
	if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E')) {
		frac = 1;
		if (*ps->p == '.') {
			ps->p++;
			if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
				return fail(ps, VERDICT_NOT_JSON, "a number with nothing after its point");
			while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
				ps->p++;
		}
		if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
			ps->p++;
			if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
				ps->p++;
			if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
				return fail(ps, VERDICT_NOT_JSON, "a number with an empty exponent");
			while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
				ps->p++;
		}
	}
	if (frac)
		return fail(ps, VERDICT_SCHEMA, "score is not an integer");
	if (*start == '-' || v > 100)
		return fail(ps, VERDICT_SCHEMA, "score is out of 0..100");
	*out = (int)v;
	return 1;
}

/* can this byte start a JSON value? If not, the text is not JSON at all,
   rather than JSON of the wrong shape */
static int value_start(const parser *ps)
{
	if (ps->p >= ps->end)
		return 0;
	return strchr("\"{[-0123456789tfn", *ps->p) != NULL && *ps->p != '\0';
}

/* the keys of the object, each once */
enum { K_SIGNAL = 1, K_SCORE = 2, K_REASONING = 4 };

static int member(parser *ps, struct verdict *v, int *seen)
{
	char key[32], sig[8];
	size_t n;
	int k;

	if (!string(ps, key, sizeof key - 1, &n)) {
		if (ps->failure == VERDICT_SCHEMA)  /* a key too long: not one of ours */
			ps->failure = VERDICT_OK, fail(ps, VERDICT_SCHEMA, "a field other than signal, score, reasoning");
		return 0;
	}
	k = !strcmp(key, "signal") ? K_SIGNAL : !strcmp(key, "score") ? K_SCORE
	    : !strcmp(key, "reasoning") ? K_REASONING : 0;
	if (k == 0 || strlen(key) != n)
		return fail(ps, VERDICT_SCHEMA, "a field other than signal, score, reasoning");
	if (*seen & k)
		return fail(ps, VERDICT_SCHEMA, "the field %s twice", key);
	*seen |= k;
	skip_ws(ps);
	if (ps->p >= ps->end || *ps->p != ':')
		return fail(ps, VERDICT_NOT_JSON, "':' expected after a key");
	ps->p++;
	skip_ws(ps);
	if (!value_start(ps))
		return fail(ps, VERDICT_NOT_JSON, ps->p >= ps->end ? "cut short after \"%s\":" : "no JSON value after \"%s\":",
		            key);
	if (k == K_SCORE)
		return score(ps, &v->score);
	if (*ps->p != '"')
		return fail(ps, VERDICT_SCHEMA, "%s is not a string", key);
	if (k == K_REASONING)
		return string(ps, v->reasoning, VERDICT_REASONING_MAX, &v->reasoning_len);
	if (!string(ps, sig, sizeof sig - 1, &n)) {
		if (ps->failure == VERDICT_SCHEMA)
			ps->failure = VERDICT_OK, fail(ps, VERDICT_SCHEMA, "signal is neither BUY nor WAIT");
		return 0;
	}
	if (!strcmp(sig, "BUY") && n == 3)
		v->buy = 1;
	else if (!strcmp(sig, "WAIT") && n == 4)
		v->buy = 0;
	else
		return fail(ps, VERDICT_SCHEMA, "signal is neither BUY nor WAIT");
	return 1;
}

int verdict_parse(const char *text, size_t len, struct verdict *v, char *why, size_t whylen)
{
	parser ps;
	int seen = 0;

	ps.p = (const unsigned char *)text;
	ps.end = len > 0 ? ps.p + len : ps.p;  /* no arithmetic on a NULL text */
	ps.why = why, ps.whylen = whylen, ps.failure = VERDICT_OK, ps.overflow = 0;
	memset(v, 0, sizeof *v);
	if (whylen > 0)
		why[0] = '\0';
	skip_ws(&ps);
	if (ps.p >= ps.end || *ps.p != '{')
		return fail(&ps, VERDICT_NOT_JSON, ps.p >= ps.end ? "an empty reply" : "not a JSON object"), ps.failure;
	ps.p++;
	skip_ws(&ps);
	if (ps.p < ps.end && *ps.p == '}') {
		ps.p++;
	} else {
		for (;;) {
			if (!member(&ps, v, &seen))
				return ps.failure;
			skip_ws(&ps);
			if (ps.p < ps.end && *ps.p == ',') {
				ps.p++;
				skip_ws(&ps);
				continue;
			}
			if (ps.p < ps.end && *ps.p == '}') {
				ps.p++;
				break;
			}
			return fail(&ps, VERDICT_NOT_JSON, "',' or '}' expected"), ps.failure;
		}
	}
	skip_ws(&ps);
	if (ps.p != ps.end)
		return fail(&ps, VERDICT_NOT_JSON, "more after the object"), ps.failure;
	if (seen != (K_SIGNAL | K_SCORE | K_REASONING))
		return fail(&ps, VERDICT_SCHEMA, "missing %s", !(seen & K_SIGNAL) ? "signal"
		            : !(seen & K_SCORE) ? "score" : "reasoning"), ps.failure;
	return VERDICT_OK;
}
