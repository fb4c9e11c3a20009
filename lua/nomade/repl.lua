-- nomade.repl: the REPL server of a running runtime. Clients connect to a
-- Unix socket (made 0600 in a 0700 runtime directory) and send lines of
-- Lua; each line is evaluated on the loop, between events, never while a
-- candle is being handled. An expression prints its value (return <line>
-- is tried first, as lua.c does); input that is not complete yet waits for
-- more lines. Every evaluation runs under an instruction budget.
--
-- Protocol (what `nomade repl` speaks): the client sends lines; after each
-- the server answers with its output, then a line "\30" followed by "> "
-- (ready) or ">> " (more input wanted). A line starting with "\1" asks for
-- JSON: the rest is an expression and the answer is one JSON document.
local loop = require "nomade.loop"
local host = require "nomade.host"
local pretty = require "nomade.pretty"
local cjson = require "cjson.safe"

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

local function answer_json(conn, output, ok, ...)
  local doc
  if ok then
    local vals = {}
    for i = 1, select("#", ...) do vals[i] = jsonable((select(i, ...)), 0, {}) end
    doc = { ok = true, value = vals[1], values = select("#", ...) > 1 and vals or nil }
  else
    doc = { ok = false, error = tostring((...)) }
  end
  if output ~= "" then doc.output = output end
  local text = cjson.encode(doc) or '{"ok":false,"error":"not encodable"}'
  conn:write(text:sub(1, M.MAX_ANSWER) .. "\n" .. M.MARK .. "> \n")
end

-- evaluates `code` in env; returns ok, results... (or false, message,
-- or "incomplete" when more lines are needed)
local function evaluate(code, env, chunkname)
  local fn = load("return " .. code .. ";", chunkname, "t", env)
  if not fn then
    local err
    fn, err = load(code, chunkname, "t", env)
    if not fn then
      if err:find("<eof>$") then return "incomplete" end
      return false, err
    end
  end
  return host.limit(M.BUDGET, fn)
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
          local res = table.pack(evaluate(line:sub(2), env, "=repl"))
          answer_json(conn, table.concat(out), table.unpack(res, 1, res.n))
        else
          local code = c.pending .. line
          local res = table.pack(evaluate(code, env, "=repl"))
          if res[1] == "incomplete" then
            c.pending = code .. "\n"
            conn:write(M.MARK .. ">> \n")
          else
            c.pending = ""
            if res[1] then
              for i = 2, res.n do out[#out + 1] = pretty.format(res[i]) .. "\n" end
            else
              out[#out + 1] = "error: " .. tostring(res[2]) .. "\n"
            end
            local text = table.concat(out)
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
