-- nomade.runtime.options: `nomade run`'s command line: its usage, its
-- options checked and completed (the Bybit bases, the dashboard's address,
-- the replay speed), and the default journal's name.
local host = require "nomade.host"
local cli = require "nomade.cli"
local shield_mod = require "nomade.shield"
local tribunal = require "nomade.tribunal"
local log_mod = require "nomade.log"

local M = {}

M.USAGE = [[
usage: nomade run [STRATEGY.lua] --feed replay:FILE|bybit [options]
  STRATEGY.lua       the strategy file, watched and reloaded when it changes
                     (default: the bundled default strategy, not watched)
  --feed replay:FILE play a candle file (CSV or Bybit kline JSON): the first
                     `history` candles at once, then one candle per
                     interval / speed seconds
  --feed bybit       Bybit spot klines of the strategy's symbol and interval:
                     max(1000, history) candles at start over REST, then the
                     kline stream (WebSocket; REST again for any candle it
                     missed); no keys needed
  --stream-timeout S --feed bybit: a stream silent this long is dead, closed and
                     reconnected (default 30; Bybit is pinged every 20 s)
  --feed bybit-rest  the same, each candle polled over REST right after it closes
  --base-url URL     for the bybit feeds: mainnet (default), testnet, demo or
                     http(s)://host:port
  --ws-url URL       the stream for --feed bybit (default: the base's public
                     spot stream; needed with a custom --base-url)
  --speed X          replay: how much faster than real time (default 3600: a
                     1h candle a second); max: as fast as possible
  --exec paper|bybit paper (default): simulated fills at the next open;
                     bybit: real orders on Bybit spot (README, "Going live"),
                     with one of --testnet, --demo or --live (mainnet), or a
                     custom --base-url; keys from BYBIT_API_KEY/SECRET
  --testnet, --demo, --live
                     where --exec bybit trades; --live is real money
  --private-url URL  the private stream (default: the base's; needed with a
                     custom --base-url)
  --halt-file PATH   the kill switch as a file: while it exists, no entries
                     and open orders cancelled (default JOURNAL.halt)
  --http HOST:PORT   the dashboard (README, "The dashboard"; default
                     127.0.0.1:8080), or off; its controls need the token
                     printed at start (or NOMADE_DASHBOARD_TOKEN)
  --firebase URL     also publish the dashboard's tree to this Firebase
                     Realtime Database (https://<name>.firebaseio.com), with
                     the secret or token in FIREBASE_AUTH
  --firebase-commands
                     also take pause, resume and halt from the database's
                     /commands (what the pages write there); off unless given
  --web DIR          the dashboard's pages (default: web/ beside the binary's
                     build/ directory, else /usr/local/share/nomade/web)
  --socket PATH      the REPL's socket (default $XDG_RUNTIME_DIR/nomade/nomade.sock,
                     else /tmp/nomade-$UID/nomade.sock)
  --journal PATH     the SQLite journal; a restart with it resumes where the
                     run stopped; one process at a time (default
                     $XDG_STATE_HOME/nomade/SYMBOL-INTERVAL-MARKET-EXEC.journal,
                     else ~/.local/state/nomade/...; MARKET: replay-FILE,
                     mainnet, testnet or demo; EXEC: paper or bybit)
  --adopt-journal    continue a journal written for another strategy or symbol
  --log-format F     text (default: lines for a person) or json (an object a line)
  --log-level L      debug, info (default: a line per candle), warn or error
  --shield K=V,...   Integrity Shield thresholds (nomade backtest --help, README)
  --tribunal off|cache|live, --cache FILE, --provider, --model, --llm-url, --llm
                     as for nomade backtest; live verdicts are journaled, and
                     the shield goes AMBER while the tribunal is unavailable
  --cash N, --fee RATE, --instrument FILE
                     as for nomade backtest (with --feed bybit the instrument
                     rules come from the exchange unless --instrument is given)
]]

local OPTIONS = cli.options({ "money", "tribunal", "llm", "market" }, { "feed", "speed", "exec", "socket",
  "journal", "log-format", "log-level", "base-url", "ws-url", "stream-timeout", "halt-file", "private-url", "http",
  "web", "firebase" })

-- --exec bybit: where it trades, and where the feed reads (demo trading
-- has no market data of its own: mainnet's)
local EXEC_BASES = { testnet = "testnet", demo = "demo", live = "mainnet" }
local FEED_BASES = { testnet = "testnet", demo = "mainnet", live = "mainnet" }

local function exec_args(opts)
  local chosen = {}
  for flag in pairs(EXEC_BASES) do if opts[flag] then chosen[#chosen + 1] = "--" .. flag end end
  if opts.exec ~= "bybit" then
    if #chosen > 0 or opts["private-url"] then return nil, "--testnet, --demo, --live and --private-url go with --exec bybit" end
    return true
  end
  if opts.feed ~= "bybit" and opts.feed ~= "bybit-rest" then
    return nil, "--exec bybit trades on live data: it needs --feed bybit (or bybit-rest)"
  end
  local custom = opts["base-url"] and opts["base-url"]:match("^https?://")
  if #chosen > 1 then return nil, "one of --testnet, --demo or --live, not " .. table.concat(chosen, " and ") end
  if #chosen == 0 and not custom then
    return nil, "--exec bybit needs --testnet, --demo or --live (real money), or a custom --base-url"
  end
  if #chosen == 1 and custom then return nil, chosen[1] .. " and a custom --base-url exclude each other" end
  if custom then
    if not opts["private-url"] then return nil, "--exec bybit with a custom --base-url needs --private-url" end
    opts.exec_base = opts["base-url"]
  else
    local which = chosen[1]:sub(3)
    if opts["base-url"] and opts["base-url"] ~= FEED_BASES[which] then
      return nil, "--base-url " .. opts["base-url"] .. " does not go with " .. chosen[1]
    end
    opts.exec_base, opts["base-url"] = EXEC_BASES[which], FEED_BASES[which]
  end
  return true
end

function M.parse(args)
  local opts, err = cli.parse(args, OPTIONS, { ["adopt-journal"] = true, testnet = true, demo = true, live = true,
    ["firebase-commands"] = true })
  if not opts then return nil, err end
  opts.adopt = opts["adopt-journal"]
  local streamed = opts.feed == "bybit" or opts.feed == "bybit-rest"
  if not streamed and not (opts.feed or ""):match("^replay:.") then
    return nil, "--feed replay:FILE, --feed bybit or --feed bybit-rest is required"
  end
  if opts["base-url"] and not streamed then return nil, "--base-url goes with --feed bybit or bybit-rest" end
  if opts.exec and opts.exec ~= "paper" and opts.exec ~= "bybit" then
    return nil, "--exec must be paper or bybit, got '" .. opts.exec .. "'"
  end
  local exec_ok, exec_err = exec_args(opts)
  if not exec_ok then return nil, exec_err end
  if opts["firebase-commands"] and not opts.firebase then return nil, "--firebase-commands goes with --firebase URL" end
  if opts.http ~= "off" then
    local h, port = (opts.http or "127.0.0.1:8080"):match("^(%d+%.%d+%.%d+%.%d+):(%d+)$")
    if not h or tonumber(port) > 65535 then return nil, "--http must be HOST:PORT (an IPv4 address) or off" end
    opts.http_host, opts.http_port = h, tonumber(port)
  end
  if (opts["ws-url"] or opts["stream-timeout"]) and opts.feed ~= "bybit" then
    return nil, "--ws-url and --stream-timeout go with --feed bybit"
  end
  local st = opts["stream-timeout"] and tonumber(opts["stream-timeout"])
  if opts["stream-timeout"] and not (st and st >= 1 and st <= 3600) then
    return nil, "--stream-timeout must be seconds in 1..3600"
  end
  local shielded, sherr = shield_mod.check(opts.shield, opts.feed == "bybit")
  if not shielded then return nil, sherr end
  local llm, llm_err = tribunal.parse_llm(opts.llm)
  if not llm then return nil, llm_err end
  opts.llm = llm
  local logged, lerr = log_mod.configure(opts["log-format"] or "text", opts["log-level"] or "info")
  if not logged then return nil, lerr end
  if opts.speed == nil or opts.speed == "max" then
    opts.speed = opts.speed == "max" and math.huge or 3600
  else
    local v = tonumber(opts.speed)
    if not v or v ~= v or v <= 0 then return nil, "--speed must be a number > 0 or max, got '" .. opts.speed .. "'" end
    opts.speed = v
  end
  return opts
end

-- the market a run trades on and how, for the default journal's name:
-- replay-FILE, mainnet, testnet, demo (or a custom base's host), then
-- paper or bybit; so a replay never resumes into a live run, nor paper
-- into real orders
local function journal_name(s, opts)
  local file = opts.feed:match("^replay:(.*)$")
  local where = file and "replay-" .. (file:match("([^/]+)$") or file)
    or (opts.exec == "bybit" and opts.exec_base or opts["base-url"] or "mainnet"):gsub("^https?://", "")
  return string.format("%s-%s-%s-%s.journal", s.symbol, s.interval, where:gsub("[^%w%.%-_]", "_"), opts.exec or "paper")
end

function M.default_journal(s, opts)
  local base = os.getenv("XDG_STATE_HOME")
  if not base or base == "" then
    local home = os.getenv("HOME")
    if not home then return nil, "no --journal, and neither XDG_STATE_HOME nor HOME is set" end
    base = home .. "/.local/state"
  end
  local ok, err = host.mkdir(base .. "/nomade")
  if not ok then return nil, err end
  return base .. "/nomade/" .. journal_name(s, opts)
end

function M.absolute(path)
  if path:sub(1, 1) == "/" then return path end
  local pwd = os.getenv("PWD")
  if not pwd then return nil end
  return pwd .. "/" .. path:gsub("^%./", "")
end

return M
