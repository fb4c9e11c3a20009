#!/usr/bin/python3
# ws.py: the WebSocket side of the Bybit V5 stand-in (server.py), for nomade's tests.
# Speaks Bybit's V5 WebSocket API as the project's protocol notes (section 2) describe it,
# on plain ws:// at 127.0.0.1:
#   /v5/public/spot   subscribe/unsubscribe kline.{interval}.{symbol} and tickers.{symbol}; ping
#   /v5/private       auth, subscribe order / execution / wallet; ping
# Payload shapes come from the ws_* fixtures in tests/fixtures/bybit/. It runs in a background
# thread with its own asyncio loop and shares server.py's State (and its lock): klines come
# from the same Market.candle() as the REST kline endpoint, on the same clock (with
# clock_offset_ms); private pushes are fed by server.py when a REST order is created, filled or
# cancelled. Faults are queued through server.py's /__control ("ws_fault"). Events go to the
# request log with "ws": true. Uses Debian's python3-websockets (10.4). See README.md.
import asyncio
import collections
import hashlib
import hmac
import http
import json
import logging
import os
import random
import sys
import threading
import time
import traceback
import uuid

import websockets
from websockets.exceptions import ConnectionClosed

PUBLIC_PATH = "/v5/public/spot"
PRIVATE_PATH = "/v5/private"
PATHS = (PUBLIC_PATH, PRIVATE_PATH)
UID = "592324"  # the account's uid, as it appears in the docs' private push ids
MAX_SPOT_ARGS = 10  # protocol notes 2.2: spot takes at most 10 args per subscribe request
PUSH_EVERY = 1.0  # seconds of real time between two pushes of an open candle / a ticker
FIRST_CS = 2588407389  # the docs' spot ticker example's cross sequence, counting up

WS_FAULTS = ("drop", "silent", "malformed", "delay_pong", "repeat_kline", "reorder_kline",
             "reject_auth", "lose_order_response")
IMMEDIATE = ("drop", "silent", "malformed")  # act on the connections open now
# private topic -> what it carries; "order" and "order.spot" cannot share one request
PRIVATE_TOPICS = {"order": "order", "order.spot": "order", "execution": "execution",
                  "execution.spot": "execution", "wallet": "wallet"}
MALFORMED_TEXT = '{"topic":"kline.1.BTCUSDT","data":[{"start":1672324800000,"end":'
MALFORMED_BINARY = b"\x00\x01\x02\x03\xff\xfe"


def dumps(obj):
    """Compact JSON, keys in insertion order, as Bybit sends it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def ws_sign(secret, expires):
    """Private auth signature: lowercase hex HMAC-SHA256(secret, "GET/realtime" + expires)."""
    return hmac.new(secret.encode(), ("GET/realtime" + str(expires)).encode(), hashlib.sha256).hexdigest()


def load(fixdir, name):
    with open(os.path.join(fixdir, name), "rb") as f:
        return json.loads(f.read().decode("utf-8"), object_pairs_hook=collections.OrderedDict)


def ordered(src, order, defaults, extra=()):
    """src's values laid out in a fixture's key order; keys src lacks come from defaults
    (None there = leave the key out); then the keys in extra, from src."""
    out = collections.OrderedDict()
    for k in order:
        if k in src:
            out[k] = src[k]
        elif defaults.get(k) is not None:
            out[k] = defaults[k]
    for k in extra:
        if k in src and k not in out:
            out[k] = src[k]
    return out


class Sub:
    """One subscribed public topic of one connection."""

    def __init__(self, topic, kind, symbol, interval=None):
        self.topic, self.kind, self.symbol, self.interval = topic, kind, symbol, interval
        self.key = ("spot", symbol)
        self.start = None  # kline: start of the candle last pushed as open
        self.last = 0.0  # loop time of the last push


class Conn:
    """One WebSocket client."""

    def __init__(self, srv, ws, path, conn_id):
        self.srv, self.ws, self.path, self.conn_id = srv, ws, path, conn_id
        self.private = path == PRIVATE_PATH
        self.authed = False
        self.subs = collections.OrderedDict()  # public: topic -> Sub; private: topic -> kind
        self.queue = asyncio.Queue()
        self.silent_until = 0.0
        self.held = {}  # topic -> (message, "confirm"|"any"): a held confirm:true push
        self.closed = False

    def silent(self):
        return self.srv.loop.time() < self.silent_until

    def send(self, data, **meta):
        """Queue a frame (a dict is sent as compact JSON); frames go out in order."""
        if self.closed:
            return
        if not isinstance(data, (str, bytes)):
            data = dumps(data)
        self.queue.put_nowait((data, meta))

    async def writer(self):
        while True:
            data, meta = await self.queue.get()
            if isinstance(data, bytes):
                logged = {"binary": data.hex()}
            else:
                logged = {"message": data}
            logged.update(meta)
            if self.silent():
                self.srv.log("discarded", self, **logged)
                continue
            # taken before the send: after it, this thread may wait for the GIL
            # (a REST thread's turn) and would log the frame late
            handed = time.monotonic_ns() // 1000
            try:
                await self.ws.send(data)
            except ConnectionClosed:
                return
            self.srv.log("sent", self, mono_us=handed, **logged)


class WsServer:
    def __init__(self, state, args, intervals):
        self.st = state
        self.args = args
        self.intervals = intervals
        fx = args.fixtures
        self.kline_keys = list(load(fx, "ws_kline_push.json").keys())
        self.kline_data_keys = list(load(fx, "ws_kline_push.json")["data"][0].keys())
        tick = load(fx, "ws_ticker_push_spot.json")
        self.ticker_keys, self.ticker_data_keys = list(tick.keys()), list(tick["data"].keys())
        order = load(fx, "ws_order_push.json")
        self.order_keys, self.order_data_keys = list(order.keys()), list(order["data"][0].keys())
        execu = load(fx, "ws_execution_push.json")
        self.exec_keys, self.exec_data_keys = list(execu.keys()), list(execu["data"][0].keys())
        wal = load(fx, "ws_wallet_push.json")
        self.wallet_keys, self.wallet_data_keys = list(wal.keys()), list(wal["data"][0].keys())
        self.wallet_coin_keys = list(wal["data"][0]["coin"][0].keys())
        self.conns = collections.OrderedDict()  # conn_id -> Conn
        self.cs = FIRST_CS
        self.loop = None
        self.port = None
        self.wake_event = None
        self.rng = random.Random()

    # ------------------------------------------------------------------ thread and loop
    def start(self, port):
        """Start the loop thread; returns the bound port once it listens."""
        ready = threading.Event()
        failure = []

        def run():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self.loop = loop
            self.wake_event = asyncio.Event()
            try:
                server = loop.run_until_complete(websockets.serve(
                    self.handler, "127.0.0.1", port, process_request=self.check_path,
                    ping_interval=None, compression=None, max_size=1 << 20))
                self.port = server.sockets[0].getsockname()[1]
                loop.create_task(self.pusher())
            except Exception as e:
                failure.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        if not self.args.verbose:
            logging.getLogger("websockets").setLevel(logging.CRITICAL + 1)
        threading.Thread(target=run, name="bybit-ws", daemon=True).start()
        ready.wait(30)
        if failure:
            raise failure[0]
        if self.port is None:
            raise RuntimeError("the WebSocket side did not start")
        return self.port

    def call(self, fn, *a):
        """Run fn(*a) on the loop thread (from any thread), without waiting."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(fn, *a)

    def wake(self):
        """The clock moved (clock_offset_ms): re-check candle boundaries now."""
        self.call(self.wake_event.set)

    async def check_path(self, path, headers):
        if path.split("?")[0] not in PATHS:
            return http.HTTPStatus.NOT_FOUND, [("Content-Type", "text/plain")], b"404 page not found\n"
        return None

    # ------------------------------------------------------------------ log (shared with REST)
    def log(self, event, conn=None, **kw):
        st = self.st
        mono_us = kw.pop("mono_us", None) or time.monotonic_ns() // 1000
        with st.lock:
            st.log_seq += 1
            e = collections.OrderedDict([
                ("seq", st.log_seq), ("time", st.now_ms()), ("mono_us", mono_us), ("ws", True), ("method", "WS"),
                ("event", event), ("path", conn.path if conn else None),
                ("conn_id", conn.conn_id if conn else None), ("fault", None)])
            e.update(kw)
            st.log.append(e)
            if len(st.log) > st.log_cap:
                del st.log[: len(st.log) - st.log_cap]
        if self.args.verbose:
            sys.stderr.write("ws %s %s %s\n" % (event, conn.conn_id if conn else "-",
                                                dumps({k: v for k, v in kw.items()})[:300]))

    # ------------------------------------------------------------------ faults
    def take(self, kind, conn=None, topic=None):
        st = self.st
        with st.lock:
            for f in st.ws_faults:
                if f["ws_fault"] != kind or f["count"] == 0:
                    continue
                if f.get("path") and conn is not None and f["path"] != conn.path:
                    continue
                if f.get("topic") and topic is not None and f["topic"] != topic:
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                f["hits"] += 1
                return dict(f)
        return None

    def validate(self, f):
        """A ws_fault spec from /__control -> the stored spec (raises ValueError)."""
        kind = f.get("ws_fault")
        if kind not in WS_FAULTS:
            raise ValueError("unknown ws_fault %r; known: %s" % (kind, ", ".join(WS_FAULTS)))
        spec = collections.OrderedDict([("ws_fault", kind), ("count", int(f.get("count", 1))), ("hits", 0)])
        if "path" in f:
            if f["path"] not in PATHS:
                raise ValueError("ws_fault path must be %s or %s" % PATHS)
            spec["path"] = f["path"]
        if "topic" in f:
            spec["topic"] = str(f["topic"])
        if kind in ("silent", "delay_pong"):
            ms = f.get("ms", 5000 if kind == "silent" else 1000)
            if not isinstance(ms, (int, float)) or isinstance(ms, bool) or ms < 0:
                raise ValueError("ms must be a number >= 0")
            spec["ms"] = ms
        if kind == "reorder_kline":
            after = f.get("after", "confirm")
            if after not in ("confirm", "any"):
                raise ValueError("reorder_kline after must be confirm or any")
            spec["after"] = after
        if kind == "malformed":
            if "text" in f:
                if not isinstance(f["text"], str):
                    raise ValueError("text must be a string")
                spec["text"] = f["text"]
        return spec

    def add_fault(self, spec):
        """A validated spec from /__control (control thread, State lock held): drop / silent /
        malformed act on the clients connected now and return how many there are; the others
        are queued in State.ws_faults (0)."""
        if spec["ws_fault"] not in IMMEDIATE:
            self.st.ws_faults.append(spec)
            return 0
        n = sum(1 for c in list(self.conns.values()) if not spec.get("path") or c.path == spec["path"])
        self.call(self._immediate, spec)
        return n

    def _immediate(self, spec):
        kind = spec["ws_fault"]
        targets = [c for c in list(self.conns.values()) if not spec.get("path") or c.path == spec["path"]]
        self.log("fault", None, fault=kind, spec=spec, clients=[c.conn_id for c in targets])
        for c in targets:
            if kind == "drop":
                c.closed = True
                if c.ws.transport is not None:
                    c.ws.transport.abort()
            elif kind == "silent":
                until = self.loop.time() + spec["ms"] / 1000.0
                c.silent_until = max(c.silent_until, until)
                if c.ws.transport is not None and not c.ws.transport.is_closing():
                    c.ws.transport.pause_reading()  # no pongs of any kind, requests wait
                self.loop.call_later(spec["ms"] / 1000.0 + 0.001, self._end_silence, c)
            elif kind == "malformed":
                c.send(spec.get("text", MALFORMED_TEXT), kind="fault", fault="malformed")
                c.send(MALFORMED_BINARY, kind="fault", fault="malformed")

    def _end_silence(self, c):
        if c.closed or self.loop.time() < c.silent_until:
            return
        c.silent_until = 0.0
        t = c.ws.transport
        if t is not None and not t.is_closing():
            t.resume_reading()
        self.log("silence_end", c)

    def reset(self):
        """/__control reset: silences end, held pushes are dropped (faults live in State)."""
        def _reset():
            for c in list(self.conns.values()):
                c.held.clear()
                if c.silent_until:
                    c.silent_until = self.loop.time()
                    self._end_silence(c)
        self.call(_reset)

    def describe(self):
        st = self.st
        return collections.OrderedDict([
            ("port", self.port),
            ("clients", [collections.OrderedDict([
                ("conn_id", c.conn_id), ("path", c.path), ("authenticated", c.authed),
                ("topics", list(c.subs.keys())), ("silent", c.silent_until > 0)])
                for c in list(self.conns.values())]),
            ("faults", [dict(f) for f in st.ws_faults])])

    # ------------------------------------------------------------------ connections
    def new_conn_id(self, private):
        r = self.rng
        if private:  # like "cejreassvfrsfvb9v1a0-2m"
            a = "0123456789abcdefghijklmnopqrstuv"
            return "".join(r.choice(a) for _ in range(20)) + "-" + "".join(
                r.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(2))
        return str(uuid.UUID(int=r.getrandbits(128), version=4))

    async def handler(self, ws, path=None):
        path = ws.path.split("?")[0]
        conn = Conn(self, ws, path, self.new_conn_id(path == PRIVATE_PATH))
        self.conns[conn.conn_id] = conn
        peer = ws.remote_address
        self.log("connect", conn, remote="%s:%s" % (peer[0], peer[1]) if peer else None, target=ws.path)
        writer = asyncio.ensure_future(conn.writer())
        try:
            async for message in ws:
                try:
                    self.on_message(conn, message)
                except Exception:
                    traceback.print_exc()
        except ConnectionClosed:
            pass
        finally:
            conn.closed = True
            self.conns.pop(conn.conn_id, None)
            writer.cancel()
            self.log("disconnect", conn, code=ws.close_code, reason=ws.close_reason)

    # ------------------------------------------------------------------ requests
    def public_reply(self, conn, success, ret_msg, op, req_id):
        return collections.OrderedDict([("success", success), ("ret_msg", ret_msg), ("conn_id", conn.conn_id),
                                        ("req_id", "" if req_id is None else req_id), ("op", op)])

    def private_reply(self, conn, success, ret_msg, op, req_id):
        d = collections.OrderedDict()
        if req_id is not None:
            d["req_id"] = req_id
        d.update([("success", success), ("ret_msg", ret_msg), ("op", op), ("conn_id", conn.conn_id)])
        return d

    def reply(self, conn, success, ret_msg, op, req_id):
        mk = self.private_reply if conn.private else self.public_reply
        conn.send(mk(conn, success, ret_msg, op, req_id), kind="reply", op=op)

    def on_message(self, conn, raw):
        if isinstance(raw, bytes):
            self.log("received", conn, binary=raw.hex())
            return self.reply(conn, False, "error:binary frames are not accepted", "", None)
        self.log("received", conn, message=raw)
        try:
            req = json.loads(raw)
        except ValueError:
            req = None
        if not isinstance(req, dict):
            return self.reply(conn, False, "error:request is not a JSON object", "", None)
        op, req_id = req.get("op"), req.get("req_id")
        if op == "ping":
            return self.on_ping(conn, req_id)
        if op in ("subscribe", "unsubscribe"):
            if conn.private:
                return self.on_private_sub(conn, op, req.get("args"), req_id)
            return self.on_public_sub(conn, op, req.get("args"), req_id)
        if op == "auth" and conn.private:
            return self.on_auth(conn, req.get("args"), req_id)
        return self.reply(conn, False, "error:unknown op %s" % (op if isinstance(op, str) else dumps(op)),
                          op if isinstance(op, str) else "", req_id)

    def on_ping(self, conn, req_id):
        if conn.private:
            msg = collections.OrderedDict()
            if req_id is not None:
                msg["req_id"] = req_id
            msg.update([("op", "pong"), ("args", [str(self.st.now_ms())]), ("conn_id", conn.conn_id)])
        else:
            msg = collections.OrderedDict([("success", True), ("ret_msg", "pong"), ("conn_id", conn.conn_id),
                                           ("op", "ping")])
        f = self.take("delay_pong", conn)
        if f:
            self.log("fault", conn, fault="delay_pong", ms=f["ms"])
            self.loop.call_later(f["ms"] / 1000.0, lambda: conn.send(msg, kind="pong", fault="delay_pong"))
        else:
            conn.send(msg, kind="pong")

    def parse_public(self, topic):
        """A public spot topic -> Sub, or None when this stand-in has no such topic."""
        if not isinstance(topic, str):
            return None
        parts = topic.split(".")
        mk = self.st.market
        if len(parts) == 3 and parts[0] == "kline" and parts[1] in self.intervals \
                and ("spot", parts[2]) in mk.series:
            return Sub(topic, "kline", parts[2], parts[1])
        if len(parts) == 2 and parts[0] == "tickers" and parts[1] in mk.book:
            return Sub(topic, "tickers", parts[1])
        return None

    def on_public_sub(self, conn, op, args, req_id):
        if not isinstance(args, list) or not args:
            return self.reply(conn, False, "error:args must be a non-empty list of topics", op, req_id)
        if len(args) > MAX_SPOT_ARGS:
            return self.reply(conn, False, "error:args size >%d" % MAX_SPOT_ARGS, op, req_id)
        if op == "unsubscribe":
            for t in args:
                if isinstance(t, str):
                    conn.subs.pop(t, None)
                    conn.held.pop(t, None)
            self.log("unsubscribe", conn, topics=args)
            return self.reply(conn, True, "unsubscribe", op, req_id)
        subs = []
        for t in args:
            s = self.parse_public(t)
            if s is None:
                self.log("subscribe", conn, topics=args, ok=False, reason="unknown topic %s" % t)
                return self.reply(conn, False, "error:handler not found,topic:%s" % t, op, req_id)
            if t in conn.subs or any(x.topic == t for x in subs):
                self.log("subscribe", conn, topics=args, ok=False, reason="already subscribed %s" % t)
                return self.reply(conn, False, "error:already subscribed,topic:%s" % t, op, req_id)
            subs.append(s)
        for s in subs:
            conn.subs[s.topic] = s
        self.log("subscribe", conn, topics=args, ok=True)
        self.reply(conn, True, "subscribe", op, req_id)
        now = self.st.now_ms()
        for s in subs:  # a first snapshot right away
            if s.kind == "kline":
                s.start = self.st.market.candle_start(now, s.interval)
                self.push_open(conn, s, now)
            else:
                self.push_ticker(conn, s, now)
        self.wake_event.set()

    def on_private_sub(self, conn, op, args, req_id):
        if not isinstance(args, list) or not args:
            return self.reply(conn, False, "error:args must be a non-empty list of topics", op, req_id)
        if op == "unsubscribe":
            for t in args:
                if isinstance(t, str):
                    conn.subs.pop(t, None)
            self.log("unsubscribe", conn, topics=args)
            return self.reply(conn, True, "", op, req_id)
        if not conn.authed:
            self.log("subscribe", conn, topics=args, ok=False, reason="not authenticated")
            return self.reply(conn, False, "Request not authorized", op, req_id)
        kinds = {}
        for t in args:
            if t not in PRIVATE_TOPICS:
                self.log("subscribe", conn, topics=args, ok=False, reason="unknown topic %s" % t)
                return self.reply(conn, False, "error:handler not found,topic:%s" % t, op, req_id)
            k = PRIVATE_TOPICS[t]
            if k in kinds and kinds[k] != t:
                self.log("subscribe", conn, topics=args, ok=False, reason="%s and %s in one request" % (kinds[k], t))
                return self.reply(conn, False, "error:%s and %s cannot be subscribed in one request" % (kinds[k], t),
                                  op, req_id)
            kinds[k] = t
        for t in args:
            conn.subs[t] = PRIVATE_TOPICS[t]
        self.log("subscribe", conn, topics=args, ok=True)
        return self.reply(conn, True, "", op, req_id)

    def on_auth(self, conn, args, req_id):
        st = self.st
        reason = None
        if not isinstance(args, list) or len(args) != 3:
            reason = "args must be [apiKey, expires, signature]"
        else:
            key, expires, sig = args
            now = st.now_ms()
            if isinstance(expires, bool) or not (isinstance(expires, int)
                                                 or (isinstance(expires, str) and expires.isdigit())):
                reason = "expires must be an integer (ms)"
            elif key != self.args.key:
                reason = "unknown api key"
            elif int(expires) <= now:
                reason = "expires %s is not in the future (server time %d)" % (expires, now)
            elif not isinstance(sig, str) or not hmac.compare_digest(
                    ws_sign(self.args.secret, expires).encode(), sig.encode("utf-8", "replace")):
                reason = "signature mismatch (the server signed GET/realtime%s)" % expires
        if reason is None and self.take("reject_auth", conn):
            reason = "reject_auth fault"
        if reason is not None:
            self.log("auth", conn, ok=False, reason=reason)
            msg = collections.OrderedDict()
            if req_id is not None:
                msg["req_id"] = req_id
            msg.update([("conn_id", conn.conn_id), ("op", "auth"), ("ret_msg", "Params Error"), ("success", False)])
            return conn.send(msg, kind="reply", op="auth")
        conn.authed = True
        self.log("auth", conn, ok=True)
        self.reply(conn, True, "", "auth", req_id)

    # ------------------------------------------------------------------ public pushes
    def kline_msg(self, sub, s, now, confirm):
        mk = self.st.market
        e = mk.next_start(s, sub.interval)
        # the same Market.candle() as GET /v5/market/kline: a closed candle does not depend on now
        row = mk.candle(sub.key, sub.interval, s, e if confirm else now)
        data = collections.OrderedDict([
            ("start", s), ("end", e - 1), ("interval", sub.interval), ("open", row[1]), ("close", row[4]),
            ("high", row[2]), ("low", row[3]), ("volume", row[5]), ("turnover", row[6]), ("confirm", confirm),
            ("timestamp", e - 1 if confirm else now)])
        vals = {"topic": sub.topic, "data": [data], "ts": now, "type": "snapshot"}
        return collections.OrderedDict((k, vals[k]) for k in self.kline_keys)

    def release_held(self, conn, sub, confirm):
        h = conn.held.get(sub.topic)
        if h and (confirm or h[1] == "any"):
            del conn.held[sub.topic]
            conn.send(h[0], kind="push", topic=sub.topic, fault="reorder_kline")

    def push_open(self, conn, sub, now):
        sub.last = self.loop.time()
        conn.send(self.kline_msg(sub, sub.start, now, False), kind="push", topic=sub.topic)
        self.release_held(conn, sub, False)

    def push_final(self, conn, sub, s, now):
        msg = self.kline_msg(sub, s, now, True)
        if sub.topic not in conn.held:
            f = self.take("reorder_kline", conn, sub.topic)
            if f:
                conn.held[sub.topic] = (msg, f.get("after", "confirm"))
                self.log("fault", conn, fault="reorder_kline", topic=sub.topic, held_start=s)
                return
        conn.send(msg, kind="push", topic=sub.topic)
        if self.take("repeat_kline", conn, sub.topic):
            self.log("fault", conn, fault="repeat_kline", topic=sub.topic, start=s)
            conn.send(msg, kind="push", topic=sub.topic, fault="repeat_kline")
        self.release_held(conn, sub, True)

    def push_ticker(self, conn, sub, now):
        sub.last = self.loop.time()
        st = self.st
        with st.lock:
            t = st.market.ticker(sub.symbol)
            self.cs += 1
            cs = self.cs
        data = collections.OrderedDict((k, t[k]) for k in self.ticker_data_keys if k in t)
        vals = {"topic": sub.topic, "ts": now, "type": "snapshot", "cs": cs, "data": data}
        conn.send(collections.OrderedDict((k, vals[k]) for k in self.ticker_keys), kind="push", topic=sub.topic)

    async def pusher(self):
        """Open candles and tickers every ~1 s; a candle's confirm:true push as soon as the
        stand-in's clock passes its end."""
        mk = self.st.market
        while True:
            wait = PUSH_EVERY
            try:
                lt = self.loop.time()
                now = self.st.now_ms()
                for conn in list(self.conns.values()):
                    if conn.private or conn.closed:
                        continue
                    for sub in list(conn.subs.values()):
                        if sub.kind == "kline":
                            s = mk.candle_start(now, sub.interval)
                            if s != sub.start:
                                if sub.start is not None and s > sub.start:
                                    self.push_final(conn, sub, sub.start, now)
                                sub.start = s
                                self.push_open(conn, sub, now)
                            elif lt - sub.last >= PUSH_EVERY - 0.005:
                                self.push_open(conn, sub, now)
                            to_end = (mk.next_start(sub.start, sub.interval) - now) / 1000.0 + 0.002
                            wait = min(wait, to_end, sub.last + PUSH_EVERY - lt)
                        else:
                            if lt - sub.last >= PUSH_EVERY - 0.005:
                                self.push_ticker(conn, sub, now)
                            wait = min(wait, sub.last + PUSH_EVERY - lt)
            except Exception:
                traceback.print_exc()
            self.wake_event.clear()
            try:
                await asyncio.wait_for(self.wake_event.wait(), max(0.005, wait))
            except asyncio.TimeoutError:
                pass

    # ------------------------------------------------------------------ private pushes
    def private_event(self, orders, executions, wallet):
        """Called by server.py (REST thread, State lock held) after an order was created,
        filled or cancelled, or balances changed: orders as /v5/order/realtime renders them
        (plus feeCurrency), executions as /v5/execution/list, wallet as one account of
        /v5/account/wallet-balance with the changed coins (or None)."""
        st = self.st
        now = st.now_ms()
        by_id = {o["orderId"]: o for o in orders}
        msgs = []
        if orders:
            data = [ordered(o, self.order_data_keys,
                            {"category": "spot", "closedPnl": "0", "tpslMode": "", "feeCurrency": "",
                             "rpiTakerAccess": False, "rpiMatchedQty": "0"},
                            extra=("isLeverage", "marketUnit"))
                    for o in orders]
            msgs.append(("order", {"id": UID + str(uuid.uuid4()), "creationTime": now, "data": data}))
        if executions:
            data = []
            for e in executions:
                o = by_id.get(e["orderId"], {})
                data.append(ordered(e, self.exec_data_keys,
                                    {"category": "spot", "isLeverage": "0", "marketUnit": o.get("marketUnit", ""),
                                     "execPnl": "0", "createType": None, "closedSize": ""}))
            first = executions[0]
            msgs.append(("execution", {"id": "%s_%s_%s" % (UID, first["symbol"], first["seq"]),
                                       "creationTime": now, "data": data}))
        if wallet is not None:
            acct = ordered(wallet, self.wallet_data_keys, {})
            acct["coin"] = [ordered(c, self.wallet_coin_keys, {}) for c in wallet["coin"]]
            msgs.append(("wallet", {"id": UID + str(uuid.uuid4()), "creationTime": now, "data": [acct]}))
        if msgs:
            self.call(self._deliver_private, msgs,
                      [o["orderId"] for o in orders], [e["execId"] for e in executions])

    def _deliver_private(self, msgs, order_ids, exec_ids):
        keys = {"order": self.order_keys, "execution": self.exec_keys, "wallet": self.wallet_keys}
        to = []
        for conn in list(self.conns.values()):
            if not conn.private or not conn.authed or conn.closed:
                continue
            for kind, m in msgs:
                for topic, k in list(conn.subs.items()):
                    if k != kind:
                        continue
                    vals = dict(m, topic=topic)
                    conn.send(collections.OrderedDict((x, vals[x]) for x in keys[kind]), kind="push", topic=topic)
                    to.append(conn.conn_id)
        if to:
            self.log("private_event", None, kinds=[k for k, _ in msgs], orderIds=order_ids, execIds=exec_ids,
                     clients=sorted(set(to)))
