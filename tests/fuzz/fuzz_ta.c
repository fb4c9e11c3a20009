/*
 * fuzz_ta.c: differential libFuzzer target for the indicator core
 * (runtime/ta/ta.h). The input picks an indicator, its periods (1..300),
 * a stream's chunk sizes and a series of finite doubles: price walks,
 * cents, raw bits, small integers, runs of one value, zeros, negatives,
 * and magnitudes from 1e-300 to 1e150 (so squares of differences stay
 * finite). Batch (init + one run) and the chunked stream must agree, both
 * must match a plain long double reference within a bound derived from
 * the inputs' scale, warm-ups must be NaN exactly where ta.h says and
 * nowhere after, and highest/lowest must be exact. ASan and UBSan catch
 * the memory errors; any other violation aborts with the details.
 *
 * Input: kind, 3 x u16 periods, flags, 8 chunk sizes, then the series.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ta/ta.h"

/* the reference is long double on purpose: widening doubles is the point */
#pragma GCC diagnostic ignored "-Wdouble-promotion"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXN 4096    /* values per input: several re-anchors even at n = 300 */
#define MAXP 300
#define BIG 1e150    /* |x| at most this: (x - y)^2 * 300 stays finite */
#define TINY 1e-300  /* and 0 or at least this: no denormal inputs */
#define BLOCK 256    /* granularity of the scale look-back */

/*
 * Tolerances. Worst-case rounding is far below them (see the checks), so
 * a failure is a real divergence, not rounding. They are relative to the
 * largest |input| that can still weigh on an output: all earlier inputs
 * for the recursive indicators (EMA, MACD, ATR); for windows, those of the
 * last 4n+1024 values, since ta_window and rsi_sma rebuild their sums
 * from the window at least every max(n, 128) updates (around an anchor
 * taken from the window at the rebuild before), so what a huge value that
 * has gone (a 1e150 among 1e-3s) leaves in them is gone within 4n+256.
 */
#define REL 1e-9L
#define FLOOR 1e-318L  /* a few thousand ulps of denormal noise */
#define LOOK(n) (4 * (size_t)(n) + 1024)

enum { EMA, SMA, STDDEV, BBANDS, HIGHEST, LOWEST, RSI_SMA, RSI, ATR, MACD, KINDS };

static const char *const kind_name[KINDS] = {
	"ema", "sma", "stddev", "bbands", "highest", "lowest", "rsi_sma", "rsi", "atr", "macd"
};

struct spec {
	int kind, p1, p2, p3;   /* periods; macd: fast, slow, signal */
	double k;               /* bbands' width */
};

struct reader {
	const uint8_t *p;
	size_t n, i;
};

/* the series: in[] (for ATR the candles in hi/lo/cl), n_in of them */
static double in[3 * MAXN], hi[MAXN], lo[MAXN], cl[MAXN];
static size_t n_in, max_in;  /* values read, and the most wanted */
static double mag[MAXN], hist[MAXN], blockmax[MAXN / BLOCK + 1];
static double batch[3][MAXN], stream[3][MAXN];

static const double special[] = {
	0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 3.0, -7.25, 1e-14, 5e-15, 2e-14,
	DBL_EPSILON, 1.0 + DBL_EPSILON, 1e15, 9007199254740993.0, 30000.01,
	1e150, -1e150, 1e100, -1e100, 1e-300, -1e-300, 1e-150, 1e-100
};
static const double scales[] = { 1.0, 1e-8, 1e8, 1e-290, 1e140, -1.0, 1e-3 };

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* reads past the end give zeros */
static unsigned get8(struct reader *r)
{
	return r->i < r->n ? r->p[r->i++] : 0;
}

static unsigned get16(struct reader *r)
{
	unsigned v = get8(r);
	return v | get8(r) << 8;
}

static uint64_t get64(struct reader *r)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v |= (uint64_t)get8(r) << (8 * i);
	return v;
}

/* mostly short periods, where warm-ups and re-anchors come often */
static int period(unsigned u)
{
	return (int)(u & 1 ? 1 + (u >> 1) % MAXP : 1 + (u >> 1) % 16);
}

static void put(double x)
{
	if (n_in < max_in && isfinite(x) && fabs(x) <= BIG && (x == 0 || fabs(x) >= TINY))
		in[n_in++] = x;
}

static void read_series(struct reader *r)
{
	double price = 100, scale = 1;

	while (r->i < r->n && n_in < max_in) {
		unsigned tag = get8(r), k;
		double x;
		uint64_t bits;
		switch (tag % 8) {
		case 0: case 1: case 2:  /* a price walk, steps of -25%..+25% */
			price *= 1 + ((double)get8(r) - 128) / 512;
			if (price < 1e-6 || price > 1e9)
				price = 100;
			put(price * scale);
			break;
		case 3:  /* a quote in cents */
			put((1000 + get16(r) / 100.0) * scale);
			break;
		case 4:  /* any bits: NaN, infinities and denormals are dropped */
			bits = get64(r);
			memcpy(&x, &bits, sizeof x);
			put(x);
			break;
		case 5:
			put(special[get8(r) % COUNT(special)]);
			break;
		case 6:  /* a run of the last value: the exact-run paths */
			x = n_in > 0 ? in[n_in - 1] : price * scale;
			for (k = get8(r) % 64 + 1; k > 0; k--)
				put(x);
			break;
		default:
			if (tag & 8)
				scale = scales[get8(r) % COUNT(scales)];
			else
				put((double)get8(r) - 128);
			break;
		}
	}
}

/* ATR takes the series three at a time: as they come, or sorted as candles */
static void make_candles(int sorted)
{
	size_t i;

	for (i = 0; i < n_in / 3; i++) {
		double a = in[3 * i], b = in[3 * i + 1], c = in[3 * i + 2];
		if (sorted) {
			hi[i] = fmax(a, fmax(b, c));
			lo[i] = fmin(a, fmin(b, c));
		} else {
			hi[i] = a, lo[i] = b;
		}
		cl[i] = c;
	}
}

/* mag[i]: |input i|; hist[i]: max over 0..i; blockmax: per BLOCK values */
static void make_scales(int atr, size_t len)
{
	size_t i;

	memset(blockmax, 0, sizeof blockmax);
	for (i = 0; i < len; i++) {
		mag[i] = atr ? fmax(fabs(hi[i]), fmax(fabs(lo[i]), fabs(cl[i]))) : fabs(in[i]);
		hist[i] = i > 0 && hist[i - 1] > mag[i] ? hist[i - 1] : mag[i];
		if (mag[i] > blockmax[i / BLOCK])
			blockmax[i / BLOCK] = mag[i];
	}
}

/* at least the largest |input| among the last look + 1 up to i */
static long double recent(size_t i, size_t look)
{
	size_t b = (i > look ? i - look : 0) / BLOCK;
	double m = 0;

	for (; b <= i / BLOCK; b++)
		m = blockmax[b] > m ? blockmax[b] : m;
	return m;
}

static size_t state_size(const struct spec *s)
{
	switch (s->kind) {
	case EMA: return ta_ema_size(s->p1);
	case SMA: return ta_sma_size(s->p1);
	case STDDEV: return ta_stddev_size(s->p1);
	case BBANDS: return ta_bbands_size(s->p1);
	case HIGHEST: case LOWEST: return ta_minmax_size(s->p1);
	case RSI_SMA: return ta_rsi_sma_size(s->p1);
	case RSI: return ta_rsi_size(s->p1);
	case ATR: return ta_atr_size(s->p1);
	default: return ta_macd_size(s->p1, s->p2, s->p3);
	}
}

static int state_init(const struct spec *s, void *st)
{
	switch (s->kind) {
	case EMA: return ta_ema_init((ta_ema *)st, s->p1);
	case SMA: return ta_sma_init((ta_sma *)st, s->p1);
	case STDDEV: return ta_stddev_init((ta_stddev *)st, s->p1);
	case BBANDS: return ta_bbands_init((ta_bbands *)st, s->p1, s->k);
	case HIGHEST: case LOWEST: return ta_minmax_init((ta_minmax *)st, s->p1, s->kind == HIGHEST);
	case RSI_SMA: return ta_rsi_sma_init((ta_rsi_sma *)st, s->p1);
	case RSI: return ta_rsi_init((ta_rsi *)st, s->p1);
	case ATR: return ta_atr_init((ta_atr *)st, s->p1);
	default: return ta_macd_init((ta_macd *)st, s->p1, s->p2, s->p3);
	}
}

static void *state_new(const struct spec *s)
{
	void *st = malloc(state_size(s));

	if (!st || state_init(s, st) != TA_OK) {
		fprintf(stderr, "fuzz_ta: %s(%d, %d, %d) did not init\n", kind_name[s->kind],
		        s->p1, s->p2, s->p3);
		abort();
	}
	return st;
}

/* values [off, off+len) into out[..][off..] */
static void feed(const struct spec *s, void *st, size_t off, size_t len, double (*out)[MAXN])
{
	const double *x = in + off;

	switch (s->kind) {
	case EMA: ta_ema_run((ta_ema *)st, x, len, out[0] + off); break;
	case SMA: ta_sma_run((ta_sma *)st, x, len, out[0] + off); break;
	case STDDEV: ta_stddev_run((ta_stddev *)st, x, len, out[0] + off); break;
	case BBANDS:
		ta_bbands_run((ta_bbands *)st, x, len, out[0] + off, out[1] + off, out[2] + off);
		break;
	case HIGHEST: case LOWEST: ta_minmax_run((ta_minmax *)st, x, len, out[0] + off); break;
	case RSI_SMA: ta_rsi_sma_run((ta_rsi_sma *)st, x, len, out[0] + off); break;
	case RSI: ta_rsi_run((ta_rsi *)st, x, len, out[0] + off); break;
	case ATR:
		ta_atr_run((ta_atr *)st, hi + off, lo + off, cl + off, len, out[0] + off);
		break;
	default:
		ta_macd_run((ta_macd *)st, x, len, out[0] + off, out[1] + off, out[2] + off);
		break;
	}
}

static const struct spec *cur;  /* for the failure report */

static void fail(size_t i, int j, const char *what, double got, long double want, long double tol)
{
	fprintf(stderr, "fuzz_ta: %s(%d, %d, %d, k=%g) over %zu values, output %d at %zu: %s\n"
	        "  got %.17g, want %.17Lg, tolerance %.3Lg; batch %.17g, stream %.17g\n",
	        kind_name[cur->kind], cur->p1, cur->p2, cur->p3, cur->k, n_in, j, i, what,
	        got, want, tol, batch[j][i], stream[j][i]);
	if (i < n_in) {  /* the inputs that led there, for a unit test */
		size_t from = i > 12 ? i - 12 : 0;
		fprintf(stderr, "  inputs %zu..%zu:", from, i);
		for (; from <= i; from++)
			fprintf(stderr, " %a", in[from]);
		fprintf(stderr, "\n");
	}
	abort();
}

/* output j at i must be NaN in both runs: the warm-up */
static void warm(size_t i, int j)
{
	if (!isnan(batch[j][i]) || !isnan(stream[j][i]))
		fail(i, j, "a number during the warm-up", isnan(batch[j][i]) ? stream[j][i]
		     : batch[j][i], TA_NAN, 0);
}

/* output j at i, in both runs, must be a number within tol of want */
static void near(size_t i, int j, long double want, long double tol)
{
	double got[2] = { batch[j][i], stream[j][i] };
	int r;

	tol += FLOOR;
	for (r = 0; r < 2; r++)
		if (isnan(got[r]) || !(fabsl((long double)got[r] - want) <= tol))
			fail(i, j, r ? "stream off the reference" : "batch off the reference",
			     got[r], want, tol);
	if (!(fabsl((long double)got[0] - got[1]) <= tol))
		fail(i, j, "batch and stream disagree", got[1], got[0], tol);
}

static void check_ema(const struct spec *s)
{
	double a = 2.0 / ((double)s->p1 + 1.0), b = 1.0 - a;
	long double e = 0;
	size_t i;

	/* errors decay by b each step: at most ~(n+1) ulps of the largest input */
	for (i = 0; i < n_in; i++) {
		e = i == 0 ? (long double)in[0] : b * e + a * (long double)in[i];
		near(i, 0, e, REL * hist[i]);
	}
}

/*
 * Sums of the window in[i-n+1..i] in long double, rebuilt every n values
 * so that the rounding a huge departed value leaves lasts under n more.
 */
struct sums {
	long double s1, s2;
};

static void window_sums(struct sums *w, size_t i, size_t n)
{
	size_t j;

	if ((i + 1) % n == 0) {
		w->s1 = w->s2 = 0;
		for (j = i + 1 - n; j <= i; j++) {
			w->s1 += in[j];
			w->s2 += (long double)in[j] * in[j];
		}
		return;
	}
	w->s1 += in[i];
	w->s2 += (long double)in[i] * in[i];
	if (i >= n) {
		w->s1 -= in[i - n];
		w->s2 -= (long double)in[i - n] * in[i - n];
	}
}

/*
 * SMA, stddev and Bollinger bands. ta_window's sums of (x - anchor) see
 * |d| <= 2S (S: the scale, the anchor being a recent mean) over at most
 * 2n+128 updates between rebuilds: the mean is off by < 800 eps S and the
 * variance by < 12 * 728 eps S^2 ~ 2e-12 S^2, so REL*S for the mean and
 * REL*S^2 for the variance (compared as sd^2: sqrt is steep at 0).
 */
static void check_window(const struct spec *s)
{
	size_t i, n = (size_t)s->p1;
	struct sums w = { 0, 0 };

	for (i = 0; i < n_in; i++) {
		long double S, mean, var, evar;
		window_sums(&w, i, n);
		if (i + 1 < n) {
			warm(i, 0);
			if (s->kind == BBANDS)
				warm(i, 1), warm(i, 2);
			continue;
		}
		S = recent(i, LOOK(n));
		mean = w.s1 / n;
		var = (w.s2 - w.s1 * w.s1 / n) / n;
		var = var > 0 ? var : 0;
		evar = REL * S * S + FLOOR;
		if (s->kind == SMA) {
			near(i, 0, mean, REL * S);
		} else if (s->kind == STDDEV) {
			long double b = batch[0][i], st = stream[0][i];
			if (isnan(batch[0][i]) || isnan(stream[0][i]) || b < 0 || st < 0
			    || fabsl(b * b - var) > evar || fabsl(st * st - var) > evar)
				fail(i, 0, "stddev^2 off the variance", isnan(batch[0][i]) ? stream[0][i]
				     : batch[0][i], sqrtl(var), sqrtl(evar));
			near(i, 0, batch[0][i], sqrtl(evar));
		} else {
			int r;
			near(i, 1, mean, REL * S);
			for (r = 0; r < 2; r++) {
				double (*o)[MAXN] = r ? stream : batch;
				double up = o[0][i], mid = o[1][i], low = o[2][i];
				long double half = ((long double)up - low) / 2, want = s->k * sqrtl(var);
				long double tol = s->k * sqrtl(evar) + 4 * DBL_EPSILON * (fabs(mid) + half);
				if (!(up >= mid && mid >= low) || (s->k == 0 && (up != mid || low != mid)))
					fail(i, 0, "bands out of order", up, mid, 0);
				if (!(fabsl(half - want) <= tol + FLOOR))
					fail(i, 0, "band width off k * stddev", (double)half, want, tol);
			}
		}
	}
}

static void check_minmax(const struct spec *s)
{
	size_t i, j, n = (size_t)s->p1;

	for (i = 0; i < n_in; i++) {
		double m;
		if (i + 1 < n) {
			warm(i, 0);
			continue;
		}
		m = in[i];
		for (j = i + 1 - n; j < i; j++)
			if (s->kind == HIGHEST ? in[j] > m : in[j] < m)
				m = in[j];
		if (batch[0][i] != m || stream[0][i] != m)
			fail(i, 0, "not the exact extreme of the window",
			     batch[0][i] != m ? batch[0][i] : stream[0][i], m, 0);
	}
}

/*
 * rsi_sma: 100 g / (g + l) with g, l the window means of gains and losses
 * (the first delta 0). Their sums see |d| <= 2S and are rebuilt at least
 * every max(n, 128) updates, so each mean is within E = 2 REL S; the ratio
 * then moves by at most 100 E / (g + l - 2E), and nothing can be said when
 * g + l <= 2E except the range. A window of all-zero gains (losses) has a
 * mean of exactly 0, so the outputs 0, 100 and NaN (0/0) are exact there.
 */
static void check_rsi_sma(const struct spec *s)
{
	size_t i, j, n = (size_t)s->p1, nz_g = 0, nz_l = 0;
	long double G = 0, L = 0;
	static double d[MAXN];

	for (i = 0; i < n_in; i++) {
		long double g, l, E, sum;
		d[i] = i == 0 ? 0 : in[i] - in[i - 1];
		nz_g += d[i] > 0, nz_l += d[i] < 0;
		if (i >= n)
			nz_g -= d[i - n] > 0, nz_l -= d[i - n] < 0;
		if ((i + 1) % n == 0) {
			G = L = 0;
			for (j = i + 1 - n; j <= i; j++)
				G += d[j] > 0 ? d[j] : 0, L += d[j] < 0 ? -d[j] : 0;
		} else {
			G += d[i] > 0 ? d[i] : 0, L += d[i] < 0 ? -d[i] : 0;
			if (i >= n)
				G -= d[i - n] > 0 ? d[i - n] : 0, L -= d[i - n] < 0 ? -d[i - n] : 0;
		}
		if (i + 1 < n) {
			warm(i, 0);
			continue;
		}
		g = G / n, l = L / n, sum = g + l;
		E = 2 * REL * recent(i, LOOK(n) + 1);
		if (nz_g == 0 && nz_l == 0) {
			if (!isnan(batch[0][i]) || !isnan(stream[0][i]))
				fail(i, 0, "no moves in the window, so 0/0, but not NaN",
				     isnan(batch[0][i]) ? stream[0][i] : batch[0][i], TA_NAN, 0);
			continue;
		}
		if (batch[0][i] < 0 || batch[0][i] > 100 || stream[0][i] < 0 || stream[0][i] > 100)
			fail(i, 0, "outside 0..100", batch[0][i], 100 * g / sum, 0);
		if (nz_l == 0 || nz_g == 0) {
			double want = nz_l == 0 ? 100 : 0;
			int sure = (nz_l == 0 ? g : l) > E;
			if ((batch[0][i] != want && (sure || !isnan(batch[0][i])))
			    || (stream[0][i] != want && (sure || !isnan(stream[0][i]))))
				fail(i, 0, "a one-sided window must give exactly 0 or 100",
				     batch[0][i] != want ? batch[0][i] : stream[0][i], want, 0);
			continue;
		}
		if (sum > 2 * E)
			near(i, 0, 100 * g / sum, 100 * E / (sum - 2 * E) + 1e-12L);
	}
}

/*
 * Wilder's RSI: gains and losses are sums and chains of non-negative
 * terms, so their relative error grows at most ~4 eps a step (4e-12 over
 * MAXN), and the ratio's with it: 1e-6 out of 100 is ample. TA-Lib's zero
 * test (g + l < 1e-14 gives 0) can flip either way within that error, so
 * sums within a millionth of 1e-14 are only checked for NaN.
 */
static void check_rsi(const struct spec *s)
{
	size_t i, n = (size_t)s->p1;
	long double g = 0, l = 0, a = 1.0L / n, b = (long double)(n - 1) / n;
	const long double zero = 1e-14;

	for (i = 0; i < n_in; i++) {
		long double d = i == 0 ? 0 : (long double)in[i] - in[i - 1];
		long double gi = d > 0 ? d : 0, li = d < 0 ? -d : 0, sum;
		if (i <= n) {
			g += gi, l += li;
			if (i < n) {
				warm(i, 0);
				continue;
			}
			g /= n, l /= n;
		} else {
			g = b * g + a * gi;
			l = b * l + a * li;
		}
		sum = g + l;
		if (sum < zero * (1 - 1e-6L))
			near(i, 0, 0, 0);
		else if (sum > zero * (1 + 1e-6L))
			near(i, 0, 100 * g / sum, 1e-6L);
		else if (isnan(batch[0][i]) || isnan(stream[0][i]))
			fail(i, 0, "NaN after the warm-up", batch[0][i], 100 * g / sum, 0);
	}
}

/* ATR: TA-Lib's seeding, then (atr (n-1) + tr) / n; errors as for an EMA */
static void check_atr(const struct spec *s)
{
	size_t i, len = n_in / 3, n = (size_t)s->p1;
	long double sum = 0, v = 0;

	for (i = 0; i < len; i++) {
		long double tr, up, down;
		if (i == 0) {
			warm(i, 0);
			continue;
		}
		tr = (long double)hi[i] - lo[i];
		up = fabsl((long double)hi[i] - cl[i - 1]);
		down = fabsl((long double)lo[i] - cl[i - 1]);
		tr = up > tr ? up : tr;
		tr = down > tr ? down : tr;
		if (i < n) {
			sum += tr;
			warm(i, 0);
			continue;
		}
		v = i == n ? (sum + tr) / n : (v * (n - 1) + tr) / n;
		if (batch[0][i] < 0 || stream[0][i] < 0)
			fail(i, 0, "negative ATR", batch[0][i], v, 0);
		near(i, 0, v, REL * hist[i]);
	}
}

/*
 * MACD as ta.h: SMA seeds ending at slow-1, TA-Lib's EMA step, the signal
 * seeded with the mean of the first `signal` lines. Each EMA holds at most
 * ~(p+1) ulps of the largest input; the outputs are sums of a few of them.
 */
static void check_macd(const struct spec *s)
{
	size_t i, first = (size_t)s->p2 - 1, ready = first + (size_t)s->p3 - 1;
	double kf = 2.0 / (s->p1 + 1.0), ks = 2.0 / (s->p2 + 1.0), kg = 2.0 / (s->p3 + 1.0);
	long double fsum = 0, ssum = 0, gsum = 0, fe = 0, se = 0, ge = 0, line;

	for (i = 0; i < n_in; i++) {
		long double x = in[i];
		if (i <= first) {
			ssum += x;
			if (i + (size_t)s->p1 > first)
				fsum += x;
			if (i < first) {
				warm(i, 0), warm(i, 1), warm(i, 2);
				continue;
			}
			se = ssum / s->p2;
			fe = fsum / s->p1;
		} else {
			se = (x - se) * ks + se;
			fe = (x - fe) * kf + fe;
		}
		line = fe - se;
		if (i < ready) {
			gsum += line;
			warm(i, 0), warm(i, 1), warm(i, 2);
			continue;
		}
		ge = i == ready ? (gsum + line) / s->p3 : (line - ge) * kg + ge;
		near(i, 0, line, REL * hist[i]);
		near(i, 1, ge, REL * hist[i]);
		near(i, 2, line - ge, REL * hist[i]);
	}
}

/* bad periods (and macd fast >= slow, bbands k < 0 or not finite) are refused */
static void check_einval(const struct spec *s)
{
	static const int bad[] = { 0, -1, INT_MIN, TA_MAX_PERIOD + 1, INT_MAX };
	struct spec b = *s, one = *s;
	void *st;
	size_t i;
	int p;

	one.p1 = 1, one.p2 = 2, one.p3 = 1;
	st = malloc(state_size(&one));
	if (!st)
		abort();
	for (i = 0; i < COUNT(bad); i++)
		for (p = 0; p < (s->kind == MACD ? 3 : 1); p++) {
			b = one;
			*(p == 0 ? &b.p1 : p == 1 ? &b.p2 : &b.p3) = bad[i];
			if (state_init(&b, st) != TA_EINVAL)
				fail(0, 0, "a bad period was accepted", bad[i], TA_EINVAL, 0);
		}
	if (s->kind == MACD) {
		b = one, b.p1 = b.p2 = s->p2;
		if (state_init(&b, st) != TA_EINVAL)
			fail(0, 0, "macd took fast == slow", s->p2, TA_EINVAL, 0);
		b.p1 = s->p2, b.p2 = s->p1;
		if (state_init(&b, st) != TA_EINVAL)
			fail(0, 0, "macd took fast > slow", s->p2, TA_EINVAL, 0);
	}
	if (s->kind == BBANDS) {
		const double badk[] = { -1.0, -DBL_MIN, TA_NAN, HUGE_VAL };
		for (i = 0; i < COUNT(badk); i++) {
			b = one, b.k = badk[i];
			if (state_init(&b, st) != TA_EINVAL)
				fail(0, 0, "bbands took a bad k", badk[i], TA_EINVAL, 0);
		}
	}
	free(st);
}

/* ta_first_nonfinite finds a planted NaN or infinity, and nothing else */
static void check_nonfinite(unsigned where)
{
	const double bad[] = { TA_NAN, HUGE_VAL, -HUGE_VAL };
	size_t j = where % n_in;
	double keep = in[j];
	size_t i;

	if (ta_first_nonfinite(in, n_in) != n_in)
		fail(0, 0, "ta_first_nonfinite flagged a finite series", 0, 0, 0);
	for (i = 0; i < COUNT(bad); i++) {
		in[j] = bad[i];
		if (ta_first_nonfinite(in, n_in) != j)
			fail(j, 0, "ta_first_nonfinite missed a planted value", bad[i], j, 0);
	}
	in[j] = keep;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader r = { data, size, 0 };
	struct spec s;
	unsigned flags, chunk[8];
	size_t i, off, len, zeros = 0;
	void *st;

	s.kind = (int)(get8(&r) % KINDS);
	s.p1 = period(get16(&r));
	s.p2 = period(get16(&r));
	s.p3 = period(get16(&r));
	flags = get8(&r);
	s.k = (double)(flags % 64) / 8;
	for (i = 0; i < 8; i++)
		chunk[i] = get8(&r);
	if (s.kind == MACD) {  /* 1 <= fast < slow <= 300 */
		s.p1 = 1 + (s.p1 - 1) % (MAXP - 1);
		s.p2 = s.p1 + 1 + (s.p2 - 1) % (MAXP - s.p1);
	}
	cur = &s;
	n_in = 0;
	max_in = s.kind == ATR ? 3 * MAXN : MAXN;
	read_series(&r);
	if (flags & 128)
		check_einval(&s);
	if (n_in > 0)
		check_nonfinite(chunk[0] | chunk[1] << 8);
	if (s.kind == ATR)
		make_candles(flags & 64);
	len = s.kind == ATR ? n_in / 3 : n_in;
	make_scales(s.kind == ATR, len);

	st = state_new(&s);
	feed(&s, st, 0, len, batch);
	free(st);

	/* chunks of 0..19 values mostly, up to 880 sometimes (past TA_BLOCK) */
	st = state_new(&s);
	for (off = 0, i = 0; off < len; i++) {
		unsigned c = chunk[i % 8];
		size_t k = c < 200 ? c % 20 : (size_t)(c - 200) * 16;
		if (k == 0 && ++zeros > 8)
			k = 1;
		else if (k > 0)
			zeros = 0;
		if (k > len - off)
			k = len - off;
		feed(&s, st, off, k, stream);
		off += k;
	}
	free(st);

	switch (s.kind) {
	case EMA: check_ema(&s); break;
	case SMA: case STDDEV: case BBANDS: check_window(&s); break;
	case HIGHEST: case LOWEST: check_minmax(&s); break;
	case RSI_SMA: check_rsi_sma(&s); break;
	case RSI: check_rsi(&s); break;
	case ATR: check_atr(&s); break;
	default: check_macd(&s); break;
	}
	return 0;
}
