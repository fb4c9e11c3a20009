/*
 * window.c: the rolling window behind SMA, stddev, Bollinger bands and the
 * seed RSI. The hard part is numerical: a running sum over millions of
 * updates drifts, and a price of 30000 with a variance of 1 loses every
 * digit to cancellation if squares are summed raw. So the sums are of
 * (x - anchor), with the anchor a recent mean, and every `reanchor`
 * updates they are recomputed from the window itself; the error can never
 * build up past that many updates. A value that dwarfs the rest of the
 * window (a 1e12 spike among values of 1e-3) takes every digit of the
 * sums with it when it leaves, so its exit re-anchors at once; so does
 * a trend that carries the mean ten deviations away from the anchor
 * (s2 - s1^2/n then cancels). Either at most once per n/8 updates, so that
 * an update stays O(1) amortized.
 */
#include <string.h>
#include "ta_int.h"

size_t ta_window_size(size_t n)
{
	return sizeof(ta_window) + n * sizeof(double);
}

void ta_window_init(ta_window *w, size_t n)
{
	memset(w, 0, sizeof *w);
	w->n = n;
	w->reanchor = n > 128 ? n : 128;  /* O(n) work every >= n pushes: O(1) */
}

static void reanchor(ta_window *w)
{
	double sum = 0, s1 = 0, s2 = 0, mean;
	size_t i;

	for (i = 0; i < w->n; i++)
		sum += w->buf[i] - w->anchor;
	mean = w->anchor + sum / (double)w->n;
	for (i = 0; i < w->n; i++) {
		double d = w->buf[i] - mean;
		s1 += d;
		s2 += d * d;
	}
	w->anchor = mean;
	w->s1 = s1;
	w->s2 = s2;
	w->since_anchor = 0;
}

/* 2^30: a leaving square this much larger than what stays cost 30 bits */
#define DWARFS 1073741824.0

void ta_window_push(ta_window *w, double x)
{
	double d, gone = 0;

	if (w->count == 0)
		w->anchor = x;
	if (w->count >= w->n) {
		double old = w->buf[w->pos] - w->anchor;
		gone = old * old;
		w->s1 -= old;
		w->s2 -= gone;
	}
	w->buf[w->pos] = x;
	if (++w->pos == w->n)
		w->pos = 0;
	d = x - w->anchor;
	w->s1 += d;
	w->s2 += d * d;
	w->run = (w->count > 0 && x == w->last) ? w->run + 1 : 1;
	w->last = x;
	w->count++;
	if (w->count < w->n)
		return;
	if (++w->since_anchor >= w->reanchor)
		reanchor(w);
	else if (w->since_anchor >= w->n / 8
	         && (gone > DWARFS * w->s2 || w->s1 * w->s1 > 0.99 * (double)w->n * w->s2))
		reanchor(w);
}

double ta_window_mean(const ta_window *w)
{
	if (w->count < w->n)
		return TA_NAN;
	if (w->run >= w->n)  /* n equal values: exactly that value, as pandas */
		return w->last;
	return w->anchor + w->s1 / (double)w->n;
}

double ta_window_var(const ta_window *w)
{
	double n = (double)w->n, var;

	if (w->count < w->n)
		return TA_NAN;
	if (w->run >= w->n)
		return 0;
	var = (w->s2 - w->s1 * w->s1 / n) / n;
	return var > 0 ? var : 0;  /* rounding can push a true 0 below it */
}

size_t ta_first_nonfinite(const double *v, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!isfinite(v[i]))
			return i;
	return len;
}
