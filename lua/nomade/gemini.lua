-- nomade.gemini: Google's Gemini API, generateContent (v1beta), over
-- nomade.http (protocols.md §3 in the shared notes). The key travels in the
-- x-goog-api-key header only: never in a URL, a log line or an error.
--   gemini.ask{base, key, model, prompt, system, schema, temperature,
--              max_tokens, thinking_budget, timeout}
--     -> {text, finish, usage = {prompt, output, thoughts, total}, model}
--     or nil, an error of nomade.errors (kind = cause, message, status, retry_after)
-- parse_response is pure and never raises (fuzzed: tests/fuzz/fuzz_gemini.c).
local http = require "nomade.http"
local cjson = require "cjson.safe"
local failure = require("nomade.errors").new

local M = {}

M.BASE = "https://generativelanguage.googleapis.com"
-- the seed's Gemini 1.5 is retired; this is a current Flash model
M.DEFAULT_MODEL = "gemini-3.5-flash"

function M.body(o)
  local config = { temperature = o.temperature, maxOutputTokens = o.max_tokens,
    responseMimeType = "application/json", responseJsonSchema = o.schema }
  if o.thinking_budget then config.thinkingConfig = { thinkingBudget = o.thinking_budget } end
  return cjson.encode {
    contents = { { role = "user", parts = { { text = o.prompt } } } },
    systemInstruction = o.system and { parts = { { text = o.system } } } or nil,
    generationConfig = config,
  }
end

-- "56s", "0.539477544s" -> seconds
local function duration(s)
  return type(s) == "string" and tonumber(s:match("^(%d+%.?%d*)s$")) or nil
end

-- a Google error body: {error = {code, message, status, details}}
local function google_error(status, doc)
  local top = type(doc) == "table" and (type(doc[1]) == "table" and doc[1] or doc)
  local err = top and top.error
  local msg = type(err) == "table" and type(err.message) == "string" and err.message or "no error message"
  local retry
  for _, d in ipairs(type(err) == "table" and type(err.details) == "table" and err.details or {}) do
    if type(d) == "table" and d["@type"] == "type.googleapis.com/google.rpc.RetryInfo" then
      retry = duration(d.retryDelay)
    end
  end
  local cause = status >= 500 and "http_5xx" or ("http_" .. status)
  return failure(cause, string.format("gemini: HTTP %d %s: %s", status,
    type(err) == "table" and type(err.status) == "string" and err.status or "", msg:sub(1, 300)),
    { status = status, retry_after = retry })
end

-- a token count from a reply: a whole number from 0 to 10^7, else 0. The
-- server's word spends the daily budget: a negative count would give it
-- back, an absurd one would spend it all
function M.count(v)
  if math.type(v) == "float" and v == math.floor(v) then v = math.tointeger(v) end
  return math.type(v) == "integer" and v >= 0 and v <= 10000000 and v or 0
end
local count = M.count

-- the candidate to read: the one of index 0 (an index left out is 0, as
-- protobuf's JSON leaves defaults out), or nil
local function first_candidate(cands)
  for _, c in ipairs(cands) do
    if type(c) == "table" and (c.index == nil or c.index == 0) then return c end
  end
end

-- the answer: the candidate of index 0, its text parts, thoughts skipped
-- (a part is an answer only when it says it is no thought: a missing or
-- false `thought`). Whatever is in doubt is no answer: a blocked prompt
-- is blocked even with a candidate beside it.
function M.parse_response(status, text)
  local doc = cjson.decode(text)
  if status ~= 200 then return nil, google_error(status, doc) end
  if type(doc) ~= "table" then return nil, failure("bad_response", "gemini: HTTP 200 but not JSON") end
  local usage = type(doc.usageMetadata) == "table" and doc.usageMetadata or {}
  local out = { model = type(doc.modelVersion) == "string" and doc.modelVersion or nil,
    usage = { prompt = count(usage.promptTokenCount), output = count(usage.candidatesTokenCount),
      thoughts = count(usage.thoughtsTokenCount), total = count(usage.totalTokenCount) } }
  local feedback = doc.promptFeedback
  if type(feedback) == "table" and feedback.blockReason ~= nil then
    return nil, failure("blocked", "gemini: the prompt was blocked (" .. tostring(feedback.blockReason) .. ")", out)
  end
  local cands = doc.candidates
  if type(cands) ~= "table" or cands[1] == nil then return nil, failure("empty", "gemini: no candidates", out) end
  local cand = first_candidate(cands)
  if not cand then return nil, failure("bad_response", "gemini: no candidate of index 0", out) end
  out.finish = type(cand.finishReason) == "string" and cand.finishReason or nil
  local parts = type(cand.content) == "table" and cand.content.parts
  local texts = {}
  for _, p in ipairs(type(parts) == "table" and parts or {}) do
    if type(p) == "table" and (p.thought == nil or p.thought == false) and type(p.text) == "string" then
      texts[#texts + 1] = p.text
    end
  end
  out.text = table.concat(texts)
  -- only STOP is a whole answer
  if out.finish and out.finish ~= "STOP" then
    local cause = out.finish == "SAFETY" and "safety" or out.finish == "MAX_TOKENS" and "max_tokens"
      or "finish_" .. out.finish:lower():gsub("[^%w_]", "")
    return nil, failure(cause, "gemini: the answer ended with " .. out.finish, out)
  end
  if out.text == "" then return nil, failure("empty", "gemini: an empty answer", out) end
  if not out.finish then return nil, failure("finish_unspecified", "gemini: an answer without a finishReason", out) end
  return out
end

function M.ask(o)
  local url = (o.base or M.BASE) .. "/v1beta/models/" .. o.model .. ":generateContent"
  local status, headers, text = http.request { method = "POST", url = url, timeout = o.timeout,
    headers = { ["Content-Type"] = "application/json", ["x-goog-api-key"] = o.key, ["User-Agent"] = "nomade" },
    body = M.body(o) }
  if not status then
    return nil, failure((headers == "timeout" or headers == "cancelled") and headers or "network", "gemini: " .. tostring(headers))
  end
  return M.parse_response(status, text)
end

return M
