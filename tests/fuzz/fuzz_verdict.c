/*
 * fuzz_verdict.c: libFuzzer target for the tribunal's verdict parser
 * (runtime/verdict.c). An accepted verdict must keep verdict.h's promises
 * (score 0..100, a terminated reasoning of at most VERDICT_REASONING_MAX
 * bytes of valid UTF-8, checked here by a decoder of its own), survive a
 * round trip through canonical JSON and through JSON with every character
 * past ASCII escaped, and stop being accepted once anything
 * but white space follows or precedes it or its closing brace is cut; a
 * refusal must be NOT_JSON or SCHEMA with a non-empty, terminated why. A
 * why of 1 byte (malloc'd to size, so ASan sees any overrun) or 0 bytes
 * must give the same result. A violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "verdict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WHYBUF 256
/* canonical JSON: at worst every reasoning byte a control character (\u00XX);
   the escaped form is at most 6 bytes a reasoning byte too */
#define CANON_MAX (6 * VERDICT_REASONING_MAX + 256)

/* static: each is 8 KB */
static struct verdict v, v2;
static char canon[CANON_MAX];

static void die(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_verdict: %s (why '%s')\n", what, why ? why : "");
	abort();
}

static int is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* RFC 3629 on its own: shortest forms, no surrogates, nothing past U+10FFFF */
static int utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, k, len;
	unsigned long c, min;

	while (i < n) {
		unsigned char b = s[i];
		if (b < 0x80) {
			i++;
			continue;
		}
		if ((b & 0xE0) == 0xC0)
			len = 2, c = b & 0x1Fu, min = 0x80;
		else if ((b & 0xF0) == 0xE0)
			len = 3, c = b & 0x0Fu, min = 0x800;
		else if ((b & 0xF8) == 0xF0)
			len = 4, c = b & 0x07u, min = 0x10000;
		else
			return 0;
		if (n - i < len)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			c = c << 6 | (s[i + k] & 0x3Fu);
		}
		if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
			return 0;
		i += len;
	}
	return 1;
}

/* v as canonical JSON into canon: fixed key order, no white space, '"',
   '\\' and control characters escaped (the latter as \u00XX) */
static size_t serialise(const struct verdict *vd)
{
	static const char hex[] = "0123456789abcdef";
	size_t n, i;

	n = (size_t)snprintf(canon, CANON_MAX, "{\"signal\":\"%s\",\"score\":%d,\"reasoning\":\"",
	                     vd->buy ? "BUY" : "WAIT", vd->score);
	for (i = 0; i < vd->reasoning_len; i++) {
		unsigned char c = (unsigned char)vd->reasoning[i];
		if (n + 8 > CANON_MAX)
			die("canonical JSON overflows its buffer", NULL);
		if (c == '"' || c == '\\') {
			canon[n++] = '\\';
			canon[n++] = (char)c;
		} else if (c < 0x20) {
			memcpy(canon + n, "\\u00", 4);
			canon[n + 4] = hex[c >> 4];
			canon[n + 5] = hex[c & 15];
			n += 6;
		} else {
			canon[n++] = (char)c;
		}
	}
	memcpy(canon + n, "\"}", 2);
	return n + 2;
}

/* v again, as differently as JSON allows: reasoning first, white space
   between every token, short escapes where they exist, and everything
   outside printable ASCII as \uXXXX (upper-case hex, surrogate pairs past
   U+FFFF); decoding it must give back the very bytes raw UTF-8 gave */
static size_t serialise_escaped(const struct verdict *vd)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *r = (const unsigned char *)vd->reasoning;
	size_t n, i = 0, k, len;
	unsigned long c, u[2];
	int nu, j;

	n = (size_t)snprintf(canon, CANON_MAX, " \r\n{\t\"reasoning\" : \"");
	while (i < vd->reasoning_len) {
		if (n + 16 > CANON_MAX)
			die("escaped JSON overflows its buffer", NULL);
		c = r[i];
		len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
		if (len > 1) {
			c &= len == 2 ? 0x1Fu : len == 3 ? 0x0Fu : 0x07u;
			for (k = 1; k < len; k++)
				c = c << 6 | (r[i + k] & 0x3Fu);
		}
		i += len;
		if (c < 0x80 && strchr("\"\\/\b\f\n\r\t", (int)c) && c != 0) {
			canon[n++] = '\\';
			canon[n++] = c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\n' ? 'n' : c == '\r' ? 'r'
			             : c == '\t' ? 't' : (char)c;
			continue;
		}
		if (c >= 0x20 && c < 0x7F) {
			canon[n++] = (char)c;
			continue;
		}
		nu = 1, u[0] = c;
		if (c >= 0x10000)
			nu = 2, u[0] = 0xD800 + ((c - 0x10000) >> 10), u[1] = 0xDC00 + ((c - 0x10000) & 0x3FF);
		for (j = 0; j < nu; j++) {
			canon[n++] = '\\', canon[n++] = 'u';
			for (k = 0; k < 4; k++)
				canon[n++] = hex[(u[j] >> (12 - 4 * k)) & 15];
		}
	}
	n += (size_t)snprintf(canon + n, CANON_MAX - n, "\" ,\n\t\"score\" : %d ,\n\t\"signal\" : \"%s\"\r\n} ",
	                      vd->score, vd->buy ? "BUY" : "WAIT");
	return n;
}

static int same_verdict(const struct verdict *a, const struct verdict *b)
{
	return a->buy == b->buy && a->score == b->score && a->reasoning_len == b->reasoning_len
	       && memcmp(a->reasoning, b->reasoning, a->reasoning_len + 1) == 0;
}

/* a copy of data with extra before (pre) or after it, parsed: its kind */
static int parse_with(const uint8_t *data, size_t size, const char *extra, int pre)
{
	size_t elen = strlen(extra);
	char *buf = (char *)malloc(size + elen);
	char why[WHYBUF];
	int rc;

	if (!buf)
		abort();
	if (pre) {
		memcpy(buf, extra, elen);
		memcpy(buf + elen, data, size);
	} else {
		memcpy(buf, data, size);
		memcpy(buf + size, extra, elen);
	}
	rc = verdict_parse(buf, size + elen, &v2, why, sizeof why);
	free(buf);
	return rc;
}

static void check_accepted(const uint8_t *data, size_t size)
{
	char why[WHYBUF];
	size_t i, len, last;

	if (v.buy != 0 && v.buy != 1)
		die("buy is neither 0 nor 1", NULL);
	if (v.score < 0 || v.score > 100)
		die("the score is out of 0..100", NULL);
	if (v.reasoning_len > VERDICT_REASONING_MAX)
		die("the reasoning is longer than VERDICT_REASONING_MAX", NULL);
	if (v.reasoning[v.reasoning_len] != '\0')
		die("the reasoning is not NUL-terminated", NULL);
	if (!utf8_valid((const unsigned char *)v.reasoning, v.reasoning_len))
		die("the reasoning is not valid UTF-8", NULL);

	/* nothing but white space around the braces */
	for (i = 0; i < size && is_ws(data[i]); i++)
		;
	for (last = size; last > 0 && is_ws(data[last - 1]); last--)
		;
	if (i >= size || data[i] != '{' || last == 0 || data[last - 1] != '}')
		die("accepted something that is not one object", NULL);

	/* the round trip through canonical JSON */
	len = serialise(&v);
	memset(why, 'X', sizeof why);
	if (verdict_parse(canon, len, &v2, why, sizeof why) != VERDICT_OK) {
		fprintf(stderr, "canonical: %.*s\n", (int)(len < 400 ? len : 400), canon);
		die("the canonical JSON of an accepted verdict is refused", why);
	}
	if (!same_verdict(&v, &v2))
		die("the round trip through canonical JSON changed the verdict", NULL);
	len = serialise_escaped(&v);
	if (verdict_parse(canon, len, &v2, why, sizeof why) != VERDICT_OK) {
		fprintf(stderr, "escaped: %.*s\n", (int)(len < 400 ? len : 400), canon);
		die("the escaped JSON of an accepted verdict is refused", why);
	}
	if (!same_verdict(&v, &v2))
		die("the round trip through escaped JSON changed the verdict", NULL);

	/* one more byte after it, or before it, or the closing brace cut */
	if (parse_with(data, size, "x", 0) != VERDICT_NOT_JSON)
		die("an accepted object followed by 'x' is not refused as NOT_JSON", NULL);
	if (parse_with(data, size, "x", 1) != VERDICT_NOT_JSON)
		die("an accepted object after 'x' is not refused as NOT_JSON", NULL);
	if (verdict_parse((const char *)data, last - 1, &v2, why, sizeof why) != VERDICT_NOT_JSON)
		die("an accepted object without its '}' is not refused as NOT_JSON", why);
}

static void check_refused(int rc, const char *why)
{
	if (rc != VERDICT_NOT_JSON && rc != VERDICT_SCHEMA)
		die("verdict_parse returned an unknown kind", NULL);
	if (!memchr(why, '\0', WHYBUF))
		die("why is not NUL-terminated", NULL);
	if (why[0] == '\0')
		die("a refusal with an empty why", NULL);
}

/* whylen 1 (malloc'd to size) and 0 (NULL): the same result */
static void check_tiny(const uint8_t *data, size_t size, int rc, const char *why)
{
	char *w = (char *)malloc(1);

	if (!w)
		abort();
	w[0] = 'X';
	if (verdict_parse((const char *)data, size, &v2, w, 1) != rc)
		die("a why of 1 byte changed the kind", why);
	if (w[0] != '\0')
		die("a why of 1 byte is not left empty", why);
	if (rc == VERDICT_OK && !same_verdict(&v, &v2))
		die("a why of 1 byte changed the verdict", NULL);
	if (verdict_parse((const char *)data, size, &v2, NULL, 0) != rc)
		die("a why of 0 bytes changed the kind", why);
	if (rc == VERDICT_OK && !same_verdict(&v, &v2))
		die("a why of 0 bytes changed the verdict", NULL);
	free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[WHYBUF];
	int rc;

	memset(why, 'X', sizeof why);
	rc = verdict_parse((const char *)data, size, &v, why, sizeof why);
	if (rc == VERDICT_OK)
		check_accepted(data, size);
	else
		check_refused(rc, why);
	check_tiny(data, size, rc, why);
	return 0;
}
