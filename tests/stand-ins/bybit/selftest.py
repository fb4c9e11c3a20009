#!/usr/bin/python3
# selftest.py: checks server.py (the Bybit V5 REST stand-in) and its WebSocket side (ws.py)
# from the outside, with a small signing client of its own (http.client, raw sockets), with
# curl, and with the websockets client (Debian's python3-websockets).
# Prints one TAP-style line per check and ends with "N passed, N failed";
# exits 0 when everything passed.
#   /usr/bin/python3 tests/stand-ins/bybit/selftest.py [-v] [--no-timing]
import asyncio
import datetime
import hashlib
import hmac
import http.client
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "server.py")
FIXDIR = os.path.normpath(os.path.join(HERE, "..", "..", "fixtures", "bybit"))
VERBOSE = "-v" in sys.argv
KEY, SECRET = "test-key", "test-secret-0123456789"

# --no-timing (make test, on a shared machine): how fast something came is
# not checked, only that it came, and that a delay lasted what was asked
TIMING = "--no-timing" not in sys.argv


def fast(cond):
    return cond or not TIMING

passed = failed = 0


def check(cond, desc, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok %d - %s" % (passed + failed, desc))
    else:
        failed += 1
        print("not ok %d - %s" % (passed + failed, desc))
        if detail:
            for line in str(detail).splitlines()[:12]:
                print("#   " + line)
    sys.stdout.flush()
    return cond


def fixture(name):
    with open(os.path.join(FIXDIR, name)) as f:
        return json.load(f)


def now_ms():
    return int(time.time() * 1000)


# ----------------------------------------------------------------------------- server process

class Srv:
    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, SERVER, "--port", "0"] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"^LISTENING (\d+) (\d+)\n$", line)
        if not m:
            raise RuntimeError("server did not start: %r %s" % (line, self.proc.stderr.read()))
        self.first_line = line
        self.port = int(m.group(1))
        self.ws_port = int(m.group(2))

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        rest = self.proc.stdout.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rest

    def control(self, doc):
        s, _, b = raw(self.port, "POST", "/__control", json.dumps(doc).encode(),
                      [("Content-Type", "application/json")])
        if s != 200:
            raise RuntimeError("control failed: %s %s" % (s, b))
        return json.loads(b)

    def state(self, since=0):
        s, _, b = raw(self.port, "GET", "/__control?since=%d" % since)
        return json.loads(b)


def raw(port, method, target, body=b"", headers=(), timeout=10):
    """One request on its own connection; target and body go out byte for byte."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        if body or method == "POST":
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body else None)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


class Client:
    """A minimal Bybit V5 client: signs timestamp+apiKey+recvWindow+(query|body)."""

    def __init__(self, port, key=KEY, secret=SECRET):
        self.port, self.key, self.secret = port, key, secret

    def sign(self, ts, rw, payload):
        return hmac.new(self.secret.encode(), (ts + self.key + rw).encode() + payload,
                        hashlib.sha256).hexdigest()

    def headers(self, payload, ts=None, rw="5000", key=None, sig=None, extra=()):
        ts = str(now_ms()) if ts is None else str(ts)
        h = [("X-BAPI-API-KEY", key if key is not None else self.key), ("X-BAPI-TIMESTAMP", ts)]
        if rw is not None:
            h.append(("X-BAPI-RECV-WINDOW", rw))
        h.append(("X-BAPI-SIGN", sig if sig is not None else self.sign(ts, rw or "", payload)))
        return h + list(extra)

    def get(self, path, query="", signed=True, timeout=10, **kw):
        if isinstance(query, (dict, list)):
            query = urllib.parse.urlencode(query)
        target = path + ("?" + query if query else "")
        hdrs = self.headers(query.encode(), **kw) if signed else []
        return decode(raw(self.port, "GET", target, b"", hdrs, timeout))

    def post(self, path, body, timeout=10, **kw):
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body, separators=(",", ":"))
        if isinstance(body, str):
            body = body.encode()
        hdrs = self.headers(body, **kw) + [("Content-Type", "application/json")]
        return decode(raw(self.port, "POST", path, body, hdrs, timeout))


def decode(res):
    s, h, b = res
    try:
        doc = json.loads(b)
    except ValueError:
        doc = None
    return s, h, b, doc


def keys(d):
    return list(d.keys())


# ----------------------------------------------------------------------------- sections

def test_sign_vectors():
    spec = importlib.util.spec_from_file_location("bybit_stand_in", SERVER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = os.path.join(FIXDIR, "sign_vectors.json")
    with open(path) as f:
        vectors = [v for v in json.load(f)["vectors"] if v["kind"] == "rest"]
    check(len(vectors) >= 9, "sign_vectors.json has the REST vectors (%d)" % len(vectors))
    for v in vectors:
        payload = (v["queryString"] if v["method"] == "GET" else v["body"]).encode()
        got = mod.sign(v["secret"], v["timestamp"], v["apiKey"], v["recvWindow"], payload)
        plain = v["timestamp"] + v["apiKey"] + v["recvWindow"] + payload.decode()
        check(got == v["expectedSign"] and plain == v["stringToSign"],
              "server's verification reproduces vector %s" % v["name"], "%s != %s" % (got, v["expectedSign"]))
    return vectors


def test_vectors_end_to_end(vectors):
    """Replays each vector's exact request (its timestamp, key, query or body) against a server
    whose clock is moved to the vector's time, keyed with the vector's credentials."""
    v0 = vectors[0]
    srv = Srv("--key", v0["apiKey"], "--secret", v0["secret"])
    try:
        for v in vectors:
            routed = v["path"] in ("/v5/order/realtime", "/v5/account/wallet-balance",
                                   "/v5/order/create", "/v5/order/cancel", "/v5/execution/list")
            if not routed:
                continue
            srv.control({"clock_offset_ms": int(v["timestamp"]) + 200 - now_ms()})
            hdrs = [("X-BAPI-API-KEY", v["apiKey"]), ("X-BAPI-TIMESTAMP", v["timestamp"]),
                    ("X-BAPI-RECV-WINDOW", v["recvWindow"]), ("X-BAPI-SIGN", v["expectedSign"])]
            if v["method"] == "GET":
                target = v["path"] + ("?" + v["queryString"] if v["queryString"] else "")
                s, h, b, doc = decode(raw(srv.port, "GET", target, b"", hdrs))
            else:
                s, h, b, doc = decode(raw(srv.port, "POST", v["path"], v["body"].encode(),
                                          hdrs + [("Content-Type", "application/json")]))
            check(s == 200 and doc and doc["retCode"] not in (10001, 10002, 10003, 10004)
                  or (doc and doc["retCode"] == 10001 and "category" in doc["retMsg"]),
                  "vector %s accepted end to end (retCode %s)" % (v["name"], doc and doc["retCode"]), b)
            if v["method"] == "POST":
                # same parameters, re-serialised: the signature no longer matches the bytes
                other = json.dumps(json.loads(v["body"]), separators=(", ", ": ")).encode()
                if other == v["body"].encode():
                    other = json.dumps(json.loads(v["body"]), separators=(",", ":")).encode()
                s, h, b, doc = decode(raw(srv.port, "POST", v["path"], other,
                                          hdrs + [("Content-Type", "application/json")]))
                check(doc and doc["retCode"] == 10004, "vector %s re-serialised body -> 10004" % v["name"], b)
    finally:
        srv.stop()


def test_public(srv, c):
    # /v5/market/time
    s, h, b, doc = c.get("/v5/market/time", signed=False)
    check(s == 200 and doc and keys(doc) == ["retCode", "retMsg", "result", "retExtInfo", "time"]
          and doc["retCode"] == 0 and doc["retMsg"] == "OK" and doc["retExtInfo"] == {},
          "market/time: envelope keys and order", b)
    r = doc["result"]
    check(keys(r) == ["timeSecond", "timeNano"] and isinstance(r["timeSecond"], str)
          and r["timeNano"].isdigit() and len(r["timeNano"]) == 19
          and int(r["timeSecond"]) == int(r["timeNano"]) // 10**9
          and abs(doc["time"] - now_ms()) < 2000 and isinstance(doc["time"], int),
          "market/time: timeSecond/timeNano strings, time in ms", b)
    check(h.get("content-type", "").startswith("application/json") and b.startswith(b'{"retCode":0,'),
          "market/time: compact JSON, application/json")
    check("x-bapi-limit" not in h, "public answers carry no X-Bapi-Limit headers")

    # kline
    s, h, b, doc = c.get("/v5/market/kline", "category=spot&symbol=BTCUSDT&interval=1", signed=False)
    rows = doc["result"]["list"]
    t = doc["time"]
    check(keys(doc["result"]) == ["symbol", "category", "list"] and doc["result"]["category"] == "spot"
          and len(rows) == 200, "kline: default limit 200, result keys as the docs", b[:300])
    check(all(len(r) == 7 and all(isinstance(x, str) for x in r) for r in rows), "kline: rows of 7 strings")
    starts = [int(r[0]) for r in rows]
    check(all(a - b_ == 60000 for a, b_ in zip(starts, starts[1:])) and all(x % 60000 == 0 for x in starts),
          "kline: newest first, aligned, contiguous")
    check(starts[0] <= t < starts[0] + 60000, "kline: newest row is the open candle at server time",
          "%s %s" % (starts[0], t))
    ok = True
    for r in rows:
        o, hi, lo, cl, vol, turn = (Decimal(x) for x in r[1:])
        ok = ok and hi >= max(o, cl) and lo <= min(o, cl) and vol >= 0 and turn >= 0
        ok = ok and (Decimal(r[1]) / Decimal("0.1")) % 1 == 0
    check(ok, "kline: high >= open/close >= low, prices on the 0.1 tick")
    check(all(rows[i][1] == rows[i + 1][4] for i in range(len(rows) - 1)),
          "kline: each candle opens at the previous close")
    s, h, b, doc = c.get("/v5/market/kline", "category=spot&symbol=BTCUSDT&interval=1&limit=5000", signed=False)
    check(len(doc["result"]["list"]) == 1000, "kline: limit above 1000 gives 1000")
    s, h, b, doc = c.get("/v5/market/kline", "category=spot&symbol=BTCUSDT&interval=1&limit=0", signed=False)
    check(doc["retCode"] == 10001, "kline: limit 0 -> 10001", b)
    # pagination backwards with end
    s, h, b, p1 = c.get("/v5/market/kline", "category=spot&symbol=BTCUSDT&interval=5&limit=1000", signed=False)
    p1 = p1["result"]["list"]
    oldest = int(p1[-1][0])
    s, h, b, p2 = c.get("/v5/market/kline", "category=spot&symbol=BTCUSDT&interval=5&limit=1000&end=%d"
                        % (oldest - 1), signed=False)
    p2 = p2["result"]["list"]
    check(len(p2) == 1000 and int(p2[0][0]) == oldest - 300000 and not set(r[0] for r in p1) & set(r[0] for r in p2),
          "kline: paging back with end=oldest-1 continues without gap or overlap")
    # the same closed window asked another way gives the same candles
    s0, e0 = int(p1[500][0]), int(p1[400][0])
    s, h, b, win = c.get("/v5/market/kline", "category=spot&symbol=BTCUSDT&interval=5&start=%d&end=%d" % (s0, e0),
                         signed=False)
    win = win["result"]["list"]
    check(win == p1[400:501], "kline: start/end inclusive, deterministic across requests",
          "%d rows" % len(win))
    s, h, b, lim = c.get("/v5/market/kline", "category=spot&symbol=BTCUSDT&interval=5&start=%d&end=%d&limit=2"
                         % (s0, e0), signed=False)
    check(lim["result"]["list"] == p1[400:402], "kline: start+end+limit gives the newest rows up to end")
    s, h, b, q = c.get("/v5/market/kline", "category=spot&symbol=BTCUSDT&interval=5&start=%d&limit=3" % s0,
                       signed=False)
    q = q["result"]["list"]
    check([r[0] for r in q] == [r[0] for r in p1[:3]] and q[1:] == p1[1:3],
          "kline: start only (default mode) gives the newest rows after start")
    srv.control({"kline_start_only": "oldest"})
    s, h, b, q = c.get("/v5/market/kline", "category=spot&symbol=BTCUSDT&interval=5&start=%d&limit=3" % s0,
                       signed=False)
    check(q["result"]["list"] == p1[498:501], "kline: start only, mode oldest, gives the rows from start")
    srv.control({"kline_start_only": "latest"})
    for iv, test, name in (("60", lambda x: x % 3600000 == 0, "hours"),
                           ("D", lambda x: x % 86400000 == 0, "UTC days"),
                           ("W", lambda x: datetime.datetime.utcfromtimestamp(x / 1000).weekday() == 0
                            and x % 86400000 == 0, "Mondays"),
                           ("M", lambda x: datetime.datetime.utcfromtimestamp(x / 1000).day == 1
                            and x % 86400000 == 0, "first of the month")):
        s, h, b, d = c.get("/v5/market/kline", "category=spot&symbol=BTCUSDT&interval=%s&limit=30" % iv,
                           signed=False)
        st = [int(r[0]) for r in d["result"]["list"]]
        check(len(st) == 30 and all(test(x) for x in st) and st == sorted(st, reverse=True)
              and st[0] <= d["time"], "kline interval %s: aligned to %s" % (iv, name))
    s, h, b, d = c.get("/v5/market/kline", "symbol=BTCUSDT&interval=1&limit=2", signed=False)
    check(d["result"]["category"] == "linear", "kline: category omitted means linear")
    s, h, b, d = c.get("/v5/market/kline", "category=spot&symbol=BTCUSDT&interval=2", signed=False)
    check(d["retCode"] == 10001, "kline: unknown interval -> 10001", b)
    s, h, b, d = c.get("/v5/market/kline", "category=spot&symbol=NOPEUSDT&interval=1", signed=False)
    want = fixture("rest_error_10001_not_supported_symbols.json")
    check(d["retCode"] == want["retCode"] and d["retMsg"] == want["retMsg"], "kline: unknown symbol -> 10001", b)
    s, h, b, d = c.get("/v5/market/kline", "category=spot&symbol=BTCUSDT&interval=1&end=1600000000000",
                       signed=False)
    check(d["retCode"] == 0 and d["result"]["list"] == [], "kline: before the listing -> empty list")

    # instruments-info
    s, h, b, d = c.get("/v5/market/instruments-info", "category=spot&symbol=BTCUSDT", signed=False)
    fx = fixture("rest_market_instruments_info_spot.json")
    check(d["result"]["list"] == fx["result"]["list"] and keys(d["result"]) == keys(fx["result"])
          and keys(d["result"]["list"][0]) == keys(fx["result"]["list"][0]),
          "instruments-info: BTCUSDT is the docs' record", b)
    s, h, b, d = c.get("/v5/market/instruments-info", "category=spot", signed=False)
    check([x["symbol"] for x in d["result"]["list"]] == ["BTCUSDT", "ETHUSDT"] and "nextPageCursor" not in d["result"],
          "instruments-info: all spot symbols, no cursor")
    s, h, b, d = c.get("/v5/market/instruments-info", "category=spot&symbol=NOPE", signed=False)
    check(d["retCode"] == 0 and d["result"]["list"] == [], "instruments-info: unknown symbol -> empty list")
    s, h, b, d = c.get("/v5/market/instruments-info", "", signed=False)
    check(d["retCode"] == 10001, "instruments-info: category required", b)

    # tickers
    s, h, b, d = c.get("/v5/market/tickers", "category=spot&symbol=BTCUSDT", signed=False)
    fx = fixture("rest_market_tickers_spot.json")
    tk = d["result"]["list"][0]
    check(keys(tk) == keys(fx["result"]["list"][0]) and all(isinstance(v, str) for v in tk.values())
          and Decimal(tk["bid1Price"]) < Decimal(tk["ask1Price"]),
          "tickers: fields as the docs' spot example, bid < ask", b)
    s, h, b, d = c.get("/v5/market/tickers", "category=spot", signed=False)
    check(len(d["result"]["list"]) == 2, "tickers: all spot symbols")


def test_http_edges(srv, c):
    s, h, b = raw(srv.port, "GET", "/v5/nope")
    check(s == 404, "unknown path -> HTTP 404")
    s, h, b = raw(srv.port, "get", "/v5/market/time")
    check(s == 400, "lower-case method -> HTTP 400")
    s, h, b = raw(srv.port, "GET", "/v5/market/time", b"{}", [("Content-Type", "application/json")])
    check(s == 403, "GET with a JSON body -> HTTP 403")
    s, h, b = raw(srv.port, "POST", "/v5/market/time", b"{}")
    check(s == 404, "POST on a GET route -> HTTP 404")
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    ok = True
    for _ in range(3):
        conn.request("GET", "/v5/market/time")
        r = conn.getresponse()
        ok = ok and r.status == 200 and json.loads(r.read())["retCode"] == 0
    conn.close()
    check(ok, "keep-alive: three requests on one connection")
    # Expect: 100-continue and chunked bodies are read like any other
    body = json.dumps({"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "nothing-here"}).encode()
    ts = str(now_ms())
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    hdrs = c.headers(body, ts=ts)
    head = "POST /v5/order/cancel HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" \
           "Transfer-Encoding: chunked\r\n" + "".join("%s: %s\r\n" % kv for kv in hdrs) + "\r\n"
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    sock.sendall(head.encode() + chunked)
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        more = sock.recv(65536)
        if not more:
            break
        data += more
    sock.close()
    check(b'"retCode":170213' in data, "chunked request body is signed and read as sent", data[-200:])


def test_auth(srv, c):
    q = "accountType=UNIFIED"
    s, h, b, d = c.get("/v5/account/wallet-balance", q, signed=False)
    check(s == 200 and d["retCode"] == 10001 and d["retMsg"] == "empty value: apiTimestamp[] apiKey[] apiSignature[]",
          "no auth headers -> 10001 empty value", b)
    s, h, b, d = c.get("/v5/account/wallet-balance", q, key="wrong-key")
    check(s == 200 and d["retCode"] == 10003 and d["retMsg"] == "API key is invalid.", "wrong key -> 10003", b)
    ts = str(now_ms())
    s, h, b, d = c.get("/v5/account/wallet-balance", q, ts=ts, sig="0" * 64)
    check(s == 200 and d["retCode"] == 10004
          and d["retMsg"] == "error sign! origin_string[%s%s5000%s]" % (ts, KEY, q),
          "bad sign -> 10004 with the origin string", b)
    s, h, b, d = Client(srv.port, KEY, "other-secret").get("/v5/account/wallet-balance", q)
    check(d["retCode"] == 10004, "wrong secret -> 10004", b)
    s, h, b, d = c.get("/v5/account/wallet-balance", q)
    check(d["retCode"] == 0, "good signature -> 0", b)
    s, h, b, d = c.get("/v5/account/wallet-balance", "coin=USDT&accountType=UNIFIED")
    check(d["retCode"] == 0, "parameter order is free: the raw query is what is signed", b)
    s, h, b, d = c.get("/v5/account/wallet-balance", q, extra=[("X-BAPI-SIGN-TYPE", "2")])
    check(d["retCode"] == 0, "X-BAPI-SIGN-TYPE: 2 accepted", b)
    s, h, b, d = c.get("/v5/account/wallet-balance", q, rw=None)
    check(d["retCode"] == 0, "no X-BAPI-RECV-WINDOW: window 5000, signed with an empty recvWindow", b)
    s, h, b, d = c.post("/v5/order/cancel", '{"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "x"}')
    check(d["retCode"] == 170213, "spaced JSON body verified over its raw bytes", b)

    msg_re = re.compile(r"^invalid request, please check your server timestamp or recv_window param\. "
                        r"req_timestamp\[(\d+)\],server_timestamp\[(\d+)\],recv_window\[(\d+)\]$")
    t = now_ms()
    s, h, b, d = c.get("/v5/account/wallet-balance", q, ts=t + 800)
    check(d["retCode"] == 0, "timestamp 800 ms ahead of the server: accepted", b)
    s, h, b, d = c.get("/v5/account/wallet-balance", q, ts=t + 1500, rw="60000")
    m = msg_re.match(d.get("retMsg", ""))
    check(d["retCode"] == 10002 and m and m.group(1) == str(t + 1500) and m.group(3) == "60000",
          "timestamp 1.5 s ahead -> 10002 even with a 60 s window, Bybit's message", b)
    s, h, b, d = c.get("/v5/account/wallet-balance", q, ts=t - 6000)
    check(d["retCode"] == 10002 and msg_re.match(d["retMsg"]), "timestamp 6 s old, window 5000 -> 10002", b)
    s, h, b, d = c.get("/v5/account/wallet-balance", q, ts=t - 6000, rw="10000")
    check(d["retCode"] == 0, "timestamp 6 s old, window 10000 -> accepted", b)
    srv.control({"clock_offset_ms": -3000})
    s, h, b, d = c.get("/v5/account/wallet-balance", q)
    check(d["retCode"] == 10002, "server clock 3 s behind: a client on local time is 'ahead' -> 10002", b)
    s, h, b, d = c.get("/v5/market/time", signed=False)
    off = int(d["result"]["timeSecond"]) * 1000 - now_ms()
    check(-4500 < off < -1500 and abs(d["time"] - (now_ms() - 3000)) < 1000, "market/time follows the skewed clock")
    s, h, b, d = c.get("/v5/account/wallet-balance", q, ts=int(d["time"]))
    check(d["retCode"] == 0, "a client that resyncs from market/time is accepted again", b)
    srv.control({"clock_offset_ms": 0})

    # rate-limit headers
    s, h, b, d = c.get("/v5/account/wallet-balance", q)
    lim, left, reset = h.get("x-bapi-limit"), h.get("x-bapi-limit-status"), h.get("x-bapi-limit-reset-timestamp")
    check(lim == "50" and left is not None and int(left) < 50 and reset and abs(int(reset) - now_ms()) < 2000,
          "private answer has X-Bapi-Limit, -Status, -Reset-Timestamp", h)
    s, h2, b, d = c.get("/v5/account/wallet-balance", q)
    check(int(h2["x-bapi-limit-status"]) == int(left) - 1 or int(h2["x-bapi-limit-status"]) > int(left),
          "X-Bapi-Limit-Status counts down within the second")
    time.sleep(1.05)
    got = []
    for i in range(21):
        s, h, b, d = c.post("/v5/order/cancel", {"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "none-%d" % i})
        got.append((d["retCode"], h.get("x-bapi-limit-status"), h.get("x-bapi-limit-reset-timestamp")))
    check(all(g[0] == 170213 for g in got[:20]) and got[19][1] == "0" and got[20][0] == 10006,
          "order/cancel: 20 per second, the 21st -> 10006", got[-3:])
    check(d["retMsg"] == "Too many visits!" and int(got[20][2]) > now_ms() - 50,
          "10006 carries a reset timestamp in the future", got[20])
    time.sleep(max(0, (int(got[20][2]) - now_ms()) / 1000) + 0.05)
    s, h, b, d = c.post("/v5/order/cancel", {"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "none-x"})
    check(d["retCode"] == 170213, "after the reset timestamp the endpoint answers again", b)


def q8(x):
    return Decimal(x)


def test_orders(srv, c):
    srv.control({"reset": True})
    srv.control({"rate_limits": False})  # this section sends more than 20 creates a second
    st = srv.state()
    ask, bid = Decimal(st["book"]["BTCUSDT"]["ask"]), Decimal(st["book"]["BTCUSDT"]["bid"])
    base = {"category": "spot", "symbol": "BTCUSDT"}

    def create(**kw):
        body = dict(base)
        body.update(kw)
        return c.post("/v5/order/create", body)

    def realtime(query):
        return c.get("/v5/order/realtime", query)

    # market buy by value (quote coin, the default for a market Buy)
    s, h, b, d = create(side="Buy", orderType="Market", qty="200", orderLinkId="mb-1")
    check(d["retCode"] == 0 and keys(d["result"]) == ["orderId", "orderLinkId"]
          and d["result"]["orderLinkId"] == "mb-1" and d["result"]["orderId"].isdigit(),
          "create market buy: ack with orderId and orderLinkId only", b)
    check(h.get("x-bapi-limit") == "20", "create: X-Bapi-Limit 20 (spot)")
    oid = d["result"]["orderId"]
    filled = (Decimal(200) / ask).quantize(Decimal("0.000001"), rounding="ROUND_FLOOR")
    s, h, b, d = realtime("category=spot&orderLinkId=mb-1")
    o = d["result"]["list"][0] if d["result"]["list"] else {}
    check(o.get("orderStatus") == "Filled" and o.get("orderId") == oid and Decimal(o["cumExecQty"]) == filled
          and o["marketUnit"] == "quoteCoin" and o["timeInForce"] == "IOC" and o["avgPrice"] == str(ask)
          and o["leavesQty"] == "0", "market buy filled at once at the ask, by quote value", b)
    fx = fixture("rest_order_realtime.json")["result"]["list"][0]
    check(set(fx) - set(o) <= {"tpslMode"} and keys(d["result"]) == ["list", "nextPageCursor", "category"],
          "realtime: order fields as the docs' example (spot has no tpslMode)", set(fx) - set(o))
    s, h, b, d = c.get("/v5/execution/list", "category=spot&orderId=" + oid)
    ex = d["result"]["list"]
    fee = filled * Decimal("0.001")
    check(len(ex) == 1 and ex[0]["feeCurrency"] == "BTC" and Decimal(ex[0]["execFee"]) == fee
          and ex[0]["isMaker"] is False and Decimal(ex[0]["execQty"]) == filled and ex[0]["execType"] == "Trade"
          and Decimal(ex[0]["execValue"]) == filled * ask and isinstance(ex[0]["seq"], int),
          "execution list: one taker fill, fee in the base coin", b)
    fxe = fixture("rest_execution_list.json")["result"]
    check(keys(ex[0]) == keys(fxe["list"][0]) and keys(d["result"]) == keys(fxe),
          "execution list: fields as the docs' example")
    s, h, b, d = c.get("/v5/account/wallet-balance", "accountType=UNIFIED&coin=BTC,USDT")
    coins = {x["coin"]: x for x in d["result"]["list"][0]["coin"]}
    check(Decimal(coins["BTC"]["walletBalance"]) == filled - fee
          and Decimal(coins["USDT"]["walletBalance"]) == Decimal(10000) - filled * ask,
          "wallet: BTC += execQty - execFee, USDT -= execValue", b)
    fxw = fixture("rest_account_wallet_balance.json")["result"]["list"][0]
    check(keys(d["result"]["list"][0]) == keys(fxw) and keys(coins["BTC"]) == keys(fxw["coin"][0]),
          "wallet: fields as the docs' example")

    # market buy in base units, market sell
    s, h, b, d = create(side="Buy", orderType="Market", qty="0.001", marketUnit="baseCoin", orderLinkId="mb-2")
    s, h, b, d = realtime("category=spot&orderLinkId=mb-2")
    check(d["result"]["list"][0]["cumExecQty"] == "0.001" and d["result"]["list"][0]["marketUnit"] == "baseCoin",
          "market buy with marketUnit=baseCoin: qty in BTC")
    s, h, b, d = create(side="Sell", orderType="Market", qty="0.001", orderLinkId="ms-1")
    s, h, b, d = c.get("/v5/execution/list", "category=spot&orderLinkId=ms-1")
    e = d["result"]["list"][0]
    check(e["feeCurrency"] == "USDT" and Decimal(e["execPrice"]) == bid
          and Decimal(e["execFee"]) == Decimal("0.001") * bid * Decimal("0.001"),
          "market sell: filled at the bid, fee in the quote coin", b)

    # limit buy below the market rests, locks quote, cancels
    s, h, b, d = create(side="Buy", orderType="Limit", qty="0.01", price="15000", orderLinkId="lb-1")
    check(d["retCode"] == 0, "limit buy accepted", b)
    s, h, b, d = realtime("category=spot&symbol=BTCUSDT&openOnly=0")
    opn = d["result"]["list"]
    check(len(opn) == 1 and opn[0]["orderLinkId"] == "lb-1" and opn[0]["orderStatus"] == "New"
          and opn[0]["leavesQty"] == "0.01" and opn[0]["leavesValue"] == "150" and opn[0]["avgPrice"] == "",
          "open orders list the resting limit order", b)
    s, h, b, d = c.get("/v5/account/wallet-balance", "accountType=UNIFIED&coin=USDT")
    check(d["result"]["list"][0]["coin"][0]["locked"] == "150", "wallet: a resting buy locks qty*price", b)
    s, h, b, d = c.post("/v5/order/cancel", {"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "lb-1"})
    check(d["retCode"] == 0 and d["result"]["orderLinkId"] == "lb-1" and keys(d["result"]) == ["orderId", "orderLinkId"],
          "cancel by orderLinkId: ack", b)
    s, h, b, d = realtime("category=spot&orderLinkId=lb-1&openOnly=0")
    o = d["result"]["list"][0]
    check(o["orderStatus"] == "Cancelled" and o["cancelType"] == "CancelByUser",
          "by orderLinkId openOnly is ignored: the cancelled order is found", b)
    s, h, b, d = c.get("/v5/account/wallet-balance", "accountType=UNIFIED&coin=USDT")
    check(d["result"]["list"][0]["coin"][0]["locked"] == "0", "cancel releases the lock")
    s, h, b, d = c.post("/v5/order/cancel", {"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "lb-1"})
    check(d["retCode"] == 170213, "cancelling it again -> 170213", b)
    s, h, b, d = realtime("category=spot&openOnly=0")
    check(d["result"]["list"] == [], "no open orders left")
    s, h, b, d = realtime("category=spot&openOnly=1&limit=2")
    page1 = d["result"]["list"]
    cur = d["result"]["nextPageCursor"]
    check(len(page1) == 2 and page1[0]["orderLinkId"] == "lb-1" and cur,
          "openOnly=1: closed orders, newest first, with a cursor", b)
    s, h, b, d = realtime("category=spot&openOnly=1&limit=2&cursor=" + cur)
    page2 = d["result"]["list"]
    s, h, b, d3 = realtime("category=spot&openOnly=1&limit=2&" + urllib.parse.urlencode({"cursor": cur}))
    check(len(page2) == 2 and page2[0]["orderLinkId"] not in [x["orderLinkId"] for x in page1]
          and d3["result"]["list"] == page2, "cursor works sent raw or url-encoded", b)

    # duplicates and generated ids
    s, h, b, d = create(side="Buy", orderType="Market", qty="10", orderLinkId="mb-1")
    check(d["retCode"] == 170141 and d["retMsg"] == "Duplicate clientOrderId", "duplicate orderLinkId -> 170141", b)
    srv.control({"duplicate_ret_code": 110072})
    s, h, b, d = create(side="Buy", orderType="Market", qty="10", orderLinkId="mb-1")
    check(d["retCode"] == 110072, "duplicate code switchable to 110072", b)
    srv.control({"duplicate_ret_code": 170141})
    s, h, b, d = create(side="Buy", orderType="Limit", qty="0.001", price="10000")
    gen = d["result"].get("orderLinkId", "")
    check(d["retCode"] == 0 and re.match(r"^[0-9]{1,36}$", gen), "no orderLinkId: one is generated", b)
    s, h, b, d = realtime("category=spot&orderLinkId=" + gen)
    check(len(d["result"]["list"]) == 1, "the generated orderLinkId finds the order")
    c.post("/v5/order/cancel", {"category": "spot", "symbol": "BTCUSDT", "orderLinkId": gen})

    # rejections
    for kw, code, what in (
            (dict(side="Buy", orderType="Market", qty="1000000", orderLinkId="r1"), 170131, "insufficient balance"),
            (dict(side="Sell", orderType="Market", qty="5", orderLinkId="r2"), 170131, "insufficient base coin"),
            (dict(side="Buy", orderType="Limit", qty="0.0000001", price="15000", orderLinkId="r3"), 170137,
             "qty finer than basePrecision"),
            (dict(side="Buy", orderType="Limit", qty="0.01", price="15000.05", orderLinkId="r4"), 170134,
             "price finer than tickSize"),
            (dict(side="Buy", orderType="Limit", qty="0.0001", price="15000", orderLinkId="r5"), 170140,
             "value under minOrderAmt"),
            (dict(side="Buy", orderType="Market", qty="5.00000001", orderLinkId="r6"), 170148,
             "market amount finer than quotePrecision"),
            (dict(side="Buy", orderType="Limit", qty="0.01", orderLinkId="r7"), 170130, "limit without price"),
            (dict(side="Buy", orderType="Market", qty=10, orderLinkId="r8"), 170130, "qty as a JSON number"),
            (dict(side="Buy", orderType="Market", qty="1e3", orderLinkId="r8b"), 170130, "qty in exponent form"),
            (dict(side="Buy", orderType="Market", qty="10", symbol=["BTCUSDT"], orderLinkId="r8c"), 10001,
             "symbol that is not a string"),
            (dict(side="Buy", orderType="Market", qty="10", orderLinkId="x" * 37), 170130, "orderLinkId too long"),
            (dict(side="Buy", orderType="Market", qty="10", symbol="NOPEUSDT", orderLinkId="r9"), 170121,
             "unknown symbol"),
            (dict(side="Up", orderType="Market", qty="10", orderLinkId="r10"), 10001, "bad side"),
            (dict(side="Buy", orderType="Market", qty="10", category="linear", orderLinkId="r11"), 10001,
             "category other than spot")):
        s, h, b, d = create(**kw)
        check(d["retCode"] == code, "reject %s -> %d" % (what, code), b)
        if code == 170131:
            check(d["retMsg"] == "Balance insufficient", "170131 says Balance insufficient", b)
    s, h, b, d = c.post("/v5/order/create", "not json")
    check(d["retCode"] == 10001, "create with a body that is not JSON -> 10001", b)

    # crossing and post-only
    s, h, b, d = create(side="Buy", orderType="Limit", qty="0.001", price="30000", orderLinkId="x-1")
    s, h, b, d = realtime("category=spot&orderLinkId=x-1")
    o = d["result"]["list"][0]
    check(o["orderStatus"] == "Filled" and o["avgPrice"] == str(ask), "crossing limit buy fills at the ask")
    s, h, b, d = create(side="Buy", orderType="Limit", qty="0.001", price="30000", timeInForce="PostOnly",
                        orderLinkId="x-2")
    s, h, b, d = realtime("category=spot&orderLinkId=x-2")
    o = d["result"]["list"][0]
    check(o["orderStatus"] == "Cancelled" and o["rejectReason"] == "EC_PostOnlyWillTakeLiquidity",
          "crossing PostOnly is cancelled")

    # fills driven from the control endpoint
    s, h, b, d = create(side="Buy", orderType="Limit", qty="0.004", price="16000", orderLinkId="pf-1")
    srv.control({"fill_order": {"orderLinkId": "pf-1", "qty": "0.001"}})
    s, h, b, d = realtime("category=spot&orderLinkId=pf-1")
    o = d["result"]["list"][0]
    check(o["orderStatus"] == "PartiallyFilled" and o["leavesQty"] == "0.003" and o["cumExecQty"] == "0.001"
          and o["avgPrice"] == "16000", "control fill_order: partial fill", b)
    s, h, b, d = c.get("/v5/execution/list", "category=spot&orderLinkId=pf-1")
    check(d["result"]["list"][0]["isMaker"] is True and d["result"]["list"][0]["leavesQty"] == "0.003",
          "the control fill is a maker execution")
    s, h, b, d = c.post("/v5/order/cancel", {"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "pf-1"})
    s, h, b, d = realtime("category=spot&orderLinkId=pf-1")
    check(d["result"]["list"][0]["orderStatus"] == "PartiallyFilledCanceled", "cancel after a partial fill")
    st = srv.state()
    check(st["balances"]["USDT"]["locked"] == "0" and st["balances"].get("BTC", {}).get("locked", "0") == "0",
          "nothing stays locked")
    s, h, b, d = c.get("/v5/execution/list", "category=spot&limit=2")
    check(len(d["result"]["list"]) == 2 and d["result"]["nextPageCursor"]
          and int(d["result"]["list"][0]["execTime"]) >= int(d["result"]["list"][1]["execTime"]),
          "execution list: newest first, paginated")
    s, h, b, d = c.get("/v5/account/wallet-balance", "accountType=UNIFIED")
    check(sorted(x["coin"] for x in d["result"]["list"][0]["coin"]) == ["BTC", "USDT"],
          "wallet without coin: the non-zero coins")
    s, h, b, d = c.get("/v5/account/wallet-balance", "accountType=CONTRACT")
    check(d["retCode"] == 10001, "wallet: accountType other than UNIFIED -> 10001")

    st = srv.state()
    creates = st["counts"].get("POST /v5/order/create", 0)
    logged = [e for e in st["log"] if e["path"] == "/v5/order/create"]
    check(creates == len(logged) and creates >= 20 and all("X-BAPI-SIGN" in e["headers"] for e in logged)
          and json.loads(logged[0]["body"])["orderLinkId"] == "mb-1",
          "control log: every create with its headers and raw body (%d)" % creates)


def test_faults(srv, c):
    srv.control({"reset": True})

    def t_get(path="/v5/market/time", query="", timeout=5, signed=False):
        return c.get(path, query, signed=signed, timeout=timeout)

    srv.control({"fault": "latency", "ms": 300, "path": "/v5/market/time"})
    t0 = time.monotonic()
    s, h, b, d = t_get()
    dt = time.monotonic() - t0
    t0 = time.monotonic()
    t_get()
    dt2 = time.monotonic() - t0
    check(dt >= 0.3 and d and d["retCode"] == 0 and fast(dt2 < 0.2), "latency: 300 ms once, then normal (%.2f/%.2f)"
          % (dt, dt2))

    srv.control({"fault": "http5xx"})
    s, h, b = raw(srv.port, "GET", "/v5/market/time")
    check(s == 502 and h["content-type"].startswith("text/html") and b"502 Bad Gateway" in b,
          "http5xx: HTTP 502 with an HTML body", b)
    srv.control({"fault": "http5xx", "status": 503})
    s, h, b = raw(srv.port, "GET", "/v5/market/time")
    check(s == 503, "http5xx: status can be chosen")

    srv.control({"fault": "rate_limit", "path": "/v5/order/create"})
    s, h, b, d = c.post("/v5/order/create", {"category": "spot", "symbol": "BTCUSDT", "side": "Buy",
                                             "orderType": "Market", "qty": "10", "orderLinkId": "rl-1"})
    reset = int(h.get("x-bapi-limit-reset-timestamp", "0"))
    check(d["retCode"] == 10006 and d["retMsg"] == "Too many visits!" and h.get("x-bapi-limit-status") == "0"
          and h.get("x-bapi-limit") == "20" and 500 < reset - now_ms() <= 1100,
          "rate_limit: 10006, Limit-Status 0, reset about 1 s ahead", (b, h))
    check(srv.state()["orders"] == [], "rate_limit: the order was not placed")
    srv.control({"fault": "rate_limit", "variant": "http403"})
    s, h, b = raw(srv.port, "GET", "/v5/market/time")
    check(s == 403 and b"access too frequent" in b, "rate_limit http403: HTTP 403 access too frequent", b)
    srv.control({"fault": "rate_limit", "variant": "http429"})
    s, h, b = raw(srv.port, "GET", "/v5/market/time")
    check(s == 429, "rate_limit http429: HTTP 429")

    srv.control({"fault": "timestamp", "path": "/v5/account/wallet-balance"})
    s, h, b, d = c.get("/v5/account/wallet-balance", "accountType=UNIFIED")
    check(d["retCode"] == 10002 and d["retMsg"].startswith("invalid request, please check your server timestamp"),
          "timestamp: 10002 with Bybit's message", b)

    srv.control({"fault": "malformed"})
    s, h, b = raw(srv.port, "GET", "/v5/market/time")
    try:
        json.loads(b)
        bad = False
    except ValueError:
        bad = True
    check(s == 200 and bad, "malformed: HTTP 200, body is not JSON", b)

    srv.control({"fault": "truncated"})
    try:
        raw(srv.port, "GET", "/v5/market/time")
        got = "no error"
    except http.client.IncompleteRead as e:
        got = "incomplete"
    check(got == "incomplete", "truncated: Content-Length larger than the body, then close", got)

    srv.control({"fault": "reset"})
    try:
        raw(srv.port, "GET", "/v5/market/time")
        got = "answered"
    except (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError) as e:
        got = type(e).__name__
    check(got in ("ConnectionResetError", "RemoteDisconnected", "BrokenPipeError"), "reset: no answer, connection torn down",
          got)

    srv.control({"fault": "no_answer"})
    t0 = time.monotonic()
    try:
        raw(srv.port, "GET", "/v5/market/time", timeout=0.5)
        got = "answered"
    except (socket.timeout, TimeoutError):
        got = "timeout"
    check(got == "timeout" and fast(time.monotonic() - t0 < 2), "no_answer: the client times out", got)
    s, h, b, d = t_get()
    check(d and d["retCode"] == 0, "no_answer: the next request is answered")

    # lose_response on order create: the order is placed, the answer never comes
    creates0 = srv.state()["counts"].get("POST /v5/order/create", 0)
    srv.control({"fault": "lose_response", "path": "/v5/order/create"})
    order = {"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.001",
             "price": "15000", "orderLinkId": "lost-1"}
    try:
        c.post("/v5/order/create", order)
        got = "answered"
    except (http.client.RemoteDisconnected, ConnectionResetError) as e:
        got = "lost"
    st = srv.state()
    check(got == "lost" and [o["orderLinkId"] for o in st["orders"]] == ["lost-1"],
          "lose_response: no answer, but the order exists", got)
    s, h, b, d = c.post("/v5/order/create", order)
    check(d["retCode"] == 170141, "lose_response: a retry with the same orderLinkId -> duplicate", b)
    s, h, b, d = c.get("/v5/order/realtime", "category=spot&orderLinkId=lost-1")
    check(len(d["result"]["list"]) == 1 and d["result"]["list"][0]["orderStatus"] == "New",
          "lose_response: the order is found by orderLinkId")
    st = srv.state()
    check(st["counts"]["POST /v5/order/create"] - creates0 == 2 and len(st["orders"]) == 1,
          "control: two create calls received, one order exists (a blind retry would make two)")

    # count, path filter, unlimited
    srv.control({"fault": "http5xx", "count": 2, "path": "/v5/market/time"})
    s1 = raw(srv.port, "GET", "/v5/market/kline?category=spot&symbol=BTCUSDT&interval=1&limit=1")[0]
    s2 = raw(srv.port, "GET", "/v5/market/time")[0]
    s3 = raw(srv.port, "GET", "/v5/market/time")[0]
    s4 = raw(srv.port, "GET", "/v5/market/time")[0]
    check((s1, s2, s3, s4) == (200, 502, 502, 200), "count 2 and a path filter", (s1, s2, s3, s4))
    srv.control({"fault": "http5xx", "count": -1, "method": "GET"})
    codes = [raw(srv.port, "GET", "/v5/market/time")[0] for _ in range(3)]
    srv.control({"clear_faults": True})
    codes.append(raw(srv.port, "GET", "/v5/market/time")[0])
    check(codes == [502, 502, 502, 200], "count -1 holds until clear_faults", codes)
    srv.control({"faults": [{"fault": "http5xx"}, {"fault": "malformed"}]})
    a = raw(srv.port, "GET", "/v5/market/time")
    b_ = raw(srv.port, "GET", "/v5/market/time")
    check(a[0] == 502 and b_[0] == 200 and not b_[2].endswith(b"}"), "queued faults apply in order")

    st = srv.state()
    faulted = [e["fault"] for e in st["log"] if e["fault"]]
    check("no_answer" in faulted and "lose_response" in faulted and "reset" in faulted,
          "the log records which request got which fault")
    srv.control({"fault": "no_answer"})
    import threading
    seen = []

    def held():
        t1 = time.monotonic()
        try:
            raw(srv.port, "GET", "/v5/market/time", timeout=20)
            seen.append("answered")
        except (http.client.RemoteDisconnected, ConnectionResetError) as e:
            seen.append(("closed", time.monotonic() - t1))
    th = threading.Thread(target=held)
    th.start()
    time.sleep(0.3)
    srv.control({"reset": True})
    th.join(5)
    check(seen and seen[0][0] == "closed" and seen[0][1] < 2, "no_answer: a control reset releases the held request",
          seen)
    s, h, b = raw(srv.port, "POST", "/__control", b'{"fault": "nonsense"}')
    check(s == 400, "control: an unknown fault is refused")
    srv.control({"reset": True})
    st = srv.state()
    check(st["orders"] == [] and st["faults"] == [] and st["log"] == [] and st["counts"] == {},
          "control reset clears orders, faults and log")


def test_state_file():
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "state.json")
    try:
        srv = Srv("--state-file", path)
        c = Client(srv.port)
        c.post("/v5/order/create", {"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
                                    "qty": "0.001", "price": "15000", "orderLinkId": "keep-1"})
        srv.stop()
        srv = Srv("--state-file", path)
        c = Client(srv.port)
        s, h, b, d = c.get("/v5/order/realtime", "category=spot&orderLinkId=keep-1")
        s, h, b, w = c.get("/v5/account/wallet-balance", "accountType=UNIFIED&coin=USDT")
        check(len(d["result"]["list"]) == 1 and w["result"]["list"][0]["coin"][0]["locked"] == "15",
              "--state-file: orders and locks survive a restart", b)
        s, h, b, d = c.post("/v5/order/create", {"category": "spot", "symbol": "BTCUSDT", "side": "Buy",
                                                 "orderType": "Limit", "qty": "0.001", "price": "15000",
                                                 "orderLinkId": "keep-1"})
        check(d["retCode"] == 170141, "--state-file: orderLinkIds stay used after a restart")
        srv.stop()
    finally:
        shutil.rmtree(tmp)


def curl(*args, timeout=10):
    p = subprocess.run(["curl", "-sS"] + list(args), capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def test_curl(srv, c):
    if not shutil.which("curl"):
        check(True, "# SKIP curl not installed")
        return
    srv.control({"reset": True})
    base = "http://127.0.0.1:%d" % srv.port
    for q in ("/v5/market/time", "/v5/market/kline?category=spot&symbol=BTCUSDT&interval=15&limit=3",
              "/v5/market/instruments-info?category=spot&symbol=BTCUSDT",
              "/v5/market/tickers?category=spot&symbol=BTCUSDT"):
        rc, out, err = curl(base + q)
        check(rc == 0 and json.loads(out)["retCode"] == 0, "curl GET %s" % q.split("?")[0], err)

    def signed(method, path, payload):
        ts = str(now_ms())
        sig = c.sign(ts, "5000", payload.encode())
        h = ["-H", "X-BAPI-API-KEY: " + KEY, "-H", "X-BAPI-TIMESTAMP: " + ts, "-H", "X-BAPI-RECV-WINDOW: 5000",
             "-H", "X-BAPI-SIGN: " + sig]
        if method == "GET":
            return curl(*h, base + path + ("?" + payload if payload else ""))
        return curl(*h, "-H", "Content-Type: application/json", "--data-binary", payload, base + path)

    rc, out, err = signed("GET", "/v5/account/wallet-balance", "accountType=UNIFIED")
    check(rc == 0 and json.loads(out)["retCode"] == 0, "curl signed GET wallet-balance", out)
    body = '{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001","price":"15000","orderLinkId":"curl-1"}'
    rc, out, err = signed("POST", "/v5/order/create", body)
    check(rc == 0 and json.loads(out)["retCode"] == 0, "curl signed POST order/create", out)
    rc, out, err = signed("GET", "/v5/order/realtime", "category=spot&orderLinkId=curl-1")
    check(rc == 0 and json.loads(out)["result"]["list"][0]["orderStatus"] == "New", "curl signed GET order/realtime")
    rc, out, err = signed("POST", "/v5/order/cancel", '{"category":"spot","symbol":"BTCUSDT","orderLinkId":"curl-1"}')
    check(rc == 0 and json.loads(out)["retCode"] == 0, "curl signed POST order/cancel", out)
    rc, out, err = signed("POST", "/v5/order/create", body.replace("Limit", "Market").replace("curl-1", "curl-2")
                          .replace('"qty":"0.001"', '"qty":"20"'))
    rc, out, err = signed("GET", "/v5/execution/list", "category=spot")
    check(rc == 0 and len(json.loads(out)["result"]["list"]) == 1, "curl signed GET execution/list", out)

    def fault(spec, *cargs, timeout=10):
        srv.control(spec)
        return curl(*cargs, base + "/v5/market/time", timeout=timeout)

    t0 = time.monotonic()
    rc, out, err = fault({"fault": "latency", "ms": 300})
    check(rc == 0 and time.monotonic() - t0 >= 0.3, "curl latency")
    rc, out, err = fault({"fault": "http5xx"}, "-o", "/dev/null", "-w", "%{http_code}")
    check(out == b"502", "curl http5xx -> 502", out)
    rc, out, err = fault({"fault": "rate_limit"}, "-D", "-")
    check(b"X-Bapi-Limit-Reset-Timestamp" in out and b'"retCode":10006' in out, "curl rate_limit", out)
    rc, out, err = fault({"fault": "rate_limit", "variant": "http403"}, "-o", "/dev/null", "-w", "%{http_code}")
    check(out == b"403", "curl rate_limit http403", out)
    rc, out, err = fault({"fault": "timestamp"})
    check(b'"retCode":10002' in out, "curl timestamp", out)
    rc, out, err = fault({"fault": "malformed"})
    check(rc == 0 and out and not out.endswith(b"}"), "curl malformed", out)
    rc, out, err = fault({"fault": "truncated"})
    check(rc == 18, "curl truncated -> exit 18 (partial file)", (rc, err))
    rc, out, err = fault({"fault": "reset"})
    check(rc in (52, 56), "curl reset -> exit 56 (recv failure) or 52", (rc, err))
    rc, out, err = fault({"fault": "no_answer"}, "--max-time", "1")
    check(rc == 28, "curl no_answer -> exit 28 (timeout)", (rc, err))
    rc, out, err = fault({"fault": "lose_response"})
    check(rc == 52, "curl lose_response -> exit 52 (empty reply)", (rc, err))


# ----------------------------------------------------------------------------- WebSocket side

PUBLIC, PRIVATE = "/v5/public/spot", "/v5/private"


def ws_sign(secret, expires):
    """The ws_auth rule of sign_vectors.json: hex HMAC-SHA256(secret, "GET/realtime" + expires)."""
    return hmac.new(secret.encode(), ("GET/realtime" + str(expires)).encode(), hashlib.sha256).hexdigest()


def server_now(srv):
    return srv.state(since=1 << 62)["server_time"]


def before_boundary(srv, ms_before=1000):
    """Moves the stand-in's clock (clock_offset_ms) to ms_before ms before the next minute
    boundary; returns that boundary (the candle closing there starts at boundary - 60000)."""
    st = srv.state(since=1 << 62)
    now, off = st["server_time"], st["clock_offset_ms"]
    b = (now // 60000 + 1) * 60000
    if b - now < ms_before + 300:
        b += 60000
    srv.control({"clock_offset_ms": off + (b - ms_before - now)})
    return b


async def recv(ws, timeout):
    """The next frame as (parsed JSON or None, raw), or (None, None) on timeout."""
    try:
        raw_ = await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        return None, None
    if isinstance(raw_, bytes):
        return None, raw_
    try:
        return json.loads(raw_), raw_
    except ValueError:
        return None, raw_


async def expect(ws, pred, timeout=3.0, seen=None):
    """The first JSON message satisfying pred within timeout (others skipped, kept in seen)."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return None
        msg, raw_ = await recv(ws, left)
        if raw_ is None:
            return None
        if seen is not None:
            seen.append((msg, raw_))
        if msg is not None and pred(msg):
            return msg


async def send(ws, doc):
    await ws.send(json.dumps(doc))


def is_kline(topic, confirm=None, start=None):
    def pred(m):
        if m.get("topic") != topic:
            return False
        d = m["data"][0]
        return (confirm is None or d["confirm"] is confirm) and (start is None or d["start"] == start)
    return pred


def is_op(op):
    return lambda m: m.get("op") == op and "topic" not in m


def same_types(a, b):
    return all(type(a[k]) is type(b[k]) for k in b if k in a)


async def ws_public(srv, c, websockets):
    base = "ws://127.0.0.1:%d" % srv.ws_port
    try:
        await websockets.connect(base + "/v5/public/linear")
        check(False, "ws: a path other than /v5/public/spot and /v5/private is refused")
    except websockets.exceptions.InvalidStatusCode as e:
        check(e.status_code == 404, "ws: a path other than /v5/public/spot and /v5/private -> HTTP 404")

    async with websockets.connect(base + PUBLIC) as ws:
        await send(ws, {"op": "subscribe", "args": ["kline.1.BTCUSDT", "tickers.BTCUSDT"], "req_id": "sub-1"})
        r = await expect(ws, is_op("subscribe"))
        fx = fixture("ws_subscribe_response_public_spot.json")
        check(r and keys(r) == keys(fx) and r["success"] is True and r["ret_msg"] == "subscribe"
              and r["req_id"] == "sub-1" and isinstance(r["conn_id"], str) and r["conn_id"],
              "ws public: subscribe answer as the docs' public spot example", r)
        conn_id = r and r["conn_id"]
        k = await expect(ws, is_kline("kline.1.BTCUSDT"))
        fx = fixture("ws_kline_push.json")
        ok = k is not None and keys(k) == keys(fx) and keys(k["data"][0]) == keys(fx["data"][0])
        check(ok and k["type"] == "snapshot" and isinstance(k["ts"], int) and len(k["data"]) == 1
              and same_types(k["data"][0], fx["data"][0]), "ws kline push: keys, order and types as the docs' example", k)
        d = k["data"][0] if ok else {}
        check(ok and d["confirm"] is False and d["start"] % 60000 == 0 and d["end"] == d["start"] + 59999
              and d["interval"] == "1" and d["start"] <= d["timestamp"] <= d["end"],
              "ws kline push: the open candle (confirm false, start/end/interval)", d)
        s, h, b, rest = c.get("/v5/market/kline", "category=spot&symbol=BTCUSDT&interval=1&limit=1", signed=False)
        row = rest["result"]["list"][0]
        check(ok and int(row[0]) == d["start"] and row[1] == d["open"],
              "ws kline push: same open candle and open price as REST kline", (row, d))
        t = await expect(ws, lambda m: m.get("topic") == "tickers.BTCUSDT")
        fx = fixture("ws_ticker_push_spot.json")
        s, h, b, rt = c.get("/v5/market/tickers", "category=spot&symbol=BTCUSDT", signed=False)
        check(t and keys(t) == keys(fx) and keys(t["data"]) == keys(fx["data"]) and isinstance(t["cs"], int)
              and t["type"] == "snapshot" and all(isinstance(v, str) for v in t["data"].values())
              and t["data"]["lastPrice"] == rt["result"]["list"][0]["lastPrice"],
              "ws tickers push: spot snapshot as the docs' example, data an object, lastPrice as REST", t)
        t0 = time.monotonic()
        k2 = await expect(ws, is_kline("kline.1.BTCUSDT", False), 2.5)
        t2 = await expect(ws, lambda m: m.get("topic") == "tickers.BTCUSDT", 2.5)
        dt = time.monotonic() - t0
        check(k2 and t2 and fast(dt < 2.2) and t2["cs"] > t["cs"], "ws: open candle and ticker pushed again about every second "
              "(%.2f s)" % dt)

        await send(ws, {"op": "ping", "req_id": "100001"})
        p = await expect(ws, is_op("ping"))
        fx = fixture("ws_pong_public_spot.json")
        check(p and keys(p) == keys(fx) and p["success"] is True and p["ret_msg"] == "pong" and p["op"] == "ping"
              and p["conn_id"] == conn_id, "ws public: pong as the docs' spot example", p)
        waiter = await ws.ping()
        try:
            await asyncio.wait_for(waiter, 2)
            check(True, "ws: protocol-level ping frames are answered")
        except asyncio.TimeoutError:
            check(False, "ws: protocol-level ping frames are answered")

        await send(ws, {"op": "subscribe", "args": ["kline.2.BTCUSDT"], "req_id": "bad"})
        r = await expect(ws, is_op("subscribe"))
        check(r and keys(r) == keys(fixture("ws_subscribe_response_public_spot.json")) and r["success"] is False
              and "kline.2.BTCUSDT" in r["ret_msg"] and r["req_id"] == "bad",
              "ws public: unknown topic -> success false with the topic in ret_msg", r)
        await send(ws, {"op": "subscribe", "args": ["orderbook.1.BTCUSDT"]})
        r = await expect(ws, is_op("subscribe"))
        check(r and r["success"] is False and r["req_id"] == "", "ws public: unsupported topic refused, req_id \"\"", r)
        await send(ws, {"op": "subscribe", "args": ["tickers.BTCUSDT"]})
        r = await expect(ws, is_op("subscribe"))
        check(r and r["success"] is False, "ws public: a topic already subscribed is refused", r)
        eleven = ["kline.%s.ETHUSDT" % i for i in ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D")]
        await send(ws, {"op": "subscribe", "args": eleven, "req_id": "eleven"})
        r = await expect(ws, is_op("subscribe"))
        check(r and r["success"] is False and "10" in r["ret_msg"], "ws public: 11 args in one request refused", r)
        async with websockets.connect(base + PUBLIC) as ws10:
            await send(ws10, {"op": "subscribe", "args": eleven[:10], "req_id": "ten"})
            r = await expect(ws10, is_op("subscribe"))
            check(r and r["success"] is True, "ws public: 10 args in one request accepted", r)
        await send(ws, "nonsense")
        r = await expect(ws, lambda m: m.get("success") is False)
        check(r is not None, "ws public: a request that is not a JSON object -> success false", r)
        await send(ws, {"op": "unsubscribe", "args": ["tickers.BTCUSDT"], "req_id": "u"})
        r = await expect(ws, is_op("unsubscribe"))
        seen = []
        await expect(ws, lambda m: False, 1.5, seen)
        check(r and r["success"] is True and not any(m and m.get("topic") == "tickers.BTCUSDT" for m, _ in seen)
              and any(m and m.get("topic") == "kline.1.BTCUSDT" for m, _ in seen),
              "ws public: unsubscribe stops the ticker pushes, klines go on", r)

        # a candle closes by the stand-in's clock: confirm:true with REST's values
        b = before_boundary(srv)
        fin = await expect(ws, is_kline("kline.1.BTCUSDT", True, b - 60000), 4)
        s, h, bb, rest = c.get("/v5/market/kline", "category=spot&symbol=BTCUSDT&interval=1&start=%d&end=%d"
                               % (b - 60000, b - 60000), signed=False)
        rows = rest["result"]["list"]
        d = fin["data"][0] if fin else {}
        check(fin is not None, "ws kline: confirm:true push when the candle closes by the stand-in's clock")
        check(fin and len(rows) == 1 and [str(d["start"]), d["open"], d["high"], d["low"], d["close"], d["volume"],
                                          d["turnover"]] == rows[0] and d["end"] == b - 1 and fin["ts"] >= b,
              "ws kline: the closed candle's values equal REST kline's for that start", (d, rows))
        nxt = await expect(ws, is_kline("kline.1.BTCUSDT"), 2)
        check(nxt and nxt["data"][0]["confirm"] is False and nxt["data"][0]["start"] == b,
              "ws kline: then the next candle, open (confirm false)", nxt)

        # repeat_kline
        r = srv.control({"ws_fault": "repeat_kline"})
        check(r["ws_faults"] and r["ws_faults"][0]["ws_fault"] == "repeat_kline", "control: ws_fault queued", r)
        b = before_boundary(srv)
        seen = []
        await expect(ws, is_kline("kline.1.BTCUSDT", False, b), 4, seen)
        finals = [raw_ for m, raw_ in seen if m and is_kline("kline.1.BTCUSDT", True, b - 60000)(m)]
        check(len(finals) == 2 and finals[0] == finals[1], "ws fault repeat_kline: the confirm:true push comes twice",
              len(finals))
        b = before_boundary(srv)
        seen = []
        await expect(ws, is_kline("kline.1.BTCUSDT", False, b), 4, seen)
        finals = [m for m, raw_ in seen if m and is_kline("kline.1.BTCUSDT", True)(m)]
        check(len(finals) == 1, "ws fault repeat_kline: once only", len(finals))

        # reorder_kline
        srv.control({"ws_fault": "reorder_kline"})
        b1 = before_boundary(srv)
        seen = []
        await expect(ws, is_kline("kline.1.BTCUSDT", False, b1), 4, seen)
        held = not any(m and is_kline("kline.1.BTCUSDT", True)(m) for m, _ in seen)
        b2 = before_boundary(srv)
        seen = []
        await expect(ws, is_kline("kline.1.BTCUSDT", False, b2), 4, seen)
        await expect(ws, lambda m: False, 0.2, seen)
        starts = [m["data"][0]["start"] for m, _ in seen if m and is_kline("kline.1.BTCUSDT", True)(m)]
        check(held and starts == [b2 - 60000, b1 - 60000],
              "ws fault reorder_kline: a confirm:true push held and sent after the next one", (held, starts, b1, b2))


async def ws_private(srv, c, websockets):
    base = "ws://127.0.0.1:%d" % srv.ws_port
    srv.control({"reset": True})
    async with websockets.connect(base + PRIVATE) as pv:
        await send(pv, {"op": "subscribe", "args": ["order"]})
        r = await expect(pv, is_op("subscribe"))
        check(r and r["success"] is False and r["op"] == "subscribe",
              "ws private: subscribing before auth fails", r)
        now = server_now(srv)
        fx_fail = fixture("ws_auth_response_failure.json")

        async def auth(args, desc, want_ok):
            await send(pv, {"op": "auth", "args": args})
            r = await expect(pv, is_op("auth"))
            if want_ok:
                fx = fixture("ws_auth_response_success.json")
                check(r and keys(r) == keys(fx) and r["success"] is True and r["ret_msg"] == "", desc, r)
            else:
                check(r and keys(r) == keys(fx_fail) and r["success"] is False and r["ret_msg"] == "Params Error",
                      desc, r)
            return r
        await auth([KEY, now + 5000, "0" * 64], "ws auth: bad signature -> Params Error (the observed shape)", False)
        await auth([KEY, now - 1000, ws_sign(SECRET, now - 1000)], "ws auth: expires in the past -> Params Error",
                   False)
        await auth(["other-key", now + 5000, ws_sign(SECRET, now + 5000)], "ws auth: unknown key -> Params Error",
                   False)
        await auth([KEY, "soon", ws_sign(SECRET, "soon")], "ws auth: expires not a number -> Params Error", False)
        srv.control({"ws_fault": "reject_auth"})
        await auth([KEY, now + 5000, ws_sign(SECRET, now + 5000)], "ws fault reject_auth: the next auth fails", False)
        r = await auth([KEY, now + 5000, ws_sign(SECRET, now + 5000)], "ws auth: success as the docs' example", True)
        await send(pv, {"op": "ping", "req_id": "test"})
        p = await expect(pv, is_op("pong"))
        fx = fixture("ws_pong_private.json")
        check(p and keys(p) == keys(fx) and p["req_id"] == "test" and p["args"][0].isdigit()
              and abs(int(p["args"][0]) - server_now(srv)) < 3000 and p["conn_id"] == (r or {}).get("conn_id"),
              "ws private: pong as the docs' private example (args = [server ms])", p)
        await send(pv, {"op": "subscribe", "args": ["order", "order.spot"]})
        r = await expect(pv, is_op("subscribe"))
        check(r and r["success"] is False, "ws private: order and order.spot in one request refused", r)
        await send(pv, {"op": "subscribe", "args": ["kline.1.BTCUSDT"]})
        r = await expect(pv, is_op("subscribe"))
        check(r and r["success"] is False, "ws private: a public topic refused", r)
        await send(pv, fixture("ws_subscribe_order_request.json"))  # the docs' request, as it is
        r = await expect(pv, is_op("subscribe"))
        fx = fixture("ws_subscribe_response_private.json")
        check(r and keys(r) == keys(fx) and r["success"] is True and r["ret_msg"] == "",
              "ws private: subscribe answer as the docs' private example", r)
        await send(pv, {"op": "subscribe", "args": ["execution", "wallet"], "req_id": "sub-2"})
        r = await expect(pv, is_op("subscribe"))
        check(r and keys(r) == ["req_id"] + keys(fx) and r["req_id"] == "sub-2" and r["success"] is True,
              "ws private: a req_id is echoed in the answer", r)

        async def pushes(n=3, timeout=3):
            got = {}
            end = time.monotonic() + timeout
            while len(got) < n and time.monotonic() < end:
                m = await expect(pv, lambda m: m.get("topic") in ("order", "execution", "wallet"),
                                 end - time.monotonic())
                if m:
                    got.setdefault(m["topic"], m)
            return got

        s, h, b, d = c.post("/v5/order/create", {"category": "spot", "symbol": "BTCUSDT", "side": "Buy",
                                                 "orderType": "Market", "qty": "100", "orderLinkId": "ws-mkt-1"})
        got = await pushes()
        check(set(got) == {"order", "execution", "wallet"}, "ws private: a REST market order pushes order, execution "
              "and wallet", list(got))
        s, h, b, ro = c.get("/v5/order/realtime", "category=spot&orderLinkId=ws-mkt-1")
        s, h, b, rx = c.get("/v5/execution/list", "category=spot&orderLinkId=ws-mkt-1")
        s, h, b, rw = c.get("/v5/account/wallet-balance", "accountType=UNIFIED&coin=BTC,USDT")
        ro, rx, rw = ro["result"]["list"][0], rx["result"]["list"][0], rw["result"]["list"][0]
        o = got.get("order")
        fx = fixture("ws_order_push.json")
        need = ("category symbol orderId orderLinkId side orderType price qty timeInForce orderStatus cancelType "
                "rejectReason avgPrice leavesQty leavesValue cumExecQty cumExecValue cumExecFee cumFeeDetail "
                "feeCurrency isLeverage marketUnit createdTime updatedTime").split()
        od = o["data"][0] if o else {}
        check(o and keys(o) == keys(fx) and isinstance(o["creationTime"], int) and o["id"].startswith("592324")
              and len(o["data"]) == 1 and all(k in od for k in need) and "createType" not in od,
              "ws order push: envelope as the docs' example, the spot fields of the protocol notes", o)
        check(od.get("category") == "spot" and od.get("orderLinkId") == "ws-mkt-1" and od.get("orderStatus") == "Filled"
              and all(od[k] == ro[k] for k in ro if k in od) and same_types(od, fx["data"][0]),
              "ws order push: values as REST order/realtime gives them", (od, ro))
        x = got.get("execution")
        fx = fixture("ws_execution_push.json")
        xd = x["data"][0] if x else {}
        need = ("category symbol orderId orderLinkId side orderPrice orderQty leavesQty orderType execId execPrice "
                "execQty execValue execType execTime execFee feeCurrency feeRate isMaker execPnl seq isLeverage "
                "marketUnit extraFees").split()
        check(x and keys(x) == keys(fx) and x["id"] == "592324_BTCUSDT_%s" % rx["seq"] and all(k in xd for k in need)
              and all(xd[k] == rx[k] for k in rx if k in xd) and xd["isMaker"] is False and isinstance(xd["seq"], int),
              "ws execution push: envelope as the docs' example, values as REST execution/list", (x, rx))
        w = got.get("wallet")
        fx = fixture("ws_wallet_push.json")
        wd = w["data"][0] if w else {}
        rcoins = {cc["coin"]: cc for cc in rw["coin"]}
        check(w and keys(w) == keys(fx) and keys(wd) == keys(fx["data"][0])
              and all(keys(cc) == keys(fx["data"][0]["coin"][0]) for cc in wd["coin"])
              and sorted(cc["coin"] for cc in wd["coin"]) == ["BTC", "USDT"]
              and all(cc["walletBalance"] == rcoins[cc["coin"]]["walletBalance"] for cc in wd["coin"]),
              "ws wallet push: keys as the docs' example, the changed coins, balances as REST", w)

        s, h, b, d = c.post("/v5/order/create", {"category": "spot", "symbol": "BTCUSDT", "side": "Buy",
                                                 "orderType": "Limit", "qty": "0.001", "price": "15000",
                                                 "orderLinkId": "ws-lim-1"})
        got = await pushes(2)
        check(set(got) == {"order", "wallet"} and got["order"]["data"][0]["orderStatus"] == "New"
              and any(cc["coin"] == "USDT" and cc["locked"] == "15" for cc in got["wallet"]["data"][0]["coin"]),
              "ws private: a resting limit order pushes order New and wallet (locked)", got)
        c.post("/v5/order/cancel", {"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "ws-lim-1"})
        got = await pushes(2)
        check(set(got) == {"order", "wallet"} and got["order"]["data"][0]["orderStatus"] == "Cancelled"
              and got["order"]["data"][0]["cancelType"] == "CancelByUser",
              "ws private: a REST cancel pushes order Cancelled and wallet", got)
        c.post("/v5/order/create", {"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
                                    "qty": "0.001", "price": "15000", "orderLinkId": "ws-lim-2"})
        await pushes(2)
        srv.control({"fill_order": {"orderLinkId": "ws-lim-2"}})
        got = await pushes(3)
        check(set(got) == {"order", "execution", "wallet"} and got["order"]["data"][0]["orderStatus"] == "Filled"
              and got["execution"]["data"][0]["isMaker"] is True,
              "ws private: a fill (control fill_order) pushes order Filled, a maker execution, wallet", list(got))
        s, h, b, d = c.post("/v5/order/create", {"category": "spot", "symbol": "BTCUSDT", "side": "Buy",
                                                 "orderType": "Limit", "qty": "abc", "price": "15000"})
        got = await pushes(1, 1.0)
        check(d["retCode"] == 170130 and not got, "ws private: a refused REST order pushes nothing", got)

        # lose_order_response: the REST answer is lost, the pushes are not
        srv.control({"ws_fault": "lose_order_response"})
        try:
            s, h, b, d = c.post("/v5/order/create", {"category": "spot", "symbol": "BTCUSDT", "side": "Buy",
                                                     "orderType": "Market", "qty": "50", "orderLinkId": "ws-lost-1"})
            lost = False
        except (http.client.HTTPException, OSError):
            lost = True
        got = await pushes()
        check(lost and set(got) == {"order", "execution", "wallet"}
              and got["order"]["data"][0]["orderLinkId"] == "ws-lost-1",
              "ws fault lose_order_response: no REST answer, the order/execution/wallet pushes still come", (lost, got))

        # drop: every client's TCP connection closed at once
        async with websockets.connect(base + PUBLIC) as pub:
            await send(pub, {"op": "ping"})
            await expect(pub, is_op("ping"))  # the server has it in its list now
            r = srv.control({"ws_fault": "drop"})
            check(r.get("ws_clients") == 2, "control: ws_fault drop reaches the 2 clients", r)
            codes = []
            for w_ in (pv, pub):
                try:
                    while True:
                        await asyncio.wait_for(w_.recv(), 3)
                except websockets.exceptions.ConnectionClosed as e:
                    codes.append(e.code)
                except asyncio.TimeoutError:
                    codes.append("open")
            check(codes == [1006, 1006], "ws fault drop: both connections cut without a close frame (1006)", codes)
    time.sleep(0.2)
    check(srv.state(since=1 << 62)["ws"]["clients"] == [], "control: no ws clients left after the drop")


async def ws_faults(srv, c, websockets):
    base = "ws://127.0.0.1:%d" % srv.ws_port
    srv.control({"reset": True})
    async with websockets.connect(base + PUBLIC) as ws:
        await send(ws, {"op": "subscribe", "args": ["tickers.BTCUSDT"]})
        await expect(ws, is_op("subscribe"))
        # delay_pong
        srv.control({"ws_fault": "delay_pong", "ms": 800})
        t0 = time.monotonic()
        await send(ws, {"op": "ping"})
        p = await expect(ws, is_op("ping"), 3)
        dt = time.monotonic() - t0
        t0 = time.monotonic()
        await send(ws, {"op": "ping"})
        p2 = await expect(ws, is_op("ping"), 3)
        dt2 = time.monotonic() - t0
        check(p and p2 and dt >= 0.75 and fast(dt2 < 0.5), "ws fault delay_pong: the next pong 800 ms late, then on time "
              "(%.2f/%.2f s)" % (dt, dt2))
        # malformed
        r = srv.control({"ws_fault": "malformed"})
        seen = []
        await expect(ws, lambda m: False, 1.2, seen)
        texts = [raw_ for m, raw_ in seen if m is None and isinstance(raw_, str)]
        bins = [raw_ for m, raw_ in seen if isinstance(raw_, bytes)]
        check(r.get("ws_clients") == 1 and len(texts) == 1 and len(bins) == 1,
              "ws fault malformed: one text frame that is not JSON and one binary frame", seen)
        # silent: nothing at all, pongs included, TCP open
        r = srv.control({"ws_fault": "silent", "ms": 1500})
        t0 = time.monotonic()
        await asyncio.sleep(0.1)
        while True:  # frames already on the way
            m, raw_ = await recv(ws, 0.05)
            if raw_ is None:
                break
        await send(ws, {"op": "ping"})
        waiter = await ws.ping()
        m, raw_ = await recv(ws, 1.0)
        quiet = raw_ is None and not waiter.done() and ws.open
        p = await expect(ws, is_op("ping"), 2.5)
        dt = time.monotonic() - t0
        check(quiet and p is not None and dt >= 1.4,
              "ws fault silent: no pushes, no pongs (protocol ones too) for 1.5 s, TCP open; then the pong (%.2f s)"
              % dt, (quiet, p))
        t = await expect(ws, lambda m: m.get("topic") == "tickers.BTCUSDT", 2)
        check(t is not None and waiter.done(), "ws fault silent: pushes and protocol pongs resume after it", t)
    # the log
    st = srv.state()
    wl = [e for e in st["log"] if e.get("ws")]
    ev = set(e["event"] for e in wl)
    check({"connect", "subscribe", "sent", "received", "fault", "disconnect"} <= ev
          and any(e["event"] == "sent" and e.get("topic") == "tickers.BTCUSDT" for e in wl)
          and any(e["event"] == "fault" and e.get("fault") == "silent" for e in wl)
          and any(e["event"] == "discarded" for e in wl)
          and all(e["method"] == "WS" for e in wl),
          "control log: ws events (connect, subscribe, pushes sent, faults) with ws: true", sorted(ev))
    s, h, b = raw(srv.port, "POST", "/__control", b'{"ws_fault": "nonsense"}')
    check(s == 400, "control: an unknown ws_fault is refused")
    srv.control({"ws_faults": [{"ws_fault": "reject_auth"}, {"ws_fault": "repeat_kline", "count": 2}]})
    pending = [(f["ws_fault"], f["count"]) for f in srv.state(since=1 << 62)["ws"]["faults"] if f["count"]]
    srv.control({"reset": True})
    check(pending == [("reject_auth", 1), ("repeat_kline", 2)] and srv.state(since=1 << 62)["ws"]["faults"] == [],
          "control: ws_faults queues several; reset clears them", pending)


def test_ws():
    try:
        import websockets
        import websockets.exceptions
    except ImportError as e:
        check(False, "the websockets module (Debian's python3-websockets) is importable", e)
        return
    srv = Srv()
    c = Client(srv.port)
    try:
        for section in (ws_public, ws_private, ws_faults):
            try:
                asyncio.run(section(srv, c, websockets))
            except Exception as e:
                import traceback
                check(False, "%s crashed: %r" % (section.__name__, e), traceback.format_exc())
        srv.control({"reset": True})
        s, h, b, d = c.get("/v5/market/time", signed=False)
        check(d and d["retCode"] == 0, "REST still answers after the ws tests")
        extra = srv.stop()
        check(extra == "", "nothing else on stdout (ws side)", extra)
    finally:
        if srv.proc.poll() is None:
            srv.stop()


def test_ws_vectors():
    """The ws_auth vectors of sign_vectors.json: the server's rule reproduces them, and each
    vector's exact auth message is accepted while its expires is ahead of the stand-in's clock."""
    import websockets
    spec = importlib.util.spec_from_file_location("bybit_stand_in_ws", os.path.join(HERE, "ws.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with open(os.path.join(FIXDIR, "sign_vectors.json")) as f:
        vectors = [v for v in json.load(f)["vectors"] if v["kind"] == "ws_auth"]
    check(len(vectors) >= 2, "sign_vectors.json has the ws_auth vectors (%d)" % len(vectors))
    for v in vectors:
        check(mod.ws_sign(v["secret"], v["expires"]) == v["expectedSign"] == ws_sign(v["secret"], v["expires"])
              and "GET/realtime" + str(v["expires"]) == v["stringToSign"],
              "ws.py's auth check reproduces vector %s" % v["name"])
    s0 = socket.socket()
    s0.bind(("127.0.0.1", 0))
    want_port = s0.getsockname()[1]
    s0.close()
    srv = Srv("--key", vectors[0]["apiKey"], "--secret", vectors[0]["secret"], "--ws-port", str(want_port))
    check(srv.ws_port == want_port, "--ws-port N listens on N")

    async def run():
        async with websockets.connect("ws://127.0.0.1:%d%s" % (srv.ws_port, PRIVATE)) as pv:
            for v in vectors:
                srv.control({"clock_offset_ms": v["expires"] - 2000 - now_ms()})
                await pv.send(json.dumps(v["authMessage"]))
                r = await expect(pv, is_op("auth"))
                check(r and r["success"] is True, "vector %s: its auth message accepted before expires" % v["name"], r)
                srv.control({"clock_offset_ms": v["expires"] + 1000 - now_ms()})
                await pv.send(json.dumps(v["authMessage"]))
                r = await expect(pv, is_op("auth"))
                check(r and r["success"] is False and r["ret_msg"] == "Params Error",
                      "vector %s: refused once expires has passed" % v["name"], r)
    try:
        asyncio.run(run())
    finally:
        srv.stop()


def main():
    vectors = test_sign_vectors()
    test_vectors_end_to_end(vectors)
    srv = Srv()
    check(srv.first_line == "LISTENING %d %d\n" % (srv.port, srv.ws_port) and srv.port != srv.ws_port,
          "prints exactly 'LISTENING <port> <ws_port>'", srv.first_line)
    m = re.search(r"LISTENING (\d+)", srv.first_line)  # what tests matching "LISTENING (%d+)" get
    check(m and int(m.group(1)) == srv.port, "the first number is still the REST port")
    c = Client(srv.port)
    try:
        for section in (test_public, test_http_edges, test_auth, test_orders, test_faults, test_curl):
            try:
                section(srv, c)
            except Exception as e:  # a crash in one section is one failure, the rest still run
                import traceback
                check(False, "%s crashed: %r" % (section.__name__, e), traceback.format_exc())
        extra = srv.stop()
        check(extra == "", "nothing else on stdout", extra)
    finally:
        if srv.proc.poll() is None:
            srv.stop()
    try:
        test_state_file()
    except Exception as e:
        check(False, "test_state_file crashed: %r" % e)
    for section in (test_ws, test_ws_vectors):
        try:
            section()
        except Exception as e:
            import traceback
            check(False, "%s crashed: %r" % (section.__name__, e), traceback.format_exc())
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
