-- nomade.tribunal: where verdicts come from. A judge takes a prompt and
-- returns {signal = "BUY"|"WAIT", score = 0..100, reasoning, source}.
--   off    every candidate passes: BUY, score 100, labelled "off" in
--          every output, so no report can pass it off as a real tribunal
--   cache  verdicts recorded earlier, replayed by the prompt's sha256;
--          a prompt never judged is a WAIT, counted as a miss
--   live   Gemini: not built yet, and asking for it is an error
local cjson = require "cjson.safe"
local crypto = require "nomade.crypto"

local M = {}

local function off()
  return function()
    return { signal = "BUY", score = 100, reasoning = "tribunal off: every candidate passes", source = "off" }
  end
end

-- a cache file holds one JSON object a line:
-- {"prompt_sha256": "...", "signal": "BUY", "score": 80, "reasoning": "...", "model": "..."}
local function read_cache(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, "tribunal cache: " .. err end
  local verdicts, n = {}, 0
  for line in f:lines() do
    n = n + 1
    if line:match("%S") then
      local v = cjson.decode(line)
      -- cjson reads every number as a float: 80.0 is the integer 80
      local score = type(v) == "table" and math.tointeger(v.score)
      local ok = score and type(v.prompt_sha256) == "string"
        and (v.signal == "BUY" or v.signal == "WAIT") and score >= 0 and score <= 100
      if not ok then
        f:close()
        return nil, string.format("%s:%d: not a verdict ({prompt_sha256, signal BUY|WAIT, score 0..100})", path, n)
      end
      v.score = score
      verdicts[v.prompt_sha256] = v
    end
  end
  f:close()
  return verdicts
end

local function cached(path)
  local verdicts, err = read_cache(path)
  if not verdicts then return nil, err end
  return function(prompt)
    local v = verdicts[crypto.sha256(prompt)]
    if not v then return { signal = "WAIT", score = 0, reasoning = "no cached verdict", source = "miss" } end
    return { signal = v.signal, score = v.score, reasoning = tostring(v.reasoning or ""), source = "cache",
      model = v.model }
  end
end

-- M.judge(mode, opts) -> function(prompt) -> verdict, or nil, err
function M.judge(mode, opts)
  if mode == "off" then return off() end
  if mode == "cache" then
    if not opts.cache then return nil, "--tribunal cache needs --cache FILE (recorded verdicts, JSON lines)" end
    return cached(opts.cache)
  end
  if mode == "live" then
    return nil, "--tribunal live needs the Gemini client, which nomade does not have yet; use off or cache"
  end
  return nil, "--tribunal must be off, cache or live, got " .. tostring(mode)
end

return M
