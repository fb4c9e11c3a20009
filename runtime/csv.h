/*
 * csv.h: the candle CSV parser, separate from any I/O or Lua so that it
 * can be fuzzed. Format: the header open_time_ms,open,high,low,close,volume
 * then one row per candle; LF or CRLF; a final newline is optional.
 */
#ifndef NOMADE_CSV_H
#define NOMADE_CSV_H

#include <stddef.h>

enum { CSV_FIELDS = 6 };
extern const char *const csv_field_names[CSV_FIELDS];
/* the same columns as Lua names them (a view's, the shield's, the backtest's) */
extern const char *const candle_columns[CSV_FIELDS];

/* the parser's state between lines, for reading a file in pieces */
typedef struct {
	size_t line;
	double prev_time;
} csv_state;

void csv_init(csv_state *st);
/*
 * Parses the next line (s[0..n), without its '\n'; a '\r' before it is
 * allowed). Returns 1 with a candle in row, 0 for the header, or -1 with
 * a message like "line 7: field 'close': not a number ('1.2.3')" in err.
 */
int csv_line(csv_state *st, const char *s, size_t n, double *row, char *err, size_t errlen);
/* after the last line: -1 with a message when there was not even a header */
int csv_finish(const csv_state *st, char *err, size_t errlen);

/*
 * One field's text by the same grammar: field f (0 time, 1-4 prices,
 * 5 volume) into *v; NULL, or why it is refused ("not a number", ...).
 * The Bybit kline parsers take their strings through it too.
 */
const char *csv_field(int f, const char *s, size_t len, double *v);

/* called once per row with its 6 values; a non-zero return stops the parse */
typedef int (*csv_row_fn)(void *ud, const double *row);

/*
 * Parses buf[0..len). Returns 0 when every row was accepted, else -1 with a
 * message like "line 7: field 'close': not a number ('1.2.3')" in err.
 * Times are whole milliseconds >= 0 and below 2^53 (exact as doubles) and
 * strictly ascending (a repeated or earlier time is an error, never
 * reordered); prices are finite and > 0; volume is finite and >= 0.
 */
int csv_parse(const char *buf, size_t len, csv_row_fn fn, void *ud,
              char *err, size_t errlen);

#endif
