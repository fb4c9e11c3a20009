/*
 * bench_ta.c: ns per element of nomade's indicators over 10^6 closes, in
 * batch and as a stream fed one value at a time, beside a plain C loop of
 * the same recurrence measured in the same run: the ratio is what counts.
 * Same data and method (walk.h, best of 5) as talib/bench_talib.c, so
 * `make bench` can print TA-Lib's figures beside these.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "ta/ta.h"
#include "walk.h"

#define N BENCH_N
#define RUNS BENCH_RUNS

static volatile double sink;

/* the plain loops: the textbook recurrence, no tricks */
static void plain_ema(const double *in, double *out, int n, int period)
{
	double a = 2.0 / (period + 1), e = in[0];
	int i;

	out[0] = e;
	for (i = 1; i < n; i++)
		out[i] = e = e + a * (in[i] - e);
}

static void plain_rsi_sma(const double *in, double *out, int n, int period)
{
	double g = 0, l = 0;
	int i;

	out[0] = TA_NAN;
	for (i = 1; i < n; i++) {
		double d = in[i] - in[i - 1];
		g += d > 0 ? d : 0;
		l += d < 0 ? -d : 0;
		if (i >= period) {
			double o = in[i - period + 1] - in[i - period];
			if (i > period) {  /* the first delta counted as 0 */
				g -= o > 0 ? o : 0;
				l -= o < 0 ? -o : 0;
			}
			out[i] = 100.0 - 100.0 / (1.0 + g / l);
		} else {
			out[i] = TA_NAN;
		}
	}
}

static void plain_rsi(const double *in, double *out, int n, int period)
{
	double g = 0, l = 0;
	int i;

	for (i = 1; i <= period; i++) {
		double d = in[i] - in[i - 1];
		g += d > 0 ? d : 0;
		l += d < 0 ? -d : 0;
		out[i - 1] = TA_NAN;
	}
	g /= period, l /= period;
	out[period] = 100.0 * g / (g + l);
	for (i = period + 1; i < n; i++) {
		double d = in[i] - in[i - 1];
		g = (g * (period - 1) + (d > 0 ? d : 0)) / period;
		l = (l * (period - 1) + (d < 0 ? -d : 0)) / period;
		out[i] = 100.0 * g / (g + l);
	}
}

enum { EMA, RSI_SMA, RSI };
static const char *const names[] = {"ema200", "rsi_sma14", "rsi14"};

static void *state(int which)
{
	void *s;

	if (which == EMA)
		ta_ema_init((ta_ema *)(s = malloc(ta_ema_size(200))), 200);
	else if (which == RSI_SMA)
		ta_rsi_sma_init((ta_rsi_sma *)(s = malloc(ta_rsi_sma_size(14))), 14);
	else
		ta_rsi_init((ta_rsi *)(s = malloc(ta_rsi_size(14))), 14);
	return s;
}

static void run(int which, void *s, const double *in, size_t len, double *out)
{
	if (which == EMA)
		ta_ema_run((ta_ema *)s, in, len, out);
	else if (which == RSI_SMA)
		ta_rsi_sma_run((ta_rsi_sma *)s, in, len, out);
	else
		ta_rsi_run((ta_rsi *)s, in, len, out);
}

/* best of RUNS: 0 batch, 1 stream one value at a time, 2 plain loop */
static double measure(int which, int form, const double *in, double *out)
{
	double best = 1e300;
	int r;

	for (r = 0; r < RUNS; r++) {
		void *s = state(which);
		double t0 = now_ns(), t;
		size_t i;
		if (form == 0) {
			run(which, s, in, N, out);
		} else if (form == 1) {
			for (i = 0; i < N; i++)
				run(which, s, in + i, 1, out + i);
		} else if (which == EMA) {
			plain_ema(in, out, N, 200);
		} else if (which == RSI_SMA) {
			plain_rsi_sma(in, out, N, 14);
		} else {
			plain_rsi(in, out, N, 14);
		}
		t = now_ns() - t0;
		sink = out[N - 1];
		free(s);
		if (t < best)
			best = t;
	}
	return best / N;
}

int main(void)
{
	double *in = (double *)malloc(sizeof(double) * N);
	double *out = (double *)malloc(sizeof(double) * N);
	int w;

	if (!in || !out)
		return 1;
	fill_closes(in, N);
	printf("indicators over %d closes, ns/element (best of %d)\n", N, RUNS);
	printf("%-10s %8s %8s %10s %12s %12s\n", "", "batch", "stream", "plain C", "batch/plain", "stream/plain");
	for (w = EMA; w <= RSI; w++) {
		double b = measure(w, 0, in, out), s = measure(w, 1, in, out);
		double p = measure(w, 2, in, out);
		printf("%-10s %8.2f %8.2f %10.2f %12.2f %12.2f\n", names[w], b, s, p, b / p, s / p);
	}
	free(in);
	free(out);
	return 0;
}
