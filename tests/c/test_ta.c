/*
 * test_ta.c: what the Lua tests cannot reach cheaply. Running sums must not
 * drift over millions of updates, windows of zeros must give exactly 0
 * after huge values have passed through, and bad parameters are refused.
 */
#include <stdlib.h>
#include <string.h>
#include "ta/ta.h"
#include "unit.h"

static uint64_t rng = 88172645463325252ull;

static double uniform(void)  /* xorshift64, in [0, 1) */
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

/* mean and population variance of w's window, two-pass in long double */
static void exact(const ta_window *w, double *mean, double *var)
{
	long double s = 0, v = 0, m;
	size_t i;

	for (i = 0; i < w->n; i++)
		s += w->buf[i];
	m = s / w->n;
	for (i = 0; i < w->n; i++)
		v += (w->buf[i] - m) * (w->buf[i] - m);
	*mean = (double)m;
	*var = (double)(v / w->n);
}

/* relative error of w's mean and variance against exact() */
static double window_error(const ta_window *w)
{
	double m, v, err;

	exact(w, &m, &v);
	err = fabs(ta_window_mean(w) - m) / fmax(fabs(m), 1e-300);
	return fmax(err, fabs(ta_window_var(w) - v) / fmax(v, 1e-300));
}

/* 10^7 updates of a price walk with 50% jumps and flat runs: no drift */
static void drift(void)
{
	size_t n = 50, i;
	ta_window *w = (ta_window *)malloc(ta_window_size(n));
	double price = 30000, worst = 0;

	ta_window_init(w, n);
	for (i = 0; i < 10000000; i++) {
		if (i % 100003 == 0)
			price *= 1.5;
		else if ((i / 1000) % 7 != 3)  /* else flat for a thousand updates */
			price *= 1 + (uniform() - 0.5) * 0.002;
		ta_window_push(w, price);
		if (i % 997 == 0 && i >= n && w->run < n)
			worst = fmax(worst, window_error(w));
	}
	unit_ok(worst < 1e-12, "window: mean and variance do not drift over 10^7 updates");
	if (worst >= 1e-12)
		printf("#   worst relative error %g\n", worst);
	free(w);
}

/* a 1e12 spike among values of 1e-3: exact again soon after it leaves */
static void spike(void)
{
	size_t n = 64, i, bad = 0;
	ta_window *w = (ta_window *)malloc(ta_window_size(n));

	ta_window_init(w, n);
	for (i = 0; i < 1000000; i++) {
		size_t phase = i % 1000;
		ta_window_push(w, phase == 0 ? 1e12 : 1e-3 * (1 + uniform()));
		/* the spike leaves at phase n; allow n/8 updates to re-anchor */
		if (i > 1000 && phase > n + n / 8 && window_error(w) > 1e-12)
			bad++;
	}
	unit_ok(bad == 0, "window: exact again within n/8 updates after a 1e12 spike leaves");
	if (bad)
		printf("#   %zu inexact windows\n", bad);
	for (i = 0; i < n; i++)
		ta_window_push(w, 0);
	unit_ok(ta_window_mean(w) == 0 && ta_window_var(w) == 0,
	        "window: n zeros after the spikes give exactly 0");
	free(w);
}

/* the seed RSI after 10^7 updates equals a fresh one over the last n+1 closes */
static void rsi_sma_drift(void)
{
	int n = 14;
	ta_rsi_sma *a = (ta_rsi_sma *)malloc(ta_rsi_sma_size(n));
	ta_rsi_sma *b = (ta_rsi_sma *)malloc(ta_rsi_sma_size(n));
	double last[15], out = 0, fresh[15], price = 100;
	size_t i, total = 10000000;

	ta_rsi_sma_init(a, n);
	for (i = 0; i < total; i++) {
		price += (uniform() - 0.5) * (i % 500000 == 0 ? 1e9 : 1.0);
		if (price <= 0)
			price = 1;
		ta_rsi_sma_run(a, &price, 1, &out);
		last[i % 15] = price;
	}
	for (i = 0; i < 15; i++)
		fresh[i] = last[(total + i) % 15];
	ta_rsi_sma_init(b, n);
	ta_rsi_sma_run(b, fresh, 15, fresh);
	unit_ok(unit_close(out, fresh[14], 1e-9), "rsi_sma: no drift after 10^7 updates with 1e9 jumps");
	if (!unit_close(out, fresh[14], 1e-9))
		printf("#   streamed %.17g, fresh %.17g\n", out, fresh[14]);
	free(a);
	free(b);
}

static void params(void)
{
	ta_ema e;
	ta_macd m;
	ta_bbands *bb = (ta_bbands *)malloc(ta_bbands_size(2));

	unit_ok(ta_ema_init(&e, 0) == TA_EINVAL && ta_ema_init(&e, -3) == TA_EINVAL
	        && ta_ema_init(&e, TA_MAX_PERIOD + 1) == TA_EINVAL, "ema: periods outside 1..max refused");
	unit_ok(ta_macd_init(&m, 26, 12, 9) == TA_EINVAL && ta_macd_init(&m, 12, 12, 9) == TA_EINVAL
	        && ta_macd_init(&m, 12, 26, 0) == TA_EINVAL, "macd: fast >= slow or signal 0 refused");
	unit_ok(ta_bbands_init(bb, 2, NAN) == TA_EINVAL && ta_bbands_init(bb, 2, -1) == TA_EINVAL
	        && ta_bbands_init(bb, 2, 0) == TA_OK, "bbands: k must be finite and >= 0");
	free(bb);
}

static void nonfinite(void)
{
	double v[4] = {1, 2, 3, 4};

	unit_ok(ta_first_nonfinite(v, 4) == 4, "first_nonfinite: all finite gives len");
	v[2] = INFINITY;
	unit_ok(ta_first_nonfinite(v, 4) == 2, "first_nonfinite: finds infinity");
	v[1] = NAN;
	unit_ok(ta_first_nonfinite(v, 4) == 1, "first_nonfinite: finds NaN first");
}

int main(void)
{
	drift();
	spike();
	rsi_sma_drift();
	params();
	nonfinite();
	return unit_done();
}
