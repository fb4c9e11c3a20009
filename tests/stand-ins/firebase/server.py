#!/usr/bin/python3
# server.py: a local stand-in for the Firebase Realtime Database REST API and its streaming
# (Server-Sent Events), for nomade's tests. Python 3 standard library only; binds 127.0.0.1 only.
#
#   server.py --port 0 [--secret S] [--state-file F] [--ns NAME] [--fixtures DIR] [--verbose]
#
# Prints exactly one line "LISTENING <port>" on stdout once ready, then serves until killed.
# Methods, query parameters, ETags, errors and the event stream follow the project's protocol
# notes (section 4) and the fixtures in tests/fixtures/firebase/ (from Firebase's docs and
# firebase-admin-python's tests). The data model (tree, keys, push ids, rules, queries) is in
# rtdb.py. A control endpoint that is not part of Firebase's API, /__control, sets the tree, the
# rules and the tokens, injects faults into requests and streams, and exposes the request log.
# See README.md next to this file.
import argparse
import collections
import copy
import json
import os
import queue
import re
import select
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
import rtdb  # noqa: E402  (next to this file: sys.path[0] is this script's folder)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES = os.path.normpath(os.path.join(HERE, "..", "..", "fixtures", "firebase"))
DEFAULT_SECRET = "test-db-secret"
DEFAULT_NS = "stand-in-default-rtdb"
JSON_CT = "application/json; charset=utf-8"
SSE_CT = "text/event-stream"
METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")
LOG_CAP = 20000

# every query parameter the REST reference lists (others -> 400, as protocols.md 4.7 says)
KNOWN_PARAMS = {"auth", "access_token", "print", "shallow", "format", "download", "timeout",
                "writeSizeLimit", "x-http-method-override", "ns", "auth_variable_override",
                "callback"} | set(rtdb.QUERY_PARAMS)
WRITE_SIZE_LIMITS = ("tiny", "small", "medium", "large", "unlimited")
TIMEOUT_RE = re.compile(r"^([0-9]+)(ms|s|min)$")
TIMEOUT_UNIT_MS = {"ms": 1, "s": 1000, "min": 60000}

HTTP_FAULTS = ("500", "503", "401", "latency", "reset", "redirect")
FAULT_ERRORS = {"500": "Internal server error.", "503": "Service Unavailable",
                "401": "Permission denied"}
STREAM_FAULTS = ("auth_revoked", "cancel", "drop")

REASONS = {200: "OK", 204: "No Content", 307: "Temporary Redirect", 400: "Bad Request",
           401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           412: "Precondition Failed", 500: "Internal Server Error", 503: "Service Unavailable"}

# switches a test may flip through /__control; values are checked by SETTING_CHECKS
DEFAULT_SETTINGS = {
    "keepalive_s": 30.0,            # idle time before a stream gets "event: keep-alive"
    "sse_json": "spaced",           # "spaced" as the docs' example, or "compact" as observed
    "sse_newline": "\n",            # "\n", "\r" or "\r\n": the line ends of events
    "stream_framing": "chunked",    # "chunked", or "close" (no length: the body ends at close)
    "cancel_data": '"Permission denied."',             # text after "data: " of a cancel
    "auth_revoked_data": '"credential is no longer valid"',
    "error_format": "pretty",       # "pretty" as observed, or "plain" ({"error": "..."})
    "write_echo": "resolved",       # PUT/PATCH answers with server values "resolved" or "sent"
    "clock_offset_ms": 0,           # server time = real time + this (timestamps, push ids)
}


def _positive(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


SETTING_CHECKS = {
    "keepalive_s": (_positive, "a number > 0"),
    "sse_json": (lambda v: v in ("spaced", "compact"), "\"spaced\" or \"compact\""),
    "sse_newline": (lambda v: v in ("\n", "\r", "\r\n"), "\"\\n\", \"\\r\" or \"\\r\\n\""),
    "stream_framing": (lambda v: v in ("chunked", "close"), "\"chunked\" or \"close\""),
    "cancel_data": (lambda v: isinstance(v, str), "a string (sent raw after 'data: ')"),
    "auth_revoked_data": (lambda v: isinstance(v, str), "a string (sent raw after 'data: ')"),
    "error_format": (lambda v: v in ("pretty", "plain"), "\"pretty\" or \"plain\""),
    "write_echo": (lambda v: v in ("resolved", "sent"), "\"resolved\" or \"sent\""),
    "clock_offset_ms": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
}

CONTROL_KEYS = {"reset", "set", "rules", "tokens", "expire_token", "indexes", "clear_log",
                "clear_faults", "fault", "faults", "stream_fault", "stream_faults",
                "stream_send"} | set(DEFAULT_SETTINGS)
FAULT_OPTIONS = {"fault", "count", "path", "method", "stream", "ms", "error", "apply", "host"}
STREAM_FAULT_OPTIONS = {"stream_fault", "path", "id", "next", "data", "rst", "half_event"}


class HttpError(Exception):
    """An error answer: HTTP status and the text of {"error": ...}."""

    def __init__(self, status, message, headers=()):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, list(headers)


def location_of(url_path):
    """'/a/b.json' -> '/a/b', leniently (for the log and fault matching, even when invalid)."""
    p = url_path[:-len(".json")] if url_path.endswith(".json") else url_path
    return rtdb.path_str(rtdb.split_path(urllib.parse.unquote(p)))


# --------------------------------------------------------------------------- streams

class Stream:
    """One open event stream. Writers queue items under the state lock, so every stream sees
    the writes in the order they were made; the stream's own thread writes them to its socket."""

    def __init__(self, sid, segs, cred, entry, framing):
        self.id, self.segs, self.cred, self.entry, self.framing = sid, segs, cred, entry, framing
        self.q = queue.Queue()
        self.opened_ms = int(time.time() * 1000)
        self.events = 0
        self.ending = False  # a cancel/auth_revoked/drop is queued: nothing more is queued after it

    def push(self, *item):
        if not self.ending:
            self.ending = item[0] in ("end", "drop")
            self.q.put(item)
            return True
        return False

    def describe(self):
        return {"id": self.id, "path": rtdb.path_str(self.segs), "auth": self.cred.describe(),
                "query": self.entry["query"], "opened": self.opened_ms, "events": self.events,
                "framing": self.framing, "log_seq": self.entry["seq"]}


def stream_event(L, change, old, new):
    """The event a stream at location L gets for one write, as (name, {"path", "data"}), or None.
    A write at or below L is forwarded as written, its path made relative to L; a write above L
    becomes a put of L's new value at "/" when that value changed."""
    kind, W, data = change
    if rtdb.is_prefix(L, W):
        return kind, {"path": rtdb.path_str(W[len(L):]), "data": data}
    if not rtdb.is_prefix(W, L):
        return None
    whole = kind == "put"
    below = {}
    if kind == "patch":
        for key, value in data.items():
            P = W + rtdb.split_path(key)
            if rtdb.is_prefix(P, L):
                whole = True
            elif rtdb.is_prefix(L, P):
                below["/".join(P[len(L):])] = value
    if whole:
        before, after = rtdb.get(old, L), rtdb.get(new, L)
        return ("put", {"path": "/", "data": rtdb.render(after)}) if before != after else None
    return ("patch", {"path": "/", "data": below}) if below else None


# --------------------------------------------------------------------------- state

class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.push_ids = rtdb.PushIds()
        self.streams = collections.OrderedDict()
        self.stream_seq = 0
        self.root = None
        self.reset_all()
        if args.state_file and os.path.exists(args.state_file):
            self.load(args.state_file)

    def reset_all(self):
        self.settings = dict(DEFAULT_SETTINGS)
        self.rules = rtdb.Rules()
        self.tokens = {}    # token -> {"uid": ..., "expired": bool}
        self.indexes = {}   # "/path" -> [".indexOn" entries]
        self.faults = []
        self.next_stream_faults = []
        self.log = []
        self.log_seq = 0
        self.counts = collections.Counter()

    def now_ms(self):
        return int(time.time() * 1000) + self.settings["clock_offset_ms"]

    # ---- persistence (--state-file): the tree survives a restart
    def save(self):
        path = self.args.state_file
        if not path:
            return
        tmp = "%s.tmp.%d" % (path, os.getpid())
        with open(tmp, "w") as f:
            json.dump({"tree": self.root}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: a reader (or a kill -9) sees the old file or the new one

    def load(self, path):
        with open(path) as f:
            self.root = rtdb.to_node(json.load(f).get("tree"))

    # ---- writes and what streams see of them
    def commit(self, new_root, change):
        """Install a new tree (caller holds the lock), save it, queue the streams' events.
        change = ("put", segs, data) or ("patch", segs, {key: data}), data as written."""
        old, self.root = self.root, new_root
        self.save()
        style = rtdb.spaced if self.settings["sse_json"] == "spaced" else rtdb.compact
        for s in list(self.streams.values()):
            if s.ending:
                continue
            if not self.rules.allows("read", s.segs, s.cred, new_root):
                s.push("end", "cancel", self.settings["cancel_data"])
                continue
            ev = stream_event(s.segs, change, old, new_root)
            if ev:
                s.push("event", ev[0], style(ev[1]))

    def recheck_streams(self):
        """After rules or tokens change: a stream that may no longer read is cancelled, one whose
        token expired or vanished gets auth_revoked."""
        for s in list(self.streams.values()):
            if s.ending:
                continue
            token = s.cred.token if s.cred.kind == "user" else None  # None: auth_variable_override
            info = self.tokens.get(token) if token is not None else None
            if token is not None and (info is None or info["expired"]):
                s.push("end", "auth_revoked", self.settings["auth_revoked_data"])
            elif not self.rules.allows("read", s.segs, s.cred, self.root):
                s.push("end", "cancel", self.settings["cancel_data"])

    def open_stream(self, segs, cred, entry):
        """Register a stream (caller holds the lock) and queue any pending 'next' stream fault."""
        self.stream_seq += 1
        s = Stream(self.stream_seq, segs, cred, entry, self.settings["stream_framing"])
        self.streams[s.id] = s
        for f in self.next_stream_faults:
            if f["count"] != 0 and (f.get("path") is None or f["path"] == rtdb.path_str(segs)):
                if f["count"] > 0:  # -1: every new stream
                    f["count"] -= 1
                f["hits"] += 1
                self.apply_stream_fault(s, f)
                break
        return s

    def apply_stream_fault(self, s, f):
        kind = f["stream_fault"]
        if kind == "drop":
            return s.push("drop", {"rst": bool(f.get("rst")), "half_event": bool(f.get("half_event"))})
        data = f.get("data", self.settings["cancel_data" if kind == "cancel" else "auth_revoked_data"])
        return s.push("end", kind, data)

    def matching_streams(self, spec):
        return [s for s in self.streams.values()
                if (spec.get("path") is None or rtdb.path_str(s.segs) == spec["path"])
                and (spec.get("id") is None or s.id == spec["id"])]

    # ---- faults on requests
    def take_fault(self, method, location, is_stream):
        with self.lock:
            for f in self.faults:
                if f["count"] == 0:
                    continue
                if f.get("path") is not None and f["path"] != location:
                    continue
                if f.get("method") and f["method"] != method:
                    continue
                if f.get("stream") is not None and f["stream"] != is_stream:
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                f["hits"] += 1
                return dict(f)
        return None

    # ---- the log
    def log_request(self, entry):
        with self.lock:
            self.log_seq += 1
            entry["seq"] = self.log_seq
            self.log.append(entry)
            if len(self.log) > LOG_CAP:
                del self.log[:len(self.log) - LOG_CAP]
            key = "%s %s" % ("STREAM" if entry["stream"] else entry["effective_method"], entry["location"])
            self.counts[key] += 1

    def describe(self, since=0):
        with self.lock:
            return collections.OrderedDict([
                ("server_time", self.now_ms()), ("secret", self.args.secret), ("ns", self.args.ns),
                ("tree", rtdb.render(self.root)), ("rules", self.rules.spec),
                ("tokens", copy.deepcopy(self.tokens)), ("indexes", copy.deepcopy(self.indexes)),
                ("settings", dict(self.settings)), ("faults", copy.deepcopy(self.faults)),
                ("stream_faults", copy.deepcopy(self.next_stream_faults)),
                ("streams", [s.describe() for s in self.streams.values()]),
                ("counts", dict(self.counts)),
                ("log", [copy.deepcopy(e) for e in self.log if e["seq"] > since])])


# --------------------------------------------------------------------------- control parsing

def parse_fault(f):
    kind = str(f.get("fault"))
    if kind not in HTTP_FAULTS:
        raise ValueError("unknown fault %r; known: %s" % (f.get("fault"), ", ".join(HTTP_FAULTS)))
    unknown = set(f) - FAULT_OPTIONS
    if unknown:
        raise ValueError("fault: unknown options %s" % sorted(unknown))
    spec = {"fault": kind, "count": int(f.get("count", 1)), "hits": 0,
            "path": location_of(f["path"]) if f.get("path") is not None else None,
            "method": f["method"].upper() if f.get("method") else None,
            # a redirect is for stream requests unless told otherwise
            "stream": f.get("stream", True if kind == "redirect" else None)}
    for k in ("ms", "error", "apply", "host"):
        if k in f:
            spec[k] = f[k]
    if kind == "latency" and not (isinstance(spec.get("ms", 1000), (int, float)) and spec.get("ms", 1000) >= 0):
        raise ValueError("latency: ms must be a number >= 0")
    return spec


def parse_stream_fault(f):
    kind = f.get("stream_fault")
    if kind not in STREAM_FAULTS:
        raise ValueError("unknown stream_fault %r; known: %s" % (kind, ", ".join(STREAM_FAULTS)))
    unknown = set(f) - STREAM_FAULT_OPTIONS
    if unknown:
        raise ValueError("stream_fault: unknown options %s" % sorted(unknown))
    spec = {k: f[k] for k in f if k not in ("path", "next")}
    spec["path"] = location_of(f["path"]) if f.get("path") is not None else None
    if "data" in spec and not isinstance(spec["data"], str):
        raise ValueError("stream_fault: data is the raw text after 'data: ' (a string)")
    if f.get("next"):
        spec.update({"count": int(f["next"]) if f["next"] is not True else 1, "hits": 0})
    return spec


def parse_tokens(tokens):
    if not isinstance(tokens, dict):
        raise ValueError("tokens: {\"<token>\": {\"uid\": \"<uid>\"} or \"<uid>\", ...}")
    out = {}
    for tok, v in tokens.items():
        uid = v.get("uid") if isinstance(v, dict) else v
        if not tok or not isinstance(uid, str):
            raise ValueError("tokens[%r]: needs a uid string" % tok)
        out[tok] = {"uid": uid, "expired": bool(isinstance(v, dict) and v.get("expired"))}
    return out


def parse_indexes(indexes):
    if not isinstance(indexes, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in indexes.values()):
        raise ValueError("indexes: {\"/path\": [\"child\", \".value\"], ...}")
    return {location_of(p): list(v) for p, v in indexes.items()}


def parse_settings(req):
    out = {}
    for k in DEFAULT_SETTINGS:
        if k in req:
            ok, what = SETTING_CHECKS[k]
            if not ok(req[k]):
                raise ValueError("%s must be %s" % (k, what))
            out[k] = float(req[k]) if k == "keepalive_s" else req[k]
    return out


def as_list(req, one, many, options):
    """Faults come as a list under `many`, or one beside the other control keys under `one`
    (its options beside it too: only the keys in `options` are taken from the request)."""
    items = list(req.get(many) or [])
    if one in req:
        items.append({k: v for k, v in req.items() if k in options})
    return items


def send_list(req):
    v = req.get("stream_send", [])
    return list(v) if isinstance(v, list) else [v]


# --------------------------------------------------------------------------- HTTP

class Response:
    def __init__(self, status, body=b"", ctype=JSON_CT, headers=()):
        self.status, self.ctype, self.headers = status, ctype, list(headers)
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300  # idle keep-alive connections are dropped after this many seconds

    def log_message(self, fmt, *args):
        if self.server.args.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    @property
    def st(self):
        return self.server.state

    # one request per call; responses are written by hand so faults can bend the wire format
    def handle_one_request(self):
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline or len(self.raw_requestline) > 65536:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self.dispatch()
        except (TimeoutError, socket.timeout, ConnectionError, OSError):
            self.close_connection = True

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                n = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(n))
                self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def write_response(self, resp, close=False):
        """Headers in the order of the docs' transcripts (rest_get_with_etag_200.http):
        Content-Length, Content-Type, Access-Control-Allow-Origin, ETag, Cache-Control."""
        lines = ["HTTP/1.1 %d %s" % (resp.status, REASONS.get(resp.status, "Status"))]
        if resp.status != 204:  # a 204 has neither a body nor a length
            lines.append("Content-Length: %d" % len(resp.body))
            if resp.ctype:
                lines.append("Content-Type: " + resp.ctype)
        lines.append("Access-Control-Allow-Origin: *")
        lines += ["%s: %s" % h for h in resp.headers]
        lines.append("Cache-Control: no-cache")
        if close or self.close_connection:
            lines.append("Connection: close")
            self.close_connection = True
        body = resp.body if resp.status != 204 else b""
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self.wfile.flush()

    def error_response(self, status, message, headers=()):
        doc = {"error": message}
        if self.st.settings["error_format"] == "pretty":
            text = rtdb.pretty(doc)
        else:
            text = json.dumps(doc, ensure_ascii=False)  # the fixture's form
        return Response(status, text, headers=headers)

    def rst(self):
        """Close the connection with a TCP RST (SO_LINGER 0), no answer."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    # ------------------------------------------------------------------ dispatch
    def dispatch(self):
        st = self.st
        url_path, _, query = self.path.partition("?")
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        if url_path == "/__control":
            return self.control(self.command, query, body)
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        method = self.command
        override = self.headers.get("X-HTTP-Method-Override") or params.get("x-http-method-override")
        effective = override.upper() if (method == "POST" and override) else method
        is_stream = effective == "GET" and SSE_CT in (self.headers.get("Accept") or "").lower()
        entry = collections.OrderedDict([
            ("seq", 0), ("time", st.now_ms()), ("method", method), ("effective_method", effective),
            ("target", self.path), ("path", url_path), ("location", location_of(url_path)),
            ("query", query), ("params", params), ("headers", dict(self.headers.items())),
            ("body", body.decode("utf-8", "replace")), ("auth", None), ("stream", is_stream),
            ("fault", None), ("status", None)])
        st.log_request(entry)
        fault = st.take_fault(effective, entry["location"], is_stream)
        if fault:
            entry["fault"] = fault["fault"]
            if self.apply_fault(fault, entry, effective, url_path, params, body, is_stream):
                return
        resp = self.process(entry, effective, url_path, params, body, is_stream)
        if resp is not None:
            entry["status"] = resp.status
            self.write_response(resp)

    def apply_fault(self, fault, entry, effective, url_path, params, body, is_stream):
        """Carry out a request fault; True when it answered (or cut) the request itself."""
        kind = fault["fault"]
        if kind == "latency":  # the normal answer, later
            time.sleep(fault.get("ms", 1000) / 1000.0)
            return False
        if fault.get("apply") and not is_stream:  # carried out, then the client sees the fault
            self.process(entry, effective, url_path, params, body, False)
        if kind == "reset":
            self.rst()
            return True
        if kind == "redirect":
            resp = Response(307, b"", None, [("Location", self.redirect_target(fault))])
        else:
            resp = self.error_response(int(kind), fault.get("error", FAULT_ERRORS[kind]))
        entry["status"] = resp.status
        self.write_response(resp)
        return True

    def redirect_target(self, fault):
        """The same server (host 127.0.0.1 or the fault's "host"), the same path and query, plus
        ns=<name> as Firebase's Location headers carry it."""
        query = self.path.partition("?")[2]
        if not re.search(r"(^|&)ns=", query):
            query = (query + "&" if query else "") + "ns=" + urllib.parse.quote(self.server.args.ns)
        host = fault.get("host", "127.0.0.1")
        return "http://%s:%d%s?%s" % (host, self.server.server_address[1], self.path.partition("?")[0], query)

    def process(self, entry, method, url_path, params, body, is_stream):
        """One Firebase request -> a Response (None when a stream answered it). Checks run in
        this order: path, parameters, method, credential, body, rules, ETag."""
        try:
            segs = rtdb.parse_location(url_path)
            if segs is None:
                raise HttpError(404, "Not Found: REST paths end in .json (stand-in message)")
            self.check_params(params, method)
            if method not in METHODS:
                raise HttpError(405, "Method %s not allowed (stand-in message)" % method)
            cred = self.credential(params, entry)
            if is_stream:
                return self.stream(segs, params, cred, entry)
            handler = getattr(self, "do_" + method.lower() + "_request")
            return handler(segs, params, body, cred)
        except HttpError as e:
            return self.error_response(e.status, e.message, e.headers)
        except rtdb.BadRequest as e:
            return self.error_response(400, str(e))
        except Exception:
            import traceback
            traceback.print_exc()
            return Response(500, "stand-in internal error (see its stderr)", "text/plain")

    def check_params(self, params, method):
        unknown = sorted(set(params) - KNOWN_PARAMS)
        if unknown:
            raise HttpError(400, "Unsupported query parameter: %s (stand-in message)" % unknown[0])
        if params.get("ns", self.server.args.ns) != self.server.args.ns:
            raise HttpError(404, "Firebase error. Please ensure that you spelled the name of your "
                                 "Firebase correctly")
        if params.get("print", "pretty") not in ("pretty", "silent"):
            raise HttpError(400, "print must be 'pretty' or 'silent' (stand-in message)")
        if "callback" in params:
            raise HttpError(400, "callback (JSONP) is not implemented by this stand-in")
        if params.get("format", "export") != "export":
            raise HttpError(400, "format must be 'export' (stand-in message)")
        if params.get("writeSizeLimit", "unlimited") not in WRITE_SIZE_LIMITS:
            raise HttpError(400, "writeSizeLimit must be one of %s (stand-in message)" % ", ".join(WRITE_SIZE_LIMITS))
        if "timeout" in params:
            m = TIMEOUT_RE.match(params["timeout"])
            if not m or int(m.group(1)) * TIMEOUT_UNIT_MS[m.group(2)] > 15 * 60000:
                raise HttpError(400, "timeout must be like 3ms, 3s or 3min, at most 15min (stand-in message)")
        if params.get("shallow", "false") not in ("true", "false"):
            raise HttpError(400, "shallow must be true or false (stand-in message)")
        if params.get("shallow") == "true":
            if method != "GET":
                raise HttpError(400, "shallow is only for GET (stand-in message)")
            if any(p in params for p in rtdb.QUERY_PARAMS):
                raise HttpError(400, "Mixing shallow and query parameters is not supported (stand-in message)")

    def credential(self, params, entry):
        """?auth=, ?access_token= or Authorization: Bearer. The database secret is the admin;
        tokens set through /__control are users; anything else is refused (401)."""
        st = self.st
        token = params.get("auth", params.get("access_token"))
        if token is None:
            h = self.headers.get("Authorization") or ""
            token = h[7:].strip() if h[:7].lower() == "bearer " else None
        if token is None:
            cred = rtdb.Credential("anonymous")
        elif token == self.server.args.secret:
            cred = self.override_auth(params)
        elif token in st.tokens:
            if st.tokens[token]["expired"]:
                entry["auth"] = "expired"
                raise HttpError(401, "Auth token is expired.")
            cred = rtdb.Credential("user", token, st.tokens[token]["uid"])
        else:
            entry["auth"] = "invalid"
            raise HttpError(401, "Could not parse auth token.")
        entry["auth"] = cred.describe()
        return cred

    def override_auth(self, params):
        """auth_variable_override (used with admin credentials): run as that auth instead."""
        if "auth_variable_override" not in params:
            return rtdb.Credential("admin", self.server.args.secret)
        try:
            v = json.loads(params["auth_variable_override"])
        except ValueError:
            raise HttpError(400, "auth_variable_override must be JSON (stand-in message)")
        if v is None:
            return rtdb.Credential("anonymous")
        return rtdb.Credential("user", None, str(v.get("uid")) if isinstance(v, dict) else str(v))

    # ------------------------------------------------------------------ REST methods
    def body_text(self, value, params):
        if params.get("print") == "pretty":
            return rtdb.pretty(value)
        return rtdb.compact(value)

    def answer(self, value, params, etag=None):
        headers = [("ETag", etag)] if etag is not None else []
        if params.get("print") == "silent":
            return Response(204, headers=headers)
        return Response(200, self.body_text(value, params), headers=headers)

    def wants_etag(self):
        return (self.headers.get("X-Firebase-ETag") or "").strip().lower() == "true"

    def if_match(self, method):
        value = self.headers.get("if-match")
        if value is None:
            return None
        if method not in ("PUT", "DELETE"):
            raise HttpError(400, "if-match is not supported for %s requests (stand-in message)" % method)
        if "," in value:
            raise HttpError(400, "Only one ETag is supported in if-match (stand-in message)")
        return value.strip()

    def check_etag(self, expected, current, params):
        """412 with the current value and its ETag when if-match does not match; the server
        never retries."""
        now = rtdb.etag(current)
        if expected is not None and expected != now:
            raise_body = self.body_text(rtdb.render(current), params)
            raise PreconditionFailed(Response(412, raise_body, headers=[("ETag", now)]))

    def need(self, op, segs, cred):
        if not self.st.rules.allows(op, segs, cred, self.st.root):
            raise HttpError(401, "Permission denied")

    def do_get_request(self, segs, params, body, cred):
        st = self.st
        if self.headers.get("if-match") is not None:
            raise HttpError(400, "if-match is not supported for GET requests (stand-in message)")
        q = rtdb.parse_query(params)
        with st.lock:
            self.need("read", segs, cred)
            node = rtdb.get(st.root, segs)
            if q is not None:
                rtdb.check_index(q, segs, st.indexes)
                value = rtdb.run_query(node, q)
            elif params.get("shallow") == "true":
                value = rtdb.shallow(node)
            else:
                value = rtdb.render(node)
        return self.answer(value, params, rtdb.etag(node) if self.wants_etag() else None)

    def do_put_request(self, segs, params, body, cred):
        return self.write_one(segs, params, body, cred, "PUT")

    def do_delete_request(self, segs, params, body, cred):
        return self.write_one(segs, params, None, cred, "DELETE")

    def write_one(self, segs, params, body, cred, method):
        """PUT (and DELETE, a PUT of null): replace the node at segs."""
        st = self.st
        expected = self.if_match(method)
        sent, text = rtdb.parse_json(body) if method == "PUT" else (None, None)
        try:
            with st.lock:
                resolved = rtdb.resolve(sent, rtdb.get(st.root, segs), st.now_ms(), text, len(segs))
                self.need("write", segs, cred)
                self.check_etag(expected, rtdb.get(st.root, segs), params)
                st.commit(rtdb.put(st.root, segs, rtdb.to_node(resolved)), ("put", segs, resolved))
                tag = rtdb.etag(rtdb.get(st.root, segs)) if self.wants_etag() else None
        except PreconditionFailed as e:
            return e.response
        echo = sent if st.settings["write_echo"] == "sent" else resolved
        return self.answer(echo, params, tag)

    def do_post_request(self, segs, params, body, cred):
        """A child under a new push id; answers {"name": id}."""
        st = self.st
        self.if_match("POST")
        sent, text = rtdb.parse_json(body)
        with st.lock:
            now = st.now_ms()
            name = st.push_ids.next(now)
            where = segs + [name]
            resolved = rtdb.resolve(sent, None, now, text, len(where))
            self.need("write", where, cred)
            st.commit(rtdb.put(st.root, where, rtdb.to_node(resolved)), ("put", where, resolved))
            tag = rtdb.etag(rtdb.get(st.root, where)) if self.wants_etag() else None
        return self.answer({"name": name}, params, tag)

    def do_patch_request(self, segs, params, body, cred):
        """Multi-location update: each key (a child or a path like "a/b") is replaced."""
        st = self.st
        self.if_match("PATCH")
        sent, text = rtdb.parse_json(body)
        if not isinstance(sent, dict):
            raise rtdb.BadRequest(rtdb.MSG_BAD_JSON)
        entries = self.patch_entries(sent, text)
        with st.lock:
            now, root, resolved = st.now_ms(), st.root, {}
            for key, ksegs in entries:
                where = segs + ksegs
                resolved[key] = rtdb.resolve(sent[key], rtdb.get(st.root, where), now, text, len(where))
                self.need("write", where, cred)
            for key, ksegs in entries:
                root = rtdb.put(root, segs + ksegs, rtdb.to_node(resolved[key]))
            if entries:
                st.commit(root, ("patch", segs, resolved))
        return self.answer(sent if st.settings["write_echo"] == "sent" else resolved, params)

    @staticmethod
    def patch_entries(sent, text):
        entries = []
        for key in sent:
            ksegs = rtdb.split_path(key)
            if not ksegs or not all(rtdb.key_ok(s) for s in ksegs):
                raise rtdb.bad_key(text, key)
            entries.append((key, ksegs))
        for i, (a, sa) in enumerate(entries):
            for b, sb in entries[i + 1:]:
                if rtdb.is_prefix(sa, sb) or rtdb.is_prefix(sb, sa):
                    raise rtdb.BadRequest("Invalid data; path %s is an ancestor of (or the same as) %s "
                                          "(stand-in message)" % (rtdb.path_str(min(sa, sb, key=len)),
                                                                  rtdb.path_str(max(sa, sb, key=len))))
        return entries

    # ------------------------------------------------------------------ streaming
    def stream(self, segs, params, cred, entry):
        st = self.st
        if any(p in params for p in rtdb.QUERY_PARAMS):
            raise HttpError(400, "Streaming a query is not implemented by this stand-in")
        with st.lock:
            self.need("read", segs, cred)
            s = st.open_stream(segs, cred, entry)
            style = rtdb.spaced if st.settings["sse_json"] == "spaced" else rtdb.compact
            first = style({"path": "/", "data": rtdb.render(rtdb.get(st.root, segs))})
        entry["status"] = 200
        try:
            self.stream_head(s)
            self.send_event(s, "put", first)
            reason = self.stream_loop(s)
        except OSError:
            reason = "client gone (write failed)"
        with st.lock:
            st.streams.pop(s.id, None)
            entry["stream_end"] = reason
            entry["events"] = s.events
        self.close_connection = True
        return None

    def stream_head(self, s):
        lines = ["HTTP/1.1 200 OK", "Content-Type: " + SSE_CT, "Access-Control-Allow-Origin: *",
                 "Cache-Control: no-cache"]
        lines.append("Transfer-Encoding: chunked" if s.framing == "chunked" else "Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def stream_write(self, s, payload):
        if s.framing == "chunked":
            payload = b"%x\r\n" % len(payload) + payload + b"\r\n"
        self.wfile.write(payload)
        self.wfile.flush()

    def event_bytes(self, name, data):
        nl = self.st.settings["sse_newline"]
        lines = "".join("data: " + line + nl for line in data.split("\n"))
        return ("event: " + name + nl + lines + nl).encode("utf-8")

    def send_event(self, s, name, data):
        self.stream_write(s, self.event_bytes(name, data))
        s.events += 1

    def stream_loop(self, s):
        """Write what the stream's queue brings; a keep-alive after keepalive_s of silence; stop
        when the client goes, or after a cancel, auth_revoked or drop. Returns why it stopped."""
        last = time.monotonic()
        while True:
            due = last + self.st.settings["keepalive_s"]
            try:
                item = s.q.get(timeout=max(0.0, min(0.2, due - time.monotonic())))
            except queue.Empty:
                item = None
            if item is None:
                if self.client_gone():
                    return "closed by client"
                if time.monotonic() >= due:
                    self.send_event(s, "keep-alive", "null")
                    last = time.monotonic()
                continue
            kind = item[0]
            if kind == "event":
                self.send_event(s, item[1], item[2])
                last = time.monotonic()
            elif kind == "raw":
                self.stream_write(s, item[1])
                last = time.monotonic()
            elif kind == "end":  # the server ends the stream after this event
                self.send_event(s, item[1], item[2])
                if s.framing == "chunked":
                    self.wfile.write(b"0\r\n\r\n")
                return item[1]
            elif kind == "drop":
                return self.stream_cut(s, item[1])

    def stream_cut(self, s, opts):
        """Cut the stream without ending it: no final chunk, optionally in the middle of an
        event, with FIN or (rst) a TCP RST."""
        if opts.get("half_event"):
            whole = self.event_bytes("put", rtdb.spaced({"path": "/", "data": None}))
            self.stream_write(s, whole[:len(whole) // 2])
        if opts.get("rst"):
            self.rst()
            return "dropped (rst)"
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return "dropped"

    def client_gone(self):
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if r:
                return self.connection.recv(4096) == b""  # anything else the client sends is dropped
        except (OSError, ValueError):
            return True
        return False

    # ------------------------------------------------------------------ control
    def control(self, method, query, body):
        try:
            if method == "GET":
                since = int(dict(urllib.parse.parse_qsl(query)).get("since", "0") or 0)
                doc = self.st.describe(since)
            elif method == "POST":
                try:
                    req = json.loads(body.decode("utf-8")) if body.strip() else {}
                except ValueError as e:
                    raise ValueError("body is not JSON: %s" % e)
                if not isinstance(req, dict):
                    raise ValueError("body must be a JSON object")
                doc = self.control_post(req)
            else:
                raise ValueError("use GET or POST")
            self.write_response(Response(200, json.dumps(doc, indent=1, ensure_ascii=False)))
        except (ValueError, KeyError, TypeError, rtdb.BadRequest) as e:
            self.write_response(Response(400, json.dumps({"ok": False, "error": str(e)})))

    def control_post(self, req):
        """Everything is checked first, then applied (reset first), so a bad request changes
        nothing."""
        st = self.st
        allowed = set(CONTROL_KEYS)
        if "fault" in req:  # one fault may carry its options beside it
            allowed |= FAULT_OPTIONS
        if "stream_fault" in req:
            allowed |= STREAM_FAULT_OPTIONS
        unknown = set(req) - allowed
        if unknown:
            raise ValueError("unknown control keys %s; known: %s" % (sorted(unknown), sorted(CONTROL_KEYS)))
        rules = rtdb.Rules(req["rules"]) if "rules" in req else None
        tokens = parse_tokens(req["tokens"]) if "tokens" in req else None
        indexes = parse_indexes(req["indexes"]) if "indexes" in req else None
        settings = parse_settings(req)
        faults = [parse_fault(f) for f in as_list(req, "fault", "faults", FAULT_OPTIONS)]
        stream_faults = [parse_stream_fault(f)
                         for f in as_list(req, "stream_fault", "stream_faults", STREAM_FAULT_OPTIONS)]
        sends = [self.parse_send(x) for x in send_list(req)]
        expire = req.get("expire_token", [])
        expire = [expire] if isinstance(expire, str) else list(expire)
        with st.lock:
            tree = None
            if "set" in req:
                tree = rtdb.resolve(req["set"], st.root, st.now_ms(), None, 0)
            for tok in expire:
                if tok not in (tokens if tokens is not None else st.tokens):
                    raise ValueError("expire_token: unknown token %r" % tok)
            return self.control_apply(req, rules, tokens, indexes, settings, faults,
                                      stream_faults, sends, expire, tree)

    def control_apply(self, req, rules, tokens, indexes, settings, faults, stream_faults, sends,
                      expire, tree):
        st = self.st
        if req.get("reset"):
            st.reset_all()
            st.commit(None, ("put", [], None))
        st.settings.update(settings)
        if rules is not None:
            st.rules = rules
        if tokens is not None:
            st.tokens = tokens
        if indexes is not None:
            st.indexes = indexes
        for tok in expire:
            st.tokens[tok]["expired"] = True
        if req.get("clear_log"):
            st.log, st.counts = [], collections.Counter()
        if req.get("clear_faults"):
            st.faults, st.next_stream_faults = [], []
        st.faults += faults
        if "set" in req:
            st.commit(rtdb.to_node(tree), ("put", [], tree))
        st.recheck_streams()
        hit = 0
        for f in stream_faults:
            if "count" in f:
                st.next_stream_faults.append(f)
            else:
                hit += sum(1 for s in st.matching_streams(f) if st.apply_stream_fault(s, f))
        for spec, payload in sends:
            hit += sum(1 for s in st.matching_streams(spec) if s.push("raw", payload))
        return collections.OrderedDict([
            ("ok", True), ("streams_hit", hit), ("faults", copy.deepcopy(st.faults)),
            ("stream_faults", copy.deepcopy(st.next_stream_faults)),
            ("streams", [s.describe() for s in st.streams.values()])])

    def parse_send(self, spec):
        """stream_send: raw bytes for open streams, {"text": ...} or {"fixture": "<file>"}."""
        if not isinstance(spec, dict) or ("text" in spec) == ("fixture" in spec):
            raise ValueError("stream_send: {\"text\": \"...\"} or {\"fixture\": \"<file>\"} "
                             "[, \"path\": \"/x\", \"id\": n]")
        if "text" in spec:
            payload = spec["text"].encode("utf-8")
        else:
            name = os.path.basename(spec["fixture"])
            with open(os.path.join(self.server.args.fixtures, name), "rb") as f:
                payload = f.read()
        target = {"path": location_of(spec["path"]) if spec.get("path") is not None else None,
                  "id": spec.get("id")}
        return target, payload


class PreconditionFailed(Exception):
    """The 412 answer of a failed if-match (raised inside the lock, answered outside)."""

    def __init__(self, response):
        super().__init__("412")
        self.response = response


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True  # streams hold their thread; they must not keep the process alive
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        if self.args.verbose:
            super().handle_error(request, client_address)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Local stand-in for the Firebase Realtime Database REST API.")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 picks a free one")
    ap.add_argument("--secret", default=DEFAULT_SECRET, help="the database secret (admin credential)")
    ap.add_argument("--state-file", default=None, help="keep the tree in this JSON file (loaded at start)")
    ap.add_argument("--ns", default=DEFAULT_NS, help="the database name (?ns= and redirects)")
    ap.add_argument("--fixtures", default=DEFAULT_FIXTURES, help="folder for stream_send fixtures")
    ap.add_argument("--verbose", action="store_true", help="request lines and tracebacks on stderr")
    args = ap.parse_args(argv)
    server = Server(("127.0.0.1", args.port), Handler)
    server.args = args
    server.state = State(args)
    print("LISTENING", server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
