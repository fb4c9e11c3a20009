#!/usr/bin/python3
# server.py: a local stand-in for the Bybit V5 REST API (spot, unified account),
# for nomade's tests, and the starter of its WebSocket side (ws.py). The REST side is
# Python 3 standard library only; ws.py uses Debian's python3-websockets. Binds 127.0.0.1 only.
#
#   server.py --port 0 [--ws-port 0] [--key K --secret S] [--state-file F] [--fixtures DIR] [--verbose]
#
# Prints exactly one line "LISTENING <port> <ws_port>" on stdout once ready, then serves
# until killed. Wire format, headers, signature rule, timestamp rule, envelope and
# retCodes follow Bybit's V5 REST documentation (as summarised in the project's protocol notes); payload shapes come from the
# fixtures in tests/fixtures/bybit/ (copied from Bybit's docs). A control endpoint
# that is not part of Bybit's API, /__control, injects faults and exposes state.
# The WebSocket side (ws.py: Bybit's V5 public spot and private streams) runs in a
# background thread on <ws_port> and shares this file's State; REST order changes reach
# it through Handler.ws_flush. See README.md next to this file.
import argparse
import calendar
import collections
import copy
import datetime
import decimal
import hashlib
import hmac
import json
import math
import os
import re
import select
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
from decimal import Decimal
from http.server import BaseHTTPRequestHandler

decimal.getcontext().prec = 50

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES = os.path.normpath(os.path.join(HERE, "..", "..", "fixtures", "bybit"))
DEFAULT_KEY = "test-key"
DEFAULT_SECRET = "test-secret-0123456789"

MINUTE = 60_000
DAY = 86_400_000
WEEK = 7 * DAY
MONDAY0 = 4 * DAY  # 1970-01-05T00:00Z, a Monday: weekly candles start on Mondays

PUBLIC = {"/v5/market/time", "/v5/market/kline", "/v5/market/instruments-info", "/v5/market/tickers"}
ROUTES = {
    ("GET", "/v5/market/time"): "market_time",
    ("GET", "/v5/market/kline"): "market_kline",
    ("GET", "/v5/market/instruments-info"): "market_instruments",
    ("GET", "/v5/market/tickers"): "market_tickers",
    ("POST", "/v5/order/create"): "order_create",
    ("POST", "/v5/order/cancel"): "order_cancel",
    ("GET", "/v5/order/realtime"): "order_realtime",
    ("GET", "/v5/execution/list"): "execution_list",
    ("GET", "/v5/account/wallet-balance"): "wallet_balance",
}
# per-UID, per-endpoint limits in a rolling 1 s window (protocols.md 1.6, UTA spot defaults)
UID_LIMITS = {
    "/v5/order/create": 20,
    "/v5/order/cancel": 20,
    "/v5/order/realtime": 50,
    "/v5/execution/list": 50,
    "/v5/account/wallet-balance": 50,
}
IP_LIMIT, IP_WINDOW_MS = 600, 5000

FAULTS = ("latency", "http5xx", "rate_limit", "timestamp", "malformed", "truncated",
          "reset", "no_answer", "lose_response")
# whether the request is still carried out (side effects) before the fault's answer
FAULT_APPLIES = {"latency": True, "http5xx": False, "rate_limit": False, "timestamp": False,
                 "malformed": False, "truncated": True, "reset": False, "no_answer": False,
                 "lose_response": True}

INTERVALS = {"1": 1, "3": 3, "5": 5, "15": 15, "30": 30, "60": 60, "120": 120, "240": 240,
             "360": 360, "720": 720, "D": 1440, "W": 10080, "M": 43200}

ORDER_LINK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
DECIMAL_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")
STRING_FIELDS = ("category", "symbol", "side", "orderType", "orderId", "orderLinkId", "timeInForce",
                 "marketUnit", "orderFilter")

TS_MSG = ("invalid request, please check your server timestamp or recv_window param. "
          "req_timestamp[{ts}],server_timestamp[{now}],recv_window[{rw}]")

HTML_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n")
HTML_403 = (b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n"
            b"<center><h1>403 Forbidden</h1></center>\r\n<p>access too frequent</p>\r\n"
            b"</body>\r\n</html>\r\n")

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


class BybitError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


def dumps(obj):
    """Compact JSON, keys in insertion order, as Bybit sends it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def fmt(d):
    """A decimal as Bybit writes it: plain notation, no trailing zeros."""
    d = Decimal(d)
    if d == 0:
        return "0"
    s = format(d.normalize(), "f")
    return s


def hash01(*parts):
    h = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0 ** 64


def sign(secret, timestamp, api_key, recv_window, payload):
    """X-BAPI-SIGN: lowercase hex HMAC-SHA256(secret, timestamp+apiKey+recvWindow+payload).
    payload is bytes: the raw query string (GET) or the raw body (POST)."""
    msg = timestamp.encode() + api_key.encode() + recv_window.encode() + payload
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def load_fixture(fixdir, name):
    with open(os.path.join(fixdir, name), "rb") as f:
        return json.loads(f.read().decode("utf-8"), object_pairs_hook=collections.OrderedDict)


# --------------------------------------------------------------------------- markets

class Market:
    """Static instrument data and the (fixed, settable) order book top."""

    def __init__(self, fixdir):
        inst = load_fixture(fixdir, "rest_market_instruments_info_spot.json")
        tick = load_fixture(fixdir, "rest_market_tickers_spot.json")
        btc = inst["result"]["list"][0]
        eth = copy.deepcopy(btc)
        # ETHUSDT is ours, modelled on the BTCUSDT record of the docs
        eth["symbolId"] = 10
        eth["symbol"] = "ETHUSDT"
        eth["baseCoin"] = "ETH"
        eth["lotSizeFilter"].update({
            "basePrecision": "0.00001", "quotePrecision": "0.0000001", "minOrderQty": "0.00062",
            "maxOrderQty": "1229.2336343", "minOrderAmt": "5", "maxOrderAmt": "8000000",
            "maxLimitOrderQty": "1229.2336343", "maxMarketOrderQty": "614.6168171",
            "postOnlyMaxLimitOrderSize": "60000"})
        eth["priceFilter"]["tickSize"] = "0.01"
        self.instruments = collections.OrderedDict([("BTCUSDT", btc), ("ETHUSDT", eth)])
        self.ticker_template = tick["result"]["list"][0]
        # the docs' ticker example, moved onto the 0.1 tick of the docs' instrument example
        self.default_book = {
            "BTCUSDT": {"bid": Decimal("20517.9"), "ask": Decimal("20518"), "last": Decimal("20518"),
                        "prev": Decimal(self.ticker_template["prevPrice24h"]),
                        "high": Decimal(self.ticker_template["highPrice24h"]),
                        "low": Decimal(self.ticker_template["lowPrice24h"]),
                        "turnover": self.ticker_template["turnover24h"],
                        "volume": self.ticker_template["volume24h"],
                        "bidSize": self.ticker_template["bid1Size"],
                        "askSize": self.ticker_template["ask1Size"]},
            "ETHUSDT": {"bid": Decimal("1534.51"), "ask": Decimal("1534.52"), "last": Decimal("1534.52"),
                        "prev": Decimal("1519.37"), "high": Decimal("1561.08"), "low": Decimal("1502.66"),
                        "turnover": "98731557.0834913", "volume": "64320.61425",
                        "bidSize": "12.41318", "askSize": "3.92744"},
        }
        self.book = copy.deepcopy(self.default_book)
        # kline series: base price and listing time per (category, symbol)
        self.series = {
            ("spot", "BTCUSDT"): (20518.0, Decimal("0.1"), Decimal("0.000001"), 1625443200000),
            ("spot", "ETHUSDT"): (1534.52, Decimal("0.01"), Decimal("0.00001"), 1625443200000),
            ("linear", "BTCUSDT"): (20528.0, Decimal("0.1"), Decimal("0.001"), 1585526400000),
            ("linear", "ETHUSDT"): (1535.3, Decimal("0.01"), Decimal("0.01"), 1585526400000),
            ("inverse", "BTCUSD"): (20531.0, Decimal("0.5"), Decimal("1"), 1542240000000),
        }

    def rules(self, symbol):
        i = self.instruments[symbol]
        lot = i["lotSizeFilter"]
        return {"base": i["baseCoin"], "quote": i["quoteCoin"],
                "basePrecision": Decimal(lot["basePrecision"]),
                "quotePrecision": Decimal(lot["quotePrecision"]),
                "minOrderAmt": Decimal(lot["minOrderAmt"]),
                "tickSize": Decimal(i["priceFilter"]["tickSize"])}

    def ticker(self, symbol):
        b = self.book[symbol]
        t = collections.OrderedDict()
        for k in self.ticker_template:
            t[k] = self.ticker_template[k]
        pct = (b["last"] / b["prev"] - 1) if b["prev"] else Decimal(0)
        t.update({"symbol": symbol, "bid1Price": fmt(b["bid"]), "bid1Size": b["bidSize"],
                  "ask1Price": fmt(b["ask"]), "ask1Size": b["askSize"], "lastPrice": fmt(b["last"]),
                  "prevPrice24h": fmt(b["prev"]), "price24hPcnt": fmt(pct.quantize(Decimal("0.0001"))),
                  "highPrice24h": fmt(max(b["high"], b["last"])), "lowPrice24h": fmt(min(b["low"], b["last"])),
                  "turnover24h": b["turnover"], "volume24h": b["volume"], "usdIndexPrice": fmt(b["last"])})
        return t

    # ---- kline series: deterministic in (category, symbol, time)
    @staticmethod
    def candle_start(ts, interval):
        if interval == "M":
            d = datetime.datetime.fromtimestamp(ts / 1000, datetime.timezone.utc)
            return calendar.timegm((d.year, d.month, 1, 0, 0, 0)) * 1000
        if interval == "W":
            return (ts - MONDAY0) // WEEK * WEEK + MONDAY0
        n = INTERVALS[interval] * MINUTE
        return ts // n * n

    @staticmethod
    def next_start(s, interval):
        if interval == "M":
            d = datetime.datetime.fromtimestamp(s / 1000, datetime.timezone.utc)
            y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
            return calendar.timegm((y, m, 1, 0, 0, 0)) * 1000
        if interval == "W":
            return s + WEEK
        return s + INTERVALS[interval] * MINUTE

    @staticmethod
    def prev_start(s, interval):
        if interval == "M":
            d = datetime.datetime.fromtimestamp(s / 1000, datetime.timezone.utc)
            y, m = (d.year - 1, 12) if d.month == 1 else (d.year, d.month - 1)
            return calendar.timegm((y, m, 1, 0, 0, 0)) * 1000
        if interval == "W":
            return s - WEEK
        return s - INTERVALS[interval] * MINUTE

    def price_at(self, key, t):
        base = self.series[key][0]
        t += self.series_offset_ms
        x = t / 1000.0
        v = (1 + 0.04 * math.sin(2 * math.pi * x / (9 * 86400))
             + 0.015 * math.sin(2 * math.pi * x / (5 * 3600) + 1.3)
             + 0.004 * math.sin(2 * math.pi * x / (17 * 60) + 0.7)
             + 0.002 * (2 * hash01(key, "p", t) - 1))
        return base * v

    def candle(self, key, interval, s, now):
        base, tick, vstep, _ = self.series[key]
        e = self.next_start(s, interval)
        minutes = (e - s) / MINUTE
        frac = 1.0
        if now < e:  # the still-open candle: close is the last "traded" price
            frac = max(0.0, min(1.0, (now - s) / (e - s)))
            c = self.price_at(key, now)
        else:
            c = self.price_at(key, e)
        o = self.price_at(key, s)
        wiggle = 0.0005 * math.sqrt(minutes)
        hi = max(o, c) * (1 + wiggle * hash01(key, interval, "h", s + self.series_offset_ms) * frac)
        lo = min(o, c) * (1 - wiggle * hash01(key, interval, "l", s + self.series_offset_ms) * frac)

        def q(x, rounding=decimal.ROUND_HALF_EVEN):
            return (Decimal(repr(x)) / tick).quantize(Decimal(1), rounding=rounding) * tick
        oq, cq = q(o), q(c)
        hq = max(q(hi, decimal.ROUND_CEILING), oq, cq)
        lq = min(q(lo, decimal.ROUND_FLOOR), oq, cq)
        vol = (0.5 + 4 * hash01(key, interval, "v", s + self.series_offset_ms)) * (minutes ** 0.9) * frac
        if key[0] == "inverse":  # volume in contracts (USD), turnover in BTC
            vq = (Decimal(repr(vol * 2000)) / vstep).quantize(Decimal(1), rounding=decimal.ROUND_FLOOR) * vstep
            turn = (vq / ((oq + cq) / 2)).quantize(Decimal("0.00000001"))
        else:
            vq = (Decimal(repr(vol)) / vstep).quantize(Decimal(1), rounding=decimal.ROUND_FLOOR) * vstep
            turn = (vq * (oq + cq) / 2).quantize(Decimal("0.00000001"))
        return [str(s), fmt(oq), fmt(hq), fmt(lq), fmt(cq), fmt(vq), fmt(turn)]


# --------------------------------------------------------------------------- state

class State:
    def __init__(self, args, market):
        self.args = args
        self.market = market
        self.lock = threading.RLock()
        self.generation = 0
        self.initial_balances = {"USDT": Decimal("10000")}
        self.log_cap = 20000
        self.ws = None  # the WebSocket side (ws.WsServer), when started
        # what the current REST action changed, for the WebSocket private pushes
        self.ws_changes = {"orders": collections.OrderedDict(), "execs": []}
        self.reset_all()
        if args.state_file and os.path.exists(args.state_file):
            self.load(args.state_file)
        self.ws_wallet_seen = self.wallet_snapshot()

    def reset_all(self):
        self.generation += 1
        self.clock_offset_ms = 0
        self.faults = []
        self.log = []
        self.log_seq = 0
        self.counts = collections.Counter()
        self.orders = collections.OrderedDict()  # orderId -> order
        self.link_ids = {}  # orderLinkId -> orderId
        self.hidden = {}  # orderId -> time.monotonic() until which lookups and pushes do not show it
        self.executions = []
        self.balances = {c: {"wallet": v, "locked": Decimal(0)} for c, v in self.initial_balances.items()}
        self.order_seq = 0
        self.exec_seq = 0
        self.trade_seq = 4688002127  # the docs' execution example's seq, counting up
        self.uid_windows = collections.defaultdict(collections.deque)
        self.ip_window = collections.deque()
        self.rate_limits = True
        self.duplicate_code = (170141, "Duplicate clientOrderId")
        self.kline_start_only = "latest"
        self.fee_rates = {"taker": Decimal("0.001"), "maker": Decimal("0.001")}
        self.market_fills = []  # pending partial-fill plans for market orders (control market_fills)
        self.market.book = copy.deepcopy(self.market.default_book)
        self.market.series_offset_ms = 0
        self.ws_faults = []  # pending WebSocket faults (ws.py)
        self.ws_wallet_seen = self.wallet_snapshot()
        self.ws_begin()

    def now_ms(self):
        return int(time.time() * 1000) + self.clock_offset_ms

    def now_ns(self):
        return time.time_ns() + self.clock_offset_ms * 1_000_000

    # ---- persistence (--state-file): orders, fills, balances survive a restart
    def save(self):
        path = self.args.state_file
        if not path:
            return
        doc = {"orders": [self.order_json(o) for o in self.orders.values()],
               "executions": self.executions,
               "balances": {c: {"wallet": fmt(b["wallet"]), "locked": fmt(b["locked"])}
                            for c, b in self.balances.items()},
               "book": {s: {k: (fmt(v) if isinstance(v, Decimal) else v) for k, v in b.items()}
                        for s, b in self.market.book.items()},
               "order_seq": self.order_seq, "exec_seq": self.exec_seq, "trade_seq": self.trade_seq}
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, path)

    def load(self, path):
        with open(path) as f:
            doc = json.load(f, object_pairs_hook=collections.OrderedDict)
        for o in doc.get("orders", []):
            o = dict(o)
            for k in ("qty", "price", "cumExecQty", "cumExecValue", "cumExecFee", "lockedAmt"):
                o[k] = Decimal(o[k])
            self.orders[o["orderId"]] = o
            self.link_ids[o["orderLinkId"]] = o["orderId"]
        self.executions = doc.get("executions", [])
        self.balances = {c: {"wallet": Decimal(b["wallet"]), "locked": Decimal(b["locked"])}
                         for c, b in doc.get("balances", {}).items()}
        for s, b in doc.get("book", {}).items():
            if s in self.market.book:
                for k, v in b.items():
                    self.market.book[s][k] = Decimal(v) if k in ("bid", "ask", "last", "prev", "high", "low") else v
        self.order_seq = doc.get("order_seq", 0)
        self.exec_seq = doc.get("exec_seq", 0)
        self.trade_seq = doc.get("trade_seq", self.trade_seq)

    @staticmethod
    def order_json(o):
        return {k: (fmt(v) if isinstance(v, Decimal) else v) for k, v in o.items()}

    def is_hidden(self, order_id):
        """An order a lose_response fault with hide_ms made, still within its hiding time."""
        until = self.hidden.get(order_id)
        if until is not None and time.monotonic() >= until:
            del self.hidden[order_id]
            until = None
        return until is not None

    # ---- faults
    def take_fault(self, method, path):
        with self.lock:
            for f in self.faults:
                if f["count"] == 0:
                    continue
                if f.get("path") and f["path"] != path:
                    continue
                if f.get("method") and f["method"].upper() != method:
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                f["hits"] += 1
                taken = dict(f)
                taken["_from"] = f  # which fault it was: untake_fault gives it back to that one
                return taken
        return None

    def untake_fault(self, taken):
        """Gives back a fault take_fault handed out, to the very fault it came from."""
        with self.lock:
            f = taken["_from"]
            if any(x is f for x in self.faults) and f["hits"] > 0:
                if f["count"] >= 0:
                    f["count"] += 1
                f["hits"] -= 1

    # ---- what changed, for the WebSocket side's private pushes (see Handler.ws_flush)
    def ws_begin(self):
        self.ws_changes["orders"].clear()
        del self.ws_changes["execs"][:]

    def ws_touch(self, order=None, execution=None):
        if order is not None:
            self.ws_changes["orders"][order["orderId"]] = order
        if execution is not None:
            self.ws_changes["execs"].append(execution)

    def wallet_snapshot(self):
        return {c: (b["wallet"], b["locked"]) for c, b in self.balances.items()}

    # ---- balances
    def bal(self, coin):
        return self.balances.setdefault(coin, {"wallet": Decimal(0), "locked": Decimal(0)})

    def available(self, coin):
        b = self.bal(coin)
        return b["wallet"] - b["locked"]


# --------------------------------------------------------------------------- request handling

class Response:
    def __init__(self, status=200, body=b"", ctype="application/json; charset=utf-8", headers=None,
                 ret_code=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode()
        self.ctype = ctype
        self.headers = list(headers or [])
        self.ret_code = ret_code


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bybit-stand-in"
    sys_version = ""
    timeout = 300  # idle keep-alive connections are dropped after this many seconds

    def log_message(self, fmt_, *args):
        if self.server.args.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt_ % args))

    @property
    def st(self):
        return self.server.state

    # one request per call; we write responses ourselves so faults can bend the wire format
    def handle_one_request(self):
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = ""
                self.request_version = ""
                self.command = ""
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self.dispatch()
        except (TimeoutError, socket.timeout, ConnectionError, OSError):
            self.close_connection = True

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(n))
                self.rfile.readline(65537)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def write_response(self, resp, declared_length=None, cut_at=None, close=False):
        body = resp.body
        lines = ["HTTP/1.1 %d %s" % (resp.status, REASONS.get(resp.status, "Status"))]
        lines.append("Date: " + self.date_time_string())
        if resp.ctype:
            lines.append("Content-Type: " + resp.ctype)
        lines.append("Content-Length: %d" % (declared_length if declared_length is not None else len(body)))
        for k, v in resp.headers:
            lines.append("%s: %s" % (k, v))
        if close or self.close_connection:
            lines.append("Connection: close")
            self.close_connection = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        data = body if cut_at is None else body[:cut_at]
        self.wfile.write(head + data)
        self.wfile.flush()

    def rst(self):
        """Close the connection with a TCP RST."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def hold(self, fault):
        """Accept, read, never answer: wait until the client gives up (or a reset / the cap)."""
        gen = self.st.generation
        deadline = time.monotonic() + fault.get("hold_ms", 600_000) / 1000.0
        conn = self.connection
        while time.monotonic() < deadline and self.st.generation == gen:
            try:
                r, _, _ = select.select([conn], [], [], 0.2)
            except (OSError, ValueError):
                break
            if r:
                try:
                    data = conn.recv(65536)
                except OSError:
                    break
                if not data:
                    break
        self.close_connection = True

    def envelope(self, result=None, code=0, msg="OK", headers=None):
        st = self.st
        doc = collections.OrderedDict([("retCode", code), ("retMsg", msg),
                                       ("result", {} if result is None else result),
                                       ("retExtInfo", {}), ("time", st.now_ms())])
        return Response(200, dumps(doc), headers=headers, ret_code=code)

    # ------------------------------------------------------------------ dispatch
    def dispatch(self):
        st = self.st
        method = self.command
        target = self.path
        path, _, query = target.partition("?")
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        # the moment the whole request was in: a bench's end of an interval
        mono_us = time.monotonic_ns() // 1000
        if path == "/__control":
            return self.control(method, query, body)

        with st.lock:
            st.log_seq += 1
            entry = collections.OrderedDict([
                ("seq", st.log_seq), ("time", st.now_ms()), ("mono_us", mono_us), ("method", method), ("path", path),
                ("query", query), ("target", target), ("headers", dict(self.headers.items())),
                ("body", body.decode("utf-8", "replace")), ("fault", None), ("status", None),
                ("retCode", None)])
            st.log.append(entry)
            if len(st.log) > st.log_cap:
                del st.log[: len(st.log) - st.log_cap]
            st.counts["%s %s" % (method, path)] += 1

        fault = st.take_fault(method, path)
        if fault:
            entry["fault"] = fault["fault"]
        kind = fault["fault"] if fault else None
        # lose_response with hide_ms: the order made is not seen for that long (lookups, pushes)
        self.hide_ms = fault.get("hide_ms") if kind == "lose_response" else None
        applies = bool(fault.get("apply", FAULT_APPLIES[kind])) if fault else True
        if kind == "latency":
            applies = True

        if kind == "latency":
            time.sleep(max(0, fault.get("ms", 1000)) / 1000.0)
        if kind == "no_answer":
            if applies:
                self.process(method, path, query, body)
            return self.hold(fault)
        if kind == "reset" and not applies:
            return self.rst()

        resp = self.process(method, path, query, body) if applies else None

        if kind in (None, "latency"):
            pass
        elif kind == "reset":
            return self.rst()
        elif kind == "lose_response" and fault.get("only_made") and resp is not None and resp.ret_code not in (None, 0):
            st.untake_fault(fault)  # no order was made (a refused request): answered, the fault waits
        elif kind == "lose_response":
            self.close_connection = True
            return
        elif kind == "http5xx":
            resp = Response(int(fault.get("status", 502)), fault.get("body", HTML_502), "text/html")
        elif kind == "rate_limit":
            resp = self.rate_limited_response(fault, path)
        elif kind == "timestamp":
            ts = self.headers.get("X-BAPI-TIMESTAMP") or str(st.now_ms())
            rw = self.headers.get("X-BAPI-RECV-WINDOW") or "5000"
            resp = self.envelope(None, 10002, TS_MSG.format(ts=ts, now=st.now_ms(), rw=rw))
        elif kind == "malformed":
            resp = Response(200, fault.get("body", '{"retCode":0,"retMsg":"OK","result":{"list":[{"symbol":"BTCUSDT",'
                                                  '"price":}]},"retExtInfo":{},"time":' + str(st.now_ms())))
        elif kind == "truncated":
            if resp is None:
                resp = self.envelope({})
            n = len(resp.body)
            entry["status"], entry["retCode"] = resp.status, resp.ret_code
            self.write_response(resp, declared_length=n + int(fault.get("extra", max(16, n))),
                                cut_at=n // 2, close=True)
            return
        entry["status"], entry["retCode"] = resp.status, resp.ret_code
        self.write_response(resp)

    def rate_limited_response(self, fault, path):
        st = self.st
        variant = fault.get("variant", "retcode")
        if variant in ("http403", "403"):
            return Response(403, fault.get("body", HTML_403), "text/html")
        if variant in ("http429", "429"):
            return Response(429, fault.get("body", "Too Many Requests"), "text/plain")
        now = st.now_ms()
        limit = UID_LIMITS.get(path, 20)
        hdrs = [("X-Bapi-Limit", str(limit)), ("X-Bapi-Limit-Status", "0"),
                ("X-Bapi-Limit-Reset-Timestamp", str(now + int(fault.get("reset_ms", 1000))))]
        return self.envelope(None, 10006, "Too many visits!", headers=hdrs)

    def process(self, method, path, query, body):
        """Carry out one Bybit request; returns a Response. A bug here answers HTTP 500
        (with the traceback on stderr) so it cannot pass for a network fault."""
        try:
            return self.process_inner(method, path, query, body)
        except Exception:
            import traceback
            traceback.print_exc()
            return Response(500, "stand-in internal error (see its stderr)", "text/plain")

    def process_inner(self, method, path, query, body):
        st = self.st
        if method not in ("GET", "POST"):
            return Response(400, "400 Bad Request: method must be GET or POST (upper case)", "text/plain")
        if st.rate_limits:
            with st.lock:
                now = st.now_ms()
                w = st.ip_window
                while w and w[0] <= now - IP_WINDOW_MS:
                    w.popleft()
                if len(w) >= IP_LIMIT:
                    return Response(403, HTML_403, "text/html")
                w.append(now)
        if method == "GET" and body:
            return Response(403, HTML_403.replace(b"access too frequent", b"GET requests must not carry a body"),
                            "text/html")
        name = ROUTES.get((method, path))
        if name is None:
            return Response(404, "404 page not found", "text/plain")
        try:
            if path in PUBLIC:
                params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
                return self.envelope(getattr(self, name)(params))
            with st.lock:
                hdrs = self.authenticate(method, query, body)
                try:
                    hdrs = self.uid_limit(path, hdrs)
                    st.ws_begin()
                    if method == "GET":
                        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
                    else:
                        try:
                            params = json.loads(body.decode("utf-8")) if body else None
                        except (ValueError, UnicodeDecodeError):
                            params = None
                        if not isinstance(params, dict):
                            raise BybitError(10001, "request body is not a JSON object")
                        for k in STRING_FIELDS:
                            if k in params and not isinstance(params[k], str):
                                raise BybitError(10001, "params error: %s must be a string" % k)
                    result = getattr(self, name)(params)
                    if method == "POST":
                        st.save()
                    self.ws_flush()
                    return self.envelope(result, headers=hdrs)
                except BybitError as e:
                    st.ws_begin()
                    return self.envelope(None, e.code, e.msg, headers=hdrs)
        except BybitError as e:
            return self.envelope(None, e.code, e.msg)

    # ------------------------------------------------------------------ auth and limits
    def authenticate(self, method, query, body):
        st = self.st
        h = self.headers
        key = h.get("X-BAPI-API-KEY") or ""
        ts = h.get("X-BAPI-TIMESTAMP") or ""
        sig = h.get("X-BAPI-SIGN") or ""
        rw_raw = h.get("X-BAPI-RECV-WINDOW")
        if not ts or not key or not sig:
            raise BybitError(10001, "empty value: apiTimestamp[%s] apiKey[%s] apiSignature[%s]" % (ts, key, sig))
        if key != self.server.args.key:
            raise BybitError(10003, "API key is invalid.")
        sign_type = h.get("X-BAPI-SIGN-TYPE")
        if sign_type not in (None, "", "2"):
            raise BybitError(10001, "params error: X-BAPI-SIGN-TYPE must be 2 or absent")
        rw_str = rw_raw if rw_raw is not None else ""
        try:
            recv_window = int(rw_raw) if rw_raw else 5000
            req_ts = int(ts)
        except ValueError:
            raise BybitError(10001, "params error: X-BAPI-TIMESTAMP and X-BAPI-RECV-WINDOW must be integers")
        now = st.now_ms()
        if not (now - recv_window <= req_ts < now + 1000):
            raise BybitError(10002, TS_MSG.format(ts=ts, now=now, rw=recv_window))
        payload = query.encode("latin-1", "replace") if method == "GET" else body
        want = sign(self.server.args.secret, ts, key, rw_str, payload)
        if not hmac.compare_digest(want.encode(), sig.encode("latin-1", "replace")):
            origin = ts + key + rw_str + payload.decode("utf-8", "replace")
            raise BybitError(10004, "error sign! origin_string[%s]" % origin)
        return []

    def uid_limit(self, path, hdrs):
        st = self.st
        limit = UID_LIMITS[path]
        now = st.now_ms()
        w = st.uid_windows[path]
        while w and w[0] <= now - 1000:
            w.popleft()
        if st.rate_limits and len(w) >= limit:
            reset = w[0] + 1000
            raise_hdrs = [("X-Bapi-Limit", str(limit)), ("X-Bapi-Limit-Status", "0"),
                          ("X-Bapi-Limit-Reset-Timestamp", str(reset))]
            hdrs[:] = raise_hdrs
            raise BybitError(10006, "Too many visits!")
        w.append(now)
        hdrs[:] = [("X-Bapi-Limit", str(limit)), ("X-Bapi-Limit-Status", str(max(0, limit - len(w)))),
                   ("X-Bapi-Limit-Reset-Timestamp", str(now))]
        return hdrs

    # ------------------------------------------------------------------ public endpoints
    def market_time(self, p):
        ns = self.st.now_ns()
        return collections.OrderedDict([("timeSecond", str(ns // 1_000_000_000)), ("timeNano", str(ns))])

    def market_kline(self, p):
        st, mk = self.st, self.st.market
        category = p.get("category") or "linear"  # Bybit: linear when omitted
        if category not in ("spot", "linear", "inverse"):
            raise BybitError(10001, "Illegal category")
        symbol = p.get("symbol", "")
        key = (category, symbol)
        if key not in mk.series:
            raise BybitError(10001, "Not supported symbols")
        interval = p.get("interval", "")
        if interval not in INTERVALS:
            raise BybitError(10001, "Invalid period!")
        try:
            limit = int(p["limit"]) if p.get("limit", "") != "" else 200
            start = int(p["start"]) if p.get("start", "") != "" else None
            end = int(p["end"]) if p.get("end", "") != "" else None
        except ValueError:
            raise BybitError(10001, "params error: start, end and limit must be integers")
        if limit < 1:
            raise BybitError(10001, "params error: limit must be in [1, 1000]")
        limit = min(limit, 1000)
        now = st.now_ms()
        listed = mk.candle_start(mk.series[key][3], interval)
        cur = mk.candle_start(now, interval)
        rows = []
        if start is not None and end is None and st.kline_start_only == "oldest":
            s = mk.candle_start(max(start, listed), interval)
            if s < start:
                s = mk.next_start(s, interval)
            while s <= cur and len(rows) < limit:
                rows.append(s)
                s = mk.next_start(s, interval)
            rows.reverse()
        else:
            top = now if end is None else min(end, now)
            s = mk.candle_start(top, interval)
            lo = listed if start is None else max(start, listed)
            while s >= lo and len(rows) < limit:
                rows.append(s)
                s = mk.prev_start(s, interval)
        out = [mk.candle(key, interval, s, now) for s in rows]
        return collections.OrderedDict([("symbol", symbol), ("category", category), ("list", out)])

    def market_instruments(self, p):
        mk = self.st.market
        category = p.get("category", "")
        if category not in ("spot", "linear", "inverse", "option"):
            raise BybitError(10001, "Illegal category")
        items = []
        if category == "spot":
            for sym, rec in mk.instruments.items():
                if p.get("symbol") and p["symbol"] != sym:
                    continue
                if p.get("status") and p["status"] != rec["status"]:
                    continue
                items.append(rec)
        res = collections.OrderedDict([("category", category), ("list", items)])
        if category != "spot":
            res["nextPageCursor"] = ""
        return res

    def market_tickers(self, p):
        mk = self.st.market
        category = p.get("category", "")
        if category not in ("spot", "linear", "inverse", "option"):
            raise BybitError(10001, "Illegal category")
        items = []
        if category == "spot":
            sym = p.get("symbol")
            if sym:
                if sym not in mk.book:
                    raise BybitError(10001, "Not supported symbols")
                items = [mk.ticker(sym)]
            else:
                items = [mk.ticker(s) for s in mk.book]
        return collections.OrderedDict([("category", category), ("list", items)])

    # ------------------------------------------------------------------ trading
    def need_spot(self, p):
        cat = p.get("category")
        if not cat:
            raise BybitError(10001, "params error: category is required")
        if cat not in ("spot", "linear", "inverse", "option"):
            raise BybitError(10001, "Illegal category")
        if cat != "spot":
            raise BybitError(10001, "params error: this stand-in only trades category=spot")

    @staticmethod
    def dec_param(p, name, required=True):
        v = p.get(name)
        if v is None or v == "":
            if required:
                raise BybitError(170130, "Data for parameter '%s' is not valid" % name)
            return None
        if not isinstance(v, str) or not DECIMAL_RE.match(v):
            raise BybitError(170130, "Data for parameter '%s' is not valid" % name)
        try:
            d = Decimal(v)
        except decimal.InvalidOperation:
            raise BybitError(170130, "Data for parameter '%s' is not valid" % name)
        if not d.is_finite() or d <= 0:
            raise BybitError(170130, "Data for parameter '%s' is not valid" % name)
        return d

    def new_order_id(self):
        st = self.st
        st.order_seq += 1
        return str(1_900_000_000_000_000_000 + st.order_seq)

    def order_create(self, p):
        st, mk = self.st, self.st.market
        self.need_spot(p)
        symbol = p.get("symbol")
        if not symbol:
            raise BybitError(10001, "params error: symbol is required")
        if symbol not in mk.instruments:
            raise BybitError(170121, "Invalid symbol")
        side = p.get("side")
        if side not in ("Buy", "Sell"):
            raise BybitError(10001, "params error: side invalid")
        otype = p.get("orderType")
        if otype not in ("Market", "Limit"):
            raise BybitError(10001, "params error: orderType invalid")
        lev = p.get("isLeverage", 0)
        if lev not in (0, "0"):
            raise BybitError(10001, "params error: margin trading (isLeverage=1) is not supported here")
        ofilter = p.get("orderFilter", "Order")
        if ofilter != "Order":
            raise BybitError(10001, "params error: only orderFilter=Order is supported here")
        link = p.get("orderLinkId")
        if link is None or link == "":
            # spot: Bybit fills in an id of its own when none is given
            link = str(st.now_ms()) + "%06d" % (st.order_seq + 1)
        elif not isinstance(link, str) or not ORDER_LINK_ID_RE.match(link):
            raise BybitError(170130, "Data for parameter 'orderLinkId' is not valid")
        if link in st.link_ids:
            raise BybitError(*st.duplicate_code)
        tif = p.get("timeInForce") or "GTC"
        if tif not in ("GTC", "IOC", "FOK", "PostOnly", "RPI"):
            raise BybitError(10001, "params error: timeInForce invalid")
        r = mk.rules(symbol)
        book = mk.book[symbol]
        qty = self.dec_param(p, "qty")
        unit = p.get("marketUnit") or ""
        if unit not in ("", "baseCoin", "quoteCoin"):
            raise BybitError(10001, "params error: marketUnit invalid")
        now = st.now_ms()
        order = collections.OrderedDict([
            ("orderId", self.new_order_id()), ("orderLinkId", link), ("symbol", symbol), ("side", side),
            ("orderType", otype), ("qty", qty), ("price", Decimal(0)), ("timeInForce", tif),
            ("marketUnit", ""), ("orderStatus", "New"), ("cancelType", "UNKNOWN"),
            ("rejectReason", "EC_NoError"), ("cumExecQty", Decimal(0)), ("cumExecValue", Decimal(0)),
            ("cumExecFee", Decimal(0)), ("feeCurrency", ""), ("lockedAmt", Decimal(0)),
            ("lockedCoin", ""), ("basePrice", fmt(book["last"])), ("createdTime", str(now)),
            ("updatedTime", str(now))])
        if otype == "Market":
            order["timeInForce"] = "IOC"
            if not unit:
                unit = "quoteCoin" if side == "Buy" else "baseCoin"
            order["marketUnit"] = unit
            px = book["ask"] if side == "Buy" else book["bid"]
            if unit == "quoteCoin":
                if qty % r["quotePrecision"] != 0:
                    raise BybitError(170148, "Market order amount decimal too long")
                if qty < r["minOrderAmt"]:
                    raise BybitError(170140, "Order value exceeded lower limit")
                fill_qty = (qty / px / r["basePrecision"]).to_integral_value(decimal.ROUND_FLOOR) * r["basePrecision"]
            else:
                if qty % r["basePrecision"] != 0:
                    raise BybitError(170137, "Order volume decimal too long")
                if qty * px < r["minOrderAmt"]:
                    raise BybitError(170140, "Order value exceeded lower limit")
                fill_qty = qty
            if fill_qty <= 0:
                raise BybitError(170136, "Order quantity lower than the minimum")
            if side == "Buy":
                need = qty if unit == "quoteCoin" else fill_qty * px
                if st.available(r["quote"]) < need:
                    raise BybitError(170131, "Balance insufficient")
            else:
                if st.available(r["base"]) < fill_qty:
                    raise BybitError(170131, "Balance insufficient")
            self.store(order)
            plan = st.market_fills.pop(0) if st.market_fills else None
            if plan is None:
                self.execute(order, fill_qty, px, maker=False)
                order["orderStatus"] = "Filled"
            else:
                # a market order that meets thin liquidity: some pieces, the rest cancelled
                done = Decimal(0)
                for frac in plan:
                    piece = min(fill_qty - done, (fill_qty * frac / r["basePrecision"]).to_integral_value(
                        decimal.ROUND_FLOOR) * r["basePrecision"])
                    if piece > 0:
                        self.execute(order, piece, px, maker=False)
                        done += piece
                order["orderStatus"] = ("Filled" if done >= fill_qty else
                                        "PartiallyFilledCanceled" if done > 0 else "Cancelled")
        else:
            price = self.dec_param(p, "price")
            if price % r["tickSize"] != 0:
                raise BybitError(170134, "Order price decimal too long")
            if qty % r["basePrecision"] != 0:
                raise BybitError(170137, "Order volume decimal too long")
            if qty * price < r["minOrderAmt"]:
                raise BybitError(170140, "Order value exceeded lower limit")
            order["price"] = price
            if side == "Buy":
                lock, coin = qty * price, r["quote"]
            else:
                lock, coin = qty, r["base"]
            if st.available(coin) < lock:
                raise BybitError(170131, "Balance insufficient")
            crosses = price >= book["ask"] if side == "Buy" else price <= book["bid"]
            order["lockedAmt"], order["lockedCoin"] = lock, coin
            st.bal(coin)["locked"] += lock
            self.store(order)
            if crosses and tif == "PostOnly":
                self.close_order(order, "Cancelled", "EC_PostOnlyWillTakeLiquidity")
            elif crosses:
                self.execute(order, qty, book["ask"] if side == "Buy" else book["bid"], maker=False)
            elif tif in ("IOC", "FOK"):
                self.close_order(order, "Cancelled", "EC_NoError")
        return collections.OrderedDict([("orderId", order["orderId"]), ("orderLinkId", order["orderLinkId"])])

    def store(self, order):
        st = self.st
        if getattr(self, "hide_ms", None):
            st.hidden[order["orderId"]] = time.monotonic() + float(self.hide_ms) / 1000.0
        st.orders[order["orderId"]] = order
        st.link_ids[order["orderLinkId"]] = order["orderId"]
        st.ws_touch(order=order)

    def ws_flush(self):
        """Hand what this action changed (orders, fills, balances) to the WebSocket side,
        which pushes order / execution / wallet messages to authenticated subscribers.
        Called with the State lock held; does not change any REST answer."""
        st = self.st
        orders, execs = list(st.ws_changes["orders"].values()), list(st.ws_changes["execs"])
        st.ws_begin()
        if getattr(self, "hide_ms", None):
            return  # a hidden order's action: no push at all (its wallet change goes with the next one)
        snap = st.wallet_snapshot()
        coins = [c for c in snap if snap[c] != st.ws_wallet_seen.get(c)]
        st.ws_wallet_seen = snap
        if st.ws is None or not (orders or execs or coins):
            return
        rendered = []
        for o in orders:
            r = self.render_order(o)
            r["feeCurrency"] = o["feeCurrency"]
            rendered.append(r)
        wallet = None
        if coins:
            wallet = self.wallet_balance({"accountType": "UNIFIED", "coin": ",".join(coins)})["list"][0]
        st.ws.private_event(rendered, [copy.deepcopy(e) for e in execs], wallet)

    def close_order(self, o, status, reason="EC_NoError", cancel_type="UNKNOWN"):
        st = self.st
        if o["lockedAmt"] > 0:
            st.bal(o["lockedCoin"])["locked"] -= o["lockedAmt"]
            o["lockedAmt"] = Decimal(0)
        o["orderStatus"] = status
        o["rejectReason"] = reason
        o["cancelType"] = cancel_type
        o["updatedTime"] = str(st.now_ms())
        st.ws_touch(order=o)

    def execute(self, o, qty, px, maker):
        """One fill of qty at px; updates balances, the order and the execution list."""
        st, mk = self.st, self.st.market
        r = mk.rules(o["symbol"])
        rate = st.fee_rates["maker" if maker else "taker"]
        value = qty * px
        if o["side"] == "Buy":
            fee, fee_coin = qty * rate, r["base"]  # positive fee rate: a Buy pays in the base coin
            if o["orderType"] == "Limit":
                unlock = min(o["lockedAmt"], qty * o["price"])
                st.bal(r["quote"])["locked"] -= unlock
                o["lockedAmt"] -= unlock
            st.bal(r["quote"])["wallet"] -= value
            st.bal(r["base"])["wallet"] += qty - fee
        else:
            fee, fee_coin = value * rate, r["quote"]  # a Sell pays in the quote coin
            if o["orderType"] == "Limit":
                unlock = min(o["lockedAmt"], qty)
                st.bal(r["base"])["locked"] -= unlock
                o["lockedAmt"] -= unlock
            st.bal(r["base"])["wallet"] -= qty
            st.bal(r["quote"])["wallet"] += value - fee
        o["cumExecQty"] += qty
        o["cumExecValue"] += value
        o["cumExecFee"] += fee
        o["feeCurrency"] = fee_coin
        now = st.now_ms()
        o["updatedTime"] = str(now)
        leaves = self.leaves_qty(o)
        if o["orderType"] == "Limit":
            if leaves <= 0:
                o["orderStatus"] = "Filled"
                if o["lockedAmt"] > 0:  # a buy filled below its limit price frees the rest
                    st.bal(o["lockedCoin"])["locked"] -= o["lockedAmt"]
                    o["lockedAmt"] = Decimal(0)
            else:
                o["orderStatus"] = "PartiallyFilled"
        st.exec_seq += 1
        st.trade_seq += 1
        ex = collections.OrderedDict([
            ("symbol", o["symbol"]), ("orderType", o["orderType"]), ("underlyingPrice", ""),
            ("orderLinkId", o["orderLinkId"]), ("side", o["side"]), ("indexPrice", ""),
            ("orderId", o["orderId"]), ("stopOrderType", ""), ("leavesQty", fmt(max(leaves, Decimal(0)))),
            ("execTime", str(now)), ("feeCurrency", fee_coin), ("isMaker", bool(maker)),
            ("execFee", fmt(fee)), ("feeRate", fmt(rate)),
            ("execId", str(2_100_000_000_000_000_000 + st.exec_seq)), ("tradeIv", ""), ("blockTradeId", ""),
            ("markPrice", ""), ("execPrice", fmt(px)), ("markIv", ""), ("orderQty", fmt(o["qty"])),
            ("orderPrice", fmt(o["price"])), ("execValue", fmt(value)), ("execType", "Trade"),
            ("execQty", fmt(qty)), ("closedSize", ""), ("extraFees", ""), ("seq", st.trade_seq)])
        st.executions.append(ex)
        st.ws_touch(order=o, execution=ex)
        return ex

    @staticmethod
    def leaves_qty(o):
        if o["orderType"] == "Market":
            return Decimal(0)
        return o["qty"] - o["cumExecQty"]

    def render_order(self, o):
        st = self.st
        leaves = self.leaves_qty(o) if o["orderStatus"] in ("New", "PartiallyFilled") else Decimal(0)
        avg = fmt(o["cumExecValue"] / o["cumExecQty"]) if o["cumExecQty"] > 0 else ""
        fee_detail = {o["feeCurrency"]: fmt(o["cumExecFee"])} if o["cumExecQty"] > 0 else {}
        return collections.OrderedDict([
            ("orderId", o["orderId"]), ("orderLinkId", o["orderLinkId"]), ("blockTradeId", ""),
            ("symbol", o["symbol"]), ("price", fmt(o["price"])), ("qty", fmt(o["qty"])), ("side", o["side"]),
            ("isLeverage", "0"), ("positionIdx", 0), ("orderStatus", o["orderStatus"]),
            ("cancelType", o["cancelType"]), ("rejectReason", o["rejectReason"]), ("avgPrice", avg),
            ("leavesQty", fmt(leaves)), ("leavesValue", fmt(leaves * o["price"])),
            ("cumExecQty", fmt(o["cumExecQty"])), ("cumExecValue", fmt(o["cumExecValue"])),
            ("cumExecFee", fmt(o["cumExecFee"])), ("timeInForce", o["timeInForce"]),
            ("orderType", o["orderType"]), ("stopOrderType", ""), ("orderIv", ""), ("marketUnit", o["marketUnit"]),
            ("triggerPrice", "0"), ("takeProfit", "0"), ("stopLoss", "0"), ("tpTriggerBy", ""),
            ("slTriggerBy", ""), ("triggerDirection", 0), ("triggerBy", ""),
            ("lastPriceOnCreated", o["basePrice"]), ("basePrice", o["basePrice"]), ("reduceOnly", False),
            ("closeOnTrigger", False), ("smpType", "None"), ("smpGroup", 0), ("smpOrderId", ""),
            ("tpLimitPrice", ""), ("slLimitPrice", ""), ("placeType", ""),
            ("createdTime", o["createdTime"]), ("updatedTime", o["updatedTime"]),
            ("cumFeeDetail", fee_detail)])

    def find_order(self, p):
        st = self.st
        oid, link = p.get("orderId"), p.get("orderLinkId")
        if link and not oid:
            oid = st.link_ids.get(link)
        return st.orders.get(oid) if oid and not st.is_hidden(oid) else None

    def order_cancel(self, p):
        st = self.st
        self.need_spot(p)
        if not p.get("symbol"):
            raise BybitError(10001, "params error: symbol is required")
        if not p.get("orderId") and not p.get("orderLinkId"):
            raise BybitError(10001, "params error: orderId or orderLinkId is required")
        o = self.find_order(p)
        if o is None or o["symbol"] != p["symbol"] or o["orderStatus"] not in ("New", "PartiallyFilled"):
            raise BybitError(170213, "Order does not exist")
        status = "PartiallyFilledCanceled" if o["cumExecQty"] > 0 else "Cancelled"
        self.close_order(o, status, "EC_NoError", "CancelByUser")
        return collections.OrderedDict([("orderId", o["orderId"]), ("orderLinkId", o["orderLinkId"])])

    @staticmethod
    def paginate(items, p, default, maximum):
        try:
            limit = int(p.get("limit") or default)
        except ValueError:
            raise BybitError(10001, "params error: limit must be an integer")
        if limit < 1 or limit > maximum:
            raise BybitError(10001, "params error: limit must be in [1, %d]" % maximum)
        offset = 0
        cur = p.get("cursor") or ""
        if cur:
            m = re.match(r"^page_offset(?:%3D|=)(\d+)$", cur)
            if not m:
                raise BybitError(10001, "params error: cursor invalid")
            offset = int(m.group(1))
        page = items[offset: offset + limit]
        nxt = "page_offset%%3D%d" % (offset + limit) if offset + limit < len(items) else ""
        return page, nxt

    def order_realtime(self, p):
        st = self.st
        self.need_spot(p)
        if p.get("orderId") or p.get("orderLinkId"):
            o = self.find_order(p)
            items = [o] if o is not None else []
        else:
            try:
                open_only = int(p.get("openOnly") or 0)
            except ValueError:
                raise BybitError(10001, "params error: openOnly invalid")
            want_open = open_only == 0
            items = [o for o in st.orders.values()
                     if not st.is_hidden(o["orderId"])
                     and (o["orderStatus"] in ("New", "PartiallyFilled")) == want_open
                     and (not p.get("symbol") or o["symbol"] == p["symbol"])]
            if not want_open:
                items = items[-500:]
        items = sorted(items, key=lambda o: (int(o["createdTime"]), o["orderId"]), reverse=True)
        page, nxt = self.paginate(items, p, 20, 50)
        return collections.OrderedDict([("list", [self.render_order(o) for o in page]),
                                        ("nextPageCursor", nxt), ("category", "spot")])

    def execution_list(self, p):
        st = self.st
        self.need_spot(p)
        try:
            start = int(p["startTime"]) if p.get("startTime") else None
            end = int(p["endTime"]) if p.get("endTime") else None
        except ValueError:
            raise BybitError(10001, "params error: startTime and endTime must be integers")
        if start is None and end is None:
            end = st.now_ms()
            start = end - 7 * DAY
        elif start is None:
            start = end - 7 * DAY
        elif end is None:
            end = start + 7 * DAY
        if end - start > 7 * DAY:
            raise BybitError(10001, "params error: startTime and endTime must be within 7 days")
        items = []
        for e in st.executions:
            t = int(e["execTime"])
            if not (start <= t <= end) or st.is_hidden(e["orderId"]):
                continue
            if p.get("symbol") and e["symbol"] != p["symbol"]:
                continue
            if p.get("orderId"):
                if e["orderId"] != p["orderId"]:
                    continue
            elif p.get("orderLinkId") and e["orderLinkId"] != p["orderLinkId"]:
                continue
            if p.get("execType") and e["execType"] != p["execType"]:
                continue
            items.append(e)
        items.sort(key=lambda e: (int(e["execTime"]), e["seq"]), reverse=True)
        page, nxt = self.paginate(items, p, 50, 100)
        return collections.OrderedDict([("nextPageCursor", nxt), ("category", "spot"), ("list", page)])

    def usd_price(self, coin):
        mk = self.st.market
        if coin in ("USDT", "USDC", "USD"):
            return Decimal(1)
        for sym, rec in mk.instruments.items():
            if rec["baseCoin"] == coin and rec["quoteCoin"] == "USDT":
                return mk.book[sym]["last"]
        return Decimal(0)

    def wallet_balance(self, p):
        st = self.st
        at = p.get("accountType")
        if not at:
            raise BybitError(10001, "params error: accountType is required")
        if at != "UNIFIED":
            raise BybitError(10001, "accountType only support UNIFIED")
        if p.get("coin"):
            coins = [c for c in p["coin"].split(",") if c]
        else:
            coins = [c for c, b in st.balances.items() if b["wallet"] != 0 or b["locked"] != 0]
        q8 = Decimal("0.00000001")
        total = sum(((b["wallet"] * self.usd_price(c)).quantize(q8) for c, b in st.balances.items()), Decimal(0))
        avail = sum((((b["wallet"] - b["locked"]) * self.usd_price(c)).quantize(q8)
                     for c, b in st.balances.items()), Decimal(0))
        rows = []
        for c in coins:
            b = st.balances.get(c, {"wallet": Decimal(0), "locked": Decimal(0)})
            usd = (b["wallet"] * self.usd_price(c)).quantize(q8)
            rows.append(collections.OrderedDict([
                ("availableToBorrow", ""), ("bonus", "0"), ("accruedInterest", "0"),
                ("availableToWithdraw", ""), ("totalOrderIM", "0"), ("equity", fmt(b["wallet"])),
                ("totalPositionMM", "0"), ("usdValue", fmt(usd)), ("spotHedgingQty", "0"),
                ("unrealisedPnl", "0"), ("collateralSwitch", True), ("borrowAmount", "0"),
                ("totalPositionIM", "0"), ("walletBalance", fmt(b["wallet"])), ("cumRealisedPnl", "0"),
                ("locked", fmt(b["locked"])), ("marginCollateral", True), ("coin", c), ("spotBorrow", "0")]))
        acct = collections.OrderedDict([
            ("totalEquity", fmt(total)), ("accountIMRate", "0"), ("accountIMRateByMp", "0"),
            ("totalMarginBalance", fmt(total)), ("totalInitialMargin", "0"), ("totalInitialMarginByMp", "0"),
            ("accountType", "UNIFIED"), ("totalAvailableBalance", fmt(avail)), ("accountMMRate", "0"),
            ("accountMMRateByMp", "0"), ("totalPerpUPL", "0"), ("totalWalletBalance", fmt(total)),
            ("accountLTV", "0"), ("totalMaintenanceMargin", "0"), ("totalMaintenanceMarginByMp", "0"),
            ("coin", rows)])
        return collections.OrderedDict([("list", [acct])])

    # ------------------------------------------------------------------ control endpoint
    def control(self, method, query, body):
        st = self.st
        try:
            if method == "GET":
                q = dict(urllib.parse.parse_qsl(query))
                since = int(q.get("since", "0") or 0)
                resp = self.control_state(since)
            elif method == "POST":
                try:
                    req = json.loads(body.decode("utf-8")) if body else {}
                except ValueError as e:
                    raise ValueError("body is not JSON: %s" % e)
                if not isinstance(req, dict):
                    raise ValueError("body must be a JSON object")
                resp = self.control_apply(req)
            else:
                raise ValueError("use GET or POST")
            self.write_response(Response(200, json.dumps(resp, indent=1)))
        except (ValueError, KeyError, TypeError, decimal.InvalidOperation) as e:
            self.write_response(Response(400, json.dumps({"ok": False, "error": str(e)})))

    def control_state(self, since=0):
        st = self.st
        with st.lock:
            return collections.OrderedDict([
                ("server_time", st.now_ms()), ("clock_offset_ms", st.clock_offset_ms),
                ("key", self.server.args.key), ("rate_limits", st.rate_limits),
                ("kline_start_only", st.kline_start_only),
                ("duplicate_ret_code", st.duplicate_code[0]),
                ("fee_rates", {k: fmt(v) for k, v in st.fee_rates.items()}),
                ("faults", copy.deepcopy(st.faults)),
                ("orders", [self.render_order(o) for o in st.orders.values()]),
                ("executions", list(st.executions)),
                ("balances", {c: {"walletBalance": fmt(b["wallet"]), "locked": fmt(b["locked"]),
                                  "available": fmt(b["wallet"] - b["locked"])}
                              for c, b in st.balances.items()}),
                ("book", {s: {"bid": fmt(b["bid"]), "ask": fmt(b["ask"]), "last": fmt(b["last"])}
                          for s, b in st.market.book.items()}),
                ("counts", dict(st.counts)),
                ("ws", st.ws.describe() if st.ws else None),
                ("log", [e for e in st.log if e["seq"] > since])])

    def control_apply(self, req):
        st = self.st
        with st.lock:
            if req.get("reset"):
                st.reset_all()
                st.save()
                if st.ws:
                    st.ws.reset()
            st.ws_begin()
            if "clock_offset_ms" in req:
                st.clock_offset_ms = int(req["clock_offset_ms"])
                if st.ws:
                    st.ws.wake()
            if "rate_limits" in req:
                st.rate_limits = bool(req["rate_limits"])
            if "kline_start_only" in req:
                if req["kline_start_only"] not in ("latest", "oldest"):
                    raise ValueError("kline_start_only must be latest or oldest")
                st.kline_start_only = req["kline_start_only"]
            if "duplicate_ret_code" in req:
                code = int(req["duplicate_ret_code"])
                st.duplicate_code = {170141: (170141, "Duplicate clientOrderId"),
                                     110072: (110072, "OrderLinkedID is duplicate")}[code]
            if "series_offset_ms" in req:
                off = int(req["series_offset_ms"])
                if off % MINUTE:
                    raise ValueError("series_offset_ms must be whole minutes")
                st.market.series_offset_ms = off
            if "fee_rates" in req:
                for k, v in req["fee_rates"].items():
                    if k not in ("maker", "taker"):
                        raise ValueError("fee_rates keys are maker and taker")
                    st.fee_rates[k] = Decimal(str(v))
            if "market_fills" in req:
                # {"fractions": ["0.4", "0.3"], "count": 1}: the next count market orders fill
                # in those pieces of their quantity; what the pieces leave is cancelled
                mf = req["market_fills"]
                fr = [Decimal(str(x)) for x in mf.get("fractions", [])]
                if not fr or any(x <= 0 or x > 1 for x in fr) or sum(fr) > 1:
                    raise ValueError("market_fills.fractions: pieces in (0, 1] summing to at most 1")
                st.market_fills.extend([fr] * int(mf.get("count", 1)))
            if req.get("clear_faults"):
                st.faults = []
            if req.get("clear_log"):
                st.log = []
                st.counts = collections.Counter()
            faults = list(req.get("faults", []))
            if "fault" in req:
                faults.append(req)
            for f in faults:
                kind = f.get("fault")
                if kind not in FAULTS:
                    raise ValueError("unknown fault %r; known: %s" % (kind, ", ".join(FAULTS)))
                spec = {"fault": kind, "count": int(f.get("count", 1)), "hits": 0}
                for k in ("path", "method", "ms", "status", "variant", "reset_ms", "hold_ms", "extra", "apply",
                          "hide_ms", "only_made"):
                    if k in f:
                        spec[k] = f[k]
                if "body" in f:
                    if not isinstance(f["body"], str):
                        raise ValueError("body must be a string")
                    spec["body"] = f["body"]
                if spec.get("variant") not in (None, "retcode", "http403", "403", "http429", "429"):
                    raise ValueError("rate_limit variant must be retcode, http403 or http429")
                st.faults.append(spec)
            ws_faults = list(req.get("ws_faults", []))
            if "ws_fault" in req:
                ws_faults.append(req)
            ws_affected = None
            if ws_faults:
                if st.ws is None:
                    raise ValueError("the WebSocket side is not running")
                specs = [st.ws.validate(f) for f in ws_faults]  # all or nothing
                ws_affected = 0
                for spec in specs:
                    kind = spec["ws_fault"]
                    if kind == "lose_order_response":
                        # the REST lose_response fault on order/create; the order is still made,
                        # and its private pushes still go out
                        st.faults.append({"fault": "lose_response", "count": spec["count"], "hits": 0,
                                          "path": "/v5/order/create", "only_made": True})
                        st.ws.log("fault", None, fault=kind, spec=spec)
                    else:
                        ws_affected += st.ws.add_fault(spec)
            if "balances" in req:
                for coin, v in req["balances"].items():
                    st.bal(coin)["wallet"] = Decimal(str(v))
            if "set_price" in req:
                sp = req["set_price"]
                b = st.market.book[sp["symbol"]]
                if "price" in sp:
                    b["bid"] = b["ask"] = b["last"] = Decimal(str(sp["price"]))
                for k in ("bid", "ask", "last"):
                    if k in sp:
                        b[k] = Decimal(str(sp[k]))
            fill = None
            if "fill_order" in req:
                fo = req["fill_order"]
                o = self.find_order(fo)
                if o is None or o["orderStatus"] not in ("New", "PartiallyFilled"):
                    raise ValueError("no open order with that orderId/orderLinkId")
                qty = Decimal(str(fo["qty"])) if "qty" in fo else self.leaves_qty(o)
                if qty <= 0 or qty > self.leaves_qty(o):
                    raise ValueError("qty must be in (0, leavesQty]")
                px = Decimal(str(fo.get("price", fmt(o["price"]))))
                fill = self.execute(o, qty, px, maker=True)
            if "cancel_order" in req:
                o = self.find_order(req["cancel_order"])
                if o is None or o["orderStatus"] not in ("New", "PartiallyFilled"):
                    raise ValueError("no open order with that orderId/orderLinkId")
                self.close_order(o, "PartiallyFilledCanceled" if o["cumExecQty"] > 0 else "Cancelled",
                                 "EC_NoError", "CancelByAdmin")
            st.save()
            self.ws_flush()
            out = collections.OrderedDict([("ok", True), ("server_time", st.now_ms()),
                                           ("clock_offset_ms", st.clock_offset_ms),
                                           ("faults", copy.deepcopy(st.faults))])
            if st.ws:
                out["ws_faults"] = copy.deepcopy(st.ws_faults)
            if ws_affected is not None:
                out["ws_clients"] = ws_affected
            if fill is not None:
                out["execution"] = fill
            return out


def load_ws_module():
    """ws.py, next to this file (loaded by path: its name is too common for sys.path)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bybit_stand_in_ws", os.path.join(HERE, "ws.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        if self.args.verbose:
            super().handle_error(request, client_address)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Local stand-in for the Bybit V5 REST API (spot).")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 picks a free one")
    ap.add_argument("--ws-port", type=int, default=0,
                    help="TCP port of the WebSocket side on 127.0.0.1; 0 picks a free one")
    ap.add_argument("--key", default=DEFAULT_KEY)
    ap.add_argument("--secret", default=DEFAULT_SECRET)
    ap.add_argument("--state-file", default=None,
                    help="keep orders, fills and balances in this JSON file (loaded at start if present)")
    ap.add_argument("--fixtures", default=DEFAULT_FIXTURES, help="folder with the Bybit fixture payloads")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args(argv)
    market = Market(args.fixtures)
    server = Server(("127.0.0.1", args.port), Handler)
    server.args = args
    server.state = State(args, market)
    ws_mod = load_ws_module()
    server.state.ws = ws_mod.WsServer(server.state, args, INTERVALS)
    ws_port = server.state.ws.start(args.ws_port)
    print("LISTENING", server.server_address[1], ws_port, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
