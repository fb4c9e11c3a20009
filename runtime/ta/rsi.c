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

static void resum(const double *d, size_t n, double *gain, double *loss)
{
	double g = 0, l = 0;
	size_t i;

	for (i = 0; i < n; i++)
		g += ta_up(d[i]), l += ta_down(d[i]);
	*gain = g, *loss = l;
}

/* a run of equal values grows or restarts at 1, without a branch */
static inline size_t run_of(size_t run, double x, double last)
{
	return 1 + (run & ((size_t)0 - (size_t)(x == last)));
}

/*
 * Adds k closes, leaving the gain and loss means in g, l (NaN in warm-up).
 * The state lives in locals for the loop: through s, every store to the
 * ring could alias the sums and would put a memory round trip on their
 * dependency chains.
 */
static void rsi_sma_block(ta_rsi_sma *s, const double *restrict in, size_t k,
                          double *restrict g, double *restrict l)
{
	double *restrict ring = s->d;
	double prev = s->prev, gain = s->gain, loss = s->loss;
	double last_g = s->last_gain, last_l = s->last_loss, inv = 1.0 / (double)s->n;
	size_t n = s->n, pos = s->pos, count = s->count, since = s->since;
	size_t run_g = s->run_gain, run_l = s->run_loss, every = n > 128 ? n : 128, i;

	for (i = 0; i < k; i++) {
		/* diff() gives NaN first and where() turns it into 0 */
		double d = count == 0 ? 0 : in[i] - prev;
		double gi = ta_up(d), li = ta_down(d), old = count >= n ? ring[pos] : 0;
		prev = in[i];
		ring[pos] = d;
		pos = pos + 1 == n ? 0 : pos + 1;
		gain += gi - ta_up(old);  /* one add on each chain */
		loss += li - ta_down(old);
		run_g = run_of(run_g, gi, last_g);
		run_l = run_of(run_l, li, last_l);
		last_g = gi, last_l = li;
		if (++count < n) {
			g[i] = l[i] = TA_NAN;
			continue;
		}
		if (++since >= every || (since >= n / 8 && fabs(old) > 1073741824.0 * (gain + loss))) {
			resum(ring, n, &gain, &loss);
			since = 0;
		}
		/* pandas: n equal values have exactly that mean; clamp at 0 */
		g[i] = run_g >= n ? gi : ta_up(gain * inv);
		l[i] = run_l >= n ? li : ta_up(loss * inv);
	}
	s->prev = prev, s->gain = gain, s->loss = loss;
	s->last_gain = last_g, s->last_loss = last_l;
	s->pos = pos, s->count = count, s->since = since;
	s->run_gain = run_g, s->run_loss = run_l;
}

/*
 * 100 - 100/(1 + g/l) as 100 * (g/(g+l)): l == 0 gives exactly 100, g == 0
 * exactly 0, 0/0 NaN, and never more than 100. (100*g/(g+l) would round
 * 100*g first and give 100 +- 1 ulp when l == 0.)
 */
static void rsi_ratio(const double *g, const double *l, double *out, size_t k)
{
	const ta_v2 hundred = {100.0, 100.0};
	size_t i = 0;

	for (; i + 2 <= k; i += 2) {
		ta_v2 a = ta_v2_load(g + i), b = ta_v2_load(l + i);
		ta_v2_store(out + i, hundred * (a / (a + b)));
	}
	for (; i < k; i++)
		out[i] = 100.0 * (g[i] / (g[i] + l[i]));
}

void ta_rsi_sma_run(ta_rsi_sma *s, const double *in, size_t len, double *out)
{
	double g[TA_BLOCK], l[TA_BLOCK];

	while (len > 0) {
		size_t k = len < TA_BLOCK ? len : TA_BLOCK;
		rsi_sma_block(s, in, k, g, l);
		rsi_ratio(g, l, out, k);
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
	s->a = 1.0 / n;
	s->b = (double)(n - 1) / n;
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

/* 100 * gain / (gain + loss), 0 where TA_IS_ZERO(gain + loss) */
static void wilder_ratio(const double *g, const double *l, double *out, size_t k)
{
	const ta_v2 hundred = {100.0, 100.0}, eps = {1e-14, 1e-14};
	size_t i = 0;

	for (; i + 2 <= k; i += 2) {
		ta_v2 a = ta_v2_load(g + i), sum = a + ta_v2_load(l + i);
		ta_v2i zero = ta_v2_abs(sum) < eps;  /* all ones where TA_IS_ZERO */
		ta_v2_store(out + i, (ta_v2)((ta_v2i)(hundred * (a / sum)) & ~zero));
	}
	for (; i < k; i++)
		out[i] = wilder_out(g[i], l[i]);
}

/* past the warm-up, a block at a time: moves, both chains, then outputs */
static void rsi_block(ta_rsi *s, const double *restrict in, size_t len, double *restrict out)
{
	double g[TA_BLOCK], l[TA_BLOCK];
	size_t i;

	g[0] = in[0] - s->prev;
	for (i = 1; i < len; i++)
		g[i] = in[i] - in[i - 1];
	for (i = 0; i < len; i++) {
		l[i] = ta_down(g[i]);
		g[i] = ta_up(g[i]);
	}
	ta_chain2(g, l, len, s->a, s->b, &s->gain, &s->loss);
	wilder_ratio(g, l, out, len);
	s->prev = in[len - 1];
	s->count += len;
}

/* one value past the warm-up (a stream's update) */
static double rsi_step(ta_rsi *s, double x)
{
	double d = x - s->prev;

	s->prev = x;
	s->count++;
	s->gain = s->b * s->gain + s->a * ta_up(d);
	s->loss = s->b * s->loss + s->a * ta_down(d);
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
