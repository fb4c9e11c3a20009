/*
 * walk.h: what every indicator benchmark shares, so that nomade and
 * TA-Lib are timed on the same data the same way: a deterministic random
 * walk of closes from 30000 (xorshift64, steps of at most 0.1%), and a
 * monotonic clock in ns.
 */
#ifndef NOMADE_BENCH_WALK_H
#define NOMADE_BENCH_WALK_H

#include <stdint.h>
#include <time.h>

#define BENCH_N 1000000
#define BENCH_RUNS 5

static inline double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline void fill_closes(double *c, int n)
{
	uint64_t s = 0x9E3779B97F4A7C15ull;
	double p = 30000.0;
	int i;

	for (i = 0; i < n; i++) {
		double u;
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		u = (double)(s >> 11) * (1.0 / 9007199254740992.0) - 0.5;
		p *= 1.0 + 0.002 * u;
		c[i] = p;
	}
}

#endif
