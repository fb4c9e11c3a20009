/*
 * test_shield.c: the Integrity Shield's checks, states and hysteresis
 * (shield.c) on synthetic 1h candles, then a seeded random walk through
 * every fault checked against an independent model after each call.
 */
#include <stdint.h>
#include <string.h>
#include "shield.h"
#include "unit.h"

#define H 3600000.0             /* 1h in ms */
#define T0 1672531200000.0      /* 2023-01-01 00:00 UTC */
#define GRACE 30000.0           /* shield_defaults' grace_ms */
#define TAPE_HIST 64

/* the candles fed so far: where the next one opens, the last one accepted
   and the ones before it */
typedef struct {
	double t;
	double lt, o, h, l, c, v;
	double hist[TAPE_HIST][6];   /* accepted candle i at hist[i % TAPE_HIST] */
	int i;                       /* accepted */
} tape;

static void tape_init(tape *tp)
{
	memset(tp, 0, sizeof *tp);
	tp->t = T0;
	tp->c = 20000.0;
}

static void fresh(shield *s, tape *tp, const shield_config *cfg)
{
	shield_config d;

	shield_defaults(&d, H);
	shield_init(s, cfg ? cfg : &d);
	tape_init(tp);
}

/* a well-formed quiet candle: moves of at most 0.1% that cancel out over
   five candles (no drift), a range of 10 around them, volume > 0 */
static void quiet_values(const tape *tp, double *o, double *h, double *l, double *c, double *v)
{
	int k = tp->i % 5 - 2;

	*o = tp->c;
	*c = k == 0 ? 20000.0 : tp->c * (1.0 + 0.0005 * k);
	*h = fmax(*o, *c) + 5.0;
	*l = fmin(*o, *c) - 5.0;
	*v = 1.0 + tp->i % 7;
}

static int put_at(shield *s, tape *tp, double t, double o, double h, double l, double c, double v)
{
	int rc = shield_candle(s, t, o, h, l, c, v);

	if (rc == SHIELD_ACCEPTED) {
		double *r = tp->hist[tp->i % TAPE_HIST];
		r[0] = t, r[1] = o, r[2] = h, r[3] = l, r[4] = c, r[5] = v;
		tp->lt = t, tp->o = o, tp->h = h, tp->l = l, tp->c = c, tp->v = v;
		tp->t = t + H;
		tp->i++;
	}
	return rc;
}

static int put(shield *s, tape *tp, double o, double h, double l, double c, double v)
{
	return put_at(s, tp, tp->t, o, h, l, c, v);
}

/* the accepted candle `back` before the last one (0: the last) again,
   value for value */
static int again(shield *s, tape *tp, int back)
{
	const double *r;

	if (back < 0 || back >= tp->i || back >= TAPE_HIST)
		return -1;
	r = tp->hist[(tp->i - 1 - back) % TAPE_HIST];
	return put_at(s, tp, r[0], r[1], r[2], r[3], r[4], r[5]);
}

static int next(shield *s, tape *tp)
{
	double o, h, l, c, v;

	quiet_values(tp, &o, &h, &l, &c, &v);
	return put(s, tp, o, h, l, c, v);
}

/* n quiet candles; 1 when every one was accepted */
static int feed(shield *s, tape *tp, int n)
{
	int ok = 1;

	while (n-- > 0)
		ok &= next(s, tp) == SHIELD_ACCEPTED;
	return ok;
}

static const char *chief_name(const shield *s)
{
	int k = shield_chief(s);

	return k < 0 ? "none" : shield_check_name(k);
}

/* the state is `state` and the reason `check` is active (-1: no reason at all) */
static int is(const shield *s, int state, int check)
{
	if (s->state != state)
		return 0;
	return check < 0 ? shield_chief(s) < 0 : s->reason[check].active;
}

static void expect(const shield *s, int state, int check, const char *name)
{
	int ok = is(s, state, check);

	unit_ok(ok, name);
	if (!ok)
		printf("#   state %s, chief %s, wanted %s with %s\n", shield_state_name(s->state), chief_name(s),
		       shield_state_name(state), check < 0 ? "none" : shield_check_name(check));
}

static int has(const char *text, const char *part)
{
	if (strstr(text, part))
		return 1;
	printf("#   '%s' lacks '%s'\n", text, part);
	return 0;
}

/* the transition numbered seq (from 1), or NULL when the ring no longer
   holds it or it never was */
static const struct shield_transition *trans_seq(const shield *s, long long seq)
{
	long long slot;

	if (seq < 1 || seq > s->ntrans || s->ntrans - seq >= SHIELD_HISTORY)
		return NULL;
	slot = (seq - 1) % SHIELD_HISTORY;
	return &s->trans[slot];
}

/* the last transition went from -> to, with this chief check (-1: none) */
static int went(const shield *s, int from, int to, int check)
{
	const struct shield_transition *t = trans_seq(s, s->ntrans);

	if (t && t->seq == s->ntrans && t->from == from && t->to == to && t->check == check)
		return 1;
	if (t)
		printf("#   the last transition (%lld of %lld): %s->%s for %s\n", t->seq, s->ntrans,
		       shield_state_name(t->from), shield_state_name(t->to), shield_check_name(t->check));
	else
		printf("#   no transition\n");
	return 0;
}

static void test_clean(void)
{
	shield s;
	tape tp;
	int i, green = 1, ok = 1;

	fresh(&s, &tp, NULL);
	for (i = 0; i < 500; i++) {
		ok &= next(&s, &tp) == SHIELD_ACCEPTED;
		green &= is(&s, SHIELD_GREEN, -1);
	}
	unit_ok(ok && green, "500 quiet candles: all accepted, GREEN with no reason after each");
	unit_ok(s.ntrans == 1 && went(&s, SHIELD_AMBER, SHIELD_GREEN, -1) && s.trans[0].time == T0 + H
	        && s.refused == 0 && s.repeats == 0 && s.gaps == 0 && s.candles == 500 && s.in_state[SHIELD_GREEN] == 500,
	        "a clean series: one transition, AMBER->GREEN at the first close; nothing refused");
}

/* a new shield has nothing to trade on: AMBER for the warm-up, whatever
   the clock says, until its first candle */
static void test_new(void)
{
	shield_config cfg;
	shield s;
	tape tp;
	static const int warmups[] = {0, 1, -5};
	size_t i;

	fresh(&s, &tp, NULL);
	expect(&s, SHIELD_AMBER, SH_WARMUP, "a new shield: AMBER for warmup");
	unit_ok(shield_chief(&s) == SH_WARMUP && s.ntrans == 0 && s.candles == 0
	        && has(s.reason[SH_WARMUP].detail, "0 of the 1 candles the indicators need"),
	        "a new shield: the warm-up is the chief reason, no transition, '0 of the 1 candles' (warmup 0)");
	unit_ok(!shield_allows(s.state, 1) && shield_allows(s.state, 0), "a new shield: no entries, exits allowed");
	shield_tick(&s, T0 + 1000 * H);
	shield_tick(&s, T0 + 1e6 * H);
	shield_api(&s, 1, T0 + 1e6 * H, "GET /v5/market/time");
	shield_skew(&s, 10, T0 + 1e6 * H);
	expect(&s, SHIELD_AMBER, SH_WARMUP, "a new shield, ticked far in the future: still AMBER for warmup");
	unit_ok(!s.reason[SH_STALE].active && s.ntrans == 0 && shield_chief(&s) == SH_WARMUP,
	        "... no stale without a candle, no transition");

	for (i = 0; i < sizeof warmups / sizeof warmups[0]; i++) {
		char name[96];
		int ok;

		shield_defaults(&cfg, H);
		cfg.warmup = warmups[i];
		fresh(&s, &tp, &cfg);
		ok = is(&s, SHIELD_AMBER, SH_WARMUP) && s.cfg.warmup == 1;
		next(&s, &tp);
		ok &= is(&s, SHIELD_GREEN, -1) && s.ntrans == 1 && went(&s, SHIELD_AMBER, SHIELD_GREEN, -1);
		snprintf(name, sizeof name, "warmup %d: AMBER before the first candle, GREEN on it", warmups[i]);
		unit_ok(ok, name);
	}
}

static void test_warmup(void)
{
	shield_config cfg;
	shield s;
	tape tp;
	int i, amber = 1;

	shield_defaults(&cfg, H);
	cfg.warmup = 20;
	fresh(&s, &tp, &cfg);
	unit_ok(has(s.reason[SH_WARMUP].detail, "0 of the 20 candles"), "warmup 20: a new shield waits for 20 candles");
	for (i = 1; i < 20; i++) {
		next(&s, &tp);
		amber &= s.state == SHIELD_AMBER && shield_chief(&s) == SH_WARMUP;
	}
	unit_ok(amber && s.ntrans == 0, "warmup 20: AMBER for warmup on candles 1 to 19, no transition");
	unit_ok(has(s.reason[SH_WARMUP].detail, "19 of the 20 candles"), "the warm-up detail counts candles");
	next(&s, &tp);
	expect(&s, SHIELD_GREEN, -1, "warmup 20: GREEN on the 20th candle, no hysteresis");
	unit_ok(s.ntrans == 1 && went(&s, SHIELD_AMBER, SHIELD_GREEN, -1) && s.trans[0].time == tp.lt + H,
	        "warm-up: one transition AMBER->GREEN, at the 20th candle's close");

	/* shorter than the recovery: still no hysteresis, nothing was wrong */
	cfg.warmup = 2;
	fresh(&s, &tp, &cfg);
	next(&s, &tp);
	expect(&s, SHIELD_AMBER, SH_WARMUP, "warmup 2: AMBER on the first candle");
	next(&s, &tp);
	expect(&s, SHIELD_GREEN, -1, "warmup 2 (recovery 3): GREEN on the 2nd candle");
}

static void test_bad_candles(void)
{
	static const struct {
		const char *name;
		int time;   /* 0 the next time, 1 NaN, 2 +inf */
		double o, h, l, c, v;
	} bad[] = {
		{"a NaN open", 0, (double)NAN, 20010, 19990, 20000, 1},
		{"a NaN close", 0, 20000, 20010, 19990, (double)NAN, 1},
		{"an infinite high", 0, 20000, HUGE_VAL, 19990, 20000, 1},
		{"a NaN volume", 0, 20000, 20010, 19990, 20000, (double)NAN},
		{"a zero price", 0, 20000, 20010, 0, 20000, 1},
		{"a negative price", 0, -20000, 20010, -20010, 20000, 1},
		{"high < low", 0, 20000, 19990, 20010, 20000, 1},
		{"high < close", 0, 20000, 20010, 19990, 20020, 1},
		{"high < open", 0, 20020, 20010, 19990, 20000, 1},
		{"low > open", 0, 19980, 20010, 19990, 20000, 1},
		{"low > close", 0, 20000, 20010, 19990, 19980, 1},
		{"a negative volume", 0, 20000, 20010, 19990, 20000, -1},
		{"a NaN time", 1, 20000, 20010, 19990, 20000, 1},
		{"an infinite time", 2, 20000, 20010, 19990, 20000, 1},
	};
	char name[160];
	shield s;
	tape tp;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		double t;
		int rc, ok;

		fresh(&s, &tp, NULL);
		feed(&s, &tp, 5);
		t = bad[i].time == 0 ? tp.t : bad[i].time == 1 ? (double)NAN : HUGE_VAL;
		rc = shield_candle(&s, t, bad[i].o, bad[i].h, bad[i].l, bad[i].c, bad[i].v);
		ok = rc == SHIELD_REFUSED && is(&s, SHIELD_RED, SH_BAD_CANDLE) && s.refused == 1 && s.candles == 5
		     && s.in_state[SHIELD_RED] == 0 && has(s.reason[SH_BAD_CANDLE].detail, "refused")
		     && has(s.refusal, "refused") && s.ntrans == 2 && went(&s, SHIELD_GREEN, SHIELD_RED, SH_BAD_CANDLE);
		snprintf(name, sizeof name, "%s: refused, RED for bad_candle with a detail, counted", bad[i].name);
		unit_ok(ok, name);
		if (!ok)
			printf("#   rc %d, state %s, chief %s, refused %lld, %lld transitions\n", rc,
			       shield_state_name(s.state), chief_name(&s), s.refused, s.ntrans);
	}
	/* the next good candle clears the reason but not the state */
	unit_ok(next(&s, &tp) == SHIELD_ACCEPTED && !s.reason[SH_BAD_CANDLE].active && s.state == SHIELD_RED,
	        "a good candle after a bad one: reason cleared, still RED (recovery)");
	unit_ok(has(s.refusal, "not finite"), "the last refusal is kept after the reason clears");

	/* before any candle */
	fresh(&s, &tp, NULL);
	unit_ok(put(&s, &tp, 20000, 19990, 20010, 20000, 1) == SHIELD_REFUSED && is(&s, SHIELD_RED, SH_BAD_CANDLE)
	        && s.candles == 0 && went(&s, SHIELD_AMBER, SHIELD_RED, SH_BAD_CANDLE),
	        "a bad first candle: refused, AMBER->RED");
	feed(&s, &tp, 2);
	expect(&s, SHIELD_RED, -1, "... 2 good candles after it: still RED");
	next(&s, &tp);
	unit_ok(is(&s, SHIELD_GREEN, -1) && went(&s, SHIELD_RED, SHIELD_GREEN, -1),
	        "... the 3rd: RED->GREEN, the warm-up long over");
}

static void test_order(void)
{
	shield s;
	tape tp;
	int rc, i;

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	rc = put_at(&s, &tp, tp.lt - 2 * H, 20000, 20010, 19990, 20000, 1);
	unit_ok(rc == SHIELD_REFUSED && is(&s, SHIELD_RED, SH_OUT_OF_ORDER) && s.refused == 1 && s.candles == 5
	        && has(s.reason[SH_OUT_OF_ORDER].detail, "refused: it comes after")
	        && went(&s, SHIELD_GREEN, SHIELD_RED, SH_OUT_OF_ORDER),
	        "an older candle: refused, RED for out_of_order ('it comes after')");

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	rc = put_at(&s, &tp, tp.lt, tp.o, tp.h, tp.l, tp.c, tp.v + 1);
	unit_ok(rc == SHIELD_REFUSED && is(&s, SHIELD_RED, SH_OUT_OF_ORDER)
	        && has(s.reason[SH_OUT_OF_ORDER].detail, "contradicts"),
	        "a candle at the last time with another volume: refused, RED for out_of_order ('it contradicts')");

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	rc = put_at(&s, &tp, tp.lt + 1, tp.c, tp.c + 5, tp.c - 5, tp.c, 1);
	unit_ok(rc == SHIELD_REFUSED && is(&s, SHIELD_RED, SH_OUT_OF_ORDER) && s.candles == 5
	        && has(s.reason[SH_OUT_OF_ORDER].detail, "it is less than an interval after"),
	        "a candle 1 ms after the last: refused, RED for out_of_order ('less than an interval after')");

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	rc = put_at(&s, &tp, tp.lt + H - 1, tp.c, tp.c + 5, tp.c - 5, tp.c, 1);
	unit_ok(rc == SHIELD_REFUSED && s.reason[SH_OUT_OF_ORDER].active,
	        "a candle an interval less 1 ms after the last: refused");

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	rc = again(&s, &tp, 1);
	unit_ok(rc == SHIELD_REPEAT && is(&s, SHIELD_GREEN, -1) && s.repeats == 1 && s.refused == 0 && s.candles == 5
	        && s.ntrans == 1 && s.in_state[SHIELD_GREEN] == 5,
	        "the 4th of 5 candles again: SHIELD_REPEAT, counted, nothing else changes");

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	rc = again(&s, &tp, 0);
	unit_ok(rc == SHIELD_REPEAT && is(&s, SHIELD_GREEN, -1) && s.repeats == 1 && s.refused == 0 && s.candles == 5
	        && s.ntrans == 1 && s.in_state[SHIELD_GREEN] == 5,
	        "the last of 5 candles again: SHIELD_REPEAT, counted, nothing else changes");

	/* a poll that overlaps the last ones, once the ring has wrapped */
	fresh(&s, &tp, NULL);
	feed(&s, &tp, 40);
	rc = SHIELD_REPEAT;
	for (i = 3; i >= 0; i--)
		if (again(&s, &tp, i) != SHIELD_REPEAT)
			rc = SHIELD_REFUSED;
	unit_ok(rc == SHIELD_REPEAT && next(&s, &tp) == SHIELD_ACCEPTED && is(&s, SHIELD_GREEN, -1) && s.repeats == 4
	        && s.candles == 41 && s.refused == 0,
	        "40 candles, the last 4 again, then a new one: 4 repeats, the new one accepted, GREEN");

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 40);
	rc = again(&s, &tp, SHIELD_RECENT - 1);
	unit_ok(SHIELD_RECENT == 16 && rc == SHIELD_REPEAT && s.repeats == 1 && is(&s, SHIELD_GREEN, -1),
	        "the 16th last candle again: a repeat");
	rc = again(&s, &tp, SHIELD_RECENT);
	unit_ok(rc == SHIELD_REFUSED && is(&s, SHIELD_RED, SH_OUT_OF_ORDER) && s.repeats == 1
	        && has(s.reason[SH_OUT_OF_ORDER].detail, "it comes after"),
	        "the 17th last candle again: beyond the ring, refused as out of order");

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	rc = put_at(&s, &tp, tp.hist[2][0], tp.hist[2][1], tp.hist[2][2], tp.hist[2][3], nextafter(tp.hist[2][4], 0.0),
	            tp.hist[2][5]);
	unit_ok(rc == SHIELD_REFUSED && is(&s, SHIELD_RED, SH_OUT_OF_ORDER) && s.repeats == 0,
	        "the 3rd candle again with its close 1 ulp lower: refused, not a repeat");

	/* a repeat while RED neither clears nor counts toward recovery */
	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	put_at(&s, &tp, tp.t + H, 20000, 20010, 19990, 20000, 1);
	feed(&s, &tp, 2);
	rc = again(&s, &tp, 1);
	unit_ok(rc == SHIELD_REPEAT, "2 clean candles after a gap, the one before the last again: a repeat");
	expect(&s, SHIELD_RED, -1, "... still RED, no reason");
	next(&s, &tp);
	expect(&s, SHIELD_GREEN, -1, "the 3rd clean candle: GREEN");
}

static void test_gap(void)
{
	static const struct {
		double spacing;   /* in intervals */
		const char *missing;
	} gaps[] = {
		{2, "1 candle(s) missing"}, {3, "2 candle(s) missing"}, {11, "10 candle(s) missing"},
		{2.4, "off the interval grid (2.400 intervals"}, {1.001, "off the interval grid (1.001 intervals"},
	};
	char name[96];
	shield s;
	tape tp;
	size_t i;
	int rc;

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	tp.t += 2 * H;
	rc = next(&s, &tp);
	expect(&s, SHIELD_RED, SH_GAP, "a candle 3 intervals after the last: RED for gap");
	unit_ok(rc == SHIELD_ACCEPTED && s.candles == 6 && s.gaps == 1, "the candle after a gap is accepted, the gap counted");
	unit_ok(has(s.reason[SH_GAP].detail, "2 candle(s) missing"), "the gap detail says 2 candle(s) missing");
	unit_ok(has(s.reason[SH_GAP].detail, "2023-01-01 05:00 to 2023-01-01 06:00"),
	        "the gap detail names the missing candles");
	next(&s, &tp);
	unit_ok(!s.reason[SH_GAP].active && s.state == SHIELD_RED && s.gaps == 1,
	        "the next candle clears gap, the state stays RED");
	tp.t += H;
	next(&s, &tp);
	unit_ok(s.reason[SH_GAP].active && s.gaps == 2, "a second gap: counted");

	for (i = 0; i < sizeof gaps / sizeof gaps[0]; i++) {
		fresh(&s, &tp, NULL);
		feed(&s, &tp, 5);
		put_at(&s, &tp, tp.lt + gaps[i].spacing * H, tp.c, tp.c + 5, tp.c - 5, tp.c, 1);
		snprintf(name, sizeof name, "a candle %g intervals after the last: %s", gaps[i].spacing, gaps[i].missing);
		unit_ok(s.reason[SH_GAP].active && has(s.reason[SH_GAP].detail, gaps[i].missing), name);
	}
}

static void test_volume_flat(void)
{
	shield_config cfg;
	shield s;
	tape tp;
	double p;

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	put(&s, &tp, 20000, 20010, 19990, 20000, 0);
	expect(&s, SHIELD_RED, SH_ZERO_VOLUME, "a zero-volume candle: RED for zero_volume (run 1)");

	shield_defaults(&cfg, H);
	cfg.zero_volume_run = 3;
	fresh(&s, &tp, &cfg);
	feed(&s, &tp, 5);
	put(&s, &tp, 20000, 20010, 19990, 20000, 0);
	put(&s, &tp, 20000, 20010, 19990, 20000, 0);
	expect(&s, SHIELD_GREEN, -1, "zero_volume_run 3: two zero-volume candles are fine");
	put(&s, &tp, 20000, 20010, 19990, 20000, 0);
	expect(&s, SHIELD_RED, SH_ZERO_VOLUME, "zero_volume_run 3: the third is RED");

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	p = tp.c;
	put(&s, &tp, p, p, p, p, 2);
	put(&s, &tp, p, p, p, p, 2);
	expect(&s, SHIELD_GREEN, -1, "two flat candles: still GREEN");
	put(&s, &tp, p, p, p, p, 2);
	expect(&s, SHIELD_AMBER, SH_FLAT, "the third flat candle: AMBER for flat");
	unit_ok(has(s.reason[SH_FLAT].detail, "3 flat candle(s)"), "the flat detail counts them");
	put(&s, &tp, p, p, p, p, 0);
	expect(&s, SHIELD_RED, SH_ZERO_VOLUME, "AMBER to RED at once on a zero-volume candle");
	unit_ok(s.ntrans == 3 && went(&s, SHIELD_AMBER, SHIELD_RED, SH_ZERO_VOLUME),
	        "the escalation is one AMBER->RED transition");
	next(&s, &tp);
	unit_ok(!s.reason[SH_FLAT].active && !s.reason[SH_ZERO_VOLUME].active, "a normal candle clears flat and zero_volume");
}

/* n candles of a 3% range around 20000: true ranges of 600 */
static void feed_volatile(shield *s, tape *tp, int n)
{
	int i;

	for (i = 0; i < n; i++)
		put(s, tp, 20000, 20300, 19700, 20000, 5);
}

static void test_jump(void)
{
	shield_config cfg;
	shield s;
	tape tp;
	double pc;

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 20);
	pc = tp.c;
	put(&s, &tp, pc, 1.2 * pc, pc - 5, 1.19 * pc, 3);
	expect(&s, SHIELD_AMBER, SH_JUMP, "a high 20% above the last close after 20 quiet candles: AMBER for jump");
	unit_ok(has(s.reason[SH_JUMP].detail, "moved 20.0%"), "the jump detail gives the move");

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 20);
	pc = tp.c;
	put(&s, &tp, pc, pc + 5, 0.8 * pc, 0.81 * pc, 3);
	expect(&s, SHIELD_AMBER, SH_JUMP, "a low 20% below the last close: AMBER for jump");

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 20);
	pc = tp.c;
	put(&s, &tp, pc, 1.079 * pc, pc - 5, 1.07 * pc, 3);
	expect(&s, SHIELD_GREEN, -1, "a 7.9% move (under jump_pct 8%, over 10 ATR): no jump");

	fresh(&s, &tp, NULL);
	feed_volatile(&s, &tp, 20);
	put(&s, &tp, 20000, 24000, 19900, 23900, 5);
	expect(&s, SHIELD_GREEN, -1, "a 20% move under 10 ATR (ATR 600): no jump");

	shield_defaults(&cfg, H);
	cfg.jump_atr = 5;
	fresh(&s, &tp, &cfg);
	feed_volatile(&s, &tp, 20);
	put(&s, &tp, 20000, 24000, 19900, 23900, 5);
	expect(&s, SHIELD_AMBER, SH_JUMP, "the same move with jump_atr 5 (over 5 ATR): jump");

	shield_defaults(&cfg, H);
	cfg.jump_atr = 1000;
	fresh(&s, &tp, &cfg);
	feed(&s, &tp, 20);
	pc = tp.c;
	put(&s, &tp, pc, 1.2 * pc, pc - 5, 1.19 * pc, 3);
	expect(&s, SHIELD_GREEN, -1, "jump_atr 1000: a 20% move after quiet candles is under the ATR threshold");

	fresh(&s, &tp, NULL);
	next(&s, &tp);
	pc = tp.c;
	put(&s, &tp, pc, 1.2 * pc, pc - 5, 1.19 * pc, 3);
	expect(&s, SHIELD_AMBER, SH_JUMP, "the second candle (ATR not ready): jump_pct alone decides");

	/* the ATR (period 14) is ready once 14 true ranges came before */
	fresh(&s, &tp, NULL);
	feed_volatile(&s, &tp, 14);
	put(&s, &tp, 20000, 24000, 19900, 23900, 5);
	expect(&s, SHIELD_AMBER, SH_JUMP, "a 20% move on the 15th candle (13 true ranges before it): jump_pct decides");
	fresh(&s, &tp, NULL);
	feed_volatile(&s, &tp, 15);
	put(&s, &tp, 20000, 24000, 19900, 23900, 5);
	expect(&s, SHIELD_GREEN, -1, "a 20% move on the 16th candle (14 true ranges before it): under 10 ATR");
}

/* the ATR against its definition: the mean of the first atr_period true
   ranges, then Wilder's (atr * (p - 1) + tr) / p */
static void test_atr(void)
{
	shield_config cfg;
	shield s;
	tape tp;
	double want = 0, worst = 0;
	int n, p;

	for (p = 1; p <= 20; p += 19) {
		shield_defaults(&cfg, H);
		cfg.atr_period = p;
		fresh(&s, &tp, &cfg);
		want = 0;
		for (n = 1; n <= 60; n++) {
			/* true ranges of 50 to 346: the close stays 20000, the range is centred on it */
			double r = 50.0 + 37.0 * (n % 9);
			put(&s, &tp, 20000, 20000 + r / 2, 20000 - r / 2, 20000, 1);
			if (n == 1)
				continue;
			if (n <= p + 1)
				want += r / p;
			else
				want = (want * (p - 1) + r) / p;
			if (n >= p + 1 && fabs(s.atr - want) > worst)
				worst = fabs(s.atr - want);
		}
	}
	unit_ok(worst < 1e-9, "ATR (period 1 and 20): the mean of the first true ranges, then Wilder's smoothing");
	if (!(worst < 1e-9))
		printf("#   off by %g\n", worst);
}

/* an AMBER reason that lasts: raised, and cleared */
enum { L_TRIBUNAL, L_SKEW, L_API, L_N };

static void lasting(shield *s, int which, int on, double now)
{
	int i;

	switch (which) {
	case L_TRIBUNAL:
		shield_signal(s, SH_TRIBUNAL, on, now, "gemini 503");
		break;
	case L_SKEW:
		shield_skew(s, on ? 9000 : 0, now);
		break;
	default:
		for (i = 0; i < (on ? 3 : 1); i++)
			shield_api(s, !on, now, "GET /v5/market/kline");
		break;
	}
}

static void test_hysteresis(void)
{
	static const int lasting_check[L_N] = {SH_TRIBUNAL, SH_CLOCK_SKEW, SH_API_ERRORS};
	shield_config cfg;
	shield s;
	tape tp;
	char name[160];
	int i, red = 1, which;
	double p;

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	tp.t += H;
	next(&s, &tp);
	expect(&s, SHIELD_RED, SH_GAP, "GREEN to RED on the faulty candle itself");
	unit_ok(s.ntrans == 2 && went(&s, SHIELD_GREEN, SHIELD_RED, SH_GAP) && s.trans[1].seq == 2
	        && s.trans[1].time == tp.lt + H && has(s.trans[1].detail, "missing"),
	        "one transition GREEN->RED for gap, at the candle's close, with the gap's detail");
	next(&s, &tp);
	next(&s, &tp);
	expect(&s, SHIELD_RED, -1, "recovery 3: RED after 2 clean candles");
	next(&s, &tp);
	expect(&s, SHIELD_GREEN, -1, "recovery 3: GREEN on the 3rd clean candle");
	unit_ok(s.ntrans == 3 && went(&s, SHIELD_RED, SHIELD_GREEN, -1) && s.trans[2].detail[0] != '\0',
	        "the step down is one RED->GREEN transition, with no chief check");

	/* a fault during recovery starts the count again */
	tp.t += H;
	next(&s, &tp);
	feed(&s, &tp, 2);
	put(&s, &tp, 20000, 20010, 19990, 20000, 0);
	feed(&s, &tp, 2);
	expect(&s, SHIELD_RED, -1, "gap, 2 clean, zero volume, 2 clean: still RED");
	next(&s, &tp);
	expect(&s, SHIELD_GREEN, -1, "... and GREEN on the 3rd clean after the last fault");

	shield_defaults(&cfg, H);
	cfg.recovery = 5;
	fresh(&s, &tp, &cfg);
	feed(&s, &tp, 5);
	tp.t += H;
	next(&s, &tp);
	for (i = 0; i < 4; i++) {
		next(&s, &tp);
		red &= s.state == SHIELD_RED;
	}
	unit_ok(red, "recovery 5: RED for 4 clean candles");
	next(&s, &tp);
	expect(&s, SHIELD_GREEN, -1, "recovery 5: GREEN on the 5th");

	/* from RED down to AMBER when a lesser reason (the warm-up) remains */
	shield_defaults(&cfg, H);
	cfg.warmup = 20;
	fresh(&s, &tp, &cfg);
	feed(&s, &tp, 9);
	tp.t += H;
	next(&s, &tp);
	expect(&s, SHIELD_RED, SH_GAP, "a gap during the warm-up: RED");
	feed(&s, &tp, 2);
	expect(&s, SHIELD_RED, SH_WARMUP, "2 clean candles: still RED");
	next(&s, &tp);
	expect(&s, SHIELD_AMBER, SH_WARMUP, "3 clean candles: down to AMBER, the warm-up remains");
	unit_ok(went(&s, SHIELD_RED, SHIELD_AMBER, SH_WARMUP), "the step down names the warm-up");
	feed(&s, &tp, 7);
	expect(&s, SHIELD_GREEN, -1, "GREEN at the end of the warm-up");

	/* a lasting AMBER reason after a gap: RED, AMBER after `recovery`
	   candles without a RED one, GREEN `recovery` candles after it clears */
	for (which = 0; which < L_N; which++) {
		const char *what = shield_check_name(lasting_check[which]);
		int k = lasting_check[which], ok;
		long long nt;

		fresh(&s, &tp, NULL);
		feed(&s, &tp, 5);
		tp.t += H;
		next(&s, &tp);
		lasting(&s, which, 1, tp.t);
		ok = is(&s, SHIELD_RED, k) && shield_chief(&s) == SH_GAP;
		feed(&s, &tp, 2);
		ok &= is(&s, SHIELD_RED, k);
		snprintf(name, sizeof name, "%s raised after a gap: RED for 2 candles", what);
		unit_ok(ok, name);
		next(&s, &tp);
		snprintf(name, sizeof name, "%s: RED->AMBER on the 3rd candle without a RED reason", what);
		unit_ok(is(&s, SHIELD_AMBER, k) && shield_chief(&s) == k && went(&s, SHIELD_RED, SHIELD_AMBER, k), name);
		nt = s.ntrans;
		feed(&s, &tp, 10);
		snprintf(name, sizeof name, "%s: 10 more candles, still AMBER, no transition", what);
		unit_ok(is(&s, SHIELD_AMBER, k) && s.ntrans == nt, name);
		lasting(&s, which, 0, tp.t);
		feed(&s, &tp, 2);
		snprintf(name, sizeof name, "%s cleared, 2 candles: AMBER with no reason", what);
		expect(&s, SHIELD_AMBER, -1, name);
		next(&s, &tp);
		snprintf(name, sizeof name, "%s cleared, 3 candles: AMBER->GREEN", what);
		unit_ok(is(&s, SHIELD_GREEN, -1) && went(&s, SHIELD_AMBER, SHIELD_GREEN, -1), name);
	}

	/* the same with flat candles after the gap */
	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	tp.t += H;
	next(&s, &tp);
	p = tp.c;
	put(&s, &tp, p, p, p, p, 1);
	put(&s, &tp, p, p, p, p, 1);
	expect(&s, SHIELD_RED, -1, "a gap, 2 flat candles: RED");
	put(&s, &tp, p, p, p, p, 1);
	unit_ok(is(&s, SHIELD_AMBER, SH_FLAT) && went(&s, SHIELD_RED, SHIELD_AMBER, SH_FLAT),
	        "the 3rd flat candle: flat, and RED->AMBER (3 candles without a RED reason)");
	for (i = 0; i < 5; i++)
		put(&s, &tp, p, p, p, p, 1);
	expect(&s, SHIELD_AMBER, SH_FLAT, "5 more flat candles: AMBER");
	feed(&s, &tp, 2);
	expect(&s, SHIELD_AMBER, -1, "2 quiet candles: AMBER, flat cleared");
	next(&s, &tp);
	expect(&s, SHIELD_GREEN, -1, "the 3rd quiet candle: GREEN");

	/* escalation from a lasting AMBER is immediate */
	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	shield_signal(&s, SH_TRIBUNAL, 1, tp.t, "gemini 503");
	feed(&s, &tp, 4);
	put(&s, &tp, 20000, 20010, 19990, 20000, 0);
	unit_ok(is(&s, SHIELD_RED, SH_ZERO_VOLUME) && went(&s, SHIELD_AMBER, SHIELD_RED, SH_ZERO_VOLUME),
	        "tribunal down for 4 candles, then a zero-volume candle: AMBER->RED at once");

	/* the AMBER fault over before the RED one is recovered from */
	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	tp.t += H;
	next(&s, &tp);
	p = tp.c;
	put(&s, &tp, p, 1.2 * p, p - 5, p, 3);
	expect(&s, SHIELD_RED, SH_JUMP, "a gap, then a 20% wick: RED");
	feed(&s, &tp, 2);
	expect(&s, SHIELD_AMBER, -1, "... then 2 quiet: 3 candles without a RED reason, 2 without any: AMBER");
	next(&s, &tp);
	expect(&s, SHIELD_GREEN, -1, "... and the 3rd quiet: GREEN");
}

static void test_stale(void)
{
	shield s;
	tape tp;
	double due;

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	due = tp.lt + 2 * H;   /* the next candle's close */
	shield_tick(&s, due + GRACE);
	expect(&s, SHIELD_GREEN, -1, "tick at the next close + grace: not stale yet");
	shield_tick(&s, HUGE_VAL);
	shield_tick(&s, (double)NAN);
	expect(&s, SHIELD_GREEN, -1, "tick at +inf or NaN: ignored, not stale");
	shield_tick(&s, due + GRACE + 1);
	expect(&s, SHIELD_RED, SH_STALE, "tick 1 ms later: RED for stale");
	unit_ok(has(s.reason[SH_STALE].detail, "30 s late"), "the stale detail says how late");
	shield_tick(&s, (double)NAN);
	shield_tick(&s, -HUGE_VAL);
	expect(&s, SHIELD_RED, SH_STALE, "tick at NaN or -inf: ignored, stale stays");
	next(&s, &tp);
	expect(&s, SHIELD_RED, -1, "the late candle clears stale, the state stays RED");
	next(&s, &tp);
	expect(&s, SHIELD_RED, -1, "2 clean candles: RED");
	next(&s, &tp);
	expect(&s, SHIELD_GREEN, -1, "3 clean candles: GREEN");
}

static void test_heartbeat(void)
{
	shield_config cfg;
	shield s;
	tape tp;
	double t0;

	shield_defaults(&cfg, H);
	cfg.heartbeat_ms = 10000;
	fresh(&s, &tp, &cfg);
	feed(&s, &tp, 5);
	t0 = tp.t;
	shield_heartbeat(&s, t0);
	shield_tick(&s, t0 + 10000);
	expect(&s, SHIELD_GREEN, -1, "heartbeat 10 s: silent for exactly 10 s is fine");
	shield_tick(&s, HUGE_VAL);
	expect(&s, SHIELD_GREEN, -1, "heartbeat 10 s: a tick at +inf is ignored");
	shield_tick(&s, t0 + 20000);
	expect(&s, SHIELD_RED, SH_SILENT, "heartbeat 10 s: 20 s without one is RED for silent");
	unit_ok(has(s.reason[SH_SILENT].detail, "silent for 20 s"), "the silent detail says how long");
	shield_heartbeat(&s, (double)NAN);
	expect(&s, SHIELD_RED, SH_SILENT, "a heartbeat at NaN: ignored, silent stays");
	shield_heartbeat(&s, t0 + 21000);
	expect(&s, SHIELD_RED, -1, "a heartbeat clears silent, the state stays RED");
	feed(&s, &tp, 3);
	expect(&s, SHIELD_GREEN, -1, "3 clean candles after: GREEN");
	shield_heartbeat(&s, (double)NAN);
	shield_tick(&s, t0 + 32000);
	expect(&s, SHIELD_RED, SH_SILENT, "a heartbeat at NaN does not count as one: silent 11 s after the last");

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	t0 = tp.t;
	shield_heartbeat(&s, t0);
	shield_tick(&s, t0 + 20000);
	shield_tick(&s, t0 + 3000000);
	expect(&s, SHIELD_GREEN, -1, "heartbeat_ms 0: never silent");
}

static void test_signals(void)
{
	static const int outside[] = {-1, SH_NCHECKS, SH_NCHECKS + 1, 1000, -1000};
	shield s;
	tape tp;
	size_t i;
	unsigned active;
	int ok = 1;

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	shield_signal(&s, SH_DISCONNECTED, 1, tp.t, "websocket closed (1006)");
	expect(&s, SHIELD_RED, SH_DISCONNECTED, "disconnected: RED");
	unit_ok(has(s.reason[SH_DISCONNECTED].detail, "websocket closed (1006)"), "the signal's detail is kept");
	shield_signal(&s, SH_TRIBUNAL, 1, tp.t, NULL);
	unit_ok(shield_chief(&s) == SH_DISCONNECTED && s.reason[SH_TRIBUNAL].active && s.state == SHIELD_RED,
	        "tribunal down too: the chief stays disconnected (RED beats AMBER)");
	shield_signal(&s, SH_DISCONNECTED, 0, tp.t, NULL);
	shield_signal(&s, SH_TRIBUNAL, 0, tp.t, NULL);
	expect(&s, SHIELD_RED, -1, "both cleared: reasons gone, still RED until clean candles");
	feed(&s, &tp, 3);
	expect(&s, SHIELD_GREEN, -1, "3 clean candles: GREEN");
	shield_signal(&s, SH_TRIBUNAL, 1, tp.t, "gemini 503");
	expect(&s, SHIELD_AMBER, SH_TRIBUNAL, "tribunal unavailable: AMBER");
	shield_signal(&s, SH_TRIBUNAL, 0, tp.t, NULL);
	feed(&s, &tp, 2);
	expect(&s, SHIELD_AMBER, -1, "tribunal back, 2 candles: AMBER");
	next(&s, &tp);
	expect(&s, SHIELD_GREEN, -1, "tribunal back, 3 candles: GREEN");

	/* live execution's own signals: a failed reconciliation stops
	   everything; the kill switch and the day's loss stop entries only,
	   so that a losing position can still be sold */
	shield_signal(&s, SH_HALTED, 1, tp.t, "halt() from the REPL");
	expect(&s, SHIELD_AMBER, SH_HALTED, "halted: AMBER (exits only)");
	shield_signal(&s, SH_HALTED, 0, tp.t, NULL);
	shield_signal(&s, SH_RISK, 1, tp.t, "the day's loss");
	expect(&s, SHIELD_AMBER, SH_RISK, "the day's loss beyond the limit: AMBER (exits only)");
	unit_ok(shield_allows(s.state, 0) && !shield_allows(s.state, 1),
	        "the day's loss: an exit passes the gate, an entry does not");
	shield_signal(&s, SH_RISK, 0, tp.t, NULL);
	shield_signal(&s, SH_RECONCILE, 1, tp.t, "the account holds less");
	expect(&s, SHIELD_RED, SH_RECONCILE, "the account cannot be reconciled: RED");
	shield_signal(&s, SH_RECONCILE, 0, tp.t, NULL);
	feed(&s, &tp, 3);
	expect(&s, SHIELD_GREEN, -1, "reconciled, 3 clean candles: GREEN");

	active = s.active;
	for (i = 0; i < sizeof outside / sizeof outside[0]; i++) {
		shield_signal(&s, outside[i], 1, tp.t, "no such check");
		ok &= s.state == SHIELD_GREEN && s.active == active && shield_chief(&s) < 0;
	}
	shield_signal(&s, SH_TRIBUNAL, 1, tp.t, "gemini 503");
	for (i = 0; i < sizeof outside / sizeof outside[0]; i++) {
		shield_signal(&s, outside[i], 0, tp.t, NULL);
		ok &= s.reason[SH_TRIBUNAL].active && s.state == SHIELD_AMBER;
	}
	unit_ok(ok, "a signal for a check outside 0..SH_NCHECKS-1 is ignored, on or off");
}

static void test_api(void)
{
	shield s;
	tape tp;

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	shield_api(&s, 0, tp.t, "GET /v5/market/kline");
	shield_api(&s, 0, tp.t, "GET /v5/market/kline");
	expect(&s, SHIELD_GREEN, -1, "2 failed requests: GREEN");
	shield_api(&s, 0, tp.t, "GET /v5/market/kline");
	expect(&s, SHIELD_AMBER, SH_API_ERRORS, "3 failed requests in a row: AMBER for api_errors");
	unit_ok(has(s.reason[SH_API_ERRORS].detail, "3 failed requests in a row, the last: GET /v5/market/kline"),
	        "the api detail counts and names the request");
	shield_api(&s, 1, (double)NAN, "GET /v5/market/kline");
	expect(&s, SHIELD_AMBER, SH_API_ERRORS, "a success at NaN: ignored, api_errors stays");
	shield_api(&s, 1, tp.t, "GET /v5/market/kline");
	expect(&s, SHIELD_AMBER, -1, "a success clears api_errors (the state waits for clean candles)");

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	shield_api(&s, 0, tp.t, "a");
	shield_api(&s, 0, tp.t, "b");
	shield_api(&s, 1, tp.t, "c");
	shield_api(&s, 0, tp.t, "d");
	shield_api(&s, 0, tp.t, "e");
	expect(&s, SHIELD_GREEN, -1, "2 failures, a success, 2 failures: GREEN (the success reset the run)");

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	shield_api(&s, 0, (double)NAN, "a");
	shield_api(&s, 0, HUGE_VAL, "b");
	shield_api(&s, 0, (double)NAN, "c");
	shield_api(&s, 0, tp.t, "d");
	shield_api(&s, 0, tp.t, "e");
	expect(&s, SHIELD_GREEN, -1, "3 failures at a non-finite time, then 2: GREEN (the first 3 ignored)");
	shield_api(&s, 0, tp.t, "f");
	expect(&s, SHIELD_AMBER, SH_API_ERRORS, "... the 3rd counted failure: AMBER");
}

static void test_strategy(void)
{
	shield s;
	tape tp;
	shield_config c;
	int i;

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	for (i = 0; i < 9; i++)
		shield_strategy(&s, 0, tp.t, "in entry(m): s.lua:3: bad");
	expect(&s, SHIELD_GREEN, -1, "9 failed candles: GREEN");
	shield_strategy(&s, 0, tp.t, "in entry(m): s.lua:3: bad");
	expect(&s, SHIELD_AMBER, SH_STRATEGY, "10 failed candles in a row: AMBER for strategy");
	unit_ok(has(s.reason[SH_STRATEGY].detail, "the strategy failed on 10 candles in a row, the last in entry(m): s.lua:3: bad")
	        && strcmp(shield_check_name(SH_STRATEGY), "strategy") == 0,
	        "the strategy detail counts the candles and gives the last error");
	unit_ok(shield_allows(s.state, 0) && !shield_allows(s.state, 1), "no entries; exits go on");
	shield_strategy(&s, 1, tp.t, NULL);
	expect(&s, SHIELD_AMBER, -1, "a clean candle clears it (the state waits for clean candles)");
	feed(&s, &tp, 3);
	expect(&s, SHIELD_GREEN, -1, "... and GREEN after recovery");

	shield_defaults(&c, H);
	c.strategy_errors = 2;
	fresh(&s, &tp, &c);
	feed(&s, &tp, 5);
	shield_strategy(&s, 0, tp.t, "a");
	shield_strategy(&s, 1, tp.t, "b");
	shield_strategy(&s, 0, tp.t, "c");
	expect(&s, SHIELD_GREEN, -1, "strategy_errors=2: a failure, a success, a failure: GREEN");
	shield_strategy(&s, 0, tp.t, "d");
	expect(&s, SHIELD_AMBER, SH_STRATEGY, "... and a second in a row: AMBER");
	c.strategy_errors = 0;
	fresh(&s, &tp, &c);
	feed(&s, &tp, 5);
	shield_strategy(&s, 0, tp.t, "a");
	expect(&s, SHIELD_AMBER, SH_STRATEGY, "strategy_errors=0 is 1: the check cannot be switched off");
}

static void test_skew(void)
{
	shield s;
	tape tp;

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	shield_skew(&s, 5000, tp.t);
	shield_skew(&s, -5000, tp.t);
	expect(&s, SHIELD_GREEN, -1, "a skew of exactly max_skew (5 s) either way: GREEN");
	shield_skew(&s, 9000, (double)NAN);
	shield_skew(&s, (double)NAN, HUGE_VAL);
	expect(&s, SHIELD_GREEN, -1, "a skew reported at a non-finite time: ignored");
	shield_skew(&s, 5001, tp.t);
	expect(&s, SHIELD_AMBER, SH_CLOCK_SKEW, "a skew of 5001 ms: AMBER for clock_skew");
	unit_ok(has(s.reason[SH_CLOCK_SKEW].detail, "5001 ms behind"), "a positive skew: the local clock is behind");
	shield_skew(&s, -7000, tp.t);
	unit_ok(s.reason[SH_CLOCK_SKEW].active && has(s.reason[SH_CLOCK_SKEW].detail, "7000 ms ahead of"),
	        "a skew of -7000 ms: still clock_skew, the local clock is ahead");
	shield_skew(&s, 0, (double)NAN);
	unit_ok(s.reason[SH_CLOCK_SKEW].active, "a small skew at NaN: ignored, clock_skew stays");
	shield_skew(&s, 100, tp.t);
	expect(&s, SHIELD_AMBER, -1, "a small skew clears clock_skew");

	fresh(&s, &tp, NULL);
	feed(&s, &tp, 5);
	shield_skew(&s, (double)NAN, tp.t);
	unit_ok(is(&s, SHIELD_AMBER, SH_CLOCK_SKEW) && has(s.reason[SH_CLOCK_SKEW].detail, "unknown"),
	        "a NaN skew: AMBER for clock_skew, 'unknown'");
	shield_skew(&s, 0, tp.t);
	shield_skew(&s, -HUGE_VAL, tp.t);
	expect(&s, SHIELD_AMBER, SH_CLOCK_SKEW, "an infinite skew: clock_skew");
}

static void test_transitions(void)
{
	char want[32];
	shield s;
	tape tp;
	const struct shield_transition *t;
	long long seq, oldest;
	int i, ok = 1;

	fresh(&s, &tp, NULL);
	for (i = 1; i <= 50; i++) {
		snprintf(want, sizeof want, "drop %d", i);
		shield_signal(&s, SH_DISCONNECTED, 1, tp.t, want);
		shield_signal(&s, SH_DISCONNECTED, 0, tp.t, NULL);
		feed(&s, &tp, 3);
	}
	unit_ok(s.ntrans == 100, "50 faults and recoveries: 100 transitions");
	oldest = s.trans[0].seq;
	for (i = 1; i < SHIELD_HISTORY; i++)
		if (s.trans[i].seq < oldest)
			oldest = s.trans[i].seq;
	unit_ok(oldest == 100 - SHIELD_HISTORY + 1 && trans_seq(&s, oldest) != NULL && trans_seq(&s, oldest - 1) == NULL,
	        "the ring keeps the last SHIELD_HISTORY transitions");
	for (seq = 100 - SHIELD_HISTORY + 1; seq <= 100; seq++) {
		t = trans_seq(&s, seq);
		if (t == NULL) {
			ok = 0;
			break;
		}
		ok &= t->seq == seq;
		if (seq % 2) {
			snprintf(want, sizeof want, "drop %lld", (seq + 1) / 2);
			ok &= t->from == SHIELD_GREEN && t->to == SHIELD_RED && t->check == SH_DISCONNECTED
			      && strcmp(t->detail, want) == 0;
		} else {
			ok &= t->from == SHIELD_RED && t->to == SHIELD_GREEN && t->check == -1 && t->detail[0] != '\0';
		}
	}
	unit_ok(ok, "each kept transition has its seq, from, to, chief check and detail");
	t = trans_seq(&s, 1);
	fresh(&s, &tp, NULL);
	shield_signal(&s, SH_DISCONNECTED, 1, tp.t, "drop 1");
	unit_ok(t == NULL && went(&s, SHIELD_AMBER, SHIELD_RED, SH_DISCONNECTED),
	        "the first drop, before any candle, was AMBER->RED");
}

static void test_allows(void)
{
	unit_ok(shield_allows(SHIELD_GREEN, 1) && shield_allows(SHIELD_GREEN, 0), "GREEN allows entries and exits");
	unit_ok(!shield_allows(SHIELD_AMBER, 1) && shield_allows(SHIELD_AMBER, 0), "AMBER allows exits only");
	unit_ok(!shield_allows(SHIELD_RED, 1) && !shield_allows(SHIELD_RED, 0), "RED allows nothing");
	unit_ok(!shield_allows(-1, 0) && !shield_allows(3, 0) && !shield_allows(3, 1), "an unknown state allows nothing");
	unit_ok(strcmp(shield_state_name(SHIELD_AMBER), "AMBER") == 0 && strcmp(shield_check_name(SH_GAP), "gap") == 0
	        && shield_check_severity(SH_JUMP) == SHIELD_AMBER && shield_check_severity(SH_STALE) == SHIELD_RED,
	        "names and severities");
	unit_ok(strcmp(shield_state_name(-1), "RED") == 0 && strcmp(shield_state_name(3), "RED") == 0
	        && strcmp(shield_check_name(-1), "?") == 0 && strcmp(shield_check_name(SH_NCHECKS), "?") == 0
	        && shield_check_severity(-1) == SHIELD_RED && shield_check_severity(SH_NCHECKS) == SHIELD_RED
	        && shield_check_severity(1 << 20) == SHIELD_RED,
	        "out of range: state RED, check '?', severity RED");
}

static void test_in_state(void)
{
	shield_config cfg;
	shield s;
	tape tp;

	shield_defaults(&cfg, H);
	cfg.warmup = 5;
	fresh(&s, &tp, &cfg);
	feed(&s, &tp, 15);               /* 4 AMBER, 11 GREEN */
	tp.t += H;
	feed(&s, &tp, 3);                /* the gap and 2 clean: 3 RED */
	again(&s, &tp, 1);               /* a repeat: not counted */
	put(&s, &tp, 1, 0.5, 1, 1, 1);   /* refused: not counted */
	feed(&s, &tp, 4);                /* the refusal restarted recovery: 2 RED, 2 GREEN */
	unit_ok(s.in_state[SHIELD_GREEN] == 13 && s.in_state[SHIELD_AMBER] == 4 && s.in_state[SHIELD_RED] == 5
	        && s.repeats == 1 && s.refused == 1,
	        "in_state counts accepted candles by the state after each");
	if (!(s.in_state[SHIELD_GREEN] == 13 && s.in_state[SHIELD_AMBER] == 4 && s.in_state[SHIELD_RED] == 5))
		printf("#   GREEN %lld AMBER %lld RED %lld\n", s.in_state[0], s.in_state[1], s.in_state[2]);
}

/* ---- the property test ---- */

#define STEPS 200000
#define WARMUP 30
#define HEARTBEAT 10000.0
#define RECENT 16            /* the candles a repeat is looked for among */
#define MODEL_HIST 64

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double unif(void)
{
	return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0);
}

/* the class of candles beyond any plausible range or magnitude: each
   spike (open, high, low, close; up and down; just past the bound and far
   past it), subnormal, tiny and huge prices and volumes, is refused as
   bad_candle, counts as no candle, and leaves the ATRs as they were; a move
   inside the range is at worst a jump, whose prices are not clean */
static void test_implausible(void)
{
	static const double ups[] = {2.05, 3.0, 30.0, 1e6, 1e10};
	static const double downs[] = {1 / 2.05, 0.3, 0.01 / 20000, 1e-9};
	char name[200];
	shield s;
	tape tp;
	double pc, atr, latr, f;
	size_t i;
	int side, rc, ok;

	for (side = 0; side < 8; side++) {
		const double *set = side % 2 == 0 ? ups : downs;
		size_t n = side % 2 == 0 ? sizeof ups / sizeof ups[0] : sizeof downs / sizeof downs[0];
		for (i = 0; i < n; i++) {
			double o, h, l, c;
			const char *what = side / 2 == 0 ? "open" : side / 2 == 1 ? "close" : side / 2 == 2 ? "wick" : "body";
			fresh(&s, &tp, NULL);
			feed(&s, &tp, 30);
			pc = tp.c, atr = s.atr, latr = s.latr, f = set[i];
			o = c = pc;
			if (side / 2 == 0)
				o = pc * f;          /* the open alone spiked */
			else if (side / 2 == 1)
				c = pc * f;          /* the close */
			else if (side / 2 == 3)
				o = c = pc * f;      /* the whole candle */
			h = fmax(fmax(o, c), f > 1 ? pc * f : pc) * (1 + 1e-9);
			l = fmin(fmin(o, c), f < 1 ? pc * f : pc) * (1 - 1e-9);
			rc = shield_candle(&s, tp.t, o, h, l, c, 3);
			ok = rc == SHIELD_REFUSED && is(&s, SHIELD_RED, SH_BAD_CANDLE) && s.candles == 30 && s.atr == atr
			     && s.latr == latr && !shield_clean(&s, tp.t) && has(s.refusal, "implausible");
			snprintf(name, sizeof name, "a %s at %g x the last close after quiet candles: refused as bad_candle, "
			         "RED, no fill, ATRs untouched", what, f);
			unit_ok(ok, name);
			if (!ok)
				printf("#   rc %d, state %s, chief %s, refusal '%s'\n", rc, shield_state_name(s.state),
				       chief_name(&s), s.refusal);
		}
	}
	/* the range is relative to the ATR too: after volatile candles (a true
	   range of 3%, log-ATR 0.03), 2.5x is within 50 ATR and only a jump */
	fresh(&s, &tp, NULL);
	feed_volatile(&s, &tp, 30);
	for (i = 0; i < 30; i++)
		put(&s, &tp, 20000, 20000 * 1.03, 20000 / 1.03, 20000, 5);
	rc = put(&s, &tp, 20000, 50000, 19900, 49000, 5);
	unit_ok(rc == SHIELD_ACCEPTED && is(&s, SHIELD_AMBER, SH_JUMP) && !shield_clean(&s, tp.lt),
	        "2.5x after volatile candles (within 50 ATR): accepted, but a jump and not clean");
	rc = put(&s, &tp, 49000, 49000 * 1000, 48000, 49000, 5);
	unit_ok(rc == SHIELD_REFUSED && is(&s, SHIELD_RED, SH_BAD_CANDLE), "1000x after them (beyond 50 ATR): refused");
	/* a +30% open is a jump: accepted, its prices not clean */
	fresh(&s, &tp, NULL);
	feed(&s, &tp, 30);
	pc = tp.c;
	rc = put(&s, &tp, 1.3 * pc, 1.3 * pc, pc, pc, 3);
	unit_ok(rc == SHIELD_ACCEPTED && is(&s, SHIELD_AMBER, SH_JUMP) && !shield_clean(&s, tp.lt)
	        && !shield_clean(&s, tp.lt - H), "a +30% open: a jump, and neither it nor an older candle is clean");
	next(&s, &tp);
	unit_ok(shield_clean(&s, tp.lt), "the next quiet candle is clean");
	/* before the ATR is ready the factor alone decides, from the 2nd candle */
	fresh(&s, &tp, NULL);
	next(&s, &tp);
	pc = tp.c;
	unit_ok(put(&s, &tp, pc, 2.5 * pc, pc, pc, 1) == SHIELD_REFUSED, "the 2nd candle, 2.5x: refused (no ATR yet)");
	/* magnitudes: any candle, the first too */
	{
		static const struct { const char *name; double o, h, l, c, v; } mag[] = {
			{"a subnormal low", 20000, 20010, 1e-320, 20000, 1},
			{"all prices subnormal", 4e-320, 5e-320, 4e-320, 4e-320, 1},
			{"prices of 1e-13", 1e-13, 1e-13, 1e-13, 1e-13, 1},
			{"a high of 1e300", 20000, 1e300, 19990, 20000, 1},
			{"all prices 2e15", 2e15, 2e15, 2e15, 2e15, 1},
			{"the largest double", 1.7e308, 1.7e308, 1.7e308, 1.7e308, 1},
			{"a subnormal volume", 20000, 20010, 19990, 20000, 1e-320},
			{"a volume of 1e21", 20000, 20010, 19990, 20000, 1e21},
		};
		int first;
		for (first = 0; first < 2; first++)
			for (i = 0; i < sizeof mag / sizeof mag[0]; i++) {
				fresh(&s, &tp, NULL);
				if (!first)
					feed(&s, &tp, 5);
				rc = put(&s, &tp, mag[i].o, mag[i].h, mag[i].l, mag[i].c, mag[i].v);
				snprintf(name, sizeof name, "%s%s: refused as bad_candle", mag[i].name,
				         first ? " on the first candle" : "");
				unit_ok(rc == SHIELD_REFUSED && is(&s, SHIELD_RED, SH_BAD_CANDLE)
				        && s.candles == (first ? 0 : 5), name);
			}
		fresh(&s, &tp, NULL);
		unit_ok(put(&s, &tp, 1e-12, 1e-12, 1e-12, 1e-12, 0) == SHIELD_ACCEPTED
		        && put(&s, &tp, 1e-12, 1e-12, 1e-12, 1e-12, 1e20) == SHIELD_ACCEPTED,
		        "the bounds themselves (price 1e-12, volume 0 and 1e20) are accepted");
	}
	/* a real move beyond the range costs one candle: the next is judged
	   against the refused one's close, accepted as a jump (not clean), and
	   the ATRs do not take the move for volatility */
	fresh(&s, &tp, NULL);
	feed(&s, &tp, 30);
	pc = tp.c, atr = s.atr;
	unit_ok(put(&s, &tp, pc, 10 * pc, pc, 10 * pc, 3) == SHIELD_REFUSED, "a 10x move: refused");
	unit_ok(put_at(&s, &tp, tp.t, 10 * pc, 10 * pc, 10 * pc, 10 * pc, 3) == SHIELD_REFUSED,
	        "... the same candle again: refused again (not judged against itself)");
	tp.t += H;
	rc = put(&s, &tp, 10 * pc, 10 * pc + 5, 10 * pc - 5, 10 * pc, 3);
	unit_ok(rc == SHIELD_ACCEPTED && s.reason[SH_JUMP].active && !shield_clean(&s, tp.lt) && s.atr < 2 * atr + 1,
	        "... the candle after it at the new level: accepted as a jump, not clean, the ATR not inflated");
	/* a lone spike costs two candles: the quiet one after it is judged
	   against the spike's close, the next one against the quiet one */
	fresh(&s, &tp, NULL);
	feed(&s, &tp, 30);
	pc = tp.c;
	unit_ok(put(&s, &tp, pc, 5 * pc, pc, 5 * pc, 3) == SHIELD_REFUSED, "a lone 5x close: refused");
	tp.t += H;
	unit_ok(next(&s, &tp) == SHIELD_REFUSED, "... the quiet candle after it: refused, against the spike's close");
	tp.t += H;
	unit_ok(next(&s, &tp) == SHIELD_ACCEPTED && !s.reason[SH_JUMP].active,
	        "... the next one: accepted, against the quiet one's close");
}

static int below(int n)
{
	return (int)(rnd() % (uint64_t)n);
}

/* what the shield should say, worked out from what was fed to it */
typedef struct {
	int on[SH_NCHECKS];   /* reasons expected active; jump: jump_must / jump_may */
	long long accepted;
	double seen[MODEL_HIST][6];   /* accepted candle n at seen[n % MODEL_HIST] */
	double last_t, last_c, last_beat;
	int flat, api_fail;
	int quiet;            /* accepted candles in a row with a true range <= 2% */
	int jump_must, jump_may;
	int since_fault;      /* accepted candles since a fault (any) was last active */
	int since_red;        /* accepted candles since a RED fault was last active */
	int state;
} model;

enum { F_REASONS, F_JUMP, F_RC, F_STATE, F_BELOW, F_ABOVE, F_DOWN, F_ALLOWS, F_TRANS, F_NFAIL };

static const char *const fail_names[F_NFAIL] = {
	"the reasons active match the model's",
	"jump is active when it must be and only when it may be",
	"each candle is accepted, refused or a repeat as expected",
	"the state is the worst reason's, held per level for `recovery` candles",
	"the state is never below the most severe active reason",
	"the state is above it only while its level's fault is fewer than `recovery` candles back",
	"the state steps down only `recovery` candles after the last fault of the levels it leaves",
	"shield_allows follows the state",
	"every state change and only those appends one transition",
};

typedef struct {
	shield s;
	model m;
	tape tp;
	long long step, fails[F_NFAIL];
	long long in[3], downs, ups, lasting, jumps, refused, repeats, nans;
	int recovery;
} prop;

static void fail(prop *p, int what, const char *how)
{
	if (p->fails[what]++ == 0)
		printf("#   step %lld: %s: %s (state %s, chief %s)\n", p->step, fail_names[what], how,
		       shield_state_name(p->s.state), chief_name(&p->s));
}

/* after every call: the shield against the model */
static void verify(prop *p, int prev_state, long long prev_ntrans, int accepted)
{
	const shield *s = &p->s;
	model *m = &p->m;
	int k, hold, want = SHIELD_GREEN, fault = -1, chief = shield_chief(s);

	for (k = 0; k < SH_NCHECKS; k++) {
		if (k != SH_JUMP && s->reason[k].active != m->on[k]) {
			char how[96];
			snprintf(how, sizeof how, "%s is %d, the model says %d", shield_check_name(k), s->reason[k].active,
			         m->on[k]);
			fail(p, F_REASONS, how);
		}
		if (s->reason[k].active) {
			if (shield_check_severity(k) > want)
				want = shield_check_severity(k);
			if (k != SH_WARMUP && shield_check_severity(k) > fault)
				fault = shield_check_severity(k);
		}
	}
	if ((m->jump_must && !s->reason[SH_JUMP].active) || (!m->jump_may && s->reason[SH_JUMP].active))
		fail(p, F_JUMP, s->reason[SH_JUMP].active ? "active, the move was under jump_pct" : "inactive after quiet candles");
	/* the oracle: worse at once; a level is held until `recovery` accepted
	   candles have passed without a fault of it (the warm-up is none) */
	if (fault >= SHIELD_AMBER)
		m->since_fault = 0;
	else if (accepted)
		m->since_fault++;
	if (fault >= SHIELD_RED)
		m->since_red = 0;
	else if (accepted)
		m->since_red++;
	hold = m->since_red < p->recovery ? SHIELD_RED : m->since_fault < p->recovery ? SHIELD_AMBER : SHIELD_GREEN;
	if (hold > m->state)
		hold = m->state;
	m->state = want > hold ? want : hold;
	if (s->state != m->state) {
		char how[96];
		snprintf(how, sizeof how, "%s, the oracle says %s", shield_state_name(s->state), shield_state_name(m->state));
		fail(p, F_STATE, how);
	}
	if (s->state < want)
		fail(p, F_BELOW, "below");
	if (s->state > want && ((s->state == SHIELD_RED && m->since_red >= p->recovery)
	                        || (s->state == SHIELD_AMBER && m->since_fault >= p->recovery)))
		fail(p, F_ABOVE, "above after recovery");
	if (s->state < prev_state && ((prev_state == SHIELD_RED && m->since_red < p->recovery)
	                              || (s->state == SHIELD_GREEN && m->since_fault < p->recovery)))
		fail(p, F_DOWN, "went down too soon");
	if (shield_allows(s->state, 1) != (s->state == SHIELD_GREEN) || shield_allows(s->state, 0) != (s->state != SHIELD_RED))
		fail(p, F_ALLOWS, "inconsistent");
	if (s->state != prev_state) {
		const struct shield_transition *t = trans_seq(s, s->ntrans);
		if (s->ntrans != prev_ntrans + 1 || t == NULL || t->seq != s->ntrans || t->from != prev_state
		    || t->to != s->state || t->check != chief)
			fail(p, F_TRANS, "wrong or missing transition");
		if (s->state < prev_state)
			p->downs++;
		else
			p->ups++;
		if (prev_state == SHIELD_RED && s->state == SHIELD_AMBER && fault == SHIELD_AMBER)
			p->lasting++;
	} else if (s->ntrans != prev_ntrans) {
		fail(p, F_TRANS, "a transition without a change");
	}
	p->in[s->state]++;
	if (s->reason[SH_JUMP].active && accepted)
		p->jumps++;
}

/* one of the last RECENT accepted candles, value for value? */
static int model_repeat(const model *m, const double *x)
{
	long long n;
	int j, same;

	for (n = m->accepted - 1; n >= 0 && n >= m->accepted - RECENT; n--) {
		const double *r = m->seen[n % MODEL_HIST];
		for (same = 1, j = 0; j < 6; j++)
			same &= r[j] == x[j];
		if (same)
			return 1;
	}
	return 0;
}

/* one candle through the shield and the model; bad: its values are */
static void candle(prop *p, double t, double o, double h, double l, double c, double v, int bad)
{
	model *m = &p->m;
	int prev = p->s.state, rc, want_rc, accepted;
	long long nt = p->s.ntrans;
	double x[6];

	x[0] = t, x[1] = o, x[2] = h, x[3] = l, x[4] = c, x[5] = v;
	if (bad)
		want_rc = SHIELD_REFUSED;
	else if (m->accepted > 0 && t < m->last_t + H)
		want_rc = model_repeat(m, x) ? SHIELD_REPEAT : SHIELD_REFUSED;
	else
		want_rc = SHIELD_ACCEPTED;
	rc = put_at(&p->s, &p->tp, t, o, h, l, c, v);
	if (rc != want_rc)
		fail(p, F_RC, rc == SHIELD_ACCEPTED ? "accepted" : rc == SHIELD_REFUSED ? "refused" : "repeat");
	accepted = want_rc == SHIELD_ACCEPTED;
	if (want_rc == SHIELD_REFUSED) {
		m->on[bad ? SH_BAD_CANDLE : SH_OUT_OF_ORDER] = 1;
		p->refused++;
	} else if (want_rc == SHIELD_REPEAT) {
		p->repeats++;
	} else {
		double move = 0, tr = 0;
		int flat = o == h && h == l && l == c;
		m->on[SH_BAD_CANDLE] = m->on[SH_OUT_OF_ORDER] = m->on[SH_STALE] = 0;
		m->on[SH_GAP] = m->accepted > 0 && t - m->last_t > H;
		m->on[SH_ZERO_VOLUME] = v == 0;
		m->flat = flat ? m->flat + 1 : 0;
		m->on[SH_FLAT] = m->flat >= 3;
		if (m->accepted > 0) {
			move = fmax(h - m->last_c, m->last_c - l);
			tr = fmax(h - l, move);
		}
		/* the ATR threshold is left to the unit tests: here jump_pct must be
		   exceeded, and suffices until 14 true ranges came before (the ATR
		   not ready) or once the ATR has decayed after 60 candles of small
		   ranges */
		m->jump_may = m->accepted > 0 && move > 0.08 * m->last_c;
		m->jump_must = m->jump_may && (m->accepted <= 14 || m->quiet >= 60);
		m->quiet = m->accepted > 0 && tr <= 0.02 * m->last_c ? m->quiet + 1 : 0;
		memcpy(m->seen[m->accepted % MODEL_HIST], x, sizeof x);
		m->accepted++;
		m->on[SH_WARMUP] = m->accepted < WARMUP;
		m->last_t = t, m->last_c = c;
	}
	verify(p, prev, nt, accepted);
}

static void normal(prop *p, double t)
{
	double o = p->tp.c, c = 20000.0 * (1.0 + 0.01 * (unif() - 0.5));

	candle(p, t, o, fmax(o, c) + 5.0 * unif() + 0.01, fmin(o, c) - 5.0 * unif() - 0.01, c, 0.1 + 10.0 * unif(), 0);
}

static void corrupt(prop *p)
{
	tape *tp = &p->tp;
	model *m = &p->m;
	double pc = tp->c, t = tp->t;
	int i, n;

	switch (below(12)) {
	case 0: /* something not finite */
		switch (below(4)) {
		case 0: candle(p, t, (double)NAN, pc + 5, pc - 5, pc, 1, 1); break;
		case 1: candle(p, t, pc, HUGE_VAL, pc - 5, pc, 1, 1); break;
		case 2: candle(p, t, pc, pc + 5, pc - 5, pc, (double)NAN, 1); break;
		default: candle(p, (double)NAN, pc, pc + 5, pc - 5, pc, 1, 1); break;
		}
		break;
	case 1: /* a price <= 0 */
		candle(p, t, pc, pc + 5, below(2) ? 0.0 : -1.0, pc, 1, 1);
		break;
	case 2: /* OHLC broken, or a negative volume */
		switch (below(4)) {
		case 0: candle(p, t, pc, pc - 10, pc + 10, pc, 1, 1); break;
		case 1: candle(p, t, pc, pc + 5, pc - 5, pc + 10, 1, 1); break;
		case 2: candle(p, t, pc - 10, pc + 5, pc - 5, pc, 1, 1); break;
		default: candle(p, t, pc, pc + 5, pc - 5, pc, -0.5, 1); break;
		}
		break;
	case 3: /* zero volume */
		candle(p, t, pc, pc + 5, pc - 5, pc + 1, 0, 0);
		break;
	case 4: /* a gap of 1 to 3 candles */
		normal(p, t + H * (1 + below(3)));
		break;
	case 5: /* an older time, or less than an interval after the last */
		if (below(2))
			candle(p, tp->lt - H * (1 + below(3)), pc, pc + 5, pc - 5, pc, 1, 0);
		else
			candle(p, tp->lt + 1 + (H - 2) * unif(), pc, pc + 5, pc - 5, pc, 1, 0);
		break;
	case 6: /* one of the last 20 again, mostly value for value */
		n = below(20);
		if (m->accepted > n) {
			double r[6];
			memcpy(r, m->seen[(m->accepted - 1 - n) % MODEL_HIST], sizeof r);
			if (below(3) == 0)
				r[below(2) ? 2 : 5] += 1;   /* the high or the volume: still a valid candle */
			candle(p, r[0], r[1], r[2], r[3], r[4], r[5], 0);
		} else {
			normal(p, t);
		}
		break;
	case 7: /* the last candle contradicted */
		candle(p, tp->lt, tp->o, tp->h + 1, tp->l, tp->c, tp->v, 0);
		break;
	case 8: /* a 30% wick, up or down */
		if (below(2))
			candle(p, t, pc, 1.3 * pc, pc - 5, pc, 2, 0);
		else
			candle(p, t, pc, pc + 5, 0.7 * pc, pc, 2, 0);
		break;
	case 9: /* a wick beyond any plausible range, or a price beyond any magnitude */
		switch (below(4)) {
		case 0: candle(p, t, pc, pc * (2.5 + 1e6 * unif()), pc - 5, pc, 1, 1); break;
		case 1: candle(p, t, pc, pc + 5, pc / (2.5 + 1e6 * unif()), pc, 1, 1); break;
		case 2: candle(p, t, pc, pc + 5, 1e-320, pc, 1, 1); break;
		default: candle(p, t, pc, 1e300, pc - 5, pc, 1, 1); break;
		}
		break;
	default: /* 1 to 4 flat candles */
		n = 1 + below(4);
		for (i = 0; i < n; i++)
			candle(p, tp->t, pc, pc, pc, pc, 1 + unif(), 0);
		break;
	}
}

/* a call the shield must ignore (a non-finite clock, a check that is not
   one), or a skew it must take as a fault (a non-finite one) */
static void odd(prop *p)
{
	shield *s = &p->s;
	double now = below(2) ? (double)NAN : below(2) ? HUGE_VAL : -HUGE_VAL;

	switch (below(7)) {
	case 0: shield_tick(s, now); break;
	case 1: shield_heartbeat(s, now); break;
	case 2: shield_api(s, below(2), now, "GET /v5/market/kline"); break;
	case 3: shield_skew(s, 100000.0 * (unif() - 0.5), now); break;
	case 4: shield_signal(s, below(2) ? -1 - below(3) : SH_NCHECKS + below(3), below(2), p->tp.t, "none"); break;
	default:
		shield_skew(s, now, p->tp.t);
		p->m.on[SH_CLOCK_SKEW] = 1;
		break;
	}
	p->nans++;
}

static void other(prop *p)
{
	shield *s = &p->s;
	model *m = &p->m;
	int prev = s->state, r = below(100);
	long long nt = s->ntrans;
	double now, x;

	if (r < 5) {
		odd(p);
	} else if (r < 35) {
		/* mostly near the last heartbeat (silent a sixth of the time), else
		   near the next candle's close (stale a third of the time) */
		if (m->last_beat > 0 && below(10) < 8)
			now = m->last_beat + 1.2 * HEARTBEAT * unif();
		else
			now = p->tp.t + 1.5 * H * unif();
		shield_tick(s, now);
		if (m->accepted > 0)
			m->on[SH_STALE] = now > m->last_t + 2 * H + GRACE;
		m->on[SH_SILENT] = m->last_beat > 0 && now - m->last_beat > HEARTBEAT;
	} else if (r < 55) {
		m->last_beat = now = p->tp.t + H * unif();
		shield_heartbeat(s, now);
		m->on[SH_SILENT] = 0;
	} else if (r < 75) {
		int ok = below(2);
		shield_api(s, ok, p->tp.t, "GET /v5/market/kline");
		m->api_fail = ok ? 0 : m->api_fail + 1;
		m->on[SH_API_ERRORS] = m->api_fail >= 3;
	} else if (r < 88) {
		x = 12000.0 * (unif() - 0.5);
		shield_skew(s, x, p->tp.t);
		m->on[SH_CLOCK_SKEW] = fabs(x) > 5000;
	} else {
		int k = below(2) ? SH_DISCONNECTED : SH_TRIBUNAL, on = below(10) < (k == SH_TRIBUNAL ? 3 : 1);
		shield_signal(s, k, on, p->tp.t, "signalled");
		m->on[k] = on;
	}
	verify(p, prev, nt, 0);
}

static void test_property(void)
{
	static prop p;
	shield_config cfg;
	char name[200];
	int i;

	memset(&p, 0, sizeof p);
	shield_defaults(&cfg, H);
	cfg.warmup = WARMUP;
	cfg.heartbeat_ms = HEARTBEAT;
	p.recovery = cfg.recovery;
	/* a new shield has nothing to recover from, and waits for its candles */
	p.m.since_fault = p.m.since_red = cfg.recovery;
	p.m.state = SHIELD_AMBER;
	p.m.on[SH_WARMUP] = 1;
	fresh(&p.s, &p.tp, &cfg);
	for (p.step = 1; p.step <= STEPS; p.step++) {
		int r = below(100);
		if (r < 70)
			normal(&p, p.tp.t);
		else if (r < 82)
			corrupt(&p);
		else
			other(&p);
	}
	for (i = 0; i < F_NFAIL; i++) {
		snprintf(name, sizeof name, "random walk, %d steps: %s", STEPS, fail_names[i]);
		unit_ok(p.fails[i] == 0, name);
		if (p.fails[i])
			printf("#   %lld failures\n", p.fails[i]);
	}
	unit_ok(p.s.in_state[0] + p.s.in_state[1] + p.s.in_state[2] == p.m.accepted && p.s.candles == p.m.accepted
	        && p.s.refused == p.refused && p.s.repeats == p.repeats,
	        "random walk: in_state adds up to the accepted candles; refused and repeats counted");
	/* the walk must have gone everywhere for the checks above to mean much */
	unit_ok(p.in[SHIELD_GREEN] > STEPS / 50 && p.in[SHIELD_AMBER] > STEPS / 50 && p.in[SHIELD_RED] > STEPS / 50
	        && p.downs > 1000 && p.ups > 1000 && p.lasting > 100 && p.jumps > 100 && p.refused > 1000
	        && p.repeats > 100 && p.nans > 500,
	        "random walk: every state, many steps up and down (RED->AMBER under a lasting reason too), "
	        "jumps, refusals, repeats and ignored calls");
	printf("#   steps in GREEN %lld, AMBER %lld, RED %lld; %lld up, %lld down (%lld RED->AMBER under an AMBER reason); "
	       "%lld jumps, %lld refused, %lld repeats, %lld odd calls\n",
	       p.in[0], p.in[1], p.in[2], p.ups, p.downs, p.lasting, p.jumps, p.refused, p.repeats, p.nans);
}

int main(void)
{
	test_clean();
	test_new();
	test_warmup();
	test_bad_candles();
	test_implausible();
	test_order();
	test_gap();
	test_volume_flat();
	test_jump();
	test_atr();
	test_hysteresis();
	test_stale();
	test_heartbeat();
	test_signals();
	test_api();
	test_strategy();
	test_skew();
	test_transitions();
	test_allows();
	test_in_state();
	test_property();
	return unit_done();
}
