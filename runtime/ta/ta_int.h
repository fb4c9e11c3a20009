/*
 * ta_int.h: helpers shared by the indicator files, not part of the API.
 */
#ifndef NOMADE_TA_INT_H
#define NOMADE_TA_INT_H

#include <math.h>
#include "ta.h"

/* the n most indicators take: an int in 1..TA_MAX_PERIOD */
#define TA_PERIOD_OK(n) ((n) >= 1 && (n) <= TA_MAX_PERIOD)

/* TA-Lib 0.6's TA_IS_ZERO (TA_EPSILON 1e-14): absolute, kept to match TA-Lib */
#define TA_IS_ZERO(v) (-1e-14 < (v) && (v) < 1e-14)

/*
 * The recurrence s = b*s + a*x[i] (EMA, Wilder smoothing), writing every
 * s to out. Blocks of four break the loop-carried chain: within a block
 * every output is b^j * s0 + (a partial sum that does not depend on s0),
 * so the CPU overlaps blocks and the chain costs one mul+add per four
 * values. Results differ from the plain loop only in the last bits.
 */
static inline double ta_chain(const double *x, double *out, size_t len,
                              double a, double b, double s)
{
	double b2 = b * b, b3 = b2 * b, b4 = b3 * b;
	size_t i = 0;

	for (; i + 4 <= len; i += 4) {
		double p0 = a * x[i];
		double p1 = b * p0 + a * x[i + 1];
		double p2 = b * p1 + a * x[i + 2];
		double p3 = b * p2 + a * x[i + 3];
		out[i] = b * s + p0;
		out[i + 1] = b2 * s + p1;
		out[i + 2] = b3 * s + p2;
		s = b4 * s + p3;
		out[i + 3] = s;
	}
	for (; i < len; i++)
		out[i] = s = b * s + a * x[i];
	return s;
}

/* chunk size for indicators that stage intermediates on the stack */
#define TA_BLOCK 256

#endif
