/*
 * unit.h: the C unit tests' harness. Prints TAP ("ok N - name" /
 * "not ok N - name") that tests/run counts; main returns non-zero when
 * anything failed.
 */
#ifndef NOMADE_UNIT_H
#define NOMADE_UNIT_H

#include <math.h>
#include <stdio.h>

static int unit_n, unit_failed;

static inline void unit_ok(int cond, const char *name)
{
	unit_n++;
	if (!cond)
		unit_failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", unit_n, name);
}

/* both NaN, or equal within rel relative (abs near 0) */
static inline int unit_close(double a, double b, double rel)
{
	double scale;

	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	scale = fabs(b) > 1 ? fabs(b) : 1;
	return fabs(a - b) <= rel * scale;
}

static inline int unit_done(void)
{
	printf("1..%d\n", unit_n);
	return unit_failed != 0;
}

#endif
