/*
 * fuzz_csv.c: libFuzzer target for the candle CSV parser (runtime/csv.c).
 * Every row handed to the sink must keep csv.h's promises (times strictly
 * ascending among them), every refusal must read "line N: ..." with N
 * where the parse stopped, an accepted file must hold nothing but the
 * number grammar, and tiny error buffers (8 and 1 bytes, malloc'd to size
 * so ASan sees any overrun) must get the same verdict and a terminated
 * prefix of the message. A violation aborts.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ERRBUF 256

struct sink {
	size_t rows, stop_at;   /* stop_at: reject that row (1-based), 0: never */
	double last_time;       /* the previous row's */
	uint64_t sum;           /* of the rows' bits: the parses must agree */
};

static void die(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_csv: %s (error '%s')\n", what, err ? err : "");
	abort();
}

static int row_ok(const double *row)
{
	double t = row[0];
	int f;

	/* 2^53: every time below it is exact as a double (and fits an int64,
	   so the cast is defined; it saves -lm, which the rule does not link) */
	if (!(t >= 0 && t < 9007199254740992.0 && (double)(int64_t)t == t))
		return 0;
	for (f = 1; f < 5; f++)
		if (!(isfinite(row[f]) && row[f] > 0))
			return 0;
	return isfinite(row[5]) && row[5] >= 0;
}

static int take(void *ud, const double *row)
{
	struct sink *s = (struct sink *)ud;
	int f;

	if (!row_ok(row)) {
		fprintf(stderr, "row %zu: %.17g %.17g %.17g %.17g %.17g %.17g\n", s->rows + 1,
		        row[0], row[1], row[2], row[3], row[4], row[5]);
		die("a row breaks csv.h's promises", NULL);
	}
	if (s->rows > 0 && !(row[0] > s->last_time)) {
		fprintf(stderr, "row %zu: time %.17g after %.17g\n", s->rows + 1, row[0], s->last_time);
		die("times are not strictly ascending", NULL);
	}
	s->last_time = row[0];
	for (f = 0; f < CSV_FIELDS; f++) {
		uint64_t bits;
		memcpy(&bits, &row[f], sizeof bits);
		s->sum = s->sum * 1000003u + bits;
	}
	s->rows++;
	return s->stop_at != 0 && s->rows == s->stop_at;
}

static int parse(const uint8_t *data, size_t size, struct sink *s, size_t stop_at,
                 char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	s->stop_at = stop_at;
	return csv_parse((const char *)data, size, take, s, err, errlen);
}

/* "line N: why" with N >= 1 and a reason; returns N */
static size_t line_of(const char *err)
{
	const char *p = err + 5;
	size_t n = 0;

	if (strncmp(err, "line ", 5) != 0 || *p < '1' || *p > '9')
		die("the message does not start with 'line N'", err);
	for (; *p >= '0' && *p <= '9'; p++)
		n = n * 10 + (size_t)(*p - '0');
	if (p[0] != ':' || p[1] != ' ' || p[2] == '\0')
		die("no ': reason' after the line number", err);
	return n;
}

/* lines in the input: a final line need not end in a newline */
static size_t lines_in(const uint8_t *data, size_t size)
{
	size_t i, n = 0;

	for (i = 0; i < size; i++)
		n += data[i] == '\n';
	return n + (size > 0 && data[size - 1] != '\n');
}

/* an accepted file: the header, then only digits, signs, '.', 'e', ',' and line ends */
static void check_accepted(const uint8_t *data, size_t size, size_t rows)
{
	const uint8_t *body = (const uint8_t *)memchr(data, '\n', size);
	size_t i;

	if (rows != lines_in(data, size) - 1)
		die("accepted, but not every line after the header became a row", NULL);
	if (!body)
		return;
	for (i = (size_t)(body - data); i < size; i++)
		if (!memchr("0123456789+-.eE,\r\n", data[i], 19))
			die("accepted a byte outside the number grammar", NULL);
}

/* a refusal: a whole, terminated message on a line that exists */
static void check_refused(const uint8_t *data, size_t size, const char *err,
                          size_t rows, int by_caller)
{
	size_t line, lines = lines_in(data, size);

	if (!memchr(err, '\0', ERRBUF))
		die("the message is not NUL-terminated", NULL);
	if (strlen(err) >= ERRBUF - 1)
		die("the message filled the whole buffer", err);
	line = line_of(err);
	if (line > (lines > 0 ? lines : 1))
		die("the line number is past the end of the input", err);
	/* rows are lines 2.., so a refusal on line N came after N-2 rows; the
	   caller's refusal comes after its own row was counted */
	if (by_caller ? rows != line - 1 || !strstr(err, "rejected by the caller")
	              : rows != (line > 1 ? line - 2 : 0))
		die("the line number does not match the rows accepted", err);
}

/* the same input with a small error buffer: same verdict, a prefix of err */
static void check_small(const uint8_t *data, size_t size, size_t errlen,
                        int rc, const struct sink *full, const char *err)
{
	char *small = (char *)malloc(errlen);
	struct sink s;
	int rc2;

	if (!small)
		abort();
	memset(small, 'X', errlen);
	rc2 = parse(data, size, &s, 0, small, errlen);
	if (rc2 != rc || s.rows != full->rows || s.sum != full->sum)
		die("a small error buffer changed the result", err);
	if (rc != 0) {
		size_t n = strlen(err) < errlen - 1 ? strlen(err) : errlen - 1;
		if (!memchr(small, '\0', errlen) || strlen(small) != n || memcmp(small, err, n))
			die("the truncated message is not a terminated prefix", err);
	}
	free(small);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[ERRBUF];
	struct sink s;
	int rc;

	memset(err, 'X', sizeof err);
	rc = parse(data, size, &s, 0, err, sizeof err);
	if (rc == 0)
		check_accepted(data, size, s.rows);
	else if (rc == -1)
		check_refused(data, size, err, s.rows, 0);
	else
		die("csv_parse returned neither 0 nor -1", NULL);
	check_small(data, size, 8, rc, &s, err);
	check_small(data, size, 1, rc, &s, err);

	/* a sink that refuses row k stops the parse there, on line k+1 */
	if (s.rows > 0) {
		size_t stop = 1 + (size_t)data[size - 1] % s.rows;
		struct sink s2;
		memset(err, 'X', sizeof err);
		if (parse(data, size, &s2, stop, err, sizeof err) != -1 || s2.rows != stop)
			die("the sink's refusal did not stop the parse", NULL);
		check_refused(data, size, err, s2.rows, 1);
	}
	return 0;
}
