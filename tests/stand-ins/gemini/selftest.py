#!/usr/bin/python3
# selftest.py: checks server.py (the Gemini generateContent + OpenAI-compatible stand-in) from the
# outside, with http.client and raw sockets. One TAP-style line per check, then "N passed, N failed";
# exits 0 when everything passed.
#   /usr/bin/python3 tests/stand-ins/gemini/selftest.py [--no-timing]
import http.client, json, os, re, socket, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "server.py")
FIXDIR = os.path.normpath(os.path.join(HERE, "..", "..", "fixtures", "gemini"))
KEY = "test-gemini-key"
GEN = "/v1beta/models/%s:generateContent"
VERDICT = {"signal": "BUY", "score": 80, "reasoning": "stand-in default"}
passed = failed = 0

# --no-timing (make test, on a shared machine): how fast something came is
# not checked, only that it came, and that a delay lasted what was asked
TIMING = "--no-timing" not in sys.argv


def fast(cond):
    return cond or not TIMING


def check(cond, desc, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", passed + failed, desc))
    if not cond and detail:
        for line in str(detail).splitlines()[:12]:
            print("#   " + line)
    sys.stdout.flush()
    return cond


def fixture_bytes(name):
    with open(os.path.join(FIXDIR, name), "rb") as f:
        return f.read()


def fixture(name):
    return json.loads(fixture_bytes(name))


def shape(v):
    """The key structure of a JSON value (values replaced by their type)."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(x) for x in v[:1]]
    return type(v).__name__


class Srv:
    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, SERVER, "--port", "0"] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.first_line = self.proc.stdout.readline()
        m = re.match(r"^LISTENING (\d+)\n$", self.first_line)
        if not m:
            raise RuntimeError("server did not start: %r %s" % (self.first_line, self.proc.stderr.read()))
        self.port = int(m.group(1))

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        rest = self.proc.stdout.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rest

    def control(self, doc, expect=200):
        s, _, b = request(self.port, "POST", "/__control", json.dumps(doc).encode())
        if s != expect:
            raise RuntimeError("control %s -> %s %s" % (doc, s, b))
        return json.loads(b)

    def state(self):
        return json.loads(request(self.port, "GET", "/__control")[2])

    def last(self):
        return self.state()["log"][-1]


def request(port, method, target, body=b"", headers=(), timeout=10, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.putrequest(method, target, skip_accept_encoding=True)
        for k, v in headers:
            c.putheader(k, v)
        c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        if conn is None:
            c.close()


def gemini(port, body, model="gemini-3.5-flash", key=KEY, query="", **kw):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    hdrs = [("Content-Type", "application/json")] + ([("x-goog-api-key", key)] if key else [])
    return request(port, "POST", GEN % model + query, body, hdrs, **kw)


def openai(port, body, key=KEY, **kw):
    hdrs = [("Content-Type", "application/json")] + ([("Authorization", "Bearer " + key)] if key else [])
    return request(port, "POST", "/v1/chat/completions", json.dumps(body).encode(), hdrs, **kw)


def raw_exchange(port, body, timeout=5):
    """Sends one generateContent request on a raw socket; returns (bytes read, exception or None)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    req = ("POST %s HTTP/1.1\r\nHost: x\r\nx-goog-api-key: %s\r\nContent-Type: application/json\r\n"
           "Content-Length: %d\r\n\r\n" % (GEN % "gemini-3.5-flash", KEY, len(body))).encode() + body
    s.sendall(req)
    data, err = b"", None
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except Exception as e:
        err = e
    s.close()
    return data, err


PROMPT = {"contents": [{"role": "user", "parts": [{"text": "BTCUSDT closes: 1 2 3 4. Verdict?"}]}],
          "systemInstruction": {"parts": [{"text": "You are the tribunal."}]},
          "generationConfig": {"temperature": 0.2, "maxOutputTokens": 256, "responseMimeType": "application/json",
                               "responseJsonSchema": {"type": "object"}, "thinkingConfig": {"thinkingBudget": 0}}}
CHAT = {"model": "local", "messages": [{"role": "system", "content": "You judge."},
                                       {"role": "user", "content": "Verdict?"}],
        "temperature": 0.1, "max_tokens": 200,
        "response_format": {"type": "json_schema", "json_schema": {"name": "verdict", "schema": {"type": "object"},
                                                                   "strict": True}}}


def test_success(srv):
    p = srv.port
    thinking = dict(PROMPT, generationConfig=dict(PROMPT["generationConfig"], thinkingConfig={"thinkingBudget": 64}))
    s, h, b = gemini(p, thinking)
    check(s == 200 and h["content-type"] == "application/json; charset=UTF-8", "default answer 200 JSON", (s, h))
    doc, ref = json.loads(b), fixture("response_success_json_output.json")
    check(list(doc) == list(ref) and shape(doc) == shape(ref), "shaped like response_success_json_output.json",
          (shape(doc), shape(ref)))
    u = doc["usageMetadata"]
    check(u["thoughtsTokenCount"] > 0 and u["totalTokenCount"] == u["promptTokenCount"] + u["candidatesTokenCount"]
          + u["thoughtsTokenCount"], "thinking on: thoughtsTokenCount counted in totalTokenCount", u)
    s, h, b = gemini(p, PROMPT)
    doc = json.loads(b)
    check(json.loads(doc["candidates"][0]["content"]["parts"][0]["text"]) == VERDICT, "default verdict text")
    check(doc["modelVersion"] == "gemini-3.5-flash" and doc["responseId"], "modelVersion = model, responseId")
    u = doc["usageMetadata"]
    prompt_len = len("BTCUSDT closes: 1 2 3 4. Verdict?") + len("You are the tribunal.")
    check(abs(u["promptTokenCount"] - prompt_len / 4) <= 1 and "thoughtsTokenCount" not in u and
          u["totalTokenCount"] == u["promptTokenCount"] + u["candidatesTokenCount"],
          "thinkingBudget 0: usageMetadata without thoughts, prompt ~ len/4", u)
    e = srv.last()
    check(e["method"] == "POST" and e["path"] == GEN % "gemini-3.5-flash" and e["query"] == "" and
          e["headers"].get("x-goog-api-key") == KEY and e["body"] == PROMPT and e["key_in_url"] is False and
          e["status"] == 200 and e["api"] == "gemini" and e["answer"] == "default:text", "request logged", e)
    for name in ("request_json_schema.json", "request_max_output_tokens.json", "request_system_instruction.json"):
        s, _, b = gemini(p, fixture_bytes(name), model="gemini-2.5-flash")
        check(s == 200, "fixture request %s accepted" % name, b[:300])
    snake = {"contents": [{"parts": [{"text": "x"}]}], "system_instruction": {"role": "user", "parts": [{"text": "s"}]},
             "generation_config": {"max_output_tokens": 5, "response_mime_type": "application/json",
                                   "response_schema": {"type": "OBJECT"}}}
    check(gemini(p, snake)[0] == 200, "snake_case field names and a missing role accepted")
    c = http.client.HTTPConnection("127.0.0.1", p, timeout=5)
    r1, r2 = gemini(p, PROMPT, conn=c), gemini(p, PROMPT, conn=c)
    c.close()
    check(r1[0] == r2[0] == 200, "two requests on one keep-alive connection")


def test_auth(srv):
    p, err400 = srv.port, fixture_bytes("error_400_api_key_invalid.json")
    for desc, kw in (("missing key", {"key": None}), ("wrong key", {"key": "nope"}),
                     ("key in URL and header", {"query": "?key=" + KEY}),
                     ("key in URL only", {"key": None, "query": "?alt=json&key=" + KEY})):
        s, _, b = gemini(p, PROMPT, **kw)
        e = srv.last()
        check(s == 400 and b == err400 and e["answer"] == "error:API_KEY_INVALID",
              "%s -> 400 API_KEY_INVALID fixture verbatim" % desc, (s, b[:200]))
        check(e["key_in_url"] is ("query" in kw), "%s: key_in_url %s" % (desc, "query" in kw), e)
    s, _, b = gemini(p, PROMPT, model="gemini-9-ultra")
    want = fixture_bytes("error_404_model_not_found.json").replace(b"custom-gemini-2.0-flash", b"gemini-9-ultra")
    doc = json.loads(b)
    check(s == 404 and b == want and doc["error"]["message"].startswith(
        "models/gemini-9-ultra is not found for API version v1beta, or is not supported for generateContent."),
          "unknown model -> 404 with the model name substituted", b[:300])
    srv.control({"models": ["gemini-custom-1"]})
    check(gemini(p, PROMPT, model="gemini-custom-1")[0] == 200 and gemini(p, PROMPT)[0] == 404,
          "control sets the known models")
    srv.control({"reset": True})
    check(gemini(p, PROMPT)[0] == 200, "reset restores the default models")
    s, h, b = request(p, "GET", GEN % "gemini-3.5-flash", headers=[("x-goog-api-key", KEY)])
    s2, _, _ = gemini(p, PROMPT, model="x:y")
    s3, _, _ = request(p, "POST", "/v1beta/models/gemini-3.5-flash:streamGenerateContent?alt=sse", b"{}")
    check(s == 404 and s2 == 404 and s3 == 404 and h["content-type"].startswith("text/html"),
          "wrong method / unknown path -> 404 HTML")


def test_shape(srv):
    p = srv.port

    def bad(body, needle, desc):
        s, _, b = gemini(p, body)
        try:
            err = json.loads(b)["error"]
        except (ValueError, KeyError):
            err = {}
        check(s == 400 and err.get("status") == "INVALID_ARGUMENT" and err.get("code") == 400 and
              needle in err.get("message", ""), "400 INVALID_ARGUMENT: " + desc, (s, b[:400]))
        check(srv.last()["error"] == err.get("message"), "logged error: " + desc)

    gc = lambda **kw: dict(PROMPT, generationConfig=dict(PROMPT["generationConfig"], **kw))
    u = {"role": "user", "parts": [{"text": "x"}]}
    bad(b"{not json", "Invalid JSON payload received", "body not JSON")
    bad(b"[]", "Root element must be a message", "body a JSON array")
    bad(b"", "contents is not specified", "empty body")
    bad({"contents": []}, "contents is not specified", "empty contents")
    bad({"contents": {"parts": []}}, "Invalid value at 'contents'", "contents not an array")
    bad({"contents": ["hi"]}, "Invalid value at 'contents[0]'", "content not an object")
    bad({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "Please use a valid role: user, model.",
        "role system in contents")
    bad({"contents": [{"role": "user", "parts": []}]}, "contents[0].parts: contents.parts must not be empty",
        "empty parts")
    bad({"contents": [{"role": "user", "parts": [{}]}]}, "required oneof field 'data'", "part without text")
    bad({"contents": [{"role": "user", "parts": [{"text": 5}]}]}, "Invalid value at 'contents[0].parts[0].text'",
        "text not a string")
    bad({"contents": [u], "systemInstruction": "be nice"}, "Invalid value at 'system_instruction'",
        "systemInstruction a string")
    bad({"contents": [u], "systemInstruction": {"parts": []}}, "system_instruction.parts", "systemInstruction empty")
    bad({"contents": [u], "foo": 1}, 'Unknown name "foo": Cannot find field.', "unknown top-level key")
    bad({"contents": [u], "generationConfig": {"systemInstruction": {}}},
        'Unknown name "systemInstruction" at \'generation_config\'', "systemInstruction inside generationConfig")
    bad(gc(responseSchema={"type": "OBJECT"}), "response_schema and response_json_schema", "both schemas")
    bad(dict(PROMPT, generationConfig={"responseJsonSchema": {"type": "object"}}), "requires response_mime_type",
        "schema without JSON mime type")
    bad(gc(responseMimeType="json"), "allowed mimetypes", "bad responseMimeType")
    bad(gc(temperature=2.5), "temperature", "temperature above 2")
    bad(gc(temperature=-0.1), "temperature", "temperature below 0")
    bad(gc(temperature="0.2"), "Invalid value at 'generation_config.temperature' (TYPE_FLOAT)", "temperature string")
    bad(gc(maxOutputTokens=0), "max_output_tokens must be positive", "maxOutputTokens 0")
    bad(gc(maxOutputTokens=1.5), "(TYPE_INT32), 1.5", "maxOutputTokens 1.5")
    bad(gc(maxOutputTokens="200"), "(TYPE_INT32)", "maxOutputTokens string")
    bad(gc(thinkingConfig={"thinkingBudget": 0.5}), "thinking_budget", "thinkingBudget not integer")
    bad(gc(thinkingConfig={"budget": 1}), "Unknown name \"budget\" at 'generation_config.thinking_config'",
        "unknown thinkingConfig key")
    check(gemini(p, gc(temperature=0, maxOutputTokens=1, thinkingConfig={"thinkingBudget": -1}))[0] == 200,
          "edge values accepted (temperature 0, maxOutputTokens 1, thinkingBudget -1)")
    check(gemini(p, gc(temperature=2))[0] == 200, "temperature 2 accepted")


def test_queue(srv):
    p = srv.port
    srv.control({"reset": True})
    fixtures = [("response_finish_max_tokens.json", 200), ("response_prompt_blocked_safety.json", 200),
                ("error_429_resource_exhausted_retryinfo.json", 429),
                ("error_429_quota_exceeded_no_retryinfo.json", 429), ("error_400_api_key_invalid.json", 400),
                ("error_404_model_not_found.json", 404)]
    r = srv.control({"queue": [{"fixture": n} for n, _ in fixtures]})
    check(r["ok"] and r["queue_left"] == len(fixtures), "queue of fixtures accepted", r)
    for name, status in fixtures:
        s, h, b = gemini(p, PROMPT)
        check(s == status and b == fixture_bytes(name), "fixture %s served verbatim with %d" % (name, status),
              (s, b[:200]))
    check(json.loads(fixture_bytes("error_429_resource_exhausted_retryinfo.json"))["error"]["details"][2]
          ["retryDelay"] == "56s", "RetryInfo fixture has retryDelay 56s")
    retry = {"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED",
                       "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.2s"}]}}
    srv.control({"queue": [{"text": '{"signal":"WAIT","score":10,"reasoning":"x"}', "times": 2},
                           {"text": "not json at all {", "finish_reason": "MAX_TOKENS"},
                           {"status": 429, "body": json.dumps(retry)},
                           {"status": 503, "body": "<html>busy</html>", "content_type": "text/html"},
                           {"status": 200, "body": {"candidates": []}}]})
    check(srv.state()["queue_left"] == 6, "queue_left counts times")
    for i in range(2):
        s, _, b = gemini(p, PROMPT)
        check(json.loads(json.loads(b)["candidates"][0]["content"]["parts"][0]["text"])["signal"] == "WAIT",
              "text answer, repeat %d of times:2" % (i + 1))
    s, _, b = gemini(p, PROMPT)
    c = json.loads(b)["candidates"][0]
    check(c["content"]["parts"][0]["text"] == "not json at all {" and c["finishReason"] == "MAX_TOKENS",
          "raw text + finish_reason")
    s, h, b = gemini(p, PROMPT)
    check(s == 429 and json.loads(b) == retry and srv.last()["answer"] == "queue:raw", "raw 429 with retryDelay 0.2s")
    s, h, b = gemini(p, PROMPT)
    check(s == 503 and b == b"<html>busy</html>" and h["content-type"] == "text/html", "raw status/body/content_type")
    check(json.loads(gemini(p, PROMPT)[2]) == {"candidates": []}, "raw body given as JSON value")
    check(srv.state()["queue_left"] == 0 and json.loads(gemini(p, PROMPT)[2])["candidates"], "empty queue -> default")
    srv.control({"default": {"text": "prose, not a verdict"}})
    check(json.loads(gemini(p, PROMPT)[2])["candidates"][0]["content"]["parts"][0]["text"] == "prose, not a verdict",
          "control default answer")
    srv.control({"default": None})
    srv.control({"queue": [{"text": "a"}]})
    gemini(p, PROMPT, key="wrong")
    check(srv.state()["queue_left"] == 1, "a rejected request does not consume the queue")
    srv.control({"append": [{"text": "b"}]})
    texts = [json.loads(gemini(p, PROMPT)[2])["candidates"][0]["content"]["parts"][0]["text"] for _ in range(2)]
    check(texts == ["a", "b"], "append adds to the end", texts)
    for bad in ({"queue": [{"fixture": "nope.json"}]}, {"queue": [{"fixture": "request_json_schema.json"}]},
                {"queue": [{"fault": "explode"}]}, {"queue": [{"text": "x", "times": 0}]},
                {"queue": [{"txt": "x"}]}, {"bogus": 1}, {"queue": {"text": "x"}}):
        r = srv.control(bad, expect=400)
        check(r["ok"] is False and r["error"], "control refuses %s" % json.dumps(bad))
    srv.control({"queue": [{"text": "x"}]})
    srv.control({"reset": True})
    st = srv.state()
    check(st["log"] == [] and st["queue_left"] == 0, "reset clears log and queue")


def test_faults(srv):
    p = srv.port
    srv.control({"reset": True, "queue": [{"fault": "slow", "ms": 400}]})
    t0 = time.monotonic()
    s, _, b = gemini(p, PROMPT)
    check(s == 200 and time.monotonic() - t0 >= 0.38 and json.loads(b)["candidates"], "slow: answer after ms")
    body = json.dumps(PROMPT).encode()
    srv.control({"queue": [{"fault": "reset"}]})
    data, err = raw_exchange(p, body)
    check(data == b"" and isinstance(err, ConnectionResetError), "reset: TCP RST, no answer", (data, err))
    srv.control({"queue": [{"fault": "reset", "delay_ms": 300}]})
    t0 = time.monotonic()
    data, err = raw_exchange(p, body)
    check(isinstance(err, ConnectionResetError) and time.monotonic() - t0 >= 0.28, "delay_ms delays a fault too")
    srv.control({"queue": [{"fault": "garbage"}]})
    data, err = raw_exchange(p, body)
    check(data and not data.startswith(b"HTTP/") and err is None, "garbage: non-HTTP bytes then close", data)
    try:
        srv.control({"queue": [{"fault": "garbage"}]})
        gemini(p, PROMPT)
        check(False, "garbage: http.client fails")
    except http.client.HTTPException as e:
        check(True, "garbage: http.client fails (%s)" % type(e).__name__)
    srv.control({"queue": [{"fault": "no_answer", "hold_ms": 1500}]})
    try:
        gemini(p, PROMPT, timeout=0.5)
        check(False, "no_answer: client times out")
    except socket.timeout:
        check(True, "no_answer: client times out")
    srv.control({"queue": [{"fault": "no_answer", "hold_ms": 300}]})
    t0 = time.monotonic()
    data, err = raw_exchange(p, body)
    check(data == b"" and err is None and 0.25 < time.monotonic() - t0 and fast(time.monotonic() - t0 < 3), "no_answer: closed after hold_ms")
    srv.control({"queue": [{"fault": "truncated"}]})
    data, err = raw_exchange(p, body)
    head, _, rest = data.partition(b"\r\n\r\n")
    m = re.search(rb"Content-Length: (\d+)", head)
    check(m and int(m.group(1)) > len(rest) and json.loads(rest)["candidates"], "truncated: Content-Length > body",
          head)
    try:
        srv.control({"queue": [{"fault": "truncated"}]})
        gemini(p, PROMPT)
        check(False, "truncated: http.client IncompleteRead")
    except http.client.IncompleteRead:
        check(True, "truncated: http.client IncompleteRead")
    srv.control({"queue": [{"fault": "no_answer"}]})
    s = socket.create_connection(("127.0.0.1", p), timeout=5)
    s.sendall(b"POST " + (GEN % "gemini-3.5-flash").encode() + b" HTTP/1.1\r\nx-goog-api-key: " + KEY.encode() +
              b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    time.sleep(0.2)
    srv.control({"reset": True})
    check(s.recv(10) == b"", "reset releases a held no_answer connection")
    s.close()
    check(gemini(p, PROMPT)[0] == 200, "server still answers after the faults")


def test_openai(srv):
    p = srv.port
    srv.control({"reset": True})
    want401 = (b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error",'
               b'"code":"invalid_api_key"}}')
    for desc, key in (("wrong", "nope"), ("missing", None)):
        s, _, b = openai(p, CHAT, key=key)
        check(s == 401 and b == want401, "openai: %s key -> 401 invalid_api_key" % desc, (s, b))
    s, h, b = openai(p, CHAT)
    doc = json.loads(b)
    check(s == 200 and doc["object"] == "chat.completion" and doc["id"].startswith("chatcmpl-") and
          isinstance(doc["created"], int) and doc["model"] == "local", "openai: success envelope", doc)
    ch = doc["choices"][0]
    check(ch["index"] == 0 and ch["message"]["role"] == "assistant" and ch["finish_reason"] == "stop" and
          json.loads(ch["message"]["content"]) == VERDICT, "openai: default verdict in message.content", ch)
    us = doc["usage"]
    check(us["total_tokens"] == us["prompt_tokens"] + us["completion_tokens"] and us["prompt_tokens"] >= 4,
          "openai: usage", us)
    e = srv.last()
    check(e["api"] == "openai" and e["headers"]["authorization"] == "Bearer " + KEY and e["body"] == CHAT,
          "openai: request logged", e)
    srv.control({"queue": [{"text": "truncated verd", "finish_reason": "length"}, {"fault": "reset"}]})
    ch = json.loads(openai(p, CHAT)[2])["choices"][0]
    check(ch["message"]["content"] == "truncated verd" and ch["finish_reason"] == "length",
          "openai: queued text + finish_reason length")
    try:
        openai(p, CHAT)
        check(False, "openai: shared queue fault (reset)")
    except (ConnectionError, http.client.HTTPException):
        check(True, "openai: shared queue fault (reset)")
    rf = lambda **kw: dict(CHAT, response_format={"type": "json_schema", "json_schema": dict(
        CHAT["response_format"]["json_schema"], **kw)})
    for desc, body in (("no messages", dict(CHAT, messages=[])),
                       ("bad role", dict(CHAT, messages=[{"role": "model", "content": "x"}])),
                       ("content not string", dict(CHAT, messages=[{"role": "user", "content": [1]}])),
                       ("no model", {k: v for k, v in CHAT.items() if k != "model"}),
                       ("temperature 3", dict(CHAT, temperature=3)),
                       ("max_tokens 0", dict(CHAT, max_tokens=0)),
                       ("unknown key", dict(CHAT, foo=1)),
                       ("response_format type", dict(CHAT, response_format={"type": "xml"})),
                       ("json_schema without schema", rf(schema=None)),
                       ("json_schema without name", rf(name="")),
                       ("strict not bool", rf(strict="yes"))):
        s, _, b = openai(p, body)
        err = json.loads(b).get("error", {})
        check(s == 400 and err.get("type") == "invalid_request_error" and err.get("message"),
              "openai 400: " + desc, (s, b))
    check(openai(p, dict(CHAT, response_format={"type": "json_object"}))[0] == 200, "openai: json_object accepted")


def main():
    srv = Srv()
    check(srv.first_line == "LISTENING %d\n" % srv.port, "prints exactly 'LISTENING <port>'")
    try:
        for section in (test_success, test_auth, test_shape, test_queue, test_faults, test_openai):
            try:
                section(srv)
            except Exception as e:  # a crash in one section is one failure; the rest still run
                import traceback
                check(False, "%s crashed: %r" % (section.__name__, e), traceback.format_exc())
        extra = srv.stop()
        check(extra == "", "nothing else on stdout", extra)
    finally:
        if srv.proc.poll() is None:
            srv.stop()
    srv = Srv("--key", "other-key", "--models", "m-1", "--fixtures", FIXDIR)
    try:
        check(gemini(srv.port, PROMPT, model="m-1", key="other-key")[0] == 200 and
              gemini(srv.port, PROMPT, model="m-1")[0] == 400 and
              gemini(srv.port, PROMPT, key="other-key")[0] == 404, "--key, --models and --fixtures options")
    finally:
        srv.stop()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
