-- nomade.cli: the command-line parsing that nomade's Lua commands share:
-- one optional positional argument (a strategy file), --name VALUE
-- options, flags, and the money options every command checks alike.
local M = {}

-- cli.parse(args, options, flags) -> opts or nil, err: options and flags
-- are sets of names (without "--"); opts.strategy is the positional one.
-- --help or -h gives nil, M.HELP: the command prints its usage, exit 0.
M.HELP = {}

-- cli.printable(text) -> text as it may reach a terminal or a log file:
-- secrets scrubbed, and the bytes that would steer a terminal shown as
-- <1b>, <U+202E>: C0 controls but tab and newline, DEL, C1 controls and
-- the bidirectional overrides. A server's text (a Gemini reply, a retMsg)
-- may carry any of them. The marks are valid inside a JSON string too.
function M.printable(text)
  text = require("nomade.secrets").scrub(text)
  if not text:find("[%z\1-\8\11-\31\127\194\226]") then return text end
  return (text:gsub("[%z\1-\8\11-\31\127]", function(c) return string.format("<%02x>", c:byte()) end)
    :gsub("\194([\128-\159])", function(c) return string.format("<U+%04X>", c:byte()) end)
    :gsub("\226\128([\142\143\170-\174])", function(c) return string.format("<U+20%02X>", c:byte() - 128) end)
    :gsub("\226\129([\166-\169])", function(c) return string.format("<U+20%02X>", c:byte() - 64) end))
end

-- the file method write of stdout and stderr, kept for what nomade writes
-- raw on purpose (a progress line's carriage returns)
local raw_write = getmetatable(io.stdout).__index.write
function M.raw(f, ...) return raw_write(f, ...) end

-- cli.command(module, args...): a command's main, with everything it
-- writes to stdout and stderr made printable (main.c enters here)
function M.command(module, ...)
  getmetatable(io.stdout).__index.write = function(f, ...)
    if f ~= io.stdout and f ~= io.stderr then return raw_write(f, ...) end
    local parts = table.pack(...)
    for i = 1, parts.n do
      if type(parts[i]) == "string" then parts[i] = M.printable(parts[i]) end
    end
    return raw_write(f, table.unpack(parts, 1, parts.n))
  end
  return require(module).main(...)
end

function M.parse(args, options, flags)
  local opts = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then return nil, M.HELP end
    local name = a:match("^%-%-(.+)$")
    if name and flags and flags[name] then
      opts[name] = true
      i = i + 1
    elseif name then
      if not options[name] then return nil, "unknown option '" .. a .. "'" end
      if args[i + 1] == nil then return nil, a .. " needs a value" end
      if opts[name] ~= nil then return nil, a .. " given twice" end
      opts[name] = args[i + 1]
      i = i + 2
    elseif opts.strategy == nil then
      opts.strategy = a
      i = i + 1
    else
      return nil, "unexpected argument '" .. a .. "'"
    end
  end
  return M.money(opts)
end

-- options several commands take, defined once: their names and their
-- lines in a usage text (nomade backtest prints them; nomade run and
-- nomade tribunal ask say "as for nomade backtest")
M.GROUPS = {
  money = { names = { "cash", "fee" }, usage = [[
  --cash N           starting quote balance (default 10000)
  --fee RATE         fee per fill, both sides (default 0.001, Bybit spot)
]] },
  tribunal = { names = { "tribunal", "cache" }, usage = [[
  --tribunal MODE    off (every candidate is a BUY, labelled), cache (recorded
                     verdicts) or live (asks an LLM now; default off)
  --cache FILE       verdicts: read by cache; with live, appended to, and a
                     verdict already there is not asked again
]] },
  llm = { names = { "provider", "model", "llm-url", "llm" }, usage = [[
  --provider P       live: gemini (default; GEMINI_API_KEY) or openai (any
                     OpenAI-compatible server; OPENAI_API_KEY if it needs one)
  --model NAME       live: the model (gemini: default gemini-3.5-flash); cache:
                     whose verdicts to replay
  --llm-url URL      live: the provider's base URL (gemini: Google's)
  --llm K=V,...      live: temperature, max_tokens, thinking_budget, deadline (s),
                     daily_calls, daily_tokens (README, "The tribunal")
]] },
  market = { names = { "instrument", "shield" }, usage = [[
  --instrument FILE  a Bybit instruments-info response with the symbol's rules
                     (default: Bybit's documented BTCUSDT record)
  --shield K=V,...   Integrity Shield thresholds (grace, jump_atr, jump_pct,
                     zero_volume_run, flat_run, atr_period, recovery, ...; README)
]] },
}

-- cli.options(groups, own) -> the option set for cli.parse: the names of
-- the groups (M.GROUPS keys) and the command's own names
function M.options(groups, own)
  local set = {}
  for _, g in ipairs(groups) do
    for _, name in ipairs(M.GROUPS[g].names) do set[name] = true end
  end
  for _, name in ipairs(own) do set[name] = true end
  return set
end

-- cli.usage(group...) -> those groups' usage lines, in that order
function M.usage(...)
  local out = {}
  for _, g in ipairs({ ... }) do out[#out + 1] = M.GROUPS[g].usage end
  return table.concat(out)
end

-- --cash N (> 0) and --fee RATE (in [0, 1)) as numbers
function M.money(opts)
  for _, k in ipairs({ "cash", "fee" }) do
    if opts[k] then
      local v = tonumber(opts[k])
      if not v or v ~= v or v < 0 or v == math.huge or (k == "cash" and v == 0) or (k == "fee" and v >= 1) then
        return nil, string.format("--%s must be a number %s, got '%s'", k,
          k == "cash" and "> 0" or "in [0, 1)", opts[k])
      end
      opts[k] = v + 0.0
    end
  end
  return opts
end

-- a command's answer to a bad command line: the usage, and the exit code
function M.refuse(command, err, usage)
  if err == M.HELP then
    io.stdout:write(usage)
    return 0
  end
  io.stderr:write("nomade ", command, ": ", err, "\n", usage)
  return 2
end

return M
