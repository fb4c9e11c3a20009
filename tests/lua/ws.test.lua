-- nomade.ws against an independent peer (Debian's python3-websockets,
-- tests/stand-ins/ws_echo.py): text, fragments, binary, a large message,
-- the size limit, the server's close code, a refused upgrade, a refused
-- connection, a peer that never answers, and TLS verified with
-- NOMADE_CA_FILE (and refused without it).
local t = require "testlib"
local ws = require "nomade.ws"
local loop = require "nomade.loop"

local base, stop, line = t.serve("tests/stand-ins/ws_echo.py")
t.ok(base, "the peer started")
local url = base:gsub("^http", "ws") .. "/echo"
local silent = line and line:match("SILENT (%d+)")

-- runs fn in a handler (where connect yields) and the loop until it ends
local function handler(fn)
  local done = false
  loop.timer(0, 0, function() fn(); done = true end)
  while not done do
    loop.timer(0.05, 0, function() if done then loop.stop() end end)
    loop.run()
  end
end

local got, closed = {}, nil
handler(function()
  local c, err = ws.connect(url, {
    on_message = function(_, data, kind) got[#got + 1] = { data = data, kind = kind } end,
    on_close = function(_, code, reason) closed = { code = code, reason = reason } end,
  })
  t.ok(c and c.open, "connect yields until the connection is open", err)
  c:send("hello")
  c:send("frag")
  c:send("binary")
  c:send("big 1000000")
  c:send(("é"):rep(1000))
  loop.sleep(0.5)
  c:send("close")
  loop.sleep(0.3)
  local ok, serr = c:send("late")
  t.ok(not ok and serr:find("not open", 1, true) and not c.open, "after the server's close: not open, send refused")
end)
t.ok(got[1] and got[1].data == "hello" and got[1].kind == "text", "a text message echoed")
t.ok(got[2] and got[2].data == "one two three", "a message in three fragments arrives whole")
t.ok(got[3] and got[3].data == "\0\1\2" and got[3].kind == "binary", "a binary message, bytes intact")
t.ok(got[4] and #got[4].data == 1000000, "a message of 1 MB")
t.ok(got[5] and got[5].data == ("é"):rep(1000), "UTF-8 text, masked on the way out, intact on the way back")
t.ok(closed and closed.code == 4000 and closed.reason == "bye", "on_close gets the server's code and reason",
  closed and (closed.code .. " " .. closed.reason))

-- the size limit: a bigger message ends the connection (1009)
local ended
handler(function()
  local c = assert(ws.connect(url, { max_message = 1000, on_close = function(_, code) ended = code end }))
  c:send("big 5000")
  loop.sleep(0.5)
end)
t.ok(ended == 1009, "a message over max_message ends the connection with 1009 (too big)", tostring(ended))

-- the sync form, a refused upgrade, a refused connection, a silent peer
local c, err = ws.connect(url, {})
t.ok(c and c.open, "outside a handler, connect runs the loop until open", err)
c:close()
c, err = ws.connect(base:gsub("^http", "ws") .. "/forbidden", {})
t.ok(not c and err:find("HTTP status 403, not 101", 1, true), "a refused upgrade is an error naming the status", err)
c, err = ws.connect("ws://127.0.0.1:1/x", {})
t.ok(not c and err:find("Connection refused", 1, true), "a refused connection", err)
c, err = ws.connect("ws://127.0.0.1:" .. tostring(silent) .. "/x", { timeout = 0.5 })
t.ok(not c and err:find("within the timeout", 1, true), "a peer that never answers: the timeout", err)
t.raises(function() ws.connect("http://x/", {}) end, "ws.connect: a WebSocket URL starts with ws:// or wss://",
  "a URL that is not ws:// is a usage error")

-- TLS: a certificate made for the test, trusted through NOMADE_CA_FILE
local dir = os.tmpname() .. ".d"
os.execute("mkdir -p " .. dir)
local made = os.execute("openssl req -x509 -newkey rsa:2048 -nodes -keyout " .. dir .. "/key.pem -out " .. dir
  .. "/cert.pem -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost >/dev/null 2>&1")
local tbase, tstop = t.serve("tests/stand-ins/ws_echo.py", "--tls " .. dir .. "/cert.pem " .. dir .. "/key.pem")
t.ok(made and tbase, "a TLS peer with a certificate for localhost")
local wss = "wss://localhost:" .. tostring(tbase and tbase:match("%d+$")) .. "/echo"
local probe = t.q("local c, e = require('nomade.ws').connect(" .. string.format("%q", wss) .. ", {}); "
  .. "print(c and 'open' or e)")
local rc, out = t.run("eval " .. probe, "NOMADE_CA_FILE=" .. dir .. "/cert.pem")
t.ok(rc == 0 and out:find("open", 1, true), "wss:// with the CA file: verified and open", out)
rc, out = t.run("eval " .. probe, "env -u NOMADE_CA_FILE")
t.ok(rc == 0 and out:find("TLS handshake with localhost", 1, true) and not out:find("open", 1, true),
  "wss:// with a certificate nobody vouches for: refused, never a switch to turn it off", out)
if tstop then tstop() end
os.execute("rm -rf " .. dir)

stop()
t.done()
