/*
 * rsi.c: the two RSIs. Their names keep them apart on purpose: rsi_sma is
 * the seed's pandas formula (rolling means), rsi is Wilder's (TA-Lib,
 * exchange charts). They disagree by several points on the same candles.
 */
#include <string.h>
#include "ta_int.h"

static ta_window *gains(ta_rsi_sma *s)
{
	return (ta_window *)s->mem;
}

static ta_window *losses(ta_rsi_sma *s)
{
	return (ta_window *)((char *)s->mem + ta_window_size(s->n));
}

size_t ta_rsi_sma_size(int n)
{
	size_t w = ta_window_size(n > 0 ? (size_t)n : 0);
	return sizeof(ta_rsi_sma) + 2 * w;
}

int ta_rsi_sma_init(ta_rsi_sma *s, int n)
{
	if (!TA_PERIOD_OK(n))
		return TA_EINVAL;
	s->n = (size_t)n;
	s->count = 0;
	s->prev = TA_NAN;
	ta_window_init(gains(s), s->n);
	ta_window_init(losses(s), s->n);
	return TA_OK;
}

/* 100 - 100/(1 + g/l), written so that l == 0 gives 100 and 0/0 NaN */
static double rsi_of(double g, double l)
{
	g = g > 0 ? g : 0;  /* pandas clamps a mean of non-negatives at 0 */
	l = l > 0 ? l : 0;
	return 100.0 * g / (g + l);
}

void ta_rsi_sma_run(ta_rsi_sma *s, const double *in, size_t len, double *out)
{
	ta_window *g = gains(s), *l = losses(s);
	size_t i;

	for (i = 0; i < len; i++) {
		/* diff() gives NaN first and where() turns it into 0 */
		double d = s->count == 0 ? 0 : in[i] - s->prev;
		s->prev = in[i];
		s->count++;
		ta_window_push(g, d > 0 ? d : 0);
		ta_window_push(l, d < 0 ? -d : 0);
		out[i] = s->count < s->n ? TA_NAN
		       : rsi_of(ta_window_mean(g), ta_window_mean(l));
	}
}

size_t ta_rsi_size(int n)
{
	(void)n;
	return sizeof(ta_rsi);
}

int ta_rsi_init(ta_rsi *s, int n)
{
	if (!TA_PERIOD_OK(n))
		return TA_EINVAL;
	memset(s, 0, sizeof *s);
	s->n = n;
	return TA_OK;
}

static double wilder_out(double gain, double loss)
{
	double sum = gain + loss;
	return TA_IS_ZERO(sum) ? 0.0 : 100.0 * (gain / sum);
}

/* the warm-up: sum the first n deltas, average them at index n */
static double rsi_seed(ta_rsi *s, double x)
{
	if (s->count++ == 0) {
		s->prev = x;
		return TA_NAN;
	}
	if (x > s->prev)
		s->gain += x - s->prev;
	else
		s->loss += s->prev - x;
	s->prev = x;
	if (s->count <= (size_t)s->n)
		return TA_NAN;
	s->gain /= s->n;
	s->loss /= s->n;
	return wilder_out(s->gain, s->loss);
}

/* past the warm-up, a block at a time: deltas, both chains, then outputs */
static void rsi_block(ta_rsi *s, const double *in, size_t len, double *out)
{
	double g[TA_BLOCK], l[TA_BLOCK];
	double a = 1.0 / s->n, b = (double)(s->n - 1) / s->n;
	double prev = s->prev;
	size_t i;

	for (i = 0; i < len; i++) {
		double d = in[i] - prev;
		prev = in[i];
		g[i] = d > 0 ? d : 0;
		l[i] = d < 0 ? -d : 0;
	}
	s->gain = ta_chain(g, g, len, a, b, s->gain);
	s->loss = ta_chain(l, l, len, a, b, s->loss);
	for (i = 0; i < len; i++)
		out[i] = wilder_out(g[i], l[i]);
	s->prev = prev;
	s->count += len;
}

void ta_rsi_run(ta_rsi *s, const double *in, size_t len, double *out)
{
	size_t i = 0;

	for (; i < len && s->count <= (size_t)s->n; i++)
		out[i] = rsi_seed(s, in[i]);
	while (i < len) {
		size_t k = len - i < TA_BLOCK ? len - i : TA_BLOCK;
		rsi_block(s, in + i, k, out + i);
		i += k;
	}
}
