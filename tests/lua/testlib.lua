-- testlib: the assertions every tests/lua/*.test.lua uses. Prints TAP
-- lines that tests/run counts; done() ends the file and makes the script
-- fail when anything did.
local M = {}
local n, failed = 0, 0

local function report(cond, name, why)
  n = n + 1
  if not cond then failed = failed + 1 end
  print(string.format("%sok %d - %s", cond and "" or "not ", n, name))
  if not cond and why then print("#   " .. tostring(why):gsub("\n", "\n#   ")) end
  return cond
end

function M.ok(cond, name, why) return report(not not cond, name, why) end

function M.eq(got, want, name)
  return report(got == want, name, string.format("got %s, want %s", tostring(got), tostring(want)))
end

-- both NaN, or |got - want| <= rel * max(1, |want|)
function M.near(got, want, rel)
  if got ~= got or want ~= want then return got ~= got and want ~= want end
  return math.abs(got - want) <= rel * math.max(1, math.abs(want))
end

function M.close(got, want, rel, name)
  return report(M.near(got, want, rel), name,
    string.format("got %.17g, want %.17g", got, want))
end

-- the call must raise an error whose message contains `pattern` (plain)
function M.raises(f, pattern, name)
  local ok, err = pcall(f)
  if ok then return report(false, name, "no error raised") end
  return report(tostring(err):find(pattern, 1, true) ~= nil, name,
    "error was: " .. tostring(err))
end

-- compares two sequences (series or tables) element-wise; one TAP line
function M.same(got, want, rel, name)
  if #got ~= #want then
    return report(false, name, string.format("length %d, want %d", #got, #want))
  end
  for i = 1, #want do
    if not M.near(got[i], want[i], rel) then
      return report(false, name, string.format("index %d: got %.17g, want %.17g",
        i, got[i], want[i]))
    end
  end
  return report(true, name)
end

function M.done()
  print("1.." .. n)
  if failed > 0 then os.exit(1) end
end

-- deep equality of decoded JSON values, whatever the order of keys
function M.equal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not M.equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- the nomade binary running this test (tests/run sets it)
M.bin = os.getenv("NOMADE_TEST_BIN") or "build/nomade"

-- a file's contents, "" when it is not there (yet)
function M.slurp(p)
  local f = io.open(p, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- runs the nomade binary (env: "NAME=value ..." for its environment);
-- returns exit code, stdout, stderr
function M.run(args, env)
  local out, errf = os.tmpname(), os.tmpname()
  local ok, how, code = os.execute((env and env .. " " or "") .. M.bin .. " " .. args .. " >" .. out .. " 2>" .. errf)
  local function slurp(p)
    local f = assert(io.open(p)); local s = f:read("a"); f:close(); os.remove(p); return s
  end
  if how == "signal" then code = 128 + code end
  return (ok and 0 or code), slurp(out), slurp(errf)
end

-- starts a stand-in server script (it prints "LISTENING <port> ..."), with
-- extra arguments; returns its base URL, a function that stops it, and its
-- LISTENING line; or nil when it did not start
function M.serve(script, args)
  local out = os.tmpname()
  os.execute("/usr/bin/python3 " .. script .. " --port 0 " .. (args or "") .. " > " .. out .. " 2>&1 & echo $! > "
    .. out .. ".pid")
  for _ = 1, 600 do  -- 30 s: Python's start on a loaded 2-core machine can take seconds
    local f = io.open(out)
    local line = f and f:read("a"):match("LISTENING [^\n]*")
    if f then f:close() end
    if line then
      return "http://127.0.0.1:" .. line:match("%d+"), function() os.execute("kill $(cat " .. out .. ".pid)") end, line
    end
    os.execute("sleep 0.05")
  end
  return nil
end

-- the control endpoint of a stand-in at base (/__control): control(doc)
-- POSTs doc, control() GETs the state; the decoded answer, or false
function M.control(base)
  local http, cjson = require "nomade.http", require "cjson"
  return function(doc)
    local s, _, b = http.request { url = base .. "/__control", method = doc and "POST" or "GET",
      body = doc and cjson.encode(doc), headers = { ["Content-Type"] = "application/json" } }
    return s == 200 and cjson.decode(b)
  end
end

-- shell-quotes a string
function M.q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

return M
