#!/usr/bin/python3
# selftest.py: checks server.py (the Firebase Realtime Database REST + streaming stand-in) from
# the outside, with http.client and raw sockets (its own small SSE reader that undoes chunked
# framing), against the fixtures in tests/fixtures/firebase/.
# Prints one TAP-style line per check and ends with "N passed, M failed"; exits 0 when
# everything passed.
#   /usr/bin/python3 tests/stand-ins/firebase/selftest.py [-v] [--no-timing]
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "server.py")
FIXDIR = os.path.normpath(os.path.join(HERE, "..", "..", "fixtures", "firebase"))
VERBOSE = "-v" in sys.argv

# --no-timing (make test, on a shared machine): how fast something came is
# not checked, only that it came, and that a delay lasted what was asked
TIMING = "--no-timing" not in sys.argv


def fast(cond):
    return cond or not TIMING
SECRET = "test-db-secret"
AUTH = "auth=" + SECRET
PUSH_ID = re.compile(r"^[-0-9A-Za-z_]{20}$")
ETAG = re.compile(r"^[A-Za-z0-9+/]{27}=$")

passed = failed = 0


def check(cond, desc, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok %d - %s" % (passed + failed, desc))
    else:
        failed += 1
        print("not ok %d - %s" % (passed + failed, desc))
        for line in str(detail).splitlines()[:12]:
            print("#   " + line)
    sys.stdout.flush()
    return cond


def fixture(name):
    with open(os.path.join(FIXDIR, name), "rb") as f:
        return f.read()


def fixture_json(name):
    return json.loads(fixture(name))


# ----------------------------------------------------------------------------- server process

class Srv:
    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, SERVER, "--port", "0"] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.first_line = self.proc.stdout.readline()
        m = re.match(r"^LISTENING (\d+)\n$", self.first_line)
        if not m:
            raise RuntimeError("server did not start: %r %s" % (self.first_line, self.proc.stderr.read()))
        self.port = int(m.group(1))

    def control(self, doc, expect=200):
        s, _, b = req(self.port, "POST", "/__control", json.dumps(doc))
        if s != expect:
            raise RuntimeError("control %s -> %s %s" % (doc, s, b))
        return json.loads(b)

    def state(self, since=0):
        return json.loads(req(self.port, "GET", "/__control?since=%d" % since)[2])

    def last_log(self):
        return self.state()["log"][-1]

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        rest = self.proc.stdout.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rest


def req(port, method, target, body=None, headers=(), timeout=5):
    """One request on its own connection -> (status, {lower-case name: value}, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        data = body.encode() if isinstance(body, str) else body
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def jreq(port, method, target, value=None, headers=()):
    """A request with a JSON body; answers (status, headers, parsed body or None, raw body)."""
    body = None if value is None and method in ("GET", "DELETE") else json.dumps(value)
    s, h, b = req(port, method, target, body, headers)
    try:
        doc = json.loads(b) if b else None
    except ValueError:
        doc = None
    return s, h, doc, b


def raw_exchange(port, data, timeout=5):
    """Bytes out, every byte back until the server closes or a full Content-Length answer is in."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(data)
        buf = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return buf
            buf += chunk
            head, sep, body = buf.partition(b"\r\n\r\n")
            m = re.search(rb"\r\nContent-Length: (\d+)", head)
            if sep and m and len(body) >= int(m.group(1)):
                return buf
    finally:
        sock.close()


class SSE:
    """A raw-socket event-stream reader: sends the GET, reads the head, undoes chunked framing.
    body holds the event bytes so far; ended = a final chunk came; eof = the server closed."""

    def __init__(self, port, path, query="", headers=(), timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        target = path + ("?" + query if query else "")
        lines = ["GET %s HTTP/1.1" % target, "Host: 127.0.0.1:%d" % port,
                 "Accept: text/event-stream", "Cache-Control: no-cache"]
        lines += ["%s: %s" % h for h in headers]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""
        self.body = b""
        self.ended = self.eof = self.reset = False
        self.head = None
        self.status = None
        self.headers = {}
        self.header_names = []
        self.read_until(lambda: self.head is not None, 5)

    def feed(self):
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.reset = self.eof = True
            return
        except socket.timeout:
            return
        if not data:
            self.eof = True
        self.raw += data
        if self.head is None and b"\r\n\r\n" in self.raw:
            self.head, _, self.raw = self.raw.partition(b"\r\n\r\n")
            lines = self.head.decode("latin-1").split("\r\n")
            self.status = int(lines[0].split()[1])
            for line in lines[1:]:
                k, _, v = line.partition(":")
                self.header_names.append(k)
                self.headers[k.lower()] = v.strip()
        if self.head is not None:
            self.dechunk()

    def dechunk(self):
        if self.headers.get("transfer-encoding") != "chunked":
            self.body += self.raw
            self.raw = b""
            return
        while not self.ended:
            line, sep, rest = self.raw.partition(b"\r\n")
            if not sep:
                return
            n = int(line, 16)
            if len(rest) < n + 2:
                return
            if n == 0:
                self.ended = True
            self.body += rest[:n]
            self.raw = rest[n + 2:]

    def read_until(self, cond, timeout=3):
        self.sock.settimeout(0.05)
        deadline = time.monotonic() + timeout
        while not cond() and not self.eof and time.monotonic() < deadline:
            self.feed()
        return cond()

    def events(self):
        """[(name, data text)] of the complete events so far (\\n\\n, \\r\\r or \\r\\n\\r\\n)."""
        out = []
        text = self.body.decode("utf-8")
        for block in re.split(r"\r\n\r\n|\n\n|\r\r", text)[:-1]:
            name, data = None, []
            for line in re.split(r"\r\n|\n|\r", block):
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
            out.append((name, "\n".join(data)))
        return out

    def wait_events(self, n, timeout=3):
        self.read_until(lambda: len(self.events()) >= n, timeout)
        return self.events()

    def close(self):
        self.sock.close()


def until(cond, timeout=3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


# ----------------------------------------------------------------------------- REST

def test_rest_docs(srv):
    """The docs' reference examples (fixtures rest_*), end to end."""
    p = srv.port
    put = fixture("rest_put_request_and_response.json").decode()
    s, h, doc, b = jreq(p, "PUT", "/users/jack.json?" + AUTH, json.loads(put))
    check(s == 200 and doc == fixture_json("rest_put_request_and_response.json"),
          "PUT answers 200 with the data written (rest_put_request_and_response.json)", b)
    check(b == b'{"first":"Jack","last":"Sparrow"}', "REST bodies are compact JSON", b)
    check(h.get("content-type") == "application/json; charset=utf-8", "Content-Type application/json; charset=utf-8", h)
    s, h, doc, b = jreq(p, "GET", "/users/jack.json")
    check(s == 200 and doc == fixture_json("rest_get_response.json"), "GET answers the data (rest_get_response.json)", b)
    s, h, doc, b = jreq(p, "GET", "/users/jack/.json")
    check(s == 200 and doc == fixture_json("rest_get_response.json"), "/users/jack/.json works too", b)
    s, h, doc, b = jreq(p, "GET", "/users/jack/first.json")
    check(s == 200 and b == b'"Jack"', "GET of a leaf answers the bare JSON value", b)
    s, h, doc, b = jreq(p, "PATCH", "/users/jack.json?" + AUTH, fixture_json("rest_patch_request_and_response.json"))
    check(s == 200 and doc == fixture_json("rest_patch_request_and_response.json"),
          "PATCH answers the data sent (rest_patch_request_and_response.json)", b)
    s, h, doc, b = jreq(p, "GET", "/users/jack.json")
    check(doc == {"first": "Jack", "last": "Jones"}, "PATCH updated only the named child", b)
    s, h, doc, b = jreq(p, "POST", "/message_list.json?" + AUTH, fixture_json("rest_post_request.json"))
    name = (doc or {}).get("name", "")
    check(s == 200 and list(doc) == list(fixture_json("rest_post_response.json")) and PUSH_ID.match(name),
          "POST answers {\"name\": <20-char push id>} (rest_post_response.json)", b)
    check(re.match(rb'^\{"name":"[-0-9A-Za-z_]{20}"\}$', b), "POST answer is compact like rest_post_response_compact.json", b)
    s, h, doc, b = jreq(p, "GET", "/message_list/%s.json" % name)
    check(doc == fixture_json("rest_post_request.json"), "the pushed child holds the posted data", b)
    s, h, doc, b = jreq(p, "DELETE", "/users/jack.json?" + AUTH)
    check(s == 200 and b.strip() == fixture("rest_delete_response.json").strip(), "DELETE answers null (rest_delete_response.json)", b)
    s, h, doc, b = jreq(p, "GET", "/users.json")
    check(s == 200 and b == b"null", "GET of nothing answers null", b)
    s, h, doc, b = jreq(p, "GET", "/.json")
    check(s == 200 and list(doc) == ["message_list"], "root is /.json; empty parents vanish", b)


def test_push_ids(srv):
    p = srv.port
    names = []
    for i in range(60):
        s, h, doc, b = jreq(p, "POST", "/seq.json?" + AUTH, i)
        names.append(doc["name"])
    check(all(PUSH_ID.match(n) for n in names), "push ids are 20 characters of Firebase's alphabet", names[:3])
    check(names == sorted(names) and len(set(names)) == len(names), "push ids sort in creation order (same ms too)", names[:5])
    alphabet = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
    ms = 0
    for c in names[0][:8]:
        ms = ms * 64 + alphabet.index(c)
    check(abs(ms - time.time() * 1000) < 60000, "the first 8 characters are the ms timestamp", ms)
    s, h, doc, b = jreq(p, "GET", "/seq.json?orderBy=%22$key%22&limitToLast=1")
    check(doc == {names[-1]: 59}, "the last push id is the last key", b)
    jreq(p, "DELETE", "/seq.json?" + AUTH)


def http_fixture_head(name):
    head = fixture(name).partition(b"\r\n\r\n")[0].decode()
    lines = head.split("\r\n")
    return lines[0], [tuple(x.split(": ", 1)) for x in lines[1:]], fixture(name).partition(b"\r\n\r\n")[2]


def test_etag(srv):
    p = srv.port
    jreq(p, "PUT", "/videos/upvotes.json?" + AUTH, 10)
    out = raw_exchange(p, b"GET /videos/upvotes.json HTTP/1.1\r\nHost: x\r\nX-Firebase-ETag: true\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    f_status, f_headers, f_body = http_fixture_head("rest_get_with_etag_200.http")
    got = [tuple(x.split(": ", 1)) for x in lines[1:]]
    check(lines[0] == f_status and [k for k, _ in got] == [k for k, _ in f_headers],
          "GET with X-Firebase-ETag: status line and header order as rest_get_with_etag_200.http", head)
    same = all(v == fv for (k, v), (_, fv) in zip(got, f_headers) if k not in ("ETag", "Content-Length"))
    check(same and body == f_body and dict(got)["Content-Length"] == str(len(body)),
          "... same header values, body 10, a Content-Length that matches the body", out)
    tag = dict(got).get("ETag", "")
    check(ETAG.match(tag), "the ETag is 28 characters of base64 like the docs' ViJFJowpbyRvgGNPzPJdGeN+mCY=", tag)
    s, h, doc, b = jreq(p, "GET", "/videos/upvotes.json")
    check("etag" not in h, "no ETag unless asked", h)
    s, h, doc, b = jreq(p, "PUT", "/videos/upvotes.json?" + AUTH, 11, [("if-match", tag)])
    check(s == 200 and b == b"11" and "etag" not in h, "if-match with the current ETag: 200, written", (s, h, b))
    jreq(p, "PUT", "/videos/upvotes.json?" + AUTH, 12)
    out = raw_exchange(p, ("PUT /videos/upvotes.json?%s HTTP/1.1\r\nHost: x\r\nif-match: %s\r\n"
                           "Content-Length: 2\r\n\r\n13" % (AUTH, tag)).encode())
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    f_status, f_headers, f_body = http_fixture_head("rest_conditional_put_412.http")
    got = [tuple(x.split(": ", 1)) for x in lines[1:]]
    check(lines[0] == f_status and [k for k, _ in got] == [k for k, _ in f_headers] and body == f_body,
          "stale if-match: 412, headers and body 12 as rest_conditional_put_412.http", out)
    s, h, doc, b = jreq(p, "GET", "/videos/upvotes.json", headers=[("X-Firebase-ETag", "true")])
    check(b == b"12" and dict(got).get("ETag") == h.get("etag") and h.get("etag") != tag,
          "... nothing written; the 412 carries the current ETag", (b, dict(got), h))
    s, h, doc, b = jreq(p, "PUT", "/fresh.json?" + AUTH, "x", [("if-match", "null_etag")])
    check(s == 200, "if-match: null_etag on an empty location writes", b)
    s, h, doc, b = jreq(p, "PUT", "/fresh.json?" + AUTH, "y", [("if-match", "null_etag")])
    check(s == 412 and b == b'"x"' and ETAG.match(h.get("etag", "")), "null_etag on a location with data: 412 with it", (s, h, b))
    s, h, doc, b = jreq(p, "GET", "/nothing.json", headers=[("X-Firebase-ETag", "true")])
    check(h.get("etag") == "null_etag", "an empty location's ETag is null_etag", h)
    s, h, doc, b = jreq(p, "GET", "/fresh.json", headers=[("if-match", "null_etag")])
    check(s == 400 and "not supported" in (doc or {}).get("error", ""), "if-match on GET: 400 ...not supported...", b)
    s, h, doc, b = jreq(p, "DELETE", "/fresh.json?" + AUTH, headers=[("if-match", "null_etag")])
    check(s == 412 and b == b'"x"', "DELETE with a stale if-match: 412", b)
    s, h, doc, b = jreq(p, "PUT", "/fresh.json?" + AUTH, {"v": 1}, [("X-Firebase-ETag", "true")])
    s2, h2, doc2, b2 = jreq(p, "GET", "/fresh.json", headers=[("X-Firebase-ETag", "true")])
    check(ETAG.match(h.get("etag", "")) and h["etag"] == h2.get("etag"), "a PUT with X-Firebase-ETag gets the written data's ETag", (h, h2))
    s, h, doc, b = jreq(p, "PATCH", "/fresh.json?" + AUTH, {"w": 2}, [("if-match", h2["etag"])])
    check(s == 400, "if-match on PATCH: 400", b)


def test_server_values(srv):
    p = srv.port
    before = int(time.time() * 1000)
    s, h, doc, b = jreq(p, "PUT", "/sv/t.json?" + AUTH, fixture_json("rest_server_timestamp_value.json"))
    after = int(time.time() * 1000)
    check(s == 200 and isinstance(doc, int) and before <= doc <= after,
          "{\".sv\": \"timestamp\"} (rest_server_timestamp_value.json) becomes the server's ms time", b)
    s, h, doc2, b = jreq(p, "GET", "/sv/t.json")
    check(doc2 == doc, "... stored as that number; the PUT answer shows it resolved", b)
    s, h, doc, b = jreq(p, "PUT", "/sv/n.json?" + AUTH, {".sv": {"increment": 5}})
    check(doc == 5, "increment on an empty node sets the delta", b)
    s, h, doc, b = jreq(p, "PATCH", "/sv.json?" + AUTH, {"n": {".sv": {"increment": 2}}, "m/x": {".sv": "timestamp"}})
    check(doc["n"] == 7 and isinstance(doc["m/x"], int), "increment adds; server values work in PATCH", b)
    s, h, doc, b = jreq(p, "PUT", "/sv/n.json?" + AUTH, {".sv": {"increment": 0.5}})
    check(doc == 7.5, "a float on either side gives a float", b)
    s, h, doc, b = jreq(p, "PUT", "/sv/n.json?" + AUTH, {".sv": "nope"})
    check(s == 400, "an unknown server value: 400", b)
    srv.control({"write_echo": "sent"})
    s, h, doc, b = jreq(p, "PUT", "/sv/t.json?" + AUTH, {".sv": "timestamp"})
    check(doc == {".sv": "timestamp"}, "write_echo sent: the answer shows the placeholder", b)
    srv.control({"write_echo": "resolved", "clock_offset_ms": -86400000})
    s, h, doc, b = jreq(p, "PUT", "/sv/t.json?" + AUTH, {".sv": "timestamp"})
    check(abs(doc - (time.time() * 1000 - 86400000)) < 5000, "clock_offset_ms moves the server time", b)
    srv.control({"clock_offset_ms": 0})
    jreq(p, "DELETE", "/sv.json?" + AUTH)


def test_print_shallow_arrays(srv):
    p = srv.port
    jreq(p, "PUT", "/pp.json?" + AUTH, {"b": [1, 2, {"x": True}], "a": {"c": "d"}, "n": 1.0})
    s, h, doc, b = jreq(p, "GET", "/pp.json?print=pretty")
    want = ('{\n  "a" : {\n    "c" : "d"\n  },\n  "b" : [ 1, 2, {\n    "x" : true\n  } ],\n  "n" : 1\n}')
    check(b.decode() == want, "print=pretty: Firebase's layout (2 spaces, ' : ', arrays inline)", b.decode())
    s, h, doc, b = jreq(p, "PUT", "/pp/z.json?print=silent&" + AUTH, 5)
    check(s == 204 and b == b"" and "content-length" not in h, "print=silent on PUT: 204 No Content, no body", (s, h, b))
    for m, v in (("GET", None), ("POST", 1), ("PATCH", {"y": 1}), ("DELETE", None)):
        s, h, doc, b = jreq(p, m, "/pp/z.json?print=silent&" + AUTH, v)
        check(s == 204 and b == b"", "print=silent on %s: 204" % m, (s, b))
    s, h, doc, b = jreq(p, "GET", "/pp.json?shallow=true")
    check(doc == {"a": True, "b": True, "n": 1}, "shallow=true: children with children are true, leaves their value", b)
    s, h, doc, b = jreq(p, "GET", "/pp.json?shallow=true&orderBy=%22$key%22")
    check(s == 400, "shallow with query parameters: 400", b)
    s, h, doc, b = jreq(p, "GET", "/pp/b.json")
    check(doc == [1, 2, {"x": True}], "an array comes back as an array", b)
    jreq(p, "PUT", "/arr.json?" + AUTH, {"0": "a", "1": "b", "3": "d"})
    s, h, doc, b = jreq(p, "GET", "/arr.json")
    check(doc == ["a", "b", None, "d"], "integer keys, more than half used: an array with nulls", b)
    jreq(p, "PUT", "/arr.json?" + AUTH, {"0": "a", "7": "h"})
    s, h, doc, b = jreq(p, "GET", "/arr.json")
    check(doc == {"0": "a", "7": "h"}, "sparse integer keys: an object", b)
    jreq(p, "PUT", "/ord.json?" + AUTH, {"b": 1, "10": 1, "a": 1, "9": 1, "-1": 1})
    s, h, doc, b = jreq(p, "GET", "/ord.json")
    check(b == b'{"-1":1,"9":1,"10":1,"a":1,"b":1}', "keys in Firebase's order: integers numerically, then strings", b)
    jreq(p, "PUT", "/e.json?" + AUTH, {"gone": None, "empty": {}, "kept": ""})
    s, h, doc, b = jreq(p, "GET", "/e.json")
    check(doc == {"kept": ""}, "null and {} children are not stored", b)
    for path in ("/pp", "/arr", "/ord", "/e"):
        jreq(p, "DELETE", path + ".json?" + AUTH)


def test_validation(srv):
    p = srv.port
    for ch in ".$#[]/":
        body = '{"a%sb": 1}' % ch
        s, h, doc, b = jreq(p, "PUT", "/v.json?" + AUTH, json.loads(body))
        check(s == 400 and doc and "couldn't parse key beginning at 1:2" in doc["error"]
              and "can't be empty or contain $ # [ ] / or ." in doc["error"],
              "a key with %r: 400 Invalid data; couldn't parse key ..." % ch, b)
    s, h, doc, b = jreq(p, "PUT", "/v.json?" + AUTH, {"x": {"ok": 1, "bad\u0001": 2}})
    check(s == 400 and "key" in doc["error"], "a key with a control character: 400", b)
    s, h, doc, b = jreq(p, "PUT", "/v.json?" + AUTH, {"": 1})
    check(s == 400, "an empty key: 400", b)
    s, h, doc, b = jreq(p, "PUT", "/v.json?" + AUTH, {"k" * 769: 1})
    check(s == 400, "a key over 768 bytes: 400", b)
    s, h, b = req(p, "PUT", "/v.json?" + AUTH, '{\n  "ok": 1,\n  "b$d": 2\n}')
    check(s == 400 and b"1:2" not in b and b"3:3" in b, "the position is line:column of the key", b)
    for body in ('{"a": ', "", "NaN", "{'a': 1}", "1e999"):
        s, h, b = req(p, "PUT", "/v.json?" + AUTH, body)
        check(s == 400 and json.loads(b) == {"error": "Invalid data; couldn't parse JSON object, array, or value."},
              "body %r: 400 Invalid data; couldn't parse JSON ..." % body, b)
    for path in ("/a$b.json", "/a%23b.json", "/a%5Bb%5D.json", "/a.b.json", "/.settings/rules.json"):
        s, h, doc, b = jreq(p, "GET", path)
        check(s == 400 and doc == {"error": "Invalid path: Invalid token in path"}, "URL %s: 400 Invalid path" % path, b)
    s, h, doc, b = jreq(p, "GET", "/a%20b.json")
    check(s == 200, "a space (percent-encoded) is fine in a key", b)
    deep = "/".join("d" for _ in range(33))
    s, h, doc, b = jreq(p, "GET", "/%s.json" % deep)
    check(s == 400, "a path deeper than 32: 400", b)
    s, h, doc, b = jreq(p, "GET", "/users")
    check(s == 404, "no .json: 404", b)
    s, h, doc, b = jreq(p, "GET", "/v.json?cachebust=1")
    check(s == 400, "an unknown query parameter: 400", b)
    s, h, doc, b = jreq(p, "GET", "/v.json?print=loud")
    check(s == 400, "print other than pretty/silent: 400", b)
    s, h, doc, b = jreq(p, "GET", "/v.json?timeout=20min")
    s2, h2, doc2, b2 = jreq(p, "GET", "/v.json?timeout=3s&writeSizeLimit=tiny")
    check(s == 400 and s2 == 200, "timeout over 15min: 400; timeout=3s, writeSizeLimit=tiny accepted", (b, b2))
    s, h, doc, b = jreq(p, "GET", "/v.json?ns=other-db")
    s2, h2, doc2, b2 = jreq(p, "GET", "/v.json?ns=stand-in-default-rtdb")
    check(s == 404 and s2 == 200, "?ns= another database: 404; this one: 200", (b, b2))
    s, h, doc, b = jreq(p, "HEAD", "/v.json")
    check(s == 405, "HEAD: 405", s)
    s, h, b = req(p, "PUT", "/v.json?" + AUTH, "\"caf\u00e9 \u2713\"")
    s2, h2, b2 = req(p, "GET", "/v.json")
    check(b2.decode("utf-8") == "\"caf\u00e9 \u2713\"", "UTF-8 strings round-trip unescaped", b2)
    jreq(p, "DELETE", "/v.json?" + AUTH)


def test_patch_and_override(srv):
    p = srv.port
    jreq(p, "PUT", "/m.json?" + AUTH, {"a": {"b": 1, "keep": 1}, "c": {"old": 1}})
    s, h, doc, b = jreq(p, "PATCH", "/m.json?" + AUTH, {"a/b": 2, "c": {"d": 3}, "x/y/z": True})
    check(s == 200 and doc == {"a/b": 2, "c": {"d": 3}, "x/y/z": True}, "multi-location PATCH answers the data sent", b)
    s, h, doc, b = jreq(p, "GET", "/m.json")
    check(doc == {"a": {"b": 2, "keep": 1}, "c": {"d": 3}, "x": {"y": {"z": True}}},
          "... 'a/b' updates one grandchild, an object value replaces its child", b)
    s, h, doc, b = jreq(p, "PATCH", "/m.json?" + AUTH, {"a": 1, "a/b": 2})
    check(s == 400, "PATCH with overlapping paths: 400", b)
    s, h, doc, b = jreq(p, "PATCH", "/m.json?" + AUTH, [1, 2])
    check(s == 400, "PATCH with a non-object: 400", b)
    s, h, doc, b = jreq(p, "PATCH", "/m.json?" + AUTH, {"a": None})
    s2, h2, doc2, b2 = jreq(p, "GET", "/m/a.json")
    check(s == 200 and doc2 is None, "PATCH with a null value deletes that child", b2)
    s, h, doc, b = jreq(p, "POST", "/m/c.json?" + AUTH, None, [("X-HTTP-Method-Override", "DELETE")])
    s2, h2, doc2, b2 = jreq(p, "GET", "/m/c.json")
    check(s == 200 and b == b"null" and doc2 is None, "POST with X-HTTP-Method-Override: DELETE deletes", (b, b2))
    s, h, doc, b = jreq(p, "POST", "/m/x.json?x-http-method-override=PUT&" + AUTH, 42)
    log = srv.last_log()
    s2, h2, doc2, b2 = jreq(p, "GET", "/m/x.json")
    check(b2 == b"42", "?x-http-method-override=PUT on a POST puts", b2)
    check(log["method"] == "POST" and log["effective_method"] == "PUT", "the log has the method sent and the one used", log)
    jreq(p, "DELETE", "/m.json?" + AUTH)


def test_auth_rules(srv):
    p = srv.port
    s, h, b = req(p, "PUT", "/r.json", "1")
    check(s == 401 and b == b'{\n  "error" : "Permission denied"\n}',
          "write without credential (default rules): 401, pretty {\"error\" : \"Permission denied\"}", b)
    s, h, doc, b = jreq(p, "PUT", "/r.json?auth=wrong", 1)
    check(s == 401 and doc == {"error": "Could not parse auth token."}, "a wrong secret: 401 Could not parse auth token.", b)
    s, h, doc, b = jreq(p, "PUT", "/r.json", 2, [("Authorization", "Bearer " + SECRET)])
    check(s == 200, "Authorization: Bearer <secret> works", b)
    s, h, doc, b = jreq(p, "PUT", "/r.json?access_token=" + SECRET, 3)
    check(s == 200, "?access_token=<secret> works", b)
    s, h, doc, b = jreq(p, "GET", "/r.json")
    check(s == 200 and doc == 3, "read without credential (default rules: read public)", b)
    log = srv.last_log()
    check(log["auth"] == "anonymous", "the log says who asked", log)
    jreq(p, "GET", "/r.json?" + AUTH)
    log = srv.last_log()
    check(log["query"] == AUTH and log["params"]["auth"] == SECRET and log["auth"] == "secret",
          "the log keeps the auth parameter raw (not redacted)", log)
    srv.control({"rules": {"read": "auth", "write": "auth"}})
    s, h, doc, b = jreq(p, "GET", "/r.json")
    check(s == 401 and doc == {"error": "Permission denied"}, "rules read auth: an anonymous GET is 401 Permission denied", b)
    srv.control({"rules": {"read": "none", "write": "none", "paths": {"/pub": {"read": "public"},
                                                                       "/mine": {"read": "auth", "write": "auth"}}},
                 "tokens": {"user-token-1": {"uid": "u1"}}})
    s1, _, _, _ = jreq(p, "GET", "/pub/x.json")
    s2, _, _, _ = jreq(p, "GET", "/r.json")
    s3, _, _, _ = jreq(p, "PUT", "/mine/a.json?auth=user-token-1", 1)
    s4, _, _, _ = jreq(p, "PUT", "/r.json?auth=user-token-1", 1)
    s5, _, _, _ = jreq(p, "PUT", "/r.json?" + AUTH, 1)
    check((s1, s2, s3, s4, s5) == (200, 401, 200, 401, 200),
          "per-path rules cascade downward; a token is a user; the secret bypasses rules", (s1, s2, s3, s4, s5))
    check(srv.last_log()["auth"] == "secret", "log auth: secret", srv.last_log()["auth"])
    jreq(p, "GET", "/mine/a.json?auth=user-token-1")
    check(srv.last_log()["auth"] == "token:u1", "log auth: token:<uid>", srv.last_log()["auth"])
    srv.control({"expire_token": "user-token-1"})
    s, h, doc, b = jreq(p, "GET", "/mine/a.json?auth=user-token-1")
    check(s == 401 and doc == {"error": "Auth token is expired."}, "an expired token: 401 Auth token is expired.", b)
    srv.control({"rules": {"read": {"data": "/flags/open", "equals": True}, "write": "auth"}})
    s1, _, _, _ = jreq(p, "GET", "/r.json")
    jreq(p, "PUT", "/flags/open.json?" + AUTH, True)
    s2, _, _, _ = jreq(p, "GET", "/r.json")
    check((s1, s2) == (401, 200), "a data rule: readable while /flags/open is true", (s1, s2))
    s, h, doc, b = jreq(p, "GET", "/r.json?auth_variable_override=null&" + AUTH)
    check(s == 200, "auth_variable_override=null with the secret runs as anonymous (rules apply)", b)
    srv.control({"rules": {"read": "auth", "write": "auth"}})
    s, h, doc, b = jreq(p, "GET", "/r.json?auth_variable_override=null&" + AUTH)
    check(s == 401, "... and is refused where anonymous may not read", b)
    r = req(p, "POST", "/__control", json.dumps({"rules": {"read": "everyone"}}))
    check(r[0] == 400 and b"rule" in r[2], "a bad rule: control answers 400", r)
    srv.control({"reset": True})
    s, h, doc, b = jreq(p, "GET", "/r.json")
    check(s == 200 and doc is None, "reset: default rules, empty tree", b)


def test_queries(srv):
    p = srv.port
    jreq(p, "PUT", "/dinos.json?" + AUTH, {"lambeosaurus": {"height": 2.1, "n": "c"}, "stegosaurus": {"height": 4, "n": "a"},
                                           "bruhathkayosaurus": {"height": 25, "n": "b"}, "linhenykus": {"height": 0.6}})
    s, h, doc, b = jreq(p, "GET", "/dinos.json?orderBy=%22height%22")
    check(s == 400 and doc == {"error": 'Index not defined, add ".indexOn": "height", for path "/dinos", to the rules'},
          "orderBy a child without an index: 400 Index not defined ...", b)
    s, h, doc, b = jreq(p, "GET", "/dinos.json?limitToFirst=1")
    check(s == 400 and doc == {"error": "orderBy must be defined when other query parameters are defined"},
          "a query without orderBy: 400 orderBy must be defined ...", b)
    srv.control({"indexes": {"/dinos": ["height", ".value"]}})
    s, h, doc, b = jreq(p, "GET", "/dinos.json?orderBy=%22height%22&startAt=3")
    check(s == 200 and sorted(doc) == ["bruhathkayosaurus", "stegosaurus"], "orderBy child, startAt (inclusive)", b)
    s, h, doc, b = jreq(p, "GET", "/dinos.json?orderBy=%22height%22&limitToFirst=2")
    check(sorted(doc) == ["lambeosaurus", "linhenykus"], "orderBy child, limitToFirst", b)
    s, h, doc, b = jreq(p, "GET", "/dinos.json?orderBy=%22height%22&equalTo=4")
    check(list(doc) == ["stegosaurus"], "equalTo", b)
    s, h, doc, b = jreq(p, "GET", "/dinos.json?orderBy=%22$key%22&startAt=%22l%22&endAt=%22m%22")
    check(list(doc) == ["lambeosaurus", "linhenykus"], "orderBy $key with startAt/endAt", b)
    s, h, doc, b = jreq(p, "GET", "/dinos.json?orderBy=%22$key%22&startAt=1")
    check(s == 400 and doc == {"error": "Provided key index type is invalid, must be string"}, "$key with a number: 400", b)
    s, h, doc, b = jreq(p, "GET", "/dinos.json?orderBy=%22n%22&limitToLast=1")
    check(s == 400, "another child without an index: 400", b)
    s, h, doc, b = jreq(p, "GET", "/dinos.json?orderBy=height")
    check(s == 400 and doc == {"error": "orderBy must be a valid JSON encoded path"}, "orderBy not JSON-quoted: 400", b)
    jreq(p, "DELETE", "/dinos.json?" + AUTH)


# ----------------------------------------------------------------------------- streams

def test_stream_docs(srv):
    """The docs' example, reproduced: the event bytes equal sse_stream_docs_example.txt."""
    p = srv.port
    want = fixture("sse_stream_docs_example.txt")
    for framing in ("chunked", "close"):
        srv.control({"reset": True, "stream_framing": framing})
        jreq(p, "PUT", "/.json?" + AUTH, fixture_json("sse_put_root.json")["data"])
        sse = SSE(p, "/.json")
        check(sse.status == 200 and sse.headers.get("content-type") == "text/event-stream",
              "[%s] stream: 200, Content-Type: text/event-stream" % framing, sse.head)
        sse.wait_events(1)
        jreq(p, "PUT", "/c.json?" + AUTH, fixture_json("sse_put_child.json")["data"])
        jreq(p, "PATCH", "/c.json?" + AUTH, fixture_json("sse_patch_child.json")["data"])
        sse.read_until(lambda: len(sse.body) >= len(want))
        check(sse.body == want, "[%s] the event bytes equal sse_stream_docs_example.txt byte for byte" % framing,
              "%r\n%r" % (sse.body, want))
        if framing == "chunked":
            check(sse.headers.get("transfer-encoding") == "chunked" and sse.headers.get("cache-control") == "no-cache",
                  "[chunked] Transfer-Encoding: chunked, Cache-Control: no-cache", sse.head)
        else:
            check("transfer-encoding" not in sse.headers and sse.headers.get("connection") == "close"
                  and sse.raw == b"", "[close] no framing: the raw body is the events", sse.head)
        evs = sse.events()
        check([json.loads(d) for _, d in evs] == [fixture_json(n) for n in
                                                   ("sse_put_root.json", "sse_put_child.json", "sse_patch_child.json")],
              "[%s] each data line parses to its fixture (sse_put_root/put_child/patch_child.json)" % framing, evs)
        sse.close()
    srv.control({"reset": True, "sse_json": "compact"})
    jreq(p, "PUT", "/.json?" + AUTH, "testdata")
    sse = SSE(p, "/.json")
    sse.wait_events(1)
    check(sse.body == b"event: put\n" + fixture("sse_event_with_id_retry.txt").split(b"\n")[1] + b"\n\n",
          "sse_json compact: data line as firebase-admin's test (sse_event_with_id_retry.txt)", sse.body)
    sse.close()
    srv.control({"reset": True, "sse_newline": "\r\n"})
    sse = SSE(p, "/.json")
    sse.wait_events(1)
    check(sse.body == b'event: put\r\ndata: {"path": "/", "data": null}\r\n\r\n',
          "sse_newline \\r\\n; an empty location starts with data null", sse.body)
    sse.close()
    srv.control({"reset": True})


def test_stream_paths(srv):
    p = srv.port
    jreq(p, "PUT", "/.json?" + AUTH, {"rooms": {"a": {"x": 1}, "b": {"y": 2}}, "other": 1})
    sse = SSE(p, "/rooms/a.json")
    evs = sse.wait_events(1)
    check(evs == [("put", '{"path": "/", "data": {"x": 1}}')], "a stream starts with put / and the location's value", evs)
    jreq(p, "PUT", "/rooms/a/x.json?" + AUTH, 5)                       # below
    jreq(p, "PUT", "/rooms/b/y.json?" + AUTH, 6)                       # beside: nothing
    jreq(p, "PATCH", "/rooms/a.json?" + AUTH, {"q": 1, "r/s": 2})      # at
    jreq(p, "PATCH", "/rooms.json?" + AUTH, {"a/t": 3, "b/z": 4})     # above, only below-parts
    jreq(p, "PUT", "/rooms.json?" + AUTH, {"a": {"fresh": True}})      # above: put / new value
    jreq(p, "PUT", "/other.json?" + AUTH, 2)                           # unrelated
    jreq(p, "PUT", "/.json?" + AUTH, {"rooms": {"a": {"fresh": True}}})  # above, unchanged: nothing
    jreq(p, "DELETE", "/rooms/a/fresh.json?" + AUTH)                   # below: put null
    jreq(p, "POST", "/rooms/a.json?" + AUTH, "m")                      # POST below
    evs = sse.wait_events(7)
    want = [("put", '{"path": "/x", "data": 5}'),
            ("patch", '{"path": "/", "data": {"q": 1, "r/s": 2}}'),
            ("patch", '{"path": "/", "data": {"t": 3}}'),
            ("put", '{"path": "/", "data": {"fresh": true}}'),
            ("put", '{"path": "/fresh", "data": null}')]
    check(evs[1:6] == want, "events carry paths relative to the stream; unrelated writes send nothing", evs)
    check(len(evs) == 7 and evs[6][0] == "put" and re.match(r'^\{"path": "/[-0-9A-Za-z_]{20}", "data": "m"\}$', evs[6][1]),
          "a POST below is a put at /<push id>", evs[-1:])
    # the server counts an event once its write returned, which may be after the client read it
    until(lambda: [x["events"] for x in srv.state()["streams"]] == [7])
    st = srv.state()
    check(len(st["streams"]) == 1 and st["streams"][0]["path"] == "/rooms/a" and st["streams"][0]["events"] == 7,
          "GET /__control lists the open stream (path, events sent)", st["streams"])
    check(st["counts"].get("STREAM /rooms/a") == 1 and st["counts"].get("PUT /rooms/a/x") == 1,
          "counts: STREAM <path> and METHOD <path>", st["counts"])
    others = [SSE(p, "/rooms/a.json") for _ in range(8)]
    t0 = time.monotonic()
    s, h, doc, b = jreq(p, "GET", "/other.json")
    check(s == 200 and fast(time.monotonic() - t0 < 1), "9 open streams do not block other requests", time.monotonic() - t0)
    for o in others:
        o.close()
    sse.close()
    check(until(lambda: len(srv.state()["streams"]) == 0), "streams closed by the client leave the list")
    log = [e for e in srv.state()["log"] if e["stream"]]
    check(log and log[0].get("stream_end") == "closed by client", "the log notes why a stream ended", log[:1])
    srv.control({"reset": True, "rules": {"read": "auth", "write": "auth"}})
    sse = SSE(p, "/.json")
    check(sse.status == 401, "a stream without read permission: 401 (no stream)", sse.head)
    sse.close()
    sse = SSE(p, "/.json", headers=[("Authorization", "Bearer " + SECRET)])
    check(sse.status == 200 and sse.wait_events(1), "a stream with Authorization: Bearer <secret>", sse.head)
    sse.close()
    srv.control({"reset": True})


def test_keepalive_and_cancel(srv):
    p = srv.port
    srv.control({"keepalive_s": 0.3})
    sse = SSE(p, "/ka.json")
    t0 = time.monotonic()
    evs = sse.wait_events(3, timeout=2)
    dt = time.monotonic() - t0
    check(evs[1:3] == [("keep-alive", "null"), ("keep-alive", "null")] and 0.45 < dt and fast(dt < 1.5),
          "keep-alive events (data null) every keepalive_s of silence", (evs, dt))
    check(b"event: keep-alive\ndata: null\n\n" in sse.body, "keep-alive bytes: 'event: keep-alive\\ndata: null\\n\\n'", sse.body)
    sse.close()
    srv.control({"keepalive_s": 30, "rules": {"read": {"data": "/room/open", "equals": True}, "write": "auth"}})
    jreq(p, "PUT", "/room.json?" + AUTH, {"open": True, "msg": "hi"})
    sse = SSE(p, "/room/msg.json")
    sse.wait_events(1)
    jreq(p, "PUT", "/room/open.json?" + AUTH, False)
    sse.read_until(lambda: sse.ended or sse.eof)
    evs = sse.events()
    check(evs[-1:] == [("cancel", '"Permission denied."')] and sse.ended,
          "a write that makes the location unreadable: cancel \"Permission denied.\", then the stream ends", (evs, sse.ended))
    jreq(p, "PUT", "/room/open.json?" + AUTH, True)
    srv.control({"cancel_data": "null"})
    sse = SSE(p, "/room/msg.json")
    sse.wait_events(1)
    srv.control({"rules": {"read": "auth", "write": "auth"}})
    sse.read_until(lambda: sse.ended)
    check(sse.events()[-1:] == [("cancel", "null")], "a rules change cancels too; cancel_data null", sse.events())
    srv.control({"reset": True})


def test_stream_faults(srv):
    p = srv.port
    sse = SSE(p, "/f.json")
    sse.wait_events(1)
    r = srv.control({"stream_fault": "auth_revoked"})
    sse.read_until(lambda: sse.ended or sse.eof)
    check(r["streams_hit"] == 1 and sse.events()[-1] == ("auth_revoked", '"credential is no longer valid"')
          and sse.ended and b'event: auth_revoked\ndata: "credential is no longer valid"\n\n' in sse.body,
          "auth_revoked: data \"credential is no longer valid\", then the stream ends", sse.body)
    sse.read_until(lambda: sse.eof)
    check(sse.eof, "... and the connection is closed")
    sse = SSE(p, "/f.json")
    sse.wait_events(1)
    srv.control({"stream_fault": "cancel", "path": "/f"})
    sse.read_until(lambda: sse.ended)
    check(sse.events()[-1] == ("cancel", '"Permission denied."') and sse.ended, "cancel fault", sse.body)
    sse = SSE(p, "/f.json")
    sse.wait_events(1)
    srv.control({"stream_fault": "drop"})
    sse.read_until(lambda: sse.eof)
    check(sse.eof and not sse.ended and not sse.reset, "drop: the connection closes without the final chunk", sse.body)
    sse = SSE(p, "/f.json")
    sse.wait_events(1)
    srv.control({"stream_fault": "drop", "half_event": True, "rst": True})
    sse.read_until(lambda: sse.eof)
    tail = sse.body.split(b"\n\n")[-1]
    check(sse.eof and tail.startswith(b"event: put\ndata: {") and not sse.ended, "drop half_event: half an event, then cut", sse.body)
    check(sse.reset, "drop rst: the client sees a TCP reset")
    srv.control({"stream_fault": "auth_revoked", "next": True, "data": "credential is no longer valid"})
    sse = SSE(p, "/f.json")
    sse.read_until(lambda: sse.ended)
    check([n for n, _ in sse.events()] == ["put", "auth_revoked"] and sse.events()[1][1] == "credential is no longer valid",
          "next: the next stream gets the fault after its initial put; data sent raw (unquoted)", sse.events())
    srv.control({"tokens": {"tok-2": "u2"}})
    sse = SSE(p, "/f.json", "auth=tok-2")
    sse.wait_events(1)
    srv.control({"expire_token": "tok-2"})
    sse.read_until(lambda: sse.ended)
    check(sse.events()[-1][0] == "auth_revoked", "expire_token: streams with that token get auth_revoked", sse.events())
    sse = SSE(p, "/f.json")
    sse.wait_events(1)
    srv.control({"stream_send": {"fixture": "sse_stream_admin_sdk_separators.txt"}})
    want = fixture("sse_stream_admin_sdk_separators.txt")
    sse.read_until(lambda: sse.body.endswith(want))
    check(sse.body.endswith(want), "stream_send: raw bytes (the admin SDK's separators fixture) reach the stream", sse.body)
    sse.close()
    r = srv.control({"fault": "redirect"})
    sse = SSE(p, "/f.json", AUTH)
    loc = sse.headers.get("location", "")
    check(sse.status == 307 and loc == "http://127.0.0.1:%d/f.json?%s&ns=stand-in-default-rtdb" % (p, AUTH),
          "redirect: 307 to the same server, Location with ns=", sse.head)
    sse.close()
    u = urllib.parse.urlsplit(loc)
    sse = SSE(p, u.path, u.query)
    check(sse.status == 200 and sse.wait_events(1), "following the Location gives the stream", sse.head)
    sse.close()
    s, h, doc, b = jreq(p, "GET", "/f.json")
    check(s == 200, "a redirect fault is for stream requests only (by default)", s)
    srv.control({"fault": "redirect", "host": "localhost"})
    sse = SSE(p, "/f.json")
    check(sse.headers.get("location", "").startswith("http://localhost:%d/" % p), "redirect host option", sse.head)
    sse.close()
    r = req(p, "POST", "/__control", json.dumps({"stream_fault": "explode"}))
    check(r[0] == 400, "an unknown stream fault: 400", r)
    srv.control({"reset": True})


def test_http_faults(srv):
    p = srv.port
    srv.control({"faults": [{"fault": 503, "count": 2, "path": "/h"}, {"fault": "500", "method": "PUT"}]})
    s1, _, d1, _ = jreq(p, "GET", "/h.json")
    s2, _, _, _ = jreq(p, "GET", "/h.json")
    s3, _, _, _ = jreq(p, "GET", "/h.json")
    check((s1, s2, s3) == (503, 503, 200) and "error" in d1, "503 on the next 2 matching requests, then normal", (s1, s2, s3))
    s, _, doc, _ = jreq(p, "PUT", "/h.json?" + AUTH, 1)
    s2, _, doc2, _ = jreq(p, "GET", "/h.json")
    check(s == 500 and "error" in doc and doc2 is None, "500 on a PUT (method filter); not carried out", (s, doc, doc2))
    srv.control({"fault": "500", "apply": True, "method": "POST"})
    s, _, doc, _ = jreq(p, "POST", "/h.json?" + AUTH, 1)
    s2, _, doc2, _ = jreq(p, "GET", "/h.json")
    check(s == 500 and isinstance(doc2, dict) and len(doc2) == 1, "apply: carried out, then 500 (a retry would duplicate)", doc2)
    srv.control({"fault": "401", "error": "Auth token is expired."})
    s, _, doc, _ = jreq(p, "GET", "/h.json")
    check(s == 401 and doc == {"error": "Auth token is expired."}, "401 fault with its error text", doc)
    srv.control({"fault": "latency", "ms": 300})
    t0 = time.monotonic()
    s, _, _, _ = jreq(p, "GET", "/h.json")
    dt = time.monotonic() - t0
    check(s == 200 and 0.28 < dt and fast(dt < 1.5), "latency 300 ms", dt)
    srv.control({"fault": "reset"})
    try:
        jreq(p, "GET", "/h.json")
        ok = False
    except (ConnectionResetError, http.client.RemoteDisconnected, ConnectionAbortedError):
        ok = True
    check(ok, "reset: the client sees a TCP reset, no answer")
    srv.control({"fault": "503", "stream": True})
    sse = SSE(p, "/h.json")
    check(sse.status == 503, "a fault limited to streams hits the stream request", sse.head)
    sse.close()
    srv.control({"fault": "latency", "ms": 200, "count": -1, "path": "/slow"})
    t0 = time.monotonic()
    jreq(p, "GET", "/slow.json")
    jreq(p, "GET", "/slow.json")
    check(time.monotonic() - t0 > 0.38, "count -1: every matching request", time.monotonic() - t0)
    st = srv.state()
    check(st["faults"][-1]["hits"] == 2 and st["faults"][-1]["count"] == -1, "GET /__control shows faults with hits", st["faults"])
    srv.control({"clear_faults": True})
    log = srv.state()["log"]
    check(any(e["fault"] == "503" and e["status"] == 503 for e in log), "the log marks faulted requests", log[:1])
    for bad in ({"fault": "418"}, {"nonsense": 1}, {"keepalive_s": 0}, {"sse_newline": "x"}, {"set": {"a.b": 1}}):
        r = req(p, "POST", "/__control", json.dumps(bad))
        check(r[0] == 400 and json.loads(r[2])["ok"] is False, "control refuses %s with 400" % json.dumps(bad), r)
    srv.control({"reset": True})


def test_control(srv):
    p = srv.port
    sse = SSE(p, "/.json")
    sse.wait_events(1)
    r = srv.control({"set": {"a": {"b": 1}, "t": {".sv": "timestamp"}}})
    st = srv.state()
    check(st["tree"]["a"] == {"b": 1} and isinstance(st["tree"]["t"], int), "set replaces the tree (server values resolved)", st["tree"])
    evs = sse.wait_events(2)
    check(evs[1][0] == "put" and json.loads(evs[1][1])["data"]["a"] == {"b": 1}, "set reaches open streams", evs)
    jreq(p, "GET", "/a.json?" + AUTH)
    st = srv.state()
    check(st["log"][-1]["target"] == "/a.json?" + AUTH and st["secret"] == SECRET and st["settings"]["keepalive_s"] == 30,
          "GET /__control: log, secret, settings", st["log"][-1])
    since = st["log"][-1]["seq"]
    jreq(p, "GET", "/a.json")
    check(len(srv.state(since)["log"]) == 1, "?since=<seq> gives the newer entries only")
    srv.control({"clear_log": True})
    check(srv.state()["log"] == [] and srv.state()["counts"] == {}, "clear_log empties the log and counts")
    srv.control({"reset": True})
    evs = sse.wait_events(3)
    check(evs[2] == ("put", '{"path": "/", "data": null}'), "reset empties the tree; streams see put / null", evs)
    check(srv.state()["streams"] != [], "reset keeps streams open")
    sse.close()
    srv.control({"error_format": "plain"})
    s, h, b = req(p, "PUT", "/x.json", "1")
    check(b == b'{"error": "Permission denied"}', "error_format plain: the fixture's form (rest_error_response.json)", b)
    srv.control({"reset": True})


def test_state_file():
    d = tempfile.mkdtemp(prefix="fb-standin-")
    path = os.path.join(d, "state.json")
    srv = Srv("--state-file", path, "--secret", "s3cret")
    try:
        s, h, doc, b = jreq(srv.port, "PUT", "/keep.json?auth=s3cret", {"x": [1, 2], "y": "z"})
        s2, _, _, _ = jreq(srv.port, "PUT", "/keep.json?" + AUTH, 1)
        check(s == 200 and s2 == 401, "--secret S: S is the credential, the default is not")
        check(os.path.exists(path) and os.listdir(d) == ["state.json"], "the state file is written (no temp left)", os.listdir(d))
    finally:
        srv.stop()
    srv = Srv("--state-file", path)
    try:
        s, h, doc, b = jreq(srv.port, "GET", "/keep.json")
        check(doc == {"x": [1, 2], "y": "z"}, "the tree survives a restart with --state-file", b)
    finally:
        srv.stop()


def main():
    srv = Srv()
    check(srv.first_line == "LISTENING %d\n" % srv.port, "prints exactly 'LISTENING <port>'", srv.first_line)
    t0 = time.monotonic()
    try:
        for section in (test_rest_docs, test_push_ids, test_etag, test_server_values,
                        test_print_shallow_arrays, test_validation, test_patch_and_override,
                        test_auth_rules, test_queries, test_stream_docs, test_stream_paths,
                        test_keepalive_and_cancel, test_stream_faults, test_http_faults, test_control):
            try:
                section(srv)
            except Exception as e:  # a crash in one section is one failure, the rest still run
                import traceback
                check(False, "%s crashed: %r" % (section.__name__, e), traceback.format_exc())
            if VERBOSE:
                print("# %s done at %.1f s" % (section.__name__, time.monotonic() - t0))
        extra = srv.stop()
        check(extra == "", "nothing else on stdout", extra)
    finally:
        if srv.proc.poll() is None:
            srv.stop()
    try:
        test_state_file()
    except Exception as e:
        check(False, "test_state_file crashed: %r" % e)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
