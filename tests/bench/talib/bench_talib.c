/*
 * Side-by-side benchmark: TA-Lib's own C TA_EMA(200) and TA_RSI(14) over
 * 10^6 doubles, in ns per input element (best of 5 runs).
 *
 * Built by tests/bench/talib/build.sh against the genuine TA-Lib C sources
 * bundled in the npm package `talib` (vendor/node_modules, see
 * vendor/install-talib.sh). This file is ours; TA-Lib's sources are never
 * copied into the repository.
 *
 * Output (one line per function):
 *   talib  ema200   batch  X.XX ns/elem
 *   talib  rsi14    batch  X.XX ns/elem
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ta_libc.h"
#include "walk.h"

#define N BENCH_N
#define RUNS BENCH_RUNS

/* Keeps the compiler from discarding the outputs. */
static volatile double sink;

static int check(TA_RetCode rc, const char *what, int beg, int nb, int want_beg)
{
    if (rc != TA_SUCCESS || beg != want_beg || beg + nb != N) {
        fprintf(stderr, "bench_talib: %s failed: rc=%d beg=%d nb=%d\n", what, (int)rc, beg, nb);
        return 1;
    }
    return 0;
}

int main(void)
{
    double *in = malloc(sizeof(double) * N);
    double *out = malloc(sizeof(double) * N);
    if (!in || !out) {
        fprintf(stderr, "bench_talib: out of memory\n");
        return 1;
    }
    fill_closes(in, N);

    TA_RetCode rc = TA_Initialize();
    if (rc != TA_SUCCESS) {
        fprintf(stderr, "bench_talib: TA_Initialize failed: %d\n", (int)rc);
        return 1;
    }

    double best_ema = 1e300, best_rsi = 1e300;
    for (int r = 0; r < RUNS; r++) {
        int beg = 0, nb = 0;
        double t0 = now_ns();
        rc = TA_EMA(0, N - 1, in, 200, &beg, &nb, out);
        double t1 = now_ns();
        if (check(rc, "TA_EMA(200)", beg, nb, 199))
            return 1;
        sink = out[nb - 1];
        if (t1 - t0 < best_ema)
            best_ema = t1 - t0;

        t0 = now_ns();
        rc = TA_RSI(0, N - 1, in, 14, &beg, &nb, out);
        t1 = now_ns();
        if (check(rc, "TA_RSI(14)", beg, nb, 14))
            return 1;
        sink = out[nb - 1];
        if (t1 - t0 < best_rsi)
            best_rsi = t1 - t0;
    }

    printf("talib  ema200   batch  %.2f ns/elem\n", best_ema / N);
    printf("talib  rsi14    batch  %.2f ns/elem\n", best_rsi / N);

    TA_Shutdown();
    free(in);
    free(out);
    return 0;
}
