/*
 * atr.c: average true range as TA-Lib's TA_ATR, with TA-Lib's own
 * arithmetic ((atr*(n-1) + tr) / n) so values match it to the last bits.
 */
#include <string.h>
#include "ta_int.h"

size_t ta_atr_size(int n)
{
	(void)n;
	return sizeof(ta_atr);
}

int ta_atr_init(ta_atr *s, int n)
{
	if (!TA_PERIOD_OK(n))
		return TA_EINVAL;
	memset(s, 0, sizeof *s);
	s->n = n;
	s->value = TA_NAN;
	return TA_OK;
}

static double true_range(double h, double l, double prev_close)
{
	double r = h - l, up = fabs(h - prev_close), down = fabs(l - prev_close);

	if (up > r)
		r = up;
	return down > r ? down : r;
}

static double atr_push(ta_atr *s, double h, double l, double c)
{
	size_t i = s->count++;
	double tr;

	if (i == 0) {
		s->prev_close = c;
		return TA_NAN;
	}
	tr = true_range(h, l, s->prev_close);
	s->prev_close = c;
	if (i < (size_t)s->n) {
		s->sum += tr;
		return TA_NAN;
	}
	if (i == (size_t)s->n)
		s->value = (s->sum + tr) / s->n;
	else
		s->value = (s->value * (s->n - 1) + tr) / s->n;
	return s->value;
}

void ta_atr_run(ta_atr *s, const double *high, const double *low,
                const double *close, size_t len, double *out)
{
	size_t i;

	for (i = 0; i < len; i++)
		out[i] = atr_push(s, high[i], low[i], close[i]);
}
