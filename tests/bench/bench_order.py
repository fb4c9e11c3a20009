#!/usr/bin/python3
"""bench_order.py: candle close -> order request, `nomade run --exec bybit`
live against the Bybit stand-in on loopback, tribunal off (the issue's
target: p99 <= 200 us inside nomade). Two figures over the same candles:
  end-to-end     the stand-in's clock, from the confirm:true kline push going
                 out to the order/create request read in (its log's mono_us)
  inside nomade  nomade's own `latency` events (--log-level debug): from the
                 closing push coming off the socket to the order's request
                 handed to libcurl
The strategy buys on one candle and sells on the next, so every candle
closes with one order. The journal (its line written before each order is sent,
so inside the interval) is in the temp dir: TMPDIR=/dev/shm puts it in
memory. Each run's output, journal and orders.csv stay in that dir.
  /usr/bin/python3 tests/bench/bench_order.py NOMADE [CANDLES]   (1000)
"""
import http.client
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

STAND_IN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stand-ins", "bybit", "server.py")
KEYS = {"BYBIT_API_KEY": "test-key", "BYBIT_API_SECRET": "test-secret-0123456789"}
MINUTE = 60000
# The stand-in's clock must move a minute per candle, and nomade's signed
# requests carry its idea of that clock: the next order after a jump would
# meet the timestamp rule (10002), resync and go again. So the clock first
# jumps (almost a minute) to LEAD_MS before the close, where reconcile() in
# the REPL makes a signed request that meets the rule and resyncs, outside
# the measured interval; then it moves LEAD_MS + PAST_MS, well inside the
# 5 s recv_window, as a real exchange's clock would not jump at all.
LEAD_MS = 2000
PAST_MS = 150
SKIP_MS = 10000  # a shorter first jump might not bring the resync
STRATEGY = """\
settings = { symbol = "BTCUSDT", interval = "1m", history = 20, position_size = 0.5,
  max_orders_per_hour = 1000000, max_position_value = 1e9, max_daily_loss = 0.5 }
indicators = { ema5 = ta.ema(5) }
function regime(m) return "any" end
function entry(m, r, v) if v then return { type = "market" } end return true end
function exit(m, p) if m.index > p.index then return "one candle" end end
function prompt() return "p" end
"""


class Control:
    """The stand-in's /__control, over one keep-alive connection."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.offset = 0

    def call(self, method, path, doc=None):
        body = json.dumps(doc) if doc is not None else None
        self.conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError("%s %s: HTTP %d %s" % (method, path, r.status, data[:200]))
        return json.loads(data)

    def post(self, doc):
        return self.call("POST", "/__control", doc)

    def state(self, since=0):
        return self.call("GET", "/__control?since=%d" % since)

    # the stand-in's clock is this machine's wall clock plus the offset
    def server_now(self):
        return int(time.time() * 1000) + self.offset

    def move_to(self, server_ms):
        self.offset += server_ms - self.server_now()
        self.post({"clock_offset_ms": self.offset})


def start_stand_in():
    p = subprocess.Popen(["/usr/bin/python3", STAND_IN, "--port", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    m = re.match(r"LISTENING (\d+) (\d+)", p.stdout.readline())
    if not m:
        p.kill()
        raise RuntimeError("the stand-in did not start")
    return p, int(m.group(1)), int(m.group(2))


def start_nomade(nomade, d, rest, ws):
    with open(os.path.join(d, "s.lua"), "w") as f:
        f.write(STRATEGY)
    out = open(os.path.join(d, "out"), "w")
    cmd = [nomade, "run", os.path.join(d, "s.lua"), "--feed", "bybit", "--exec", "bybit",
           "--base-url", "http://127.0.0.1:%d" % rest,
           "--ws-url", "ws://127.0.0.1:%d/v5/public/spot" % ws,
           "--private-url", "ws://127.0.0.1:%d/v5/private" % ws,
           "--journal", os.path.join(d, "j.journal"), "--socket", os.path.join(d, "sock"),
           "--log-format", "json", "--log-level", "debug", "--shield", "max_skew=3600,recovery=1",
           "--http", "127.0.0.1:0"]  # the dashboard on, as by default, on a port of its own
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, **KEYS))


class Events:
    """nomade's JSON lines, read as they are written."""

    def __init__(self, path):
        self.f = open(path)
        self.partial = ""
        self.all = []

    def poll(self):
        self.partial += self.f.read()
        *lines, self.partial = self.partial.split("\n")
        for line in lines:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                self.all.append(doc)

    def named(self, event):
        return [e for e in self.all if e.get("event") == event]


def subscribed(ctl, seconds=15):
    """Until the run is subscribed to the kline topic and its private topics."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        public = private = False
        for c in (ctl.state(1 << 62).get("ws") or {}).get("clients") or []:  # since: no log
            topics = " ".join(c.get("topics") or [])
            public = public or ("public" in c["path"] and "kline" in topics)
            private = private or ("private" in c["path"] and c.get("authenticated") and "execution" in topics)
        if public and private:
            return True
        time.sleep(0.05)
    return False


def repl(nomade, d, expr):
    r = subprocess.run([nomade, "repl", "--socket", os.path.join(d, "sock"), "-e", expr],
                       capture_output=True, text=True, timeout=30)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {"ok": False, "error": r.stdout + r.stderr}


def close_candle(nomade, d, ctl, ev, notes):
    """One candle closed: the clock just before its end, nomade's clock
    re-learnt, then the clock just past the end. Waits for the order that
    closing brings (or 3 s)."""
    now = ctl.server_now()
    boundary = (now // MINUTE + 1) * MINUTE
    if boundary - LEAD_MS - now < SKIP_MS:
        notes.append("a jump of %d ms only before the close at %d" % (boundary - LEAD_MS - now, boundary))
    ctl.move_to(boundary - LEAD_MS)
    r = repl(nomade, d, "reconcile()")
    if not (r.get("ok") and (r.get("value") or {}).get("ok")):
        notes.append("reconcile: %s" % json.dumps(r)[:200])
    if ctl.server_now() >= boundary:
        notes.append("the candle closed before the jump (reconcile took over %d ms)" % LEAD_MS)
    had = len(ev.named("latency"))
    ctl.move_to(boundary + PAST_MS)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        time.sleep(0.005)  # nomade's output file only: the stand-in is left alone
        ev.poll()
        if len(ev.named("latency")) > had:
            return True
    return False


def pair_log(log):
    """Each closing kline push with the first order/create after it: e2e
    rows {e2e_us, link, ret}; and every order/create answered 10002. In
    mono_us order: a push's entry can be logged after the order it brought."""
    rows, retried, push = [], [], None
    for e in sorted(log, key=lambda e: e.get("mono_us", 0)):
        if e.get("ws") and e.get("event") == "sent" and e.get("kind") == "push" \
                and (e.get("topic") or "").startswith("kline.") and '"confirm":true' in (e.get("message") or ""):
            push = e
        elif e.get("method") == "POST" and e.get("path") == "/v5/order/create":
            body = json.loads(e.get("body") or "{}")
            if e.get("retCode") == 10002:
                retried.append(body.get("orderLinkId"))
            if push is not None:
                rows.append({"e2e_us": e["mono_us"] - push["mono_us"], "link": body.get("orderLinkId"),
                             "ret": e.get("retCode")})
                push = None
    return rows, retried


def pct(xs, p):
    """The nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def drive(nomade, d, ctl, ev, candles):
    """Closes the candles one by one; the stand-in's log (read in batches:
    its GET is not cheap) and what was odd. A first candle, not measured,
    starts the clock at a candle's start: from there each jump before a
    close is long enough to bring the resync, and crosses no candle's end."""
    close_candle(nomade, d, ctl, ev, [])
    time.sleep(0.3)  # its order's answer and fills, before the log is cut
    seq = (ctl.state(0)["log"] or [{"seq": 0}])[-1]["seq"]
    notes, log, missed, in_a_row, closed = [], [], 0, 0, 0
    while closed < candles:
        closed += 1
        if close_candle(nomade, d, ctl, ev, notes):
            in_a_row = 0
        else:
            missed, in_a_row = missed + 1, in_a_row + 1
        stuck = in_a_row >= 5  # refused for good (the shield, a limit): no point waiting on
        if stuck:
            notes.append("stopped after %d candles: 5 in a row brought no order" % closed)
        if closed % 50 == 0 or closed == candles or stuck:
            got = ctl.state(seq)["log"]
            seq = got[-1]["seq"] if got else seq
            log.extend(got)
        if stuck:
            break
    return log, notes, missed, closed


def run(nomade, candles, d):
    """The stand-in and nomade started, the candles closed, both stopped."""
    sp, rest, ws = start_stand_in()
    np = None
    try:
        ctl = Control(rest)
        # no fees: a thousand round trips would otherwise eat the account
        # and trip max_daily_loss; they cost nothing to the timing
        ctl.post({"rate_limits": False, "fee_rates": {"maker": 0, "taker": 0}})
        np = start_nomade(nomade, d, rest, ws)
        if not subscribed(ctl):
            return None, "nomade did not subscribe (see %s/out)" % d
        ev = Events(os.path.join(d, "out"))
        t0 = time.monotonic()
        log, notes, missed, closed = drive(nomade, d, ctl, ev, candles)
        wall = time.monotonic() - t0
        shield = (repl(nomade, d, "status()").get("value") or {}).get("shield")
        return {"log": log, "ev": ev, "notes": notes, "missed": missed, "closed": closed, "wall": wall,
                "shield": shield}, None
    finally:
        for p in (np, sp):
            if p is not None:
                stop(p)


def stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def write_csv(path, rows, lat):
    with open(path, "w") as f:
        f.write("orderLinkId,end_to_end_us,inside_nomade_us,retCode\n")
        for r in rows:
            f.write("%s,%d,%s,%s\n" % (r["link"], r["e2e_us"], "%.1f" % lat[r["link"]] if r["link"] in lat else "",
                                       r["ret"]))


def oddities(got, retried):
    """What makes the figures less than they seem: printed under them."""
    odd = []
    if got["missed"]:
        odd.append("%d candles brought no order" % got["missed"])
    if retried:
        # nomade's latency event then times the second request
        odd.append("%d order requests answered 10002 and sent again (e.g. %s)" % (len(retried), retried[0]))
    if got["shield"] != "GREEN":
        odd.append("shield %s at the end" % got["shield"])
    if got["notes"]:
        odd.append("%d notes, first: %s" % (len(got["notes"]), got["notes"][0]))
    return odd


def measure(nomade, candles):
    """One run of CANDLES closes: {e2e, inside (µs lists), closed, wall,
    odd, dir}, or None and why."""
    d = tempfile.mkdtemp(prefix="nomade-bench-order.")
    got, err = run(nomade, candles, d)
    if err:
        return None, err
    rows, retried = pair_log(got["log"])
    lat = {e.get("link"): e.get("us") for e in got["ev"].named("latency")}
    inside = [lat[r["link"]] for r in rows if r["link"] in lat]
    if not rows or not inside:
        return None, "no orders measured (see %s/out)" % d
    write_csv(os.path.join(d, "orders.csv"), rows, lat)
    return {"e2e": [r["e2e_us"] for r in rows], "inside": inside, "closed": got["closed"], "wall": got["wall"],
            "odd": oddities(got, retried), "dir": d}, None


def main(argv):
    nomade = argv[1] if len(argv) > 1 else "build/nomade"
    candles = int(argv[2]) if len(argv) > 2 else 1000
    m, err = measure(nomade, candles)
    if err:
        print("order     " + err)
        return
    e2e, inside = m["e2e"], m["inside"]
    print("order     candle close -> order request, loopback, tribunal off, journal in %s: %d candles in %.0f s"
          % (os.path.dirname(m["dir"]), m["closed"], m["wall"]))
    print("          end-to-end p50 %.0f µs p99 %.0f µs; inside nomade p50 %.0f µs p99 %.0f µs (target p99 <= 200 µs)"
          % (pct(e2e, 50), pct(e2e, 99), pct(inside, 50), pct(inside, 99)))
    print("          max %.0f µs and %.0f µs; n %d and %d" % (max(e2e), max(inside), len(e2e), len(inside)))
    if m["odd"]:
        print("          " + "; ".join(m["odd"]) + " (see %s)" % m["dir"])


if __name__ == "__main__":
    main(sys.argv)
