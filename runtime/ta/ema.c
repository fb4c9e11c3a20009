/*
 * ema.c: exponential moving average as pandas ewm(span=n, adjust=False):
 * alpha = 2/(n+1), the first output is the first input, then
 * ema = (1-alpha)*ema + alpha*x.
 */
#include "ta_int.h"

size_t ta_ema_size(int n)
{
	(void)n;
	return sizeof(ta_ema);
}

int ta_ema_init(ta_ema *s, int n)
{
	if (!TA_PERIOD_OK(n))
		return TA_EINVAL;
	s->alpha = 2.0 / ((double)n + 1.0);
	s->value = TA_NAN;
	s->count = 0;
	return TA_OK;
}

void ta_ema_run(ta_ema *s, const double *in, size_t len, double *out)
{
	if (len == 0)
		return;
	if (s->count == 0) {
		s->value = out[0] = in[0];
		s->count = 1;
		in++, out++, len--;
	}
	s->value = ta_chain(in, out, len, s->alpha, 1.0 - s->alpha, s->value);
	s->count += len;
}
