/*
 * macd.c: MACD as TA-Lib's TA_MACD (see ta.h for the seeding), using
 * TA-Lib's EMA step ((x - ema) * k + ema) so values match it closely.
 */
#include <string.h>
#include "ta_int.h"

size_t ta_macd_size(int fast, int slow, int signal)
{
	(void)fast, (void)slow, (void)signal;
	return sizeof(ta_macd);
}

int ta_macd_init(ta_macd *s, int fast, int slow, int signal)
{
	if (!TA_PERIOD_OK(fast) || !TA_PERIOD_OK(slow) || !TA_PERIOD_OK(signal)
	    || fast >= slow)
		return TA_EINVAL;
	memset(s, 0, sizeof *s);
	s->fast = fast, s->slow = slow, s->signal = signal;
	s->kf = 2.0 / (fast + 1.0);
	s->ks = 2.0 / (slow + 1.0);
	s->kg = 2.0 / (signal + 1.0);
	return TA_OK;
}

static void macd_push(ta_macd *s, double x, double *m, double *sig, double *h)
{
	size_t i = s->count++, first = (size_t)s->slow - 1;
	size_t ready = first + (size_t)s->signal - 1;
	double line;

	*m = *sig = *h = TA_NAN;
	if (i <= first) {  /* both seeds end at index slow-1 */
		s->slow_sum += x;
		if (i + (size_t)s->fast > first)
			s->fast_sum += x;
		if (i < first)
			return;
		s->slow_ema = s->slow_sum / s->slow;
		s->fast_ema = s->fast_sum / s->fast;
	} else {
		s->slow_ema = (x - s->slow_ema) * s->ks + s->slow_ema;
		s->fast_ema = (x - s->fast_ema) * s->kf + s->fast_ema;
	}
	line = s->fast_ema - s->slow_ema;
	if (i < ready) {
		s->sig_sum += line;
		return;
	}
	if (i == ready)
		s->sig_ema = (s->sig_sum + line) / s->signal;
	else
		s->sig_ema = (line - s->sig_ema) * s->kg + s->sig_ema;
	*m = line;
	*sig = s->sig_ema;
	*h = line - s->sig_ema;
}

void ta_macd_run(ta_macd *s, const double *in, size_t len,
                 double *macd, double *signal, double *hist)
{
	size_t i;

	for (i = 0; i < len; i++)
		macd_push(s, in[i], &macd[i], &signal[i], &hist[i]);
}
