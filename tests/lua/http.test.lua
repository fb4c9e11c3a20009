-- nomade.http against a local server: the synchronous form, headers and
-- bodies, status codes, timeouts, refused connections, size caps, and
-- transfers that overlap on the event loop, each resuming its coroutine.
local t = require "testlib"
local _
local http = require "nomade.http"
local loop = require "nomade.loop"
local cjson = require "cjson"

local base, stop = t.serve("tests/stand-ins/http_echo.py")
t.ok(base, "the test server started")


local s, h, b = http.request { url = base .. "/echo?a=1&b=2", method = "POST", body = '{"x":1}',
  headers = { "Content-Type: application/json", ["X-Api-Key"] = "k" } }
local echo = s == 200 and cjson.decode(b)
t.ok(echo and echo.method == "POST" and echo.path == "/echo?a=1&b=2" and echo.body == '{"x":1}',
  "a POST with a query and a body, bytes as given", b)
t.ok(echo and echo.headers["Content-Type"] == "application/json" and echo.headers["X-Api-Key"] == "k",
  "headers as a list and as name = value")
t.ok(h and h["x-test-header"] == "yes" and h["content-length"], "response headers, names lower-cased")
s, _, b = http.request { url = base .. "/status?code=429&body=slow%20down" }
t.ok(s == 429 and b == "slow down", "a 429 is a status, not an error")
local none, err = http.request { url = base .. "/slow?ms=1000", timeout = 0.2 }
t.ok(none == nil and err == "timeout", "a timeout says so", err)
none, err = http.request { url = "http://127.0.0.1:1/", timeout = 1 }
t.ok(none == nil and err:find("connect", 1, true), "a refused connection says so", err)
s, _, b = http.request { url = base .. "/big?bytes=3000000" }
t.ok(s == 200 and #b == 3000000, "a 3 MB body")
t.raises(function() http.request { url = "ftp://x" } end, "url must be an http:// or https:// string", "only http(s)")
t.raises(function() http.request { url = base, timeout = 0 } end, "timeout must be > 0", "a timeout of 0")
t.raises(function() http.request("x") end, "bad argument #1 to 'request'", "a table is required")

-- on the loop: three slow requests overlap, and each resumes its own coroutine
local t0, results = loop.now(), {}
for k = 1, 3 do
  loop.timer(0, 0, function()
    local st, _, body = http.request { url = base .. "/slow?ms=300" }
    results[k] = { st, body, loop.now() - t0 }
    if results[1] and results[2] and results[3] then loop.stop() end
  end)
end
loop.timer(5, 0, function() loop.stop() end)
loop.run()
local overlap = true
for k = 1, 3 do overlap = overlap and results[k] and results[k][1] == 200 and results[k][3] < 0.6 end
t.ok(overlap, "three 300 ms requests overlap: all done in under 0.6 s")
local after = false
loop.timer(0, 0, function()
  local n2, e2 = http.request { url = base .. "/slow?ms=800", timeout = 0.1 }
  after = n2 == nil and e2 == "timeout"
  loop.stop()
end)
loop.run()
t.ok(after, "a timeout on the loop resumes with nil, timeout")

-- a server that reads a POST on a reused connection and closes it with no
-- answer: the transport must not send the POST again (libcurl retries a
-- request that died on a reused connection, rewinding its body)
local posted
loop.timer(0, 0, function()
  http.request { url = base .. "/echo" }  -- the connection, kept alive
  local n3, e3 = http.request { url = base .. "/close", method = "POST", body = '{"order":1}' }
  local _, _, count = http.request { url = base .. "/closed" }
  posted = { n3, e3, cjson.decode(count).n }
  loop.stop()
end)
loop.run()
t.ok(posted and posted[1] == nil and posted[3] == 1, "a POST whose connection died unanswered: an error, sent once",
  posted and tostring(posted[2]) .. ", received " .. tostring(posted[3]))

stop()
t.done()
