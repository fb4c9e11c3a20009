# rtdb.py: the data side of the Firebase Realtime Database stand-in (server.py next to it): the
# JSON tree and its paths and keys, server values, push ids, ETags, how a node is rendered back
# (arrays, key order, print=pretty), shallow reads, queries and the security rules. No HTTP here.
# Python 3 standard library only. See README.md next to this file.
#
# The tree is stored the way Firebase stores it: a node is None (nothing), a bool, a number, a
# string, or a non-empty dict of child key -> node. Arrays become dicts keyed "0", "1", ...; null
# children and empty objects vanish. render() turns a node back into what a GET answers.
import base64
import hashlib
import json
import math
import random
import re
import threading
import urllib.parse

PUSH_CHARS = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
MAX_KEY_BYTES = 768
MAX_DEPTH = 32
NULL_ETAG = "null_etag"
MAX_SAFE = 2 ** 53
INT32_KEY = re.compile(r"^-?(0|[1-9][0-9]{0,9})$")
ARRAY_KEY = re.compile(r"^(0|[1-9][0-9]*)$")

# Messages as Firebase sends them (seen in real answers quoted in SDK issue threads, see README)
MSG_BAD_JSON = "Invalid data; couldn't parse JSON object, array, or value."
MSG_BAD_KEY = ("Invalid data; couldn't parse key beginning at %d:%d. "
               "Key value can't be empty or contain $ # [ ] / or .")
MSG_BAD_PATH = "Invalid path: Invalid token in path"
MSG_NO_ORDERBY = "orderBy must be defined when other query parameters are defined"
MSG_BAD_ORDERBY = "orderBy must be a valid JSON encoded path"
MSG_KEY_INDEX = "Provided key index type is invalid, must be string"
MSG_NO_INDEX = 'Index not defined, add ".indexOn": "%s", for path "%s", to the rules'

QUERY_PARAMS = ("orderBy", "limitToFirst", "limitToLast", "startAt", "endAt", "equalTo")


class BadRequest(Exception):
    """Answered as HTTP 400 {"error": message}."""


# --------------------------------------------------------------------------- paths and keys

def key_ok(key):
    """Firebase's key rule: not empty, at most 768 bytes, none of . $ # [ ] / nor ASCII controls."""
    if not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return False
    return not any(c in ".$#[]/" or ord(c) < 32 or ord(c) == 127 for c in key)


def split_path(text):
    """'/a/b' or 'a//b/' -> ['a', 'b'] (empty segments dropped, as Firebase does)."""
    return [s for s in text.split("/") if s != ""]


def path_str(segs):
    return "/" + "/".join(segs)


def parse_location(url_path):
    """The URL path of a REST request ('/users/jack.json', '/.json', '/users/jack/.json') ->
    the list of keys; None when it does not end in '.json'. Bad keys -> BadRequest."""
    if not url_path.endswith(".json"):
        return None
    segs = split_path(urllib.parse.unquote(url_path[:-len(".json")]))
    if any(not key_ok(s) for s in segs):
        raise BadRequest(MSG_BAD_PATH)
    if len(segs) > MAX_DEPTH:
        raise BadRequest("Invalid path: Path exceeds maximum depth of %d" % MAX_DEPTH)
    return segs


def is_prefix(a, b):
    """Whether path a is b or an ancestor of b."""
    return len(a) <= len(b) and b[:len(a)] == a


# --------------------------------------------------------------------------- JSON in

def _no_constant(name):
    raise ValueError("not JSON: %s" % name)  # Python's json would take NaN and Infinity


def parse_json(body):
    """The request body (bytes) -> (value, text). Anything that is not one strict JSON value ->
    BadRequest with Firebase's message."""
    try:
        text = body.decode("utf-8")
        if not text.strip():
            raise ValueError("empty")
        return json.loads(text, parse_constant=_no_constant), text
    except ValueError:
        raise BadRequest(MSG_BAD_JSON)


def bad_key(text, key):
    """BadRequest for an invalid key, with its line:column in the body (Firebase gives the
    position of the key; we point at its opening quote, 1-based)."""
    line, col = 1, 1
    if text:
        m = re.search(re.escape(json.dumps(key, ensure_ascii=False)) + r"\s*:", text)
        if m is None:
            m = re.search(re.escape(json.dumps(key)) + r"\s*:", text)
        if m is not None:
            i = m.start()
            line = text.count("\n", 0, i) + 1
            col = i - (text.rfind("\n", 0, i) + 1) + 1
    return BadRequest(MSG_BAD_KEY % (line, col))


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def number(v):
    """Firebase keeps numbers as doubles: a whole double is written without '.0' (1.0 -> 1)."""
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            raise BadRequest(MSG_BAD_JSON)  # 1e400 parses as inf in Python
        if v.is_integer() and abs(v) < MAX_SAFE:
            return int(v)
    return v


def server_value(sv, current, now_ms):
    """{".sv": "timestamp"} and {".sv": {"increment": n}} (against the node there now)."""
    if sv == "timestamp":
        return now_ms
    if isinstance(sv, dict) and list(sv) == ["increment"] and is_number(sv["increment"]):
        delta = sv["increment"]
        return number(current + delta) if is_number(current) else number(delta)
    raise BadRequest("Invalid data; unsupported server value: %s" % json.dumps(sv))


def child(node, key):
    return node.get(key) if isinstance(node, dict) else None


def resolve(value, current, now_ms, text, depth):
    """A written JSON value as it will be stored and echoed: server values replaced, '.value' /
    '.priority' unwrapped (priorities are not kept), numbers normalised; keys and depth checked.
    `current` is the node now at that place (for increments); `depth` the place's depth."""
    if depth > MAX_DEPTH:
        raise BadRequest("Invalid data; data is nested deeper than %d levels" % MAX_DEPTH)
    if isinstance(value, dict):
        if ".sv" in value:
            if len(value) != 1:
                raise bad_key(text, next(k for k in value if k != ".sv"))
            return server_value(value[".sv"], current, now_ms)
        if ".value" in value:
            for k in value:
                if k not in (".value", ".priority"):
                    raise bad_key(text, k)
            return resolve(value[".value"], current, now_ms, text, depth)
        out = {}
        for k, v in value.items():
            if k == ".priority":
                continue
            if not key_ok(k):
                raise bad_key(text, k)
            out[k] = resolve(v, child(current, k), now_ms, text, depth + 1)
        return out
    if isinstance(value, list):
        return [resolve(v, child(current, str(i)), now_ms, text, depth + 1) for i, v in enumerate(value)]
    return number(value)


def to_node(value):
    """A resolved JSON value -> the stored node (arrays keyed by index, nulls and {} dropped)."""
    if isinstance(value, list):
        value = {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            n = to_node(v)
            if n is not None:
                out[k] = n
        return out or None
    return value


# --------------------------------------------------------------------------- the tree

def get(root, segs):
    node = root
    for s in segs:
        node = child(node, s)
        if node is None:
            return None
    return node


def put(root, segs, node):
    """A new root with `node` at `segs` (None deletes). Dicts along the path are copied, so a
    snapshot taken before stays as it was. Writing under a leaf replaces the leaf."""
    if node is None and get(root, segs) is None:
        return root
    if not segs:
        return node
    base = dict(root) if isinstance(root, dict) else {}
    sub = put(base.get(segs[0]), segs[1:], node)
    if sub is None:
        base.pop(segs[0], None)
    else:
        base[segs[0]] = sub
    return base or None


# --------------------------------------------------------------------------- JSON out

def key_order(key):
    """Firebase's child order: keys that are 32-bit integers first, numerically; then the rest
    as strings."""
    if INT32_KEY.match(key) and -2 ** 31 <= int(key) < 2 ** 31:
        return (0, int(key), "")
    return (1, 0, key)


def array_length(node):
    """Firebase answers an object as an array when all keys are integers >= 0 and more than half
    of the slots up to the largest are used (the rule its SDKs document): length, else None."""
    top = -1
    for k in node:
        if not ARRAY_KEY.match(k):
            return None
        top = max(top, int(k))
    return top + 1 if top < 2 * len(node) else None


def render(node):
    """A stored node -> the JSON value a GET answers (keys in Firebase's order, arrays back)."""
    if not isinstance(node, dict):
        return node
    n = array_length(node)
    if n is not None:
        return [render(node.get(str(i))) for i in range(n)]
    return {k: render(node[k]) for k in sorted(node, key=key_order)}


def shallow(node):
    """shallow=true: children that have children become true, leaves keep their value."""
    if not isinstance(node, dict):
        return node
    return {k: (True if isinstance(node[k], dict) else node[k]) for k in sorted(node, key=key_order)}


def compact(value):
    """REST bodies: compact JSON, as the docs' POST answer {"name":"-JSOpn9ZC54A4P4RoqVa"}."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def spaced(value):
    """The docs' stream example's style: ', ' and ': ' ({"path": "/", "data": {"a": 1, "b": 2}})."""
    return json.dumps(value, ensure_ascii=False)


def pretty(value, level=0):
    """print=pretty and error bodies, as Firebase writes them: objects one key a line, 2-space
    indent, '"key" : value'; arrays on one line '[ 1, 2 ]' (Jackson's default pretty printer,
    which the observed '{\\n  "error" : "Permission denied"\\n}' matches)."""
    if isinstance(value, dict):
        if not value:
            return "{ }"
        pad = "  " * (level + 1)
        items = [pad + json.dumps(k, ensure_ascii=False) + " : " + pretty(v, level + 1)
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    if isinstance(value, list):
        if not value:
            return "[ ]"
        return "[ " + ", ".join(pretty(v, level) for v in value) + " ]"
    return json.dumps(value, ensure_ascii=False)


def etag(node):
    """An opaque ETag for the data at a location: base64 of a SHA-1, 28 characters like the
    docs' 'ViJFJowpbyRvgGNPzPJdGeN+mCY='; null_etag for a location with no data."""
    if node is None:
        return NULL_ETAG
    digest = hashlib.sha1(compact(render(node)).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


# --------------------------------------------------------------------------- push ids

class PushIds:
    """Firebase's push ids: 8 characters of the ms timestamp in a base-64 alphabet that sorts
    like ASCII, then 12 random ones; within one ms the random part is incremented, so ids made
    by this server always sort in creation order (the clock going back reuses the last ms)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.last_ms = -1
        self.rand = [0] * 12

    def next(self, now_ms):
        with self.lock:
            if now_ms <= self.last_ms:
                now_ms = self.last_ms
                i = 11
                while i >= 0 and self.rand[i] == 63:
                    self.rand[i] = 0
                    i -= 1
                self.rand[i] += 1
            else:
                self.rand = [random.randrange(64) for _ in range(12)]
            self.last_ms = now_ms
            stamp = ""
            for _ in range(8):
                stamp = PUSH_CHARS[now_ms % 64] + stamp
                now_ms //= 64
            return stamp + "".join(PUSH_CHARS[i] for i in self.rand)


# --------------------------------------------------------------------------- queries

def json_param(params, name):
    try:
        return json.loads(params[name], parse_constant=_no_constant)
    except ValueError:
        raise BadRequest("%s must be a valid JSON value" % name)


def parse_query(params):
    """orderBy / limitToFirst / limitToLast / startAt / endAt / equalTo -> a dict, or None when
    the request has none of them."""
    if not any(p in params for p in QUERY_PARAMS):
        return None
    if "orderBy" not in params:
        raise BadRequest(MSG_NO_ORDERBY)
    try:
        order = json.loads(params["orderBy"])
    except ValueError:
        order = None
    if not isinstance(order, str) or not order:
        raise BadRequest(MSG_BAD_ORDERBY)
    q = {"orderBy": order}
    for name in ("startAt", "endAt", "equalTo"):
        if name in params:
            v = json_param(params, name)
            if isinstance(v, (dict, list)):
                raise BadRequest("%s must be a JSON primitive" % name)
            if order == "$key" and not isinstance(v, str):
                raise BadRequest(MSG_KEY_INDEX)
            q[name] = v
    if "equalTo" in q and ("startAt" in q or "endAt" in q):
        raise BadRequest("equalTo cannot be combined with startAt or endAt")
    for name in ("limitToFirst", "limitToLast"):
        if name in params:
            v = json_param(params, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise BadRequest("%s must be a positive integer" % name)
            q[name] = v
    if "limitToFirst" in q and "limitToLast" in q:
        raise BadRequest("limitToFirst and limitToLast cannot both be given")
    return q


def check_index(q, segs, indexes):
    """Ordering by a child or by value needs an index, as on Firebase (REST never falls back)."""
    order = q["orderBy"]
    if order in ("$key", "$priority"):
        return
    want = ".value" if order == "$value" else order
    if want not in indexes.get(path_str(segs), []):
        raise BadRequest(MSG_NO_INDEX % (want, path_str(segs)))


def value_rank(v):
    """Firebase's value order: null, false, true, numbers, strings, objects."""
    if v is None:
        return (0, 0, "")
    if v is False:
        return (1, 0, "")
    if v is True:
        return (2, 0, "")
    if is_number(v):
        return (3, v, "")
    if isinstance(v, str):
        return (4, 0, v)
    return (5, 0, "")


def run_query(node, q):
    """The children that pass the query, as an object (Firebase: 'unordered'; we write them in
    key order, so a client that relies on the order it gets is not helped by luck)."""
    if not isinstance(node, dict):
        return render(node)
    order = q["orderBy"]

    def sort_key(k):
        """(what the bounds compare with, the tie-break by key)."""
        if order == "$key":
            return (key_order(k), key_order(k))
        if order == "$value":
            v = node[k]
        elif order == "$priority":
            v = None  # priorities are not stored: every child has a null priority
        else:
            v = get(node[k], split_path(order))
        return (value_rank(v), key_order(k))

    def bound(v):
        return key_order(v) if order == "$key" else value_rank(v)

    keys = sorted(node, key=sort_key)
    if "equalTo" in q:
        keys = [k for k in keys if sort_key(k)[0] == bound(q["equalTo"])]
    if "startAt" in q:
        keys = [k for k in keys if sort_key(k)[0] >= bound(q["startAt"])]
    if "endAt" in q:
        keys = [k for k in keys if sort_key(k)[0] <= bound(q["endAt"])]
    if "limitToFirst" in q:
        keys = keys[:q["limitToFirst"]]
    if "limitToLast" in q:
        keys = keys[-q["limitToLast"]:]
    return {k: render(node[k]) for k in sorted(keys, key=key_order)}


# --------------------------------------------------------------------------- rules

RULE_WORDS = ("public", "auth", "none")


class Credential:
    """Who sent a request: 'admin' (the database secret: bypasses the rules), 'user' (a token
    registered through /__control) or 'anonymous'."""

    def __init__(self, kind, token=None, uid=None):
        self.kind, self.token, self.uid = kind, token, uid

    def describe(self):
        return {"admin": "secret", "anonymous": "anonymous"}.get(self.kind, "token:%s" % self.uid)


def check_rule(rule, where):
    ok = rule in RULE_WORDS or (isinstance(rule, dict) and isinstance(rule.get("data"), str)
                                and "equals" in rule and set(rule) <= {"data", "equals", "auth"})
    if not ok:
        raise ValueError("%s: a rule is \"public\", \"auth\", \"none\" or "
                         "{\"data\": \"/path\", \"equals\": value[, \"auth\": true]}" % where)


class Rules:
    """Who may read and write where. Spec: {"read": R, "write": W, "paths": {"/a/b": {"read": R,
    "write": W}}}; R/W as in check_rule; a missing root read/write takes the default (read
    "public", write "auth"). As Firebase's rules cascade, a grant at a location covers everything
    below it and a deeper rule cannot take it back. The database secret bypasses them all."""

    DEFAULT = {"read": "public", "write": "auth"}

    def __init__(self, spec=None):
        spec = dict(spec or {})
        unknown = set(spec) - {"read", "write", "paths"}
        if unknown:
            raise ValueError("rules: unknown keys %s" % sorted(unknown))
        self.spec = {"read": spec.get("read", "public"), "write": spec.get("write", "auth"),
                     "paths": dict(spec.get("paths") or {})}
        self.at = {(): {"read": self.spec["read"], "write": self.spec["write"]}}
        check_rule(self.spec["read"], "rules.read")
        check_rule(self.spec["write"], "rules.write")
        for p, r in self.spec["paths"].items():
            if not isinstance(r, dict) or set(r) - {"read", "write"}:
                raise ValueError("rules.paths[%r] must be {\"read\": R, \"write\": W}" % p)
            for op, rule in r.items():
                check_rule(rule, "rules.paths[%r].%s" % (p, op))
            self.at.setdefault(tuple(split_path(p)), {}).update(r)

    def allows(self, op, segs, cred, root):
        if cred.kind == "admin":
            return True
        for depth in range(len(segs) + 1):
            rule = self.at.get(tuple(segs[:depth]), {}).get(op)
            if rule is not None and self.grants(rule, cred, root):
                return True
        return False

    @staticmethod
    def grants(rule, cred, root):
        if rule == "public":
            return True
        if rule == "auth":
            return cred.kind != "anonymous"
        if rule == "none":
            return False
        if rule.get("auth") and cred.kind == "anonymous":
            return False
        return render(get(root, split_path(rule["data"]))) == rule["equals"]
