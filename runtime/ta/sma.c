/*
 * sma.c: simple moving average, population standard deviation and
 * Bollinger bands over a ta_window (see window.c for the numerics).
 */
#include <math.h>
#include "ta_int.h"

size_t ta_sma_size(int n)
{
	return ta_window_size(n > 0 ? (size_t)n : 0);
}

int ta_sma_init(ta_sma *s, int n)
{
	if (!TA_PERIOD_OK(n))
		return TA_EINVAL;
	ta_window_init(s, (size_t)n);
	return TA_OK;
}

void ta_sma_run(ta_sma *s, const double *in, size_t len, double *out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		ta_window_push(s, in[i]);
		out[i] = ta_window_mean(s);
	}
}

size_t ta_stddev_size(int n)
{
	return ta_sma_size(n);
}

int ta_stddev_init(ta_stddev *s, int n)
{
	return ta_sma_init(s, n);
}

void ta_stddev_run(ta_stddev *s, const double *in, size_t len, double *out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		ta_window_push(s, in[i]);
		out[i] = sqrt(ta_window_var(s));
	}
}

size_t ta_bbands_size(int n)
{
	return sizeof(ta_bbands) + (n > 0 ? (size_t)n : 0) * sizeof(double);
}

int ta_bbands_init(ta_bbands *s, int n, double k)
{
	if (!TA_PERIOD_OK(n) || !isfinite(k) || k < 0)
		return TA_EINVAL;
	s->k = k;
	ta_window_init(&s->w, (size_t)n);
	return TA_OK;
}

void ta_bbands_run(ta_bbands *s, const double *in, size_t len,
                   double *upper, double *middle, double *lower)
{
	size_t i;

	for (i = 0; i < len; i++) {
		double mid, dev;
		ta_window_push(&s->w, in[i]);
		mid = ta_window_mean(&s->w);
		dev = s->k * sqrt(ta_window_var(&s->w));
		middle[i] = mid;
		upper[i] = mid + dev;
		lower[i] = mid - dev;
	}
}
