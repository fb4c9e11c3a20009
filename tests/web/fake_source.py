#!/usr/bin/python3
"""fake_source.py: a test double for nomade's dashboard pages (web/) alone.

It serves web/ and a made-up bot data tree in the Firebase Realtime Database
REST + SSE shape the pages read (the same protocol as `nomade run --http`
and as a Firebase database):

  GET  /<path>.json                        the JSON at path (null if absent)
  GET  /<path>.json  Accept: text/event-stream
                                           a stream: `put` of the whole location,
                                           then put/patch as the tree changes, and
                                           `keep-alive` (data null) when quiet
  POST /commands.json?auth=TOKEN           {"action": "pause"|"resume"|"halt"|"unhalt", ...}
                                           -> {"name": "<push id>"}; without the
                                           token 401 {"error": "Permission denied"}
  anything else on *.json                  401 {"error": "Permission denied"}
  OPTIONS                                  CORS preflight (the ?db= mode is cross-origin)

A scripted timeline drives the tree: a closed candle every --step seconds
(patch of market/SYM/candles, the oldest dropped with null, equity too), a
ticker price between candles, a tribunal verdict, a position opened and
closed into a trade, failed strategy calls, a shield change to AMBER; then, after --stall-after
seconds, the streams stop: no event, no keep-alive, connections left open
(the pages must then show "stale"). The simulated bot obeys the controls
(paused / halted in bot/status, the result under commands/<id>).

Test-only endpoints (never part of the protocol): POST /__fake/drop closes
every open stream (the pages must show "disconnected" and reconnect),
POST /__fake/stall and /__fake/resume, GET /__fake/state.

Usage: fake_source.py [--port 0] [--web DIR] [--token T] [--read-token R]
       [--step 0.3] [--keepalive 1] [--stall-after 12] [--lag SECONDS]
       [--wait-clients N]
The first line on stdout is "fake_source: listening on http://127.0.0.1:PORT".
Python 3 standard library only.
"""

import argparse
import json
import math
import os
import queue
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_WEB = os.path.normpath(os.path.join(HERE, "..", "..", "web"))
SYMBOL = "BTCUSDT"
INTERVAL = "1m"
STEP_MS = 60_000
KEEP = 300          # candles and equity points kept, as nomade's board
TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
         "mjs": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
         "json": "application/json", "png": "image/png", "svg": "image/svg+xml",
         "ico": "image/x-icon", "map": "application/json"}


def now_ms():
    return int(time.time() * 1000)


def dumps(v):
    return json.dumps(v, separators=(",", ":"))


# ---------------------------------------------------------------- the tree

def split(path):
    return [k for k in path.split("/") if k]


def clean(v):
    """A value as a Firebase tree keeps it: no nulls, no empty objects."""
    if isinstance(v, dict):
        out = {str(k): clean(x) for k, x in v.items()}
        out = {k: x for k, x in out.items() if x is not None}
        return out or None
    return v


class Tree:
    """A JSON tree with Firebase put/patch semantics and stream subscribers."""

    def __init__(self):
        self.root = None
        self.lock = threading.RLock()
        self.subs = {}      # id -> (keys, queue)
        self.next_id = 0

    def get(self, keys):
        with self.lock:
            node = self.root
            for k in keys:
                if not isinstance(node, dict):
                    return None
                node = node.get(k)
            return json.loads(dumps(node))  # a copy

    def _set(self, keys, value):
        if not keys:
            self.root = value
            return
        if not isinstance(self.root, dict):
            if value is None:
                return
            self.root = {}
        node, trail = self.root, []
        for k in keys[:-1]:
            child = node.get(k)
            if not isinstance(child, dict):
                if value is None:
                    return
                child = node[k] = {}
            trail.append((node, k))
            node = child
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
        for parent, k in reversed(trail):  # prune what a removal left empty
            if parent[k]:
                break
            del parent[k]
        if not self.root:
            self.root = None

    def _notify(self, keys, kind, data):
        for sub_keys, q in list(self.subs.values()):
            if keys[:len(sub_keys)] == sub_keys:
                q.put((kind, "/" + "/".join(keys[len(sub_keys):]), data))
            elif sub_keys[:len(keys)] == keys:
                q.put(("put", "/", self.get(sub_keys)))

    def put(self, path, value):
        with self.lock:
            keys = split(path)
            value = clean(value)
            self._set(keys, value)
            self._notify(keys, "put", value)

    def patch(self, path, children):
        with self.lock:
            keys = split(path)
            sent = {}
            for k, v in children.items():
                c = clean(v)
                self._set(keys + [str(k)], c)
                sent[str(k)] = c
            if sent:
                self._notify(keys, "patch", sent)

    def subscribe(self, keys):
        with self.lock:
            self.next_id += 1
            q = queue.Queue()
            self.subs[self.next_id] = (keys, q)
            q.put(("put", "/", self.get(keys)))
            return self.next_id, q

    def unsubscribe(self, sid):
        with self.lock:
            self.subs.pop(sid, None)

    def drop_all(self):
        with self.lock:
            for _, q in self.subs.values():
                q.put(("__drop__", None, None))


PUSH_CHARS = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


def push_id():
    t, out = now_ms(), []
    for _ in range(8):
        out.append(PUSH_CHARS[t % 64])
        t //= 64
    return "".join(reversed(out)) + "".join(random.choice(PUSH_CHARS) for _ in range(12))


# ---------------------------------------------------------------- the bot

class Bot:
    """A made-up bot writing the tree on a timeline."""

    def __init__(self, tree, args):
        self.tree, self.args = tree, args
        self.rng = random.Random(7)
        self.stalled = threading.Event()
        self.started = now_ms()
        self.closes, self.keys, self.eq_keys = [], [], []
        self.ema = None
        self.gain = self.loss = None
        self.price = 42_000.0
        self.cash, self.qty, self.entry = 10_000.0, 0.0, None
        self.n = 0
        self.status = {"mode": "paper", "symbol": SYMBOL, "interval": INTERVAL, "feed": "bybit",
                       "strategy": "strategy.lua", "started": self.started, "updated": self.started,
                       "paused": False, "halted": None,
                       "reload": {"count": 1, "ok": True, "last": self.started - 3_600_000, "error": None},
                       "candles": 0}
        self.lock = threading.Lock()

    # indicators as the default strategy has them: ema200 and rsi (14, Wilder)
    def indicators(self, close):
        self.closes.append(close)
        ind = {}
        n = len(self.closes)
        if n == 200:
            self.ema = sum(self.closes[-200:]) / 200
        elif n > 200:
            self.ema += (close - self.ema) * 2 / 201
        if self.ema is not None:
            ind["ema200"] = round(self.ema, 2)
        if n >= 2:
            d = close - self.closes[-2]
            g, l = max(d, 0.0), max(-d, 0.0)
            if n <= 15:
                self._g = getattr(self, "_g", 0.0) + g
                self._l = getattr(self, "_l", 0.0) + l
                if n == 15:
                    self.gain, self.loss = self._g / 14, self._l / 14
            else:
                self.gain = (self.gain * 13 + g) / 14
                self.loss = (self.loss * 13 + l) / 14
            if self.gain is not None:
                rsi = 100.0 if self.loss == 0 else 100 - 100 / (1 + self.gain / self.loss)
                ind["rsi"] = round(rsi, 2)
        return ind

    def candle(self, t):
        o = self.price
        drift = 0.00025 * math.sin(self.n / 37.0)
        c = o * (1 + drift + self.rng.gauss(0, 0.0025))
        h = max(o, c) * (1 + abs(self.rng.gauss(0, 0.0012)))
        l = min(o, c) * (1 - abs(self.rng.gauss(0, 0.0012)))
        self.price = c
        self.n += 1
        ind = self.indicators(c)
        ema = ind.get("ema200")
        regime = "warmup" if ema is None else ("trend" if c > ema else "range")
        return {"t": t, "o": round(o, 2), "h": round(h, 2), "l": round(l, 2), "c": round(c, 2),
                "v": round(abs(self.rng.gauss(12, 4)), 4), "regime": regime, "ind": ind}

    def equity(self):
        return round(self.cash + self.qty * self.price, 2)

    def setup(self):
        """The tree a bot running for a while has: history, no trade yet."""
        # the history ends 50 candles ago: the timeline's candles (one every
        # --step seconds, 1m apart) then come up to about now
        end = (now_ms() // STEP_MS - 50) * STEP_MS
        first = end - 240 * STEP_MS
        candles, equity = {}, {}
        for k in range(240):
            t = first + k * STEP_MS
            c = self.candle(t)
            candles[str(t)] = c
            equity[str(t)] = self.equity()
            self.keys.append(str(t))
            self.eq_keys.append(str(t))
        self.next_t = end
        self.status["candles"] = 240
        lag = int(self.args.lag * 1000)
        self.tree.put("/", {
            "market": {SYMBOL: {"candles": candles,
                                "current": {"price": round(self.price, 2), "time": now_ms() - lag}}},
            "bot": {"status": self.status},
            "shield": {"state": "GREEN", "reasons": None,
                       "transitions": {"1": {"seq": 1, "time": self.started - 600_000, "from": "AMBER",
                                             "to": "GREEN", "check": "warmup", "detail": "history complete"}}},
            "equity": equity,
            "orders": None, "positions": None, "trades": None, "tribunal": None, "commands": None,
        })

    def tick(self):
        """One ticker price between candles (wall-clock time, as a live feed)."""
        p = round(self.price * (1 + self.rng.gauss(0, 0.0004)), 2)
        self.tree.put(f"/market/{SYMBOL}/current", {"price": p, "time": now_ms() - int(self.args.lag * 1000)})

    def close_candle(self):
        t = self.next_t
        self.next_t += STEP_MS
        c = self.candle(t)
        key = str(t)
        patch = {key: c}
        self.keys.append(key)
        if len(self.keys) > KEEP:
            patch[self.keys.pop(0)] = None
        self.tree.patch(f"/market/{SYMBOL}/candles", patch)
        self.tree.put(f"/market/{SYMBOL}/current",
                      {"price": c["c"], "time": now_ms() - int(self.args.lag * 1000)})
        eq = {key: self.equity()}
        self.eq_keys.append(key)
        if len(self.eq_keys) > KEEP:
            eq[self.eq_keys.pop(0)] = None
        self.tree.patch("/equity", eq)
        with self.lock:
            self.status["candles"] += 1
            self.status["updated"] = now_ms()
            self.tree.put("/bot/status", self.status)
        return c

    def verdict(self, t, signal, score, reasoning):
        rec = {"time": t, "signal": signal, "score": score, "reasoning": reasoning,
               "latency_ms": self.rng.randint(600, 2400), "cause": "entry_candidate",
               "source": "live", "model": "gemini-2.5-flash"}
        self.tree.put("/tribunal/last", rec)
        self.tree.patch("/tribunal/verdicts", {str(t): rec})

    def order(self, oid, side, qty, status, reason):
        self.tree.put(f"/orders/{oid}", {"link": oid, "side": side, "qty": qty, "status": status,
                                         "time": now_ms(), "reason": reason})

    def open_position(self, c):
        qty = round(self.cash * 0.95 / c["c"], 5)
        self.qty, self.entry = qty, (c["t"], c["c"])
        self.cash -= qty * c["c"]
        self.order("nmd-1-buy", "Buy", qty, "Filled", "entry")
        self.tree.put(f"/positions/{SYMBOL}", {"qty": qty, "price": c["c"], "time": c["t"],
                                                "stop": round(c["c"] * 0.98, 2),
                                                "take": round(c["c"] * 1.04, 2)})

    def close_position(self, c, reason):
        qty, (et, ep) = self.qty, self.entry
        self.cash += qty * c["c"]
        self.qty, self.entry = 0.0, None
        self.order("nmd-2-sell", "Sell", qty, "Filled", reason)
        self.tree.put(f"/positions/{SYMBOL}", None)
        self.tree.patch("/trades", {"1": {"entry_time": et, "exit_time": c["t"], "entry_price": ep,
                                          "exit_price": c["c"], "qty": qty,
                                          "pnl": round((c["c"] - ep) * qty, 2), "reason": reason}})

    def shield(self, state, check, detail):
        t = now_ms()
        self.tree.put("/shield", {
            "state": state,
            "reasons": {check: {"check": check, "severity": state, "detail": detail, "since": t}},
            "transitions": {"1": {"seq": 1, "time": self.started - 600_000, "from": "AMBER", "to": "GREEN",
                                  "check": "warmup", "detail": "history complete"},
                            "2": {"seq": 2, "time": t, "from": "GREEN", "to": state, "check": check,
                                  "detail": detail}}})

    def command(self, action):
        """What the bot does with a control; the result text."""
        with self.lock:
            if action == "pause":
                self.status["paused"] = True
                result = "paused: no new entries"
            elif action == "resume":
                if self.status["halted"]:
                    return "refused: halted"
                self.status["paused"] = False
                result = "resumed"
            elif action == "unhalt":
                self.status["halted"] = False
                self.status["paused"] = False
                result = "unhalted"
            else:
                self.status["halted"] = "halted from the dashboard"
                self.status["paused"] = True
                result = "halted: open orders cancelled"
            self.status["updated"] = now_ms()
            self.tree.put("/bot/status", self.status)
        return result

    def run(self):
        a = self.args
        # with --wait-clients N the timeline starts once N streams are open
        # (at most 20 s later), so a test sees it from its beginning
        until = time.monotonic() + 20
        while len(self.tree.subs) < a.wait_clients and time.monotonic() < until:
            time.sleep(0.05)
        if a.wait_clients:
            print(f"fake_source: timeline starts ({len(self.tree.subs)} streams open)", flush=True)
        start = time.monotonic()
        k = 0
        while True:
            k += 1
            deadline = start + k * a.step
            # two ticker prices between closes
            for frac in (1 / 3, 2 / 3):
                pause = start + (k - 1 + frac) * a.step - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                if not self.stalled.is_set():
                    self.tick()
            pause = deadline - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if a.stall_after and time.monotonic() - start >= a.stall_after and not self.stalled.is_set():
                self.stalled.set()
                print("fake_source: timeline stalled: no more events", flush=True)
            if self.stalled.is_set():
                continue
            c = self.close_candle()
            if k == 6:
                self.verdict(c["t"], "BUY", 78, "Price closed above EMA200 with RSI 58 rising from 41; "
                             "volume above its 20-candle mean. Breakout on a rising trend: BUY.")
                self.open_position(c)
            elif k == 12:
                self.close_position(c, "take profit")
            elif k == 14:
                with self.lock:
                    self.status["errors"] = {"count": 3, "in_a_row": 2, "candle": "2024-01-01 10:00",
                                             "last": "strategy failed in exit(m, position): strategy.lua:42: boom"}
            elif k == 16:
                self.verdict(c["t"], "WAIT", 35, "RSI 71 is stretched after the move and the candle "
                             "closed off its high: no edge for a new entry. WAIT.")
            elif k == 20:
                self.shield("AMBER", "price_gap", "close 1.8% away from the last ticker price")


# ---------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    server_version = "fake_source/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet unless asked
        if self.server.args.verbose:
            sys.stderr.write("fake_source: " + (fmt % args) + "\n")

    def cors(self):
        self.send_header("Access-Control-Allow-Origin", "*")

    def reply(self, status, body, ctype="application/json; charset=utf-8", extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.cors()
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def refuse(self, status, message):
        self.reply(status, dumps({"error": message}))

    def parts(self):
        u = urlsplit(self.path)
        return u.path, {k: v[-1] for k, v in parse_qs(u.query).items()}

    def token_of(self, query):
        auth = query.get("auth")
        if auth is None:
            h = self.headers.get("Authorization", "")
            if h.startswith("Bearer "):
                auth = h[7:].strip()
        return auth

    def do_OPTIONS(self):
        self.send_response(204)
        self.cors()
        self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type, Authorization, Cache-Control")
        self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path, query = self.parts()
        srv = self.server
        if path == "/__fake/state":
            return self.reply(200, dumps({"stalled": srv.bot.stalled.is_set(),
                                          "streams": len(srv.tree.subs)}))
        if not path.endswith(".json"):
            return self.static(path)
        if srv.args.read_token and self.token_of(query) != srv.args.read_token:
            return self.refuse(401, "Permission denied")
        keys = split(path[:-len(".json")])
        if "text/event-stream" in self.headers.get("Accept", ""):
            return self.stream(keys)
        self.reply(200, dumps(srv.tree.get(keys)))

    def static(self, path):
        if path == "/":
            self.send_response(302)
            self.send_header("Location", "/trading.html")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ext = path.rsplit(".", 1)[-1] if "." in path else ""
        full = os.path.normpath(os.path.join(self.server.args.web, path.lstrip("/")))
        if ".." in path or ext not in TYPES or not full.startswith(self.server.args.web) \
                or not os.path.isfile(full):
            return self.refuse(404, "Not found")
        with open(full, "rb") as f:
            self.reply(200, f.read(), TYPES[ext])

    def stream(self, keys):
        srv = self.server
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.cors()
        self.end_headers()
        self.close_connection = True
        sid, q = srv.tree.subscribe(keys)
        try:
            self.wfile.write(b"retry: 1000\n\n")  # reconnect after 1 s, not 3
            self.wfile.flush()
            while True:
                try:
                    kind, path, data = q.get(timeout=srv.args.keepalive)
                except queue.Empty:
                    if srv.bot.stalled.is_set():
                        continue
                    kind, path, data = "keep-alive", None, None
                if kind == "__drop__":
                    break
                if srv.bot.stalled.is_set():
                    continue  # the stream says nothing more, but stays open
                if kind == "keep-alive":
                    msg = "event: keep-alive\ndata: null\n\n"
                else:
                    msg = f"event: {kind}\ndata: {dumps({'path': path, 'data': data})}\n\n"
                self.wfile.write(msg.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            srv.tree.unsubscribe(sid)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self):
        path, query = self.parts()
        srv = self.server
        raw = self.body()
        if path.startswith("/__fake/"):
            what = path[len("/__fake/"):]
            if what == "drop":
                srv.tree.drop_all()
            elif what == "stall":
                srv.bot.stalled.set()
            elif what == "resume":
                srv.bot.stalled.clear()
            else:
                return self.refuse(404, "Not found")
            return self.reply(200, dumps({"ok": what}))
        if path.rstrip("/") != "/commands.json":
            return self.refuse(401, "Permission denied")
        if self.token_of(query) != srv.args.token:
            return self.refuse(401, "Permission denied")
        try:
            doc = json.loads(raw or b"null")
        except ValueError:
            return self.refuse(400, "Invalid data; couldn't parse JSON object, array, or value.")
        if not isinstance(doc, dict) or doc.get("action") not in ("pause", "resume", "halt", "unhalt"):
            return self.refuse(400, 'the body must be {"action": "pause"|"resume"|"halt"|"unhalt"}')
        name = push_id()
        t = doc.get("time")
        if isinstance(t, dict) and t.get(".sv") == "timestamp":
            t = now_ms()
        srv.tree.put(f"/commands/{name}", {"action": doc["action"], "time": t if isinstance(t, int) else now_ms()})
        result = srv.bot.command(doc["action"])
        srv.tree.put(f"/commands/{name}/result", result)
        self.reply(200, dumps({"name": name}))

    def do_PUT(self):
        self.body()
        self.refuse(401, "Permission denied")

    do_PATCH = do_PUT
    do_DELETE = do_PUT


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--web", default=DEFAULT_WEB)
    ap.add_argument("--token", default="test-token", help="the controls' token")
    ap.add_argument("--read-token", default=None, help="require ?auth= for reads too (as a locked Firebase)")
    ap.add_argument("--step", type=float, default=0.3, help="seconds between candles")
    ap.add_argument("--keepalive", type=float, default=1.0, help="seconds of quiet before a keep-alive")
    ap.add_argument("--stall-after", type=float, default=12.0, help="seconds, then no more events (0: never)")
    ap.add_argument("--lag", type=float, default=0.0, help="the live price's time this many seconds old")
    ap.add_argument("--wait-clients", type=int, default=0, help="start the timeline once this many streams are open")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    args.web = os.path.abspath(args.web)

    tree = Tree()
    bot = Bot(tree, args)
    bot.setup()
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    srv.args, srv.tree, srv.bot = args, tree, bot
    print(f"fake_source: listening on http://{args.host}:{srv.server_address[1]}", flush=True)
    threading.Thread(target=bot.run, daemon=True).start()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
