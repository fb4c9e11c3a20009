/*
 * shield.c: the Integrity Shield's checks and states (shield.h). Each
 * check raises or clears one reason; the state is the most severe reason
 * active, reached at once when it gets worse and left only after
 * `recovery` clean candles (hysteresis), so a flickering feed cannot
 * flicker the gate: RED steps down to AMBER after that many candles with
 * no RED reason, to GREEN after that many with none at all. A new shield
 * is AMBER until its first candles (warm-up). Tens of ns per candle: no
 * allocation, no Lua, text formatted only when a reason is raised.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "shield.h"

static const struct {
	const char *name;
	int severity;
} checks[SH_NCHECKS] = {
	{"bad_candle", SHIELD_RED},
	{"out_of_order", SHIELD_RED},
	{"gap", SHIELD_RED},
	{"zero_volume", SHIELD_RED},
	{"flat", SHIELD_AMBER},
	{"jump", SHIELD_AMBER},
	{"warmup", SHIELD_AMBER},
	{"stale", SHIELD_RED},
	{"silent", SHIELD_RED},
	{"disconnected", SHIELD_RED},
	{"clock_skew", SHIELD_AMBER},
	{"api_errors", SHIELD_AMBER},
	{"tribunal", SHIELD_AMBER},
	{"risk", SHIELD_AMBER},
	{"reconcile", SHIELD_RED},
	{"halted", SHIELD_AMBER},
	{"strategy", SHIELD_AMBER},
};

static const char *const state_names[] = {"GREEN", "AMBER", "RED"};

const char *shield_state_name(int state)
{
	return state >= SHIELD_GREEN && state <= SHIELD_RED ? state_names[state] : "RED";
}

const char *shield_check_name(int check)
{
	return check >= 0 && check < SH_NCHECKS ? checks[check].name : "?";
}

int shield_check_severity(int check)
{
	return check >= 0 && check < SH_NCHECKS ? checks[check].severity : SHIELD_RED;
}

void shield_defaults(shield_config *c, double interval_ms)
{
	memset(c, 0, sizeof *c);
	c->interval_ms = interval_ms;
	c->grace_ms = 30000;
	c->heartbeat_ms = 0;
	c->jump_atr = 10;
	c->jump_pct = 0.08;
	c->max_skew_ms = 5000;
	c->zero_volume_run = 1;
	c->flat_run = 3;
	c->atr_period = 14;
	c->warmup = 0;
	c->api_errors = 3;
	c->strategy_errors = 10;
	c->recovery = 3;
}

static int at_least(int v, int lo) { return v > lo ? v : lo; }

void shield_init(shield *s, const shield_config *c)
{
	int k, sev;

	memset(s, 0, sizeof *s);
	s->cfg = *c;
	/* no setting can switch a check off: runs and periods are >= 1, and a
	   shield with no candle yet has nothing to trade on */
	s->cfg.zero_volume_run = at_least(c->zero_volume_run, 1);
	s->cfg.flat_run = at_least(c->flat_run, 1);
	s->cfg.atr_period = at_least(c->atr_period, 1);
	s->cfg.api_errors = at_least(c->api_errors, 1);
	s->cfg.strategy_errors = at_least(c->strategy_errors, 1);
	s->cfg.recovery = at_least(c->recovery, 1);
	s->cfg.warmup = at_least(c->warmup, 1);
	s->clean[0] = s->clean[1] = s->cfg.recovery;  /* a warm-up ends at once */
	for (k = 0; k < SH_NCHECKS; k++)
		for (sev = SHIELD_GREEN; sev <= checks[k].severity; sev++)
			if (k != SH_WARMUP)
				s->fault_mask[sev] |= 1u << k;
	s->state = SHIELD_AMBER;
	s->reason[SH_WARMUP].active = 1;
	s->active = 1u << SH_WARMUP;
	snprintf(s->reason[SH_WARMUP].detail, sizeof s->reason[SH_WARMUP].detail,
	         "0 of the %d candles the indicators need", s->cfg.warmup);
}

/* "2023-03-24 12:00" */
static void iso(double ms, char *buf, size_t n)
{
	time_t t;
	struct tm tm;

	/* years 0..9999 only: a wilder time is printed as the number it is */
	if (!(ms > -62167219200000.0 && ms < 253402300800000.0)) {
		snprintf(buf, n, "%.17g", ms);
		return;
	}
	t = (time_t)floor(ms / 1000);
	if (gmtime_r(&t, &tm) == NULL || strftime(buf, n, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(buf, n, "%.17g", ms);
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static void raise_reason(shield *s, int k, double now, const char *fmt, ...)
{
	struct shield_reason *r = &s->reason[k];
	va_list ap;

	if (!r->active) {
		r->active = 1;
		r->since = now;
		s->active |= 1u << k;
	}
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof r->detail, fmt, ap);
	va_end(ap);
}

static void clear_reason(shield *s, int k)
{
	s->reason[k].active = 0;
	s->active &= ~(1u << k);
}

int shield_chief(const shield *s)
{
	int k, best = -1;

	if (s->active == 0)
		return -1;
	for (k = 0; k < SH_NCHECKS; k++)
		if (s->reason[k].active && (best < 0 || checks[k].severity > checks[best].severity))
			best = k;
	return best;
}

/* is a reason of at least this severity active? the warm-up is no fault
   of the data, and does not count */
static int faulty(const shield *s, int severity)
{
	return (s->active & s->fault_mask[severity]) != 0;
}

static void transition(shield *s, double now, int to)
{
	struct shield_transition *t = &s->trans[s->ntrans % SHIELD_HISTORY];
	int chief = shield_chief(s);

	t->seq = ++s->ntrans;
	t->time = now;
	t->from = s->state;
	t->to = to;
	t->check = chief;
	if (chief >= 0)
		memcpy(t->detail, s->reason[chief].detail, sizeof t->detail);
	else
		snprintf(t->detail, sizeof t->detail, "all checks clear");
	s->state = to;
}

/* the state the reasons call for: worse at once, better after recovery */
static void settle(shield *s, double now)
{
	int chief = shield_chief(s);
	int want = chief < 0 ? SHIELD_GREEN : checks[chief].severity;

	if (faulty(s, SHIELD_AMBER))
		s->clean[0] = 0;
	if (faulty(s, SHIELD_RED))
		s->clean[1] = 0;
	/* not yet clean enough for want, maybe for a step on the way down */
	if (want < s->state && s->clean[want] < s->cfg.recovery)
		want = s->state == SHIELD_RED && s->clean[SHIELD_AMBER] >= s->cfg.recovery ? SHIELD_AMBER : s->state;
	if (want != s->state)
		transition(s, now, want);
}

static int in_range(double x, double lo, double hi) { return x >= lo && x <= hi; }

static int valid(double o, double h, double l, double c, double v, char *why, size_t n)
{
	if (!(isfinite(o) && isfinite(h) && isfinite(l) && isfinite(c) && isfinite(v)))
		snprintf(why, n, "a value is not finite");
	else if (o <= 0 || h <= 0 || l <= 0 || c <= 0)
		snprintf(why, n, "a price <= 0");
	else if (!in_range(l, SHIELD_PRICE_MIN, SHIELD_PRICE_MAX) || !in_range(h, SHIELD_PRICE_MIN, SHIELD_PRICE_MAX))
		snprintf(why, n, "a price outside [%g, %g] (low %.10g, high %.10g)", SHIELD_PRICE_MIN, SHIELD_PRICE_MAX, l, h);
	else if (h < l || h < o || h < c || l > o || l > c)
		snprintf(why, n, "OHLC inconsistent (o %.10g h %.10g l %.10g c %.10g)", o, h, l, c);
	else if (v < 0)
		snprintf(why, n, "volume %.10g < 0", v);
	else if (v != 0 && !in_range(v, SHIELD_PRICE_MIN, SHIELD_VOLUME_MAX))
		snprintf(why, n, "volume %.10g outside [%g, %g]", v, SHIELD_PRICE_MIN, SHIELD_VOLUME_MAX);
	else
		return 1;
	return 0;
}

/* of two finite numbers (fmax is a libm call that minds NaNs) */
static double larger(double a, double b) { return a > b ? a : b; }

/* the close a candle of time t is judged against: the last accepted
   candle's, or that of a later one refused as implausible (shield.h) */
static double previous_close(const shield *s, double t)
{
	return s->odd_t > s->last_t && s->odd_t < t ? s->odd_c : s->last_c;
}

/* a move the market can make in one candle? up and down: log(high /
   previous close) and log(previous close / low). Both bounds must be
   passed: SHIELD_BAD_FACTOR alone decides until the ATR is ready */
static int plausible(const shield *s, double h, double l, double pc, double up, double down, char *why, size_t n)
{
	double move = larger(up, down);

	if (s->candles == 0 || move <= log(SHIELD_BAD_FACTOR)
	    || (s->candles > s->cfg.atr_period && move <= SHIELD_BAD_ATR * s->latr))
		return 1;
	if (up >= down)
		snprintf(why, n, "implausible: the high %.10g is %.3gx the previous close %.10g", h, exp(move), pc);
	else
		snprintf(why, n, "implausible: the low %.10g is 1/%.3g of the previous close %.10g", l, exp(move), pc);
	return 0;
}

/* the Wilder average (period p) of true ranges, as ATR(p) is; ready once
   p true ranges have been seen */
static void average(double *avg, double *sum, double tr, long long candles, int p)
{
	if (candles > p) {
		*avg = (*avg * (p - 1) + tr) / p;
	} else {
		*sum += tr;
		*avg = *sum / (double)candles;
	}
}

/* the candle-borne checks on an accepted candle */
static void check_candle(shield *s, double t, double o, double h, double l, double c, double v, double up,
                         double down)
{
	double close_t = t + s->cfg.interval_ms, *r;
	char a[32], b[32];

	clear_reason(s, SH_BAD_CANDLE);
	clear_reason(s, SH_OUT_OF_ORDER);
	clear_reason(s, SH_STALE);
	if (s->candles > 0 && t - s->last_t > s->cfg.interval_ms) {
		double steps = (t - s->last_t) / s->cfg.interval_ms;
		s->gaps++;
		iso(s->last_t + s->cfg.interval_ms, a, sizeof a);
		iso(t - s->cfg.interval_ms, b, sizeof b);
		if (steps != floor(steps)) {
			iso(t, b, sizeof b);
			raise_reason(s, SH_GAP, close_t, "the candle of %s is off the interval grid (%.3f intervals "
			             "after the last)", b, steps);
		} else {
			raise_reason(s, SH_GAP, close_t, "%.0f candle(s) missing, %s to %s", steps - 1, a, b);
		}
	} else {
		clear_reason(s, SH_GAP);
	}
	s->zero_run = v == 0 ? s->zero_run + 1 : 0;
	if (s->zero_run >= s->cfg.zero_volume_run) {
		iso(t, a, sizeof a);
		raise_reason(s, SH_ZERO_VOLUME, close_t, "%d candle(s) with zero volume, the last %s", s->zero_run, a);
	} else {
		clear_reason(s, SH_ZERO_VOLUME);
	}
	s->flat_run = (o == h && h == l && l == c) ? s->flat_run + 1 : 0;
	if (s->flat_run >= s->cfg.flat_run) {
		iso(t, a, sizeof a);
		raise_reason(s, SH_FLAT, close_t, "%d flat candle(s) (open = high = low = close), the last %s",
		             s->flat_run, a);
	} else {
		clear_reason(s, SH_FLAT);
	}
	s->suspect = 0;
	if (s->candles > 0) {
		double pc = s->last_c, prev = previous_close(s, t);
		double move = larger(h - pc, pc - l);
		/* the true ranges from the previous close, which is not the last
		   accepted one's after a move beyond the plausible range: such a
		   move is no volatility to average */
		double tr = larger(h - l, larger(h - prev, prev - l));
		int p = s->cfg.atr_period;
		int atr_ready = s->candles > p;  /* p true ranges seen */
		if (move > s->cfg.jump_pct * pc && (!atr_ready || move > s->cfg.jump_atr * s->atr)) {
			iso(t, a, sizeof a);
			raise_reason(s, SH_JUMP, close_t, "%s moved %.1f%% (%.1f ATR) from the last close %.10g",
			             a, 100 * move / pc, s->atr > 0 ? move / s->atr : 0, pc);
			s->suspect = 1;
		} else {
			clear_reason(s, SH_JUMP);
		}
		average(&s->atr, &s->tr_sum, tr, s->candles, p);
		/* log(h / l) = up + down; a previous close outside [l, h] makes one negative */
		average(&s->latr, &s->ltr_sum, larger(up + down, larger(up, down)), s->candles, p);
	}
	s->candles++;
	if (s->candles < s->cfg.warmup)
		raise_reason(s, SH_WARMUP, close_t, "%lld of the %d candles the indicators need", s->candles,
		             s->cfg.warmup);
	else
		clear_reason(s, SH_WARMUP);
	s->last_t = t, s->last_c = c;
	r = s->recent[s->candles % SHIELD_RECENT];
	r[0] = t, r[1] = o, r[2] = h, r[3] = l, r[4] = c, r[5] = v;
}

/* one of the last candles again, value for value? */
static int repeat(const shield *s, double t, double o, double h, double l, double c, double v)
{
	int k;

	for (k = 0; k < SHIELD_RECENT && k < s->candles; k++) {
		const double *r = s->recent[(s->candles - k) % SHIELD_RECENT];
		if (r[0] == t)
			return r[1] == o && r[2] == h && r[3] == l && r[4] == c && r[5] == v;
	}
	return 0;
}

static int refuse(shield *s, int check, double when)
{
	s->refused++;
	memcpy(s->refusal, s->reason[check].detail, sizeof s->refusal);
	settle(s, when);
	return SHIELD_REFUSED;
}

int shield_candle(shield *s, double t, double o, double h, double l, double c, double v)
{
	char why[128], a[32], b[32];
	double when = s->candles > 0 ? s->last_t + s->cfg.interval_ms : 0, pc, up, down;

	if (!isfinite(t) || !valid(o, h, l, c, v, why, sizeof why)) {
		iso(t, a, sizeof a);
		raise_reason(s, SH_BAD_CANDLE, isfinite(t) ? t + s->cfg.interval_ms : when, "candle of %s refused: %s",
		             a, isfinite(t) ? why : "its time is not finite");
		return refuse(s, SH_BAD_CANDLE, isfinite(t) ? t + s->cfg.interval_ms : when);
	}
	if (s->candles > 0 && t < s->last_t + s->cfg.interval_ms) {
		if (repeat(s, t, o, h, l, c, v)) {
			s->repeats++;
			return SHIELD_REPEAT;
		}
		iso(t, a, sizeof a);
		iso(s->last_t, b, sizeof b);
		raise_reason(s, SH_OUT_OF_ORDER, when, "candle of %s refused: %s the one of %s", a,
		             t == s->last_t ? "it contradicts" : t < s->last_t ? "it comes after" : "it is less than an interval after",
		             b);
		return refuse(s, SH_OUT_OF_ORDER, when);
	}
	pc = previous_close(s, t);
	up = log(h / pc), down = log(pc / l);
	if (!plausible(s, h, l, pc, up, down, why, sizeof why)) {
		s->odd_t = t, s->odd_c = c;
		iso(t, a, sizeof a);
		raise_reason(s, SH_BAD_CANDLE, t + s->cfg.interval_ms, "candle of %s refused: %s", a, why);
		return refuse(s, SH_BAD_CANDLE, t + s->cfg.interval_ms);
	}
	check_candle(s, t, o, h, l, c, v, up, down);
	if (!faulty(s, SHIELD_AMBER))
		s->clean[0]++;
	if (!faulty(s, SHIELD_RED))
		s->clean[1]++;
	settle(s, t + s->cfg.interval_ms);
	s->in_state[s->state]++;
	return SHIELD_ACCEPTED;
}

void shield_tick(shield *s, double now)
{
	char a[32];

	if (!isfinite(now))
		return;  /* no clock, no judgement: nothing raised, nothing cleared */
	if (s->candles > 0) {
		double due = s->last_t + 2 * s->cfg.interval_ms;  /* the next candle's close */
		if (now > due + s->cfg.grace_ms) {
			iso(due, a, sizeof a);
			raise_reason(s, SH_STALE, now, "no candle since the close of %s, %.0f s late", a,
			             (now - due) / 1000);
		} else {
			clear_reason(s, SH_STALE);
		}
	}
	if (s->cfg.heartbeat_ms > 0 && s->last_beat > 0 && now - s->last_beat > s->cfg.heartbeat_ms)
		raise_reason(s, SH_SILENT, now, "the feed silent for %.0f s", (now - s->last_beat) / 1000);
	else
		clear_reason(s, SH_SILENT);
	settle(s, now);
}

void shield_heartbeat(shield *s, double now)
{
	if (!isfinite(now))
		return;
	s->last_beat = now;
	clear_reason(s, SH_SILENT);
	settle(s, now);
}

void shield_signal(shield *s, int check, int on, double now, const char *detail)
{
	if (check < 0 || check >= SH_NCHECKS)
		return;
	if (!isfinite(now))
		now = s->last_t;  /* an event is never ignored for want of a clock */
	if (on)
		raise_reason(s, check, now, "%s", detail ? detail : "");
	else
		clear_reason(s, check);
	settle(s, now);
}

void shield_api(shield *s, int ok, double now, const char *what)
{
	if (!isfinite(now))
		return;
	if (ok) {
		s->api_fail = 0;
		clear_reason(s, SH_API_ERRORS);
	} else if (++s->api_fail >= s->cfg.api_errors) {
		raise_reason(s, SH_API_ERRORS, now, "%d failed requests in a row, the last: %s", s->api_fail,
		             what ? what : "?");
	}
	settle(s, now);
}

/* the strategy's turn on a candle: failed on strategy_errors in a row,
   no entries (a broken strategy must not keep opening positions); the
   first clean turn clears it */
void shield_strategy(shield *s, int ok, double now, const char *what)
{
	if (!isfinite(now))
		now = s->last_t;
	if (ok) {
		s->strategy_fail = 0;
		clear_reason(s, SH_STRATEGY);
	} else if (++s->strategy_fail >= s->cfg.strategy_errors) {
		raise_reason(s, SH_STRATEGY, now, "the strategy failed on %d candles in a row, the last %s",
		             s->strategy_fail, what ? what : "?");
	}
	settle(s, now);
}

void shield_skew(shield *s, double skew, double now)
{
	if (!isfinite(now))
		return;
	if (!isfinite(skew))
		raise_reason(s, SH_CLOCK_SKEW, now, "the clock offset to the exchange is unknown");
	else if (fabs(skew) > s->cfg.max_skew_ms)
		raise_reason(s, SH_CLOCK_SKEW, now, "the local clock is %.0f ms %s the exchange's", fabs(skew),
		             skew > 0 ? "behind" : "ahead of");
	else
		clear_reason(s, SH_CLOCK_SKEW);
	settle(s, now);
}

int shield_clean(const shield *s, double t)
{
	return s->candles > 0 && s->last_t == t && !s->suspect;
}

int shield_allows(int state, int entry)
{
	return state == SHIELD_GREEN || (state == SHIELD_AMBER && !entry);
}
