/*
 * ta_int.h: helpers shared by the indicator files, not part of the API.
 */
#ifndef NOMADE_TA_INT_H
#define NOMADE_TA_INT_H

#include <math.h>
#include <string.h>
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

/* the same recurrence on two series at once (Wilder's gains and losses),
   in place: interleaving the two chains lets each hide the other's latency */
static inline void ta_chain2(double *x, double *y, size_t len, double a, double b,
                             double *sx, double *sy)
{
	double b2 = b * b, b3 = b2 * b, b4 = b3 * b, s = *sx, t = *sy;
	size_t i = 0;

	for (; i + 4 <= len; i += 4) {
		double p0 = a * x[i], q0 = a * y[i];
		double p1 = b * p0 + a * x[i + 1], q1 = b * q0 + a * y[i + 1];
		double p2 = b * p1 + a * x[i + 2], q2 = b * q1 + a * y[i + 2];
		double p3 = b * p2 + a * x[i + 3], q3 = b * q2 + a * y[i + 3];
		x[i] = b * s + p0, y[i] = b * t + q0;
		x[i + 1] = b2 * s + p1, y[i + 1] = b2 * t + q1;
		x[i + 2] = b3 * s + p2, y[i + 2] = b3 * t + q2;
		x[i + 3] = s = b4 * s + p3, y[i + 3] = t = b4 * t + q3;
	}
	for (; i < len; i++) {
		x[i] = s = b * s + a * x[i];
		y[i] = t = b * t + a * y[i];
	}
	*sx = s, *sy = t;
}

/* max(d, 0) and max(-d, 0) exactly and without a branch: doubling and
   halving are exact, and the signs of price moves are random, so a
   mispredicted branch would cost more than the whole update */
static inline double ta_up(double d) { return (d + fabs(d)) * 0.5; }
static inline double ta_down(double d) { return (fabs(d) - d) * 0.5; }

/*
 * Two doubles at a time with GCC's vector extension (SSE2 on x86-64), for
 * the loops -O2 leaves scalar: divisions and sign splits with no carried
 * dependency. memcpy keeps the loads and stores free of alignment rules.
 */
typedef double ta_v2 __attribute__((vector_size(16)));
typedef long long ta_v2i __attribute__((vector_size(16)));

static inline ta_v2 ta_v2_load(const double *p)
{
	ta_v2 v;
	memcpy(&v, p, sizeof v);
	return v;
}

static inline void ta_v2_store(double *p, ta_v2 v)
{
	memcpy(p, &v, sizeof v);
}

static inline ta_v2 ta_v2_abs(ta_v2 v)
{
	const ta_v2i mask = {0x7fffffffffffffffLL, 0x7fffffffffffffffLL};
	return (ta_v2)((ta_v2i)v & mask);
}

/* chunk size for indicators that stage intermediates on the stack */
#define TA_BLOCK 256

#endif
