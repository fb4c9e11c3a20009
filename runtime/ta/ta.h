/*
 * ta.h: nomade's indicator core, plain C with no Lua and no malloc.
 *
 * Every indicator has one state struct and three calls (Tulip's shape):
 *   X_size(params)          bytes the state needs (window buffers sit inline,
 *                           so the caller owns all memory: a Lua userdata, a
 *                           stack buffer or a malloc, never a hidden alloc);
 *   X_init(state, params)   TA_OK or TA_EINVAL;
 *   X_run(state, in, len, out)
 *                           feeds len inputs and writes len outputs. Batch is
 *                           init + one run over the whole series; streaming is
 *                           run over any chunk, down to one value, so the two
 *                           forms share one code path and agree.
 * Warm-up outputs are NaN. Inputs must be finite: callers check with
 * ta_first_nonfinite() (the Lua binding raises an error naming the index).
 */
#ifndef NOMADE_TA_H
#define NOMADE_TA_H

#include <stddef.h>
#include <stdint.h>

enum { TA_OK = 0, TA_EINVAL = 1 };

/* NaN as a double (NAN is a float constant) */
#define TA_NAN ((double)NAN)

/* largest period accepted: windows live inline in the state */
#define TA_MAX_PERIOD (1 << 24)

/* index of the first NaN or infinity in v[0..len), or len when all finite */
size_t ta_first_nonfinite(const double *v, size_t len);

/*
 * A rolling window of the last n values with a mean and variance that do
 * not drift: sums are kept relative to an anchor (a recent mean) and are
 * recomputed from the window every `reanchor` updates, and a window of n
 * identical values yields that value (mean) and 0 (variance) exactly, as
 * pandas' rolling functions do.
 */
typedef struct {
	size_t n, pos, count;
	size_t since_anchor, reanchor;
	size_t run;          /* length of the current run of equal values */
	double last;         /* the latest value, for run tracking */
	double anchor;       /* sums below are of (x - anchor) */
	double s1, s2;       /* sum of d, sum of d^2 */
	double buf[];        /* n values, ring */
} ta_window;

size_t ta_window_size(size_t n);
void ta_window_init(ta_window *w, size_t n);
void ta_window_push(ta_window *w, double x);
double ta_window_mean(const ta_window *w);     /* NaN until full */
double ta_window_var(const ta_window *w);      /* population; NaN until full */

/* EMA: pandas ewm(span=n, adjust=False).mean(); the first value is the first input */
typedef struct {
	double alpha, value;
	size_t count;
} ta_ema;

size_t ta_ema_size(int n);
int ta_ema_init(ta_ema *s, int n);
void ta_ema_run(ta_ema *s, const double *in, size_t len, double *out);

/* SMA and population standard deviation over n values */
typedef ta_window ta_sma;
size_t ta_sma_size(int n);
int ta_sma_init(ta_sma *s, int n);
void ta_sma_run(ta_sma *s, const double *in, size_t len, double *out);

typedef ta_window ta_stddev;
size_t ta_stddev_size(int n);
int ta_stddev_init(ta_stddev *s, int n);
void ta_stddev_run(ta_stddev *s, const double *in, size_t len, double *out);

/* Bollinger bands: middle = SMA(n), upper/lower = middle +- k * stddev(n) */
typedef struct {
	double k;
	ta_window w;         /* must be last: it ends in a flexible array */
} ta_bbands;

size_t ta_bbands_size(int n);
int ta_bbands_init(ta_bbands *s, int n, double k);
void ta_bbands_run(ta_bbands *s, const double *in, size_t len,
                   double *upper, double *middle, double *lower);

/*
 * The seed's RSI: rolling means of gains and losses over n deltas, the
 * first delta counting as 0 (pandas' diff() then where()), so n-1 leading
 * NaN. 100 when the loss mean is 0 and the gain mean is not; NaN on 0/0.
 */
typedef struct {
	size_t n, count, pos, since;
	double prev;
	double gain, loss;          /* sums over the window (not means) */
	double last_gain, last_loss;
	size_t run_gain, run_loss;  /* runs of equal values, as ta_window */
	double d[];                 /* the last n deltas, ring */
} ta_rsi_sma;

size_t ta_rsi_sma_size(int n);
int ta_rsi_sma_init(ta_rsi_sma *s, int n);
void ta_rsi_sma_run(ta_rsi_sma *s, const double *in, size_t len, double *out);

/*
 * Wilder's RSI exactly as TA-Lib's TA_RSI computed from the first value
 * (unstable period 0): the first output, at index n, averages the first n
 * deltas; then avg = (avg*(n-1) + x) / n. TA-Lib outputs 0 when
 * avg_gain + avg_loss is within 1e-14 of zero (TA_IS_ZERO); so do we.
 */
typedef struct {
	int n;
	size_t count;
	double a, b;             /* 1/n and (n-1)/n, for the smoothing */
	double prev, gain, loss;
} ta_rsi;

size_t ta_rsi_size(int n);
int ta_rsi_init(ta_rsi *s, int n);
void ta_rsi_run(ta_rsi *s, const double *in, size_t len, double *out);

/* highest / lowest of the last n values (monotonic deque, exact) */
struct ta_mm_slot {
	size_t idx;
	double v;
};

typedef struct {
	size_t n, count, head, len;  /* deque of (index, value) in a ring */
	int want_max;
	struct ta_mm_slot q[];
} ta_minmax;

size_t ta_minmax_size(int n);
int ta_minmax_init(ta_minmax *s, int n, int want_max);
void ta_minmax_run(ta_minmax *s, const double *in, size_t len, double *out);

/*
 * ATR as TA-Lib's TA_ATR: true range from the second candle on, the first
 * ATR (index n) is the mean of the first n true ranges, then Wilder.
 */
typedef struct {
	int n;
	size_t count;
	double prev_close, sum, value;
} ta_atr;

size_t ta_atr_size(int n);
int ta_atr_init(ta_atr *s, int n);
void ta_atr_run(ta_atr *s, const double *high, const double *low,
                const double *close, size_t len, double *out);

/*
 * MACD as TA-Lib's TA_MACD: EMAs with k = 2/(p+1) seeded with SMAs that
 * both end at index slow-1 (the fast seed averages the last `fast` values
 * there), the signal EMA seeded with the SMA of the first `signal` MACD
 * values. All three outputs start at index slow + signal - 2, as TA-Lib.
 */
typedef struct {
	int fast, slow, signal;
	size_t count;
	double kf, ks, kg;
	double fast_sum, slow_sum, sig_sum;
	double fast_ema, slow_ema, sig_ema;
} ta_macd;

size_t ta_macd_size(int fast, int slow, int signal);
int ta_macd_init(ta_macd *s, int fast, int slow, int signal);
void ta_macd_run(ta_macd *s, const double *in, size_t len,
                 double *macd, double *signal, double *hist);

#endif
