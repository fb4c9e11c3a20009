#!/usr/bin/python3
# server.py: a local stand-in for the Google Gemini API (POST /v1beta/models/{model}:generateContent)
# and for an OpenAI-compatible POST /v1/chat/completions (as llama.cpp / Ollama serve it), for
# nomade's tests. Python 3 standard library only; binds 127.0.0.1 only.
#
#   server.py --port 0 [--key K] [--fixtures DIR] [--models a,b,c] [--verbose]
#
# Prints exactly one line "LISTENING <port>" on stdout once ready, then serves until killed.
# Auth, request shape and answers follow the project's protocol notes (section 3) and the fixtures
# in tests/fixtures/gemini/. /__control (not part of either API) queues answers and faults and
# exposes the request log. See README.md next to this file.
import argparse, json, os, random, re, select, socket, socketserver, string, struct, sys, threading, time
import urllib.parse
from http.server import BaseHTTPRequestHandler

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES = os.path.normpath(os.path.join(HERE, "..", "..", "fixtures", "gemini"))
DEFAULT_KEY = "test-gemini-key"
DEFAULT_MODELS = ["gemini-3.5-flash", "gemini-3.5-flash-lite", "gemini-2.5-flash"]
DEFAULT_VERDICT = '{"signal":"BUY","score":80,"reasoning":"stand-in default"}'
GEMINI_PATH = re.compile(r"^/v1beta/models/([A-Za-z0-9][A-Za-z0-9._-]*):generateContent$")
OPENAI_PATH = "/v1/chat/completions"
JSON_CT = "application/json; charset=UTF-8"
GOOGLE_HEADERS = [("Vary", "Origin"), ("Vary", "X-Origin"), ("Vary", "Referer"),
                  ("Server", "scaffolding on HTTPServer2"), ("X-Content-Type-Options", "nosniff")]
FAULTS = ("slow", "reset", "garbage", "no_answer", "truncated")
GARBAGE = b"\x15\x03\x01\x00\x02\x02\x28 this is not HTTP \xff\xfe\x00\r\n\r\n"
FIXTURE_NAME = re.compile(r"^(response_[\w.-]+\.json|error_(\d{3})_[\w.-]+\.json|stream_[\w.-]+\.txt)$")
CONTENT_KEYS = {"fixture", "text", "status", "body"}
ANSWER_KEYS = {"fixture", "text", "status", "body", "content_type", "fault", "ms", "hold_ms", "extra",
               "times", "finish_reason", "delay_ms"}
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
HTML_404 = ("<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n"
            "  <p><b>404.</b> <ins>That\u2019s an error.</ins>\n  <p>The requested URL <code>%s</code> was not "
            "found on this server.  <ins>That\u2019s all we know.</ins>\n")
OPENAI_401 = ('{"error":{"message":"Incorrect API key provided","type":"invalid_request_error",'
              '"code":"invalid_api_key"}}')
NS = "type.googleapis.com/google.ai.generativelanguage.v1beta."

# GenerateContentRequest field names (camelCase; the API also accepts the proto's snake_case names)
TOP_FIELDS = {"contents", "systemInstruction", "generationConfig", "safetySettings", "tools", "toolConfig",
              "cachedContent", "model"}
CONTENT_FIELDS = {"role", "parts"}
PART_FIELDS = {"text", "thought", "thoughtSignature", "inlineData", "fileData", "functionCall",
               "functionResponse", "executableCode", "codeExecutionResult", "videoMetadata", "partMetadata"}
GEN_FIELDS = {"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities",
              "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty",
              "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers", "speechConfig",
              "thinkingConfig", "imageConfig", "mediaResolution"}
THINK_FIELDS = {"thinkingBudget", "includeThoughts", "thinkingLevel"}
MIME_TYPES = ("text/plain", "application/json", "application/xml", "application/yaml", "text/x.enum")
OPENAI_FIELDS = {"model", "messages", "temperature", "max_tokens", "max_completion_tokens", "response_format",
                 "top_p", "n", "stop", "seed", "presence_penalty", "frequency_penalty", "stream", "user",
                 "logit_bias", "logprobs", "top_logprobs"}


class Reply(Exception):
    """An answer decided before the queue is looked at (auth, model, shape errors)."""

    def __init__(self, status, body, ctype=JSON_CT, reason="error", google=True):
        self.status, self.ctype, self.reason, self.google = status, ctype, reason, google
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")


pretty = lambda doc: json.dumps(doc, indent=2, ensure_ascii=False)  # Google answers with 2-space indented JSON
rid = lambda n=23, extra="-_": "".join(random.choice(string.ascii_letters + string.digits + extra) for _ in range(n))
approx_tokens = lambda text: max(1, (len(text) + 2) // 4)  # "roughly len/4"
camel = lambda name: re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)  # snake_case names work too
is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)
is_num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)


# ------------------------------------------------------------------------------ Gemini checks
def g_invalid(msg, field=None, parser=False):
    err = {"code": 400, "message": msg, "status": "INVALID_ARGUMENT"}
    if parser:  # the JSON/proto parser's errors carry a BadRequest detail
        fv = {"field": field, "description": msg} if field else {"description": msg}
        err["details"] = [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [fv]}]
    return Reply(400, pretty({"error": err}), reason="INVALID_ARGUMENT")


def g_bad_value(where, typ, v):
    return g_invalid("Invalid value at '%s' (%s), %s" % (where, typ, json.dumps(v)), where, True)


def g_fields(obj, known, where):
    out = {}
    for k, v in obj.items():
        if camel(k) not in known:
            at = " at '%s'" % where if where else ""
            raise g_invalid('Invalid JSON payload received. Unknown name "%s"%s: Cannot find field.' % (k, at),
                            where, True)
        out[camel(k)] = v
    return out


def g_content(c, where, roles):
    """Checks one Content ({role?, parts:[{text}]}); returns its text."""
    if not isinstance(c, dict):
        raise g_bad_value(where, NS + "Content", c)
    c = g_fields(c, CONTENT_FIELDS, where)
    if "role" in c:
        if not isinstance(c["role"], str):
            raise g_bad_value(where + ".role", "TYPE_STRING", c["role"])
        if roles and c["role"] not in roles:
            raise g_invalid("Please use a valid role: user, model.")
    parts = c.get("parts")
    if parts in (None, []):
        raise g_invalid("* GenerateContentRequest.%s.parts: contents.parts must not be empty.\n" % where)
    if not isinstance(parts, list):
        raise g_bad_value(where + ".parts", NS + "Part", parts)
    text = []
    for j, p in enumerate(parts):
        pw = "%s.parts[%d]" % (where, j)
        if not isinstance(p, dict):
            raise g_bad_value(pw, NS + "Part", p)
        p = g_fields(p, PART_FIELDS, pw)
        if "text" not in p:
            if not set(p) & (PART_FIELDS - {"text", "thought", "thoughtSignature", "partMetadata"}):
                raise g_invalid("* GenerateContentRequest.%s.data: required oneof field 'data' must have one "
                                "initialized field\n" % pw)
        elif not isinstance(p["text"], str):
            raise g_bad_value(pw + ".text", "TYPE_STRING", p["text"])
        else:
            text.append(p["text"])
    return "".join(text)


def check_gemini(raw):
    """Validates a generateContent body; returns (prompt text, thought tokens to report)."""
    try:
        doc = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except ValueError:
        raise g_invalid("Invalid JSON payload received. Unexpected token.", None, True)
    if not isinstance(doc, dict):
        raise g_invalid('Invalid JSON payload received. Unknown name "": Root element must be a message.', None, True)
    d = g_fields(doc, TOP_FIELDS, "")
    contents = d.get("contents")
    if contents in (None, []):
        raise g_invalid("* GenerateContentRequest.contents: contents is not specified\n")
    if not isinstance(contents, list):
        raise g_bad_value("contents", NS + "Content", contents)
    prompt = [g_content(c, "contents[%d]" % i, ("user", "model")) for i, c in enumerate(contents)]
    if "systemInstruction" in d:
        prompt.insert(0, g_content(d["systemInstruction"], "system_instruction", None))
    gc = d.get("generationConfig", {})
    if not isinstance(gc, dict):
        raise g_bad_value("generation_config", NS + "GenerationConfig", gc)
    gc = g_fields(gc, GEN_FIELDS, "generation_config")
    pre = "* GenerateContentRequest.generation_config."
    if "temperature" in gc:
        t = gc["temperature"]
        if not is_num(t):
            raise g_bad_value("generation_config.temperature", "TYPE_FLOAT", t)
        if not 0 <= t <= 2:
            raise g_invalid(pre + "temperature: temperature must be in the range [0.0, 2.0], got %s\n" % t)
    if "maxOutputTokens" in gc:
        m = gc["maxOutputTokens"]
        if not is_int(m):
            raise g_bad_value("generation_config.max_output_tokens", "TYPE_INT32", m)
        if m <= 0:
            raise g_invalid(pre + "max_output_tokens: max_output_tokens must be positive, got %d\n" % m)
    mime = gc.get("responseMimeType", "text/plain")
    if not isinstance(mime, str):
        raise g_bad_value("generation_config.response_mime_type", "TYPE_STRING", mime)
    if mime not in MIME_TYPES:
        raise g_invalid(pre + "response_mime_type: allowed mimetypes are `text/plain`, `application/json`, "
                        "`application/xml`, `application/yaml` and `text/x.enum`.\n")
    schemas = [k for k in ("responseSchema", "responseJsonSchema") if k in gc]
    if len(schemas) == 2:
        raise g_invalid("* GenerateContentRequest.generation_config: response_schema and response_json_schema "
                        "cannot both be set; use only one of them.\n")
    for k in schemas:
        if not isinstance(gc[k], dict):
            raise g_bad_value("generation_config." + re.sub(r"([A-Z])", r"_\1", k).lower(),
                              "type.googleapis.com/google.protobuf.Value" if k == "responseJsonSchema"
                              else NS + "Schema", gc[k])
        if mime not in ("application/json", "text/x.enum"):
            raise g_invalid(pre + "response_mime_type: %s requires response_mime_type application/json, got %s.\n"
                            % (k, mime))
    thoughts = 24  # thinking models report thoughtsTokenCount unless thinkingBudget is 0
    if "thinkingConfig" in gc:
        tc = gc["thinkingConfig"]
        if not isinstance(tc, dict):
            raise g_bad_value("generation_config.thinking_config", NS + "ThinkingConfig", tc)
        tc = g_fields(tc, THINK_FIELDS, "generation_config.thinking_config")
        if "thinkingBudget" in tc and not is_int(tc["thinkingBudget"]):
            raise g_bad_value("generation_config.thinking_config.thinking_budget", "TYPE_INT32", tc["thinkingBudget"])
        budget = tc.get("thinkingBudget", -1)
        thoughts = min(budget, thoughts) if budget >= 0 else thoughts
    return "".join(prompt), thoughts


# ------------------------------------------------------------------------------ OpenAI checks
def o_invalid(msg, param=None):
    return Reply(400, json.dumps({"error": {"message": msg, "type": "invalid_request_error", "param": param,
                                            "code": None}}), "application/json; charset=utf-8",
                 "invalid_request_error", google=False)


def check_openai(raw):
    try:
        doc = json.loads(raw.decode("utf-8"))
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise o_invalid("We could not parse the JSON body of your request. The API expects a JSON payload.")
    for k in doc:
        if k not in OPENAI_FIELDS:
            raise o_invalid("Unrecognized request argument supplied: %s" % k, k)
    if not isinstance(doc.get("model"), str) or not doc["model"]:
        raise o_invalid("you must provide a model parameter", "model")
    msgs = doc.get("messages")
    if msgs is None:
        raise o_invalid("Missing required parameter: 'messages'.", "messages")
    if not isinstance(msgs, list) or not msgs:
        raise o_invalid("Invalid 'messages': expected a non-empty array of messages.", "messages")
    prompt = []
    for i, m in enumerate(msgs):
        w = "messages[%d]" % i
        if not isinstance(m, dict):
            raise o_invalid("Invalid type for '%s': expected an object." % w, w)
        if m.get("role") not in ("system", "user", "assistant"):
            raise o_invalid("Invalid value for '%s.role': %s. Supported values are: 'system', 'user' and "
                            "'assistant'." % (w, json.dumps(m.get("role"))), w + ".role")
        if not isinstance(m.get("content"), str):
            raise o_invalid("Invalid type for '%s.content': expected a string." % w, w + ".content")
        prompt.append(m["content"])
    t = doc.get("temperature")
    if t is not None and (not is_num(t) or not 0 <= t <= 2):
        raise o_invalid("Invalid 'temperature': expected a number between 0 and 2, but got %s instead."
                        % json.dumps(t), "temperature")
    for k in ("max_tokens", "max_completion_tokens"):
        if k in doc and (not is_int(doc[k]) or doc[k] < 1):
            raise o_invalid("Invalid '%s': expected an integer >= 1, but got %s instead." % (k, json.dumps(doc[k])), k)
    if doc.get("stream"):
        raise o_invalid("stream is not supported by this stand-in", "stream")
    rf = doc.get("response_format")
    if rf is not None:
        if not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object", "json_schema"):
            raise o_invalid("Invalid 'response_format.type': expected one of 'text', 'json_object', "
                            "'json_schema'.", "response_format.type")
        js = rf.get("json_schema") if rf["type"] == "json_schema" else {"name": "-", "schema": {}}
        for k, ok, what in (("", isinstance(js, dict), "an object"),
                            (".name", isinstance(js, dict) and isinstance(js.get("name"), str) and js["name"], "a name"),
                            (".schema", isinstance(js, dict) and isinstance(js.get("schema"), dict), "an object"),
                            (".strict", not isinstance(js, dict) or isinstance(js.get("strict", True), bool), "a boolean")):
            if not ok:
                w = "response_format.json_schema" + k
                raise o_invalid("Invalid or missing '%s': expected %s." % (w, what), w)
    return doc, "".join(prompt)


# ------------------------------------------------------------------------------ state
class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.generation = 0
        self.seq = 0
        self.reset_all()

    def reset_all(self):
        self.log, self.queue, self.default = [], [], None
        self.models = list(self.args.models)
        self.generation += 1  # releases held no_answer connections

    def queue_left(self):
        return sum(q["left"] for q in self.queue)

    def take(self):
        with self.lock:
            if not self.queue:
                return None
            head = self.queue[0]
            head["left"] -= 1
            if head["left"] <= 0:
                self.queue.pop(0)
            return {k: v for k, v in head.items() if k != "left"}

    def check_answer(self, a):
        if not isinstance(a, dict):
            raise ValueError("an answer must be a JSON object: %r" % (a,))
        extra = set(a) - ANSWER_KEYS
        if extra:
            raise ValueError("unknown answer key(s) %s; known: %s" % (sorted(extra), sorted(ANSWER_KEYS)))
        if not set(a) & (CONTENT_KEYS | {"fault"}):
            raise ValueError("an answer needs one of fixture, text, status/body, fault")
        if len(set(a) & {"fixture", "text", "body"}) > 1:
            raise ValueError("fixture, text and body exclude each other")
        if "fault" in a and a["fault"] not in FAULTS:
            raise ValueError("unknown fault %r; known: %s" % (a["fault"], ", ".join(FAULTS)))
        if "fixture" in a:
            if not isinstance(a["fixture"], str) or not FIXTURE_NAME.match(a["fixture"]):
                raise ValueError("fixture must be a response_*.json, error_NNN_*.json or stream_*.txt file name")
            if not os.path.isfile(os.path.join(self.args.fixtures, a["fixture"])):
                raise ValueError("no fixture %r in %s" % (a["fixture"], self.args.fixtures))
        for k in ("text", "content_type", "finish_reason"):
            if k in a and not isinstance(a[k], str):
                raise ValueError("%s must be a string" % k)
        if "status" in a and not (is_int(a["status"]) and 100 <= a["status"] <= 599):
            raise ValueError("status must be an integer 100..599")
        for k in ("ms", "hold_ms", "delay_ms", "extra"):
            if k in a and not (is_num(a[k]) and a[k] >= 0):
                raise ValueError("%s must be a number >= 0" % k)
        times = a.get("times", 1)
        if not is_int(times) or times < 1:
            raise ValueError("times must be an integer >= 1")
        out = dict(a)
        out["left"] = times
        return out

    def apply(self, req):
        known = {"reset", "clear_log", "queue", "append", "models", "default"}
        if set(req) - known:
            raise ValueError("unknown control key(s) %s; known: %s" % (sorted(set(req) - known), sorted(known)))
        for k in ("queue", "append"):
            if k in req and not isinstance(req[k], list):
                raise ValueError("%s must be a list of answers" % k)
        queue = [self.check_answer(a) for a in req.get("queue", [])]
        append = [self.check_answer(a) for a in req.get("append", [])]
        models = req.get("models")
        if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
            raise ValueError("models must be a list of model names")
        default = self.check_answer(req["default"]) if req.get("default") is not None else None
        if default:
            default.pop("left")
        with self.lock:
            if req.get("reset"):
                self.reset_all()
            if req.get("clear_log"):
                self.log = []
            if models is not None:
                self.models = list(models)
            if "default" in req:
                self.default = default
            if "queue" in req:
                self.queue = queue
            self.queue.extend(append)
            return {"ok": True, "queue_left": self.queue_left(), "models": self.models}

    def fallback(self):
        """The answer served when the queue is empty, and the content of a content-less fault."""
        d = self.default
        return dict(d) if d and set(d) & CONTENT_KEYS else {"text": DEFAULT_VERDICT}

    def snapshot(self, since):
        with self.lock:
            return json.dumps({"log": [e for e in self.log if e["seq"] > since], "queue_left": self.queue_left(),
                               "queue": self.queue, "models": self.models, "default": self.default,
                               "key": self.args.key}, indent=1)


# ------------------------------------------------------------------------------ HTTP
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gemini-stand-in"
    sys_version = ""
    timeout = 300

    def log_message(self, fmt_, *args):
        if self.server.args.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt_ % args))

    def handle_one_request(self):
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > 65536 or not self.parse_request():
                self.close_connection = True
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

    def send(self, status, body, ctype, headers=(), declared=None, close=False):
        lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status")), "Date: " + self.date_time_string(),
                 "Content-Type: " + ctype, "Content-Length: %d" % (len(body) if declared is None else declared)]
        lines += ["%s: %s" % kv for kv in headers]
        if close or self.close_connection:
            lines.append("Connection: close")
            self.close_connection = True
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self.wfile.flush()

    def rst(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def hold(self, ms):
        st, conn = self.server.state, self.connection
        gen, deadline = st.generation, time.monotonic() + ms / 1000.0
        while time.monotonic() < deadline and st.generation == gen:
            try:
                r, _, _ = select.select([conn], [], [], 0.1)
                if r and not conn.recv(65536):
                    break
            except (OSError, ValueError):
                break
        self.close_connection = True

    def dispatch(self):
        st = self.server.state
        method, target = self.command, self.path
        path, _, query = target.partition("?")
        try:
            raw = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        if path == "/__control":
            return self.control(method, query, raw)
        try:
            parsed = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            parsed = None
        qs = urllib.parse.parse_qs(query, keep_blank_values=True)
        with st.lock:
            st.seq += 1
            entry = {"seq": st.seq, "time": round(time.time(), 3), "method": method, "path": path, "query": query,
                     "headers": {k.lower(): v for k, v in self.headers.items()}, "body": parsed,
                     "raw_body": raw.decode("utf-8", "replace"), "key_in_url": "key" in qs, "api": None,
                     "model": None, "status": None, "answer": None, "error": None}
            st.log.append(entry)
            del st.log[:-10000]
        try:
            ctx = self.route(method, path, raw, entry)
        except Reply as r:
            try:
                msg = json.loads(r.body)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                msg = r.reason
            with st.lock:
                entry.update(status=r.status, answer="error:" + r.reason, error=msg)
            return self.send(r.status, r.body, r.ctype, GOOGLE_HEADERS if r.google else ())
        spec = st.take()
        label = "queue" if spec else "default"
        if spec is None:
            spec = dict(st.default) if st.default else st.fallback()
        fault = spec.get("fault")
        with st.lock:
            entry["answer"] = "%s:%s" % (label, "fault:" + fault if fault else
                                         "fixture:" + spec["fixture"] if "fixture" in spec else
                                         "text" if "text" in spec else "raw")
        time.sleep((spec.get("delay_ms", 0) + (spec.get("ms", 1000) if fault == "slow" else 0)) / 1000.0)
        if fault == "reset":
            return self.rst()
        if fault == "garbage":
            self.wfile.write(GARBAGE)
            self.wfile.flush()
            self.close_connection = True
            return
        if fault == "no_answer":
            return self.hold(spec.get("hold_ms", 600000))
        if not set(spec) & CONTENT_KEYS:
            spec.update(st.fallback())
        status, body, ctype = self.render(spec, ctx)
        with st.lock:
            entry["status"] = status
        hdrs = GOOGLE_HEADERS if ctx["api"] == "gemini" else ()
        if fault == "truncated":  # the whole body, but a Content-Length that promises more
            return self.send(status, body, ctype, hdrs, declared=len(body) + int(spec.get("extra", 64)), close=True)
        self.send(status, body, ctype, hdrs)

    def route(self, method, path, raw, entry):
        st, key = self.server.state, self.server.args.key
        m = GEMINI_PATH.match(path)
        if path == OPENAI_PATH and method == "POST":
            entry["api"] = "openai"
            if entry["key_in_url"] or self.headers.get("Authorization") != "Bearer " + key:
                raise Reply(401, OPENAI_401, "application/json; charset=utf-8", "invalid_api_key", google=False)
            doc, prompt = check_openai(raw)
            entry["model"] = doc["model"]
            return {"api": "openai", "model": doc["model"], "prompt": prompt}
        if not m or method != "POST":
            raise Reply(404, HTML_404 % path, "text/html; charset=UTF-8", "not_found")
        entry["api"], entry["model"] = "gemini", m.group(1)
        if entry["key_in_url"] or self.headers.get("x-goog-api-key") != key:
            raise Reply(400, self.fixture_bytes("error_400_api_key_invalid.json"), reason="API_KEY_INVALID")
        with st.lock:
            known = m.group(1) in st.models
        if not known:
            body = self.fixture_bytes("error_404_model_not_found.json").replace(b"custom-gemini-2.0-flash",
                                                                                m.group(1).encode())
            raise Reply(404, body, reason="NOT_FOUND")
        prompt, thoughts = check_gemini(raw)
        return {"api": "gemini", "model": m.group(1), "prompt": prompt, "thoughts": thoughts}

    def fixture_bytes(self, name):
        with open(os.path.join(self.server.args.fixtures, name), "rb") as f:
            return f.read()

    def render(self, spec, ctx):
        """(status, body bytes, content type) of one answer."""
        if "fixture" in spec:
            name = spec["fixture"]
            m = FIXTURE_NAME.match(name)
            status = int(m.group(2)) if m.group(2) else 200
            ctype = "text/event-stream" if name.startswith("stream_") else JSON_CT
            return spec.get("status", status), self.fixture_bytes(name), spec.get("content_type", ctype)
        if "text" in spec:
            text, finish = spec["text"], spec.get("finish_reason")
            pt, ct = approx_tokens(ctx["prompt"]), approx_tokens(text)
            if ctx["api"] == "openai":
                doc = {"id": "chatcmpl-" + rid(29, ""), "object": "chat.completion", "created": int(time.time()),
                       "model": ctx["model"], "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                                           "finish_reason": finish or "stop"}],
                       "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}}
                return spec.get("status", 200), json.dumps(doc, separators=(",", ":")).encode(), "application/json; charset=utf-8"
            usage = {"candidatesTokenCount": ct, "promptTokenCount": pt,
                     "promptTokensDetails": [{"modality": "TEXT", "tokenCount": pt}],
                     "thoughtsTokenCount": ctx["thoughts"], "totalTokenCount": pt + ct + ctx["thoughts"]}
            if not ctx["thoughts"]:
                del usage["thoughtsTokenCount"]
            doc = {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                                   "finishReason": finish or "STOP", "index": 0}],
                   "modelVersion": ctx["model"], "responseId": rid(), "turnToken": "v1:" + rid(70),
                   "usageMetadata": usage}
            return spec.get("status", 200), pretty(doc).encode("utf-8"), JSON_CT
        body = spec.get("body", "")
        body = body if isinstance(body, str) else json.dumps(body)
        return spec.get("status", 200), body.encode("utf-8"), spec.get("content_type", JSON_CT)

    def control(self, method, query, raw):
        st = self.server.state
        try:
            if method == "GET":
                since = int(dict(urllib.parse.parse_qsl(query)).get("since", "0") or 0)
                return self.send(200, st.snapshot(since).encode("utf-8"), "application/json")
            if method != "POST":
                raise ValueError("use GET or POST")
            try:
                req = json.loads(raw.decode("utf-8")) if raw.strip() else {}
            except ValueError as e:
                raise ValueError("body is not JSON: %s" % e)
            if not isinstance(req, dict):
                raise ValueError("body must be a JSON object")
            self.send(200, json.dumps(st.apply(req)).encode(), "application/json")
        except (ValueError, TypeError, KeyError) as e:
            self.send(400, json.dumps({"ok": False, "error": str(e)}).encode(), "application/json")


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        if self.args.verbose:
            super().handle_error(request, client_address)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Local stand-in for the Gemini API and an OpenAI-compatible endpoint.")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 picks a free one")
    ap.add_argument("--key", default=DEFAULT_KEY, help="the one API key accepted (both APIs)")
    ap.add_argument("--fixtures", default=DEFAULT_FIXTURES, help="folder with the Gemini fixtures")
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated known Gemini models")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
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
