-- loop.listen, the Unix socket server of the REPL: nothing at its path is
-- removed but a stale socket, whatever else is there (a file, the run's
-- own journal, a directory, a symlink, a FIFO) is left as it was and
-- refused by name, a live socket is refused, closing removes the
-- server's own socket only, and many clients connecting at once are all
-- taken (the backlog was 16).
local t = require "testlib"
local loop = require "nomade.loop"

local dir = os.tmpname() .. ".d"
os.execute("mkdir -p " .. dir)
local HANDLERS = { data = function() end }

local function sh(fmt, ...) return os.execute(string.format(fmt, ...)) end
local function describe(p)
  local f = io.popen("stat -c '%F %s %i %Y' " .. t.q(p) .. " 2>&1")
  local s = f:read("a")
  f:close()
  return s
end
local function python(code, ...)
  local f = io.popen("/usr/bin/python3 " .. code .. " " .. table.concat({ ... }, " ") .. " 2>&1")
  local s = f:read("a")
  f:close()
  return s
end

-- 1. anything but a socket is left alone
local KINDS = {
  { "a file (a journal given as --socket)", function(p) sh("printf 'SQLite format 3' > %s", t.q(p)) end },
  { "an empty file", function(p) sh(": > %s", t.q(p)) end },
  { "a directory", function(p) sh("mkdir %s", t.q(p)) end },
  { "a symlink to a file", function(p) sh("printf x > %s.target && ln -s %s.target %s", t.q(p), t.q(p), t.q(p)) end },
  { "a dangling symlink", function(p) sh("ln -s %s.nowhere %s", t.q(p), t.q(p)) end },
  { "a FIFO", function(p) sh("mkfifo %s", t.q(p)) end },
}
for k, kind in ipairs(KINDS) do
  local p = dir .. "/thing" .. k
  kind[2](p)
  local before = describe(p)
  local srv, err = loop.listen(p, HANDLERS)
  t.ok(not srv and tostring(err):find(p .. ": something other than a socket is there", 1, true),
    kind[1] .. ": refused, by name", tostring(err))
  t.eq(describe(p), before, kind[1] .. ": left as it was")
end
-- a symlink to a stale socket is a symlink: left too
local stale = dir .. "/stale.sock"
python("-c " .. t.q("import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])"), t.q(stale))
local link = dir .. "/link.sock"
sh("ln -s %s %s", t.q(stale), t.q(link))
t.ok(not loop.listen(link, HANDLERS) and describe(link):find("^symbolic link"), "a symlink to a socket: left alone")

-- 2. a stale socket (nobody answers) is taken over; a live one is refused
t.ok(describe(stale):find("^socket"), "a stale socket is there (its process gone)", describe(stale))
local srv, err = loop.listen(stale, HANDLERS)
t.ok(srv, "a stale socket is replaced", tostring(err))
local again, why = loop.listen(stale, HANDLERS)
t.ok(not again and tostring(why):find("another process is already listening there", 1, true),
  "a socket someone answers on: refused", tostring(why))

-- 3. many clients at once: none refused while the loop is busy elsewhere
-- (nothing is accepted while python connects: this process waits for it)
local out = python("tests/stand-ins/hostile_clients.py unix", t.q(stale), "200")
t.ok(out:find('"failed": 0', 1, true), "200 clients connecting at once: all taken into the backlog", out)

-- 4. closing removes the server's socket, and only it
srv:close()
t.eq(describe(stale):match("^%S+"), "stat:", "closing removes the server's socket")
local replaced = dir .. "/replaced.sock"
local other = assert(loop.listen(replaced, HANDLERS))
os.remove(replaced)
sh("printf 'a journal' > %s", t.q(replaced))
other:close()
t.eq(t.slurp(replaced), "a journal", "a file put where the server's socket was is not removed at close")
os.execute("rm -rf " .. t.q(dir))
t.done()
