/*
 * csv.c: the candle CSV parser (see csv.h). Strict on purpose: a number
 * is [+-]digits[.digits][e[+-]digits] and nothing else (no spaces, hex,
 * inf or nan, which strtod would accept), and a bad row stops the load
 * with its line and field; nothing is skipped.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "csv.h"

const char *const csv_field_names[CSV_FIELDS] = {
	"open_time_ms", "open", "high", "low", "close", "volume"
};

const char *const candle_columns[CSV_FIELDS] = {"time", "open", "high", "low", "close", "volume"};

static const char header[] = "open_time_ms,open,high,low,close,volume";

#define MAX_FIELD 63

static int digits(const char *s, size_t *i, size_t len)
{
	size_t start = *i;
	while (*i < len && s[*i] >= '0' && s[*i] <= '9')
		(*i)++;
	return *i > start;
}

/* does s[0..len) match the strict number grammar? */
static int is_decimal(const char *s, size_t len)
{
	size_t i = 0;

	if (i < len && (s[i] == '+' || s[i] == '-'))
		i++;
	if (!digits(s, &i, len))
		return 0;
	if (i < len && s[i] == '.') {
		i++;
		if (!digits(s, &i, len))
			return 0;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (!digits(s, &i, len))
			return 0;
	}
	return i == len;
}

/* the field's text, quoted and cut short for messages */
static const char *shown(const char *s, size_t len, char *out)
{
	size_t i, n = len > 20 ? 20 : len;

	for (i = 0; i < n; i++)
		out[i] = (s[i] >= 32 && s[i] < 127) ? s[i] : '?';
	strcpy(out + n, len > n ? "..." : "");
	return out;
}

const char *csv_field(int f, const char *s, size_t len, double *v)
{
	char tmp[MAX_FIELD + 1];

	if (len == 0)
		return "empty";
	if (len > MAX_FIELD || !is_decimal(s, len))
		return "not a number";
	if (f == 0 && (s[0] == '-' || s[0] == '+'))  /* digits only: no "-0" */
		return "not a whole number of milliseconds in 0..2^53";
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	*v = strtod(tmp, NULL);
	if (!isfinite(*v))
		return "out of range";
	if (f == 0) {
		if (*v < 0 || *v >= 9007199254740992.0 || memchr(s, '.', len) || memchr(s, 'e', len)
		    || memchr(s, 'E', len))
			return "not a whole number of milliseconds in 0..2^53";
	} else if (f == 5) {
		if (*v < 0)
			return "negative volume";
	} else if (*v <= 0) {
		return "price must be > 0";
	}
	return NULL;
}

static int fail(char *err, size_t errlen, size_t line, const char *msg)
{
	snprintf(err, errlen, "line %zu: %s", line, msg);
	return -1;
}

static int parse_row(const char *s, size_t len, size_t line, double *row,
                     char *err, size_t errlen)
{
	size_t start = 0;
	int f;

	for (f = 0; f < CSV_FIELDS; f++) {
		const char *comma = (const char *)memchr(s + start, ',', len - start);
		size_t end = comma ? (size_t)(comma - s) : len;
		const char *why;
		char text[32], msg[160];
		if (f == CSV_FIELDS - 1 && comma)
			return fail(err, errlen, line, "more than 6 fields");
		if (f < CSV_FIELDS - 1 && !comma) {
			snprintf(msg, sizeof msg, "%d fields, expected 6", f + 1);
			return fail(err, errlen, line, msg);
		}
		why = csv_field(f, s + start, end - start, &row[f]);
		if (why) {
			snprintf(msg, sizeof msg, "field '%s': %s ('%s')", csv_field_names[f], why,
			         shown(s + start, end - start, text));
			return fail(err, errlen, line, msg);
		}
		start = end + 1;
	}
	return 0;
}

void csv_init(csv_state *st)
{
	st->line = 0;
	st->prev_time = -1;
}

int csv_line(csv_state *st, const char *s, size_t n, double *row, char *err, size_t errlen)
{
	size_t line = ++st->line;

	if (n > 0 && s[n - 1] == '\r')
		n--;
	if (line == 1) {
		if (n != sizeof header - 1 || memcmp(s, header, n))
			return fail(err, errlen, 1, "expected the header 'open_time_ms,open,high,low,close,volume'");
		return 0;
	}
	if (n == 0)
		return fail(err, errlen, line, "empty line");
	if (parse_row(s, n, line, row, err, errlen) != 0)
		return -1;
	if (row[0] <= st->prev_time) {
		char msg[160];
		snprintf(msg, sizeof msg, "open_time_ms %.0f %s the previous row's %.0f",
		         row[0], row[0] == st->prev_time ? "repeats" : "is before", st->prev_time);
		return fail(err, errlen, line, msg);
	}
	st->prev_time = row[0];
	return 1;
}

int csv_finish(const csv_state *st, char *err, size_t errlen)
{
	return st->line == 0 ? fail(err, errlen, 1, "empty file, expected a header") : 0;
}

int csv_parse(const char *buf, size_t len, csv_row_fn fn, void *ud,
              char *err, size_t errlen)
{
	csv_state st;
	size_t pos = 0;
	double row[CSV_FIELDS];

	csv_init(&st);
	while (pos < len) {
		const char *nl = (const char *)memchr(buf + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - buf) : len;
		int rc = csv_line(&st, buf + pos, end - pos, row, err, errlen);
		if (rc < 0)
			return -1;
		if (rc == 1 && fn(ud, row) != 0)
			return fail(err, errlen, st.line, "rejected by the caller");
		pos = end + 1;
	}
	return csv_finish(&st, err, errlen);
}
