/*
 * shield.h: the Integrity Shield's core, in plain C so that the order gate
 * (lib_paper.c) and the backtest loop reach it without Lua. It watches the
 * candles and the feed and says GREEN (trade), AMBER (no new entries; exits
 * and protective orders allowed) or RED (no orders at all), with the
 * reasons. Thresholds: README, "The Integrity Shield".
 */
#ifndef NOMADE_SHIELD_H
#define NOMADE_SHIELD_H

enum shield_state { SHIELD_GREEN, SHIELD_AMBER, SHIELD_RED };

/* the checks; each is one possible reason */
enum shield_check {
	SH_BAD_CANDLE,    /* RED: a value not finite, out of range (a price outside
	                     [SHIELD_PRICE_MIN, SHIELD_PRICE_MAX], a volume < 0 or
	                     beyond SHIELD_VOLUME_MAX), OHLC inconsistent, or a move
	                     beyond any plausible range (refused) */
	SH_OUT_OF_ORDER,  /* RED: a candle at or before the last one, with other values (refused) */
	SH_GAP,           /* RED: candles missing before this one */
	SH_ZERO_VOLUME,   /* RED: zero volume for zero_volume_run candles */
	SH_FLAT,          /* AMBER: open = high = low = close for flat_run candles */
	SH_JUMP,          /* AMBER: a move beyond jump_atr x ATR and jump_pct of the last close */
	SH_WARMUP,        /* AMBER: fewer candles than the indicators need */
	SH_STALE,         /* RED: no confirmed candle for interval + grace past the expected close */
	SH_SILENT,        /* RED: the feed silent beyond heartbeat */
	SH_DISCONNECTED,  /* RED: the feed says it is down */
	SH_CLOCK_SKEW,    /* AMBER: local clock vs exchange beyond max_skew */
	SH_API_ERRORS,    /* AMBER: api_errors failed requests in a row */
	SH_TRIBUNAL,      /* AMBER: the tribunal is unavailable */
	SH_RISK,          /* AMBER: a risk limit that stops entries (the day's loss) */
	SH_RECONCILE,     /* RED: the account cannot be reconciled with the journal */
	SH_HALTED,        /* AMBER: the kill switch: no entries until it is lifted */
	SH_STRATEGY,      /* AMBER: the strategy failed on strategy_errors candles in a row */
	SH_NCHECKS
};

/* the plausible range: a candle whose high or low lies beyond a factor
   SHIELD_BAD_FACTOR of the previous close (up or down) and beyond
   SHIELD_BAD_ATR average true ranges of log prices is refused */
#define SHIELD_BAD_FACTOR 2.0
#define SHIELD_BAD_ATR 50.0
#define SHIELD_PRICE_MIN 1e-12
#define SHIELD_PRICE_MAX 1e15
#define SHIELD_VOLUME_MAX 1e20

typedef struct {
	double interval_ms;   /* the candle spacing */
	double grace_ms;      /* stale: tolerated lateness of a candle */
	double heartbeat_ms;  /* silent: 0 = not checked (a polled feed) */
	double jump_atr;      /* jump: move > jump_atr * ATR(atr_period) ... */
	double jump_pct;      /* ... and > jump_pct * last close (0.1 = 10%) */
	double max_skew_ms;   /* clock skew */
	int zero_volume_run, flat_run, atr_period, warmup, api_errors, strategy_errors;
	int recovery;         /* clean candles before stepping down */
} shield_config;

struct shield_reason {
	int active;
	double since;        /* ms */
	char detail[112];
};

struct shield_transition {
	long long seq;
	double time;         /* ms */
	int from, to;
	int check;           /* the chief reason of the new state, -1: none */
	char detail[112];
};

#define SHIELD_HISTORY 64
#define SHIELD_RECENT 16

typedef struct {
	shield_config cfg;
	int state;
	struct shield_reason reason[SH_NCHECKS];
	unsigned active;          /* bit k: reason[k].active, for speed */
	unsigned fault_mask[3];   /* [severity]: the faults of at least it */
	/* the candle series as seen so far */
	long long candles;   /* accepted */
	double last_t, last_c;
	double recent[SHIELD_RECENT][6];  /* the last candles, to know a repeat */
	double atr, tr_sum;
	double latr, ltr_sum;   /* the same average, of log prices: the plausible range */
	/* the last candle refused as implausible but sound in form: the next
	   candle is judged against its close too, so that a real move beyond
	   the range costs one refused candle, not the rest of the feed */
	double odd_t, odd_c;
	int suspect;         /* the last accepted candle jumped: its prices fill no order */
	int zero_run, flat_run;
	/* accepted candles in a row with no fault [0] / no RED fault [1]:
	   stepping down to GREEN needs the first, to AMBER the second */
	int clean[2];
	int api_fail;
	int strategy_fail;   /* candles in a row the strategy failed on */
	double last_beat;    /* ms, 0: none yet */
	/* what happened */
	struct shield_transition trans[SHIELD_HISTORY];
	long long ntrans;
	long long in_state[3];   /* candles closed in each state */
	long long refused, repeats, gaps;
	char refusal[112];       /* why the last refused candle was */
} shield;

#define SHIELD_MT "nomade.shield"  /* its Lua userdata (lib_shield.c) */

/* shield:scan's byte per candle: the state in the low bits, and this bit
   when the candle's prices fill no order (shield_clean) */
#define SHIELD_SUSPECT_BIT 0x10

/* what shield_candle did with a candle */
enum { SHIELD_ACCEPTED, SHIELD_REFUSED, SHIELD_REPEAT };

void shield_defaults(shield_config *c, double interval_ms);
void shield_init(shield *s, const shield_config *c);
int shield_candle(shield *s, double t, double o, double h, double l, double c, double v);
void shield_tick(shield *s, double now_ms);
void shield_heartbeat(shield *s, double now_ms);
void shield_signal(shield *s, int check, int on, double now_ms, const char *detail);
void shield_api(shield *s, int ok, double now_ms, const char *what);
void shield_skew(shield *s, double skew_ms, double now_ms);
void shield_strategy(shield *s, int ok, double now_ms, const char *what);

/* the gate's rule: may an order go out in this state? entry: one that
   opens a position; else an exit or a protective order */
int shield_allows(int state, int entry);

/* may orders fill at the prices of the candle of time t? only if it is the
   last one accepted and did not jump */
int shield_clean(const shield *s, double t);

const char *shield_state_name(int state);
const char *shield_check_name(int check);
int shield_check_severity(int check);
/* the chief reason of the current state (most severe, first), or -1 */
int shield_chief(const shield *s);

#endif
