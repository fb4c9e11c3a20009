/*
 * rsi.c: the two RSIs. Their names keep them apart on purpose: rsi_sma is
 * the seed's pandas formula (rolling means), rsi is Wilder's (TA-Lib,
 * exchange charts). They disagree by several points on the same candles.
 */
#include <string.h>
#include "ta_int.h"

/*
 * rsi_sma keeps one ring of deltas and two sums instead of two ta_windows:
 * gains and losses are never negative, so the sums need no anchor, and
 * what ta_window guards against reduces to two cases handled the same
 * way: the sums are recomputed from the ring every max(n, 128) deltas,
 * and at once (at most every n/8) when a delta that dwarfs the window's
 * sum leaves it. A run of n equal gains (or losses) has exactly that mean,
 * as in pandas; that is how n zero gains give exactly 0.
 */
size_t ta_rsi_sma_size(int n)
{
	return sizeof(ta_rsi_sma) + (n > 0 ? (size_t)n : 0) * sizeof(double);
}

int ta_rsi_sma_init(ta_rsi_sma *s, int n)
{
	if (!TA_PERIOD_OK(n))
		return TA_EINVAL;
	memset(s, 0, sizeof *s);
	s->n = (size_t)n;
	return TA_OK;
}

static void rsi_sma_resum(ta_rsi_sma *s)
{
	double g = 0, l = 0;
	size_t i;

	for (i = 0; i < s->n; i++) {
		g += s->d[i] > 0 ? s->d[i] : 0;
		l += s->d[i] < 0 ? -s->d[i] : 0;
	}
	s->gain = g, s->loss = l;
	s->since = 0;
}

/* the window's means, with pandas' rules for runs of equal values */
static void rsi_sma_means(const ta_rsi_sma *s, double inv, double *g, double *l)
{
	*g = s->run_gain >= s->n ? s->last_gain : s->gain * inv;
	*l = s->run_loss >= s->n ? s->last_loss : s->loss * inv;
	*g = *g > 0 ? *g : 0;  /* pandas clamps a mean of non-negatives at 0 */
	*l = *l > 0 ? *l : 0;
}

/* a run of equal values grows or restarts at 1, without a branch: the
   signs of price moves are random and a mispredicted branch costs more
   than the whole update */
static size_t run_of(size_t run, double x, double last)
{
	return 1 + (run & ((size_t)0 - (size_t)(x == last)));
}

/* adds one close past the first; leaves the means in g, l (NaN in warm-up) */
static void rsi_sma_push(ta_rsi_sma *s, double x, double inv, double *g, double *l)
{
	double d = x - s->prev, gi = d > 0 ? d : 0, li = d < 0 ? -d : 0, old = 0;

	s->prev = x;
	if (s->count >= s->n) {
		old = s->d[s->pos];
		s->gain -= old > 0 ? old : 0;
		s->loss -= old < 0 ? -old : 0;
	}
	s->d[s->pos] = d;
	s->pos = s->pos + 1 == s->n ? 0 : s->pos + 1;
	s->gain += gi, s->loss += li;
	s->run_gain = run_of(s->run_gain, gi, s->last_gain);
	s->run_loss = run_of(s->run_loss, li, s->last_loss);
	s->last_gain = gi, s->last_loss = li;
	if (++s->count < s->n) {
		*g = *l = TA_NAN;
		return;
	}
	old = old < 0 ? -old : old;
	if (++s->since >= (s->n > 128 ? s->n : 128)
	    || (s->since >= s->n / 8 && old > 1073741824.0 * (s->gain + s->loss)))
		rsi_sma_resum(s);
	rsi_sma_means(s, inv, g, l);
}

/* 100 - 100/(1 + g/l) as 100*g/(g+l): l == 0 gives 100, 0/0 NaN */
void ta_rsi_sma_run(ta_rsi_sma *s, const double *in, size_t len, double *out)
{
	double g[TA_BLOCK], l[TA_BLOCK], inv = 1.0 / (double)s->n;

	if (len > 0 && s->count == 0) {
		/* diff() gives NaN first and where() turns it into 0 */
		s->prev = in[0];
		rsi_sma_push(s, in[0], inv, &g[0], &l[0]);
		out[0] = 100.0 * g[0] / (g[0] + l[0]);
		in++, out++, len--;
	}
	while (len > 0) {
		size_t k = len < TA_BLOCK ? len : TA_BLOCK, i;
		for (i = 0; i < k; i++)
			rsi_sma_push(s, in[i], inv, &g[i], &l[i]);
		for (i = 0; i < k; i++)  /* no loop-carried work: vectorizes */
			out[i] = 100.0 * g[i] / (g[i] + l[i]);
		in += k, out += k, len -= k;
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
	double sum = gain + loss, r = 100.0 * (gain / sum);
	return TA_IS_ZERO(sum) ? 0.0 : r;  /* branch-free: the loop vectorizes */
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

/* one value past the warm-up, TA-Lib's way (a stream's update) */
static double rsi_step(ta_rsi *s, double x)
{
	double d = x - s->prev, a = 1.0 / s->n, b = (double)(s->n - 1) / s->n;

	s->prev = x;
	s->count++;
	s->gain = b * s->gain + a * (d > 0 ? d : 0);
	s->loss = b * s->loss + a * (d < 0 ? -d : 0);
	return wilder_out(s->gain, s->loss);
}

void ta_rsi_run(ta_rsi *s, const double *in, size_t len, double *out)
{
	size_t i = 0;

	for (; i < len && s->count <= (size_t)s->n; i++)
		out[i] = rsi_seed(s, in[i]);
	if (len - i < 8) {  /* too short for blocks to pay */
		for (; i < len; i++)
			out[i] = rsi_step(s, in[i]);
		return;
	}
	while (i < len) {
		size_t k = len - i < TA_BLOCK ? len - i : TA_BLOCK;
		rsi_block(s, in + i, k, out + i);
		i += k;
	}
}
