-- nomade.repl: the REPL server of a running runtime. Clients connect to a
-- Unix socket (made 0600 in a 0700 runtime directory) and send lines of
-- Lua; each line is evaluated on the loop, between events, never while a
-- candle is being handled. An expression prints its value (return <line>
-- is tried first, as lua.c does); input that is not complete yet waits for
-- more lines. Every evaluation runs under an instruction budget, and so
-- does turning its values into the answer (a __tostring is user code).
-- REPL code runs in the strategy's sandbox plus the runtime's entry
-- points (M.environment): nothing in it can end the process, run a
-- program, read the environment or reach a secret.
--
-- Protocol (what `nomade repl` speaks): the client sends lines; after each
-- the server answers with its output, then a line "\30" followed by "> "
-- (ready) or ">> " (more input wanted). A line starting with "\1" asks for
-- JSON: the rest is an expression and the answer is one JSON document.
local loop = require "nomade.loop"
local host = require "nomade.host"
local pretty = require "nomade.pretty"
local cjson = require "cjson.safe"
local strategy = require "nomade.strategy"
local scrub = require("nomade.secrets").scrub

local M = {}

M.BUDGET = 10000000       -- VM instructions per evaluation
M.MAX_ANSWER = 65536      -- bytes of output per evaluation
M.MARK = "\30"

-- the runtime directory: $XDG_RUNTIME_DIR/nomade, else /tmp/nomade-$UID,
-- created 0700 (the socket inside is 0600)
function M.runtime_dir()
  local base = os.getenv("XDG_RUNTIME_DIR")
  local dir = base and base ~= "" and (base .. "/nomade") or ("/tmp/nomade-" .. host.uid())
  local ok, err = host.mkdir(dir)
  if not ok then return nil, err end
  local pok, perr = host.private_dir(dir)
  if not pok then return nil, perr end
  return dir
end

function M.default_socket()
  local dir, err = M.runtime_dir()
  if not dir then return nil, err end
  return dir .. "/nomade.sock"
end

-- names REPL code may not use: asking for one is an error that says so
local MODULES = "the runtime's modules are out of reach"
local REFUSED = { io = "files and programs are out of reach", debug = "it would reach every value of the runtime",
  package = MODULES, require = MODULES, nomade = MODULES, dofile = "files are out of reach",
  loadfile = "files are out of reach", collectgarbage = "the collector is the runtime's",
  coroutine = "an evaluation runs in a coroutine of the REPL's", rawset = "read-only views stay read-only" }

local function refuse(what, why)
  error(string.format("%s is not available in the REPL (%s; help() lists what is)", what, why), 3)
end

-- a copy of the tables a runtime call returns (its own tables stay its
-- own); proxies such as m, whose metatables are protected, stay as they are
local function detach(v, seen)
  if type(v) ~= "table" or getmetatable(v) ~= nil then return v end
  if seen[v] then return seen[v] end
  local c = {}
  seen[v] = c
  for k, x in next, v do c[detach(k, seen)] = detach(x, seen) end
  return c
end

local function detached(f)
  if type(f) == "table" then
    local t = {}
    for k, g in pairs(f) do t[k] = detached(g) end
    return t
  end
  if type(f) ~= "function" then return f end
  return function(...)
    local res = table.pack(f(...))
    for i = 1, res.n do res[i] = detach(res[i], {}) end
    return table.unpack(res, 1, res.n)
  end
end

-- M.environment(api, state) -> the table REPL code runs in: the strategy's
-- sandbox, with api's entry points (their results copies) and a load
-- for text; the names in REFUSED, os.exit, os.getenv and the like, and
-- binary chunks are errors that say so
function M.environment(api, state)
  local env = strategy.sandbox(state, print)
  for k, v in pairs(api) do env[k] = type(v) == "function" and detached(v) or v end
  if type(api.shield) == "table" then env.shield = detached(api.shield) end
  env.load = function(chunk, name, _, fenv)
    local fn, err = load(chunk, name, "t", fenv or env)
    if not fn and tostring(err):find("binary chunk", 1, true) then
      error("load: binary chunks are not available in the REPL (text only)", 2)
    end
    return fn, err
  end
  setmetatable(env.os, { __metatable = false,
    __index = function(_, k) refuse("os." .. tostring(k), "its os has time, date, clock and difftime only") end })
  return setmetatable(env, { __metatable = false,
    __index = function(_, k) if REFUSED[k] then refuse(k, REFUSED[k]) end end })
end

-- values that JSON cannot hold become something it can
local function jsonable(v, depth, seen)
  local t = type(v)
  if t == "number" then return (v ~= v or v == math.huge or v == -math.huge) and tostring(v) or v end
  if t == "string" or t == "boolean" or t == "nil" then return v end
  if t == "table" and depth < 6 and not seen[v] then
    seen[v] = true
    local out, n = {}, 0
    for k, x in pairs(v) do
      n = n + 1
      if n > 1000 then break end
      out[type(k) == "number" and k or tostring(k)] = jsonable(x, depth + 1, seen)
    end
    seen[v] = nil
    return out
  end
  if t == "userdata" and v.totable then  -- a series or view: its last values
    local n = #v
    return { length = n, last = n > 0 and v:slice(math.max(1, n - 19)):totable() or {} }
  end
  return tostring(v)
end

-- the JSON answer to a pcall's ok, results... or false, error
local function json_doc(ok, ...)
  if not ok then return { ok = false, error = tostring((...)) } end
  local vals = {}
  for i = 1, select("#", ...) do vals[i] = jsonable((select(i, ...)), 0, {}) end
  return { ok = true, value = vals[1], values = select("#", ...) > 1 and vals or nil }
end

-- the text answer: each value pretty, or the error
local function text_lines(ok, ...)
  if not ok then return "error: " .. tostring((...)) .. "\n" end
  local out = {}
  for i = 1, select("#", ...) do out[i] = pretty.format((select(i, ...))) .. "\n" end
  return table.concat(out)
end

-- evaluates `code` in env and makes the answer with answer(ok, results...),
-- both under the budget; returns true, the answer (or false, message, or
-- "incomplete" when more lines are needed)
local function evaluate(code, env, chunkname, answer)
  local fn = load("return " .. code .. ";", chunkname, "t", env)
  if not fn then
    local err
    fn, err = load(code, chunkname, "t", env)
    if not fn then
      if err:find("<eof>$") then return "incomplete" end
      return false, err
    end
  end
  -- two budgets: once the code has spent its own, every line raises again,
  -- and making the answer under that one would replace the code's error
  local ok, res = host.limit(M.BUDGET, answer, host.limit(M.BUDGET, fn))
  if not ok and type(res) ~= "string" then res = "(an error that cannot be printed)" end
  return ok, res
end

-- M.serve(path, env) -> server or nil, err: env is the table REPL code
-- runs in (its entry points); each client gets a print of its own
function M.serve(path, env)
  local clients = {}
  local server, err = loop.listen(path, {
    open = function(conn)
      clients[conn.id] = { pending = "", input = "" }
      conn:write("nomade REPL: help() lists what is here\n" .. M.MARK .. "> \n")
    end,
    close = function(conn) clients[conn.id] = nil end,
    data = function(conn, bytes)
      local c = clients[conn.id]
      if not c then return end
      c.input = c.input .. bytes
      if #c.input > 1 << 20 then  -- a line of a megabyte is not a REPL line
        conn:close()
        clients[conn.id] = nil
        return
      end
      while true do
        local line, rest = c.input:match("^([^\n]*)\n(.*)$")
        if not line then break end
        c.input = rest
        -- what this line prints is this client's, kept for its answer
        local out, size = {}, 0
        env.print = function(...)
          local parts = {}
          for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
          local s = table.concat(parts, "\t") .. "\n"
          size = size + #s
          if size <= M.MAX_ANSWER then out[#out + 1] = s end
        end
        if line:sub(1, 1) == "\1" then
          local ok, doc = evaluate(line:sub(2), env, "=repl", json_doc)
          if not ok then doc = { ok = false, error = doc } end
          if #out > 0 then doc.output = table.concat(out) end
          local text = scrub(cjson.encode(doc) or '{"ok":false,"error":"not encodable"}')
          conn:write(text:sub(1, M.MAX_ANSWER) .. "\n" .. M.MARK .. "> \n")
        else
          local code = c.pending .. line
          local ok, res = evaluate(code, env, "=repl", text_lines)
          if ok == "incomplete" then
            c.pending = code .. "\n"
            conn:write(M.MARK .. ">> \n")
          else
            c.pending = ""
            out[#out + 1] = ok and res or "error: " .. res .. "\n"
            local text = scrub(table.concat(out))
            if #text > M.MAX_ANSWER then
              text = text:sub(1, M.MAX_ANSWER) .. string.format("\n... (%d bytes cut)\n", #text - M.MAX_ANSWER)
            end
            conn:write(text .. M.MARK .. "> \n")
          end
        end
      end
    end,
  })
  return server, err
end

-- the client: nomade repl [--socket PATH] [-e EXPR]

M.USAGE = [[
usage: nomade repl [--socket PATH] [-e EXPR]
  attaches to a running `nomade run` (its socket: --socket, else
  $XDG_RUNTIME_DIR/nomade/nomade.sock, else /tmp/nomade-$UID/nomade.sock)
  -e EXPR   evaluate EXPR, print the answer as JSON and exit (1 on an error)
]]

local function history_path()
  local base = os.getenv("XDG_STATE_HOME")
  if not base or base == "" then
    local home = os.getenv("HOME")
    if not home then return nil end
    base = home .. "/.local/state"
  end
  if not host.mkdir(base .. "/nomade") then return nil end
  return base .. "/nomade/repl_history"
end

-- reads up to the server's mark; returns the output and the next prompt
local function answer(sock, buf)
  while true do
    local at = buf.data:find(M.MARK, 1, true)
    local nl = at and buf.data:find("\n", at, true)
    if nl then
      local out, prompt = buf.data:sub(1, at - 1), buf.data:sub(at + 1, nl - 1)
      buf.data = buf.data:sub(nl + 1)
      return out, prompt
    end
    local more = sock:recv()
    if not more then return nil end
    buf.data = buf.data .. more
  end
end

function M.main(...)
  local term = require "nomade.term"
  local args, opts = { ... }, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then
      io.stdout:write(M.USAGE)
      return 0
    elseif (a == "--socket" or a == "-e") and args[i + 1] then
      opts[a] = args[i + 1]
      i = i + 2
    else
      io.stderr:write("nomade repl: unexpected argument '", a, "'\n", M.USAGE)
      return 2
    end
  end
  local path, perr = opts["--socket"], nil
  if not path then path, perr = M.default_socket() end
  if not path then
    io.stderr:write("nomade repl: ", tostring(perr), "\n")
    return 1
  end
  local sock, err = term.connect(path)
  if not sock then
    io.stderr:write("nomade repl: cannot attach to ", err, " (is `nomade run` running? it prints its socket)\n")
    return 1
  end
  local buf = { data = "" }
  local greeting, prompt = answer(sock, buf)
  if not greeting then
    io.stderr:write("nomade repl: the runtime closed the connection\n")
    return 1
  end
  if opts["-e"] then
    sock:send("\1" .. opts["-e"]:gsub("\n", " ") .. "\n")
    local out = answer(sock, buf)
    if not out then return 1 end
    io.stdout:write(out)
    local doc = cjson.decode(out)
    return doc and doc.ok and 0 or 1
  end
  io.stdout:write(greeting)
  local history = history_path()
  if history then term.history_load(history) end
  while true do
    local line = term.readline(prompt)
    if not line then break end
    if line:match("%S") then term.history_add(line) end
    if not sock:send(line .. "\n") then break end
    local out
    out, prompt = answer(sock, buf)
    if not out then
      io.stderr:write("nomade repl: the runtime went away\n")
      break
    end
    io.stdout:write(out)
    io.stdout:flush()
  end
  if history then term.history_save(history) end
  sock:close()
  return 0
end

return M
