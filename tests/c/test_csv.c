/*
 * test_csv.c: the candle CSV parser accepts the real format and refuses
 * anything else with the line and field in the message.
 */
#include <string.h>
#include "csv.h"
#include "unit.h"

#define HEADER "open_time_ms,open,high,low,close,volume\n"

static int rows;
static double lastrow[CSV_FIELDS];

static int count(void *ud, const double *row)
{
	(void)ud;
	rows++;
	memcpy(lastrow, row, sizeof lastrow);
	return 0;
}

static int parse(const char *text, char *err)
{
	rows = 0;
	err[0] = '\0';
	return csv_parse(text, strlen(text), count, NULL, err, 200);
}

/* the parse must fail with msg somewhere in the error */
static void refused(const char *text, const char *msg, const char *name)
{
	char err[200];
	int rc = parse(text, err);

	unit_ok(rc == -1 && strstr(err, msg) != NULL, name);
	if (rc != -1 || !strstr(err, msg))
		printf("#   rc %d, error '%s', wanted '%s'\n", rc, err, msg);
}

int main(void)
{
	char err[200];

	unit_ok(parse(HEADER "1672531200000,16541.77000000,16544.76,16538.45,16543.67,83.08143000\n", err) == 0
	        && rows == 1 && lastrow[0] == 1672531200000.0 && lastrow[4] == 16543.67,
	        "a real row parses");
	unit_ok(parse(HEADER "1,2,3,1,2,0\r\n2,2,3,1,2,1", err) == 0 && rows == 2,
	        "CRLF and a missing final newline are fine");
	unit_ok(parse(HEADER, err) == 0 && rows == 0, "a header alone is zero candles");
	refused("", "line 1: empty file", "an empty file");
	refused("time,o,h,l,c,v\n", "line 1: expected the header", "a wrong header");
	refused(HEADER "1,2,3,1,2\n", "line 2: 5 fields, expected 6", "a short row");
	refused(HEADER "1,2,3,1,2,0,9\n", "line 2: more than 6 fields", "a long row");
	refused(HEADER "1,2,3,1,2,0\n\n", "line 3: empty line", "an empty line");
	refused(HEADER "1,2,3,1,2,0\n1,2,abc,1,2,0\n", "line 3: field 'high': not a number ('abc')", "text in a price");
	refused(HEADER "1,2,3,1,nan,0\n", "field 'close': not a number", "nan is not a number");
	refused(HEADER "1,2,3,1, 2,0\n", "field 'close': not a number", "spaces are not allowed");
	refused(HEADER "1,0x10,3,1,2,0\n", "field 'open': not a number", "hex is not allowed");
	refused(HEADER "1,2,3,1,1e999,0\n", "field 'close': out of range", "overflow to infinity");
	refused(HEADER "1,2,3,1,2,-1\n", "field 'volume': negative volume", "negative volume");
	refused(HEADER "1,0,3,1,2,1\n", "field 'open': price must be > 0", "a zero price");
	refused(HEADER "1.5,2,3,1,2,1\n", "field 'open_time_ms': not a whole number", "fractional time");
	refused(HEADER "-1,2,3,1,2,1\n", "field 'open_time_ms': not a whole number", "negative time");
	refused(HEADER "-0,2,3,1,2,1\n", "field 'open_time_ms': not a whole number", "a signed zero time");
	refused(HEADER "9007199254740993,2,3,1,2,1\n", "open_time_ms", "time beyond 2^53");
	refused(HEADER ",2,3,1,2,1\n", "field 'open_time_ms': empty", "an empty field");
	refused(HEADER "2,2,3,1,2,1\n2,2,3,1,2,1\n", "line 3: open_time_ms 2 repeats the previous row's 2",
	        "a repeated time");
	refused(HEADER "5,2,3,1,2,1\n4,2,3,1,2,1\n", "line 3: open_time_ms 4 is before the previous row's 5",
	        "a time out of order");
	return unit_done();
}
