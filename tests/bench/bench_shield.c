/*
 * bench_shield.c: ns per candle of every Integrity Shield check (shield_candle)
 * over the 2023 one-minute BTCUSDT candles, or a synthetic year of them.
 *   gcc -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -Wall -Wextra -Werror -Iruntime \
 *       -o build/bench_shield tests/bench/bench_shield.c runtime/shield.c -lm
 *   build/bench_shield [FILE]   (else $NOMADE_1M_DATA, else the shared data)
 * A .gz file is read through `gzip -dc`, so no zlib is needed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shield.h"
#include "walk.h"

#define YEAR_1M 525600
#define RUNS BENCH_RUNS
#define DEFAULT_DATA "../shared/data/binance-spot-btcusdt-1m-2023.csv.gz"

typedef struct {
	double *t, *o, *h, *l, *c, *v;
	int n, cap;
} candles;

static int grow(candles *k)
{
	int cap = k->cap ? 2 * k->cap : YEAR_1M + 1024;
	double **cols[6];
	int i;

	cols[0] = &k->t, cols[1] = &k->o, cols[2] = &k->h, cols[3] = &k->l, cols[4] = &k->c, cols[5] = &k->v;
	for (i = 0; i < 6; i++) {
		double *p = (double *)realloc(*cols[i], (size_t)cap * sizeof(double));
		if (!p)
			return -1;
		*cols[i] = p;
	}
	k->cap = cap;
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* open_time_ms,open,high,low,close,volume after a header; 0, or -1 with
   nothing kept (the caller falls back to a synthetic series) */
static int load(const char *path, candles *k)
{
	char line[512], cmd[1200];
	FILE *f;
	int gz = ends_with(path, ".gz"), bad = 0, rc;

	if (strchr(path, '\'') || (f = fopen(path, "r")) == NULL)
		return -1;
	if (gz) {
		fclose(f);
		snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
		if ((f = popen(cmd, "r")) == NULL)
			return -1;
	}
	if (!fgets(line, sizeof line, f) || strncmp(line, "open_time_ms,", 13) != 0)
		bad = 1;
	while (!bad && fgets(line, sizeof line, f)) {
		double row[6];
		char *p = line, *end;
		int i;

		for (i = 0; i < 6; i++) {
			row[i] = strtod(p, &end);
			if (end == p || (i < 5 && *end != ','))
				break;
			p = end + 1;
		}
		if (i < 6) {
			bad = 1;
			break;
		}
		if (k->n == k->cap && grow(k) != 0) {
			bad = 1;
			break;
		}
		k->t[k->n] = row[0], k->o[k->n] = row[1], k->h[k->n] = row[2];
		k->l[k->n] = row[3], k->c[k->n] = row[4], k->v[k->n] = row[5];
		k->n++;
	}
	rc = gz ? pclose(f) : fclose(f);
	if (bad || rc != 0 || k->n < 2) {
		k->n = 0;
		return -1;
	}
	return 0;
}

/* a year of minutes from walk.h's random walk of closes: each candle opens
   at the last close, with a small wick and a volume > 0 */
static void synthetic(candles *k)
{
	double *closes;
	int i;

	k->n = 0;
	while (k->cap < YEAR_1M)
		if (grow(k) != 0)
			exit(1);
	closes = (double *)malloc(BENCH_N * sizeof(double));
	if (!closes)
		exit(1);
	fill_closes(closes, BENCH_N);
	for (i = 0; i < YEAR_1M; i++) {
		double o = i ? closes[i - 1] : closes[0], c = closes[i];
		k->t[i] = 1672531200000.0 + 60000.0 * i;
		k->o[i] = o;
		k->c[i] = c;
		k->h[i] = fmax(o, c) * 1.0002;
		k->l[i] = fmin(o, c) * 0.9998;
		k->v[i] = 1.0 + closes[(i * 7) % BENCH_N] / 30000.0;
	}
	k->n = YEAR_1M;
	free(closes);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : getenv("NOMADE_1M_DATA");
	candles k;
	shield_config cfg;
	static shield s;
	double best = 1e300;
	int run, i, real;

	memset(&k, 0, sizeof k);
	if (!path || !*path)
		path = DEFAULT_DATA;
	real = load(path, &k) == 0;
	if (!real)
		synthetic(&k);
	shield_defaults(&cfg, k.t[1] - k.t[0]);
	for (run = 0; run < RUNS; run++) {
		double t0, dt;

		shield_init(&s, &cfg);
		t0 = now_ns();
		for (i = 0; i < k.n; i++)
			shield_candle(&s, k.t[i], k.o[i], k.h[i], k.l[i], k.c[i], k.v[i]);
		dt = now_ns() - t0;
		if (dt < best)
			best = dt;
	}
	printf("shield: %d candles, %.1f ns/candle (best of %d; target well under 100 ns)\n", k.n, best / k.n, RUNS);
	if (real)
		printf("shield:   real candles from %s\n", path);
	else
		printf("shield:   synthetic random walk (walk.h), no readable data at %s\n", path);
	printf("shield:   the last run: %lld accepted, %lld refused, %lld repeats, %lld transitions; "
	       "candles in GREEN %lld, AMBER %lld, RED %lld\n",
	       s.candles, s.refused, s.repeats, s.ntrans, s.in_state[SHIELD_GREEN], s.in_state[SHIELD_AMBER],
	       s.in_state[SHIELD_RED]);
	free(k.t), free(k.o), free(k.h), free(k.l), free(k.c), free(k.v);
	return 0;
}
