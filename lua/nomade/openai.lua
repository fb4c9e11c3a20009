-- nomade.openai: the tribunal's second provider, any OpenAI-compatible
-- chat-completions endpoint (llama.cpp's server and Ollama speak it), with
-- a JSON-schema response format. Same shape of answer as nomade.gemini:
--   openai.ask{base, key, model, prompt, system, schema, temperature,
--              max_tokens, timeout}
--     -> {text, finish, usage = {prompt, output, thoughts, total}, model}
--     or nil, an error of nomade.errors (kind = cause, message, status, retry_after)
local http = require "nomade.http"
local cjson = require "cjson.safe"
local failure = require("nomade.errors").new

local M = {}

function M.body(o)
  local messages = {}
  if o.system then messages[1] = { role = "system", content = o.system } end
  messages[#messages + 1] = { role = "user", content = o.prompt }
  return cjson.encode { model = o.model, messages = messages, temperature = o.temperature,
    max_tokens = o.max_tokens,
    response_format = { type = "json_schema", json_schema = { name = "verdict", schema = o.schema, strict = true } } }
end

local count = require("nomade.gemini").count

function M.parse_response(status, headers, text)
  local doc = cjson.decode(text)
  if status ~= 200 then
    local err = type(doc) == "table" and type(doc.error) == "table" and doc.error or {}
    return nil, failure(status >= 500 and "http_5xx" or ("http_" .. status),
      string.format("openai: HTTP %d: %s", status, tostring(type(err.message) == "string" and err.message:sub(1, 300)
        or "no error message")), { status = status, retry_after = tonumber(headers["retry-after"]) })
  end
  if type(doc) ~= "table" then return nil, failure("bad_response", "openai: HTTP 200 but not JSON") end
  local usage = type(doc.usage) == "table" and doc.usage or {}
  local out = { model = type(doc.model) == "string" and doc.model or nil,
    usage = { prompt = count(usage.prompt_tokens), output = count(usage.completion_tokens), thoughts = 0,
      total = count(usage.total_tokens) } }
  local choice = type(doc.choices) == "table" and doc.choices[1]
  if type(choice) ~= "table" then return nil, failure("empty", "openai: no choices", out) end
  local msg = type(choice.message) == "table" and choice.message or {}
  out.finish = type(choice.finish_reason) == "string" and choice.finish_reason or "?"
  out.text = type(msg.content) == "string" and msg.content or ""
  if out.finish ~= "stop" then
    local cause = out.finish == "length" and "max_tokens" or out.finish == "content_filter" and "safety"
      or "finish_" .. out.finish:lower():gsub("[^%w_]", "")
    return nil, failure(cause, "openai: the answer ended with " .. out.finish, out)
  end
  if out.text == "" then return nil, failure("empty", "openai: an empty answer", out) end
  return out
end

function M.ask(o)
  if not o.base then return nil, failure("config", "openai: the provider needs --llm-url") end
  local headers = { ["Content-Type"] = "application/json", ["User-Agent"] = "nomade" }
  if o.key then headers.Authorization = "Bearer " .. o.key end
  local status, rh, text = http.request { method = "POST", url = o.base .. "/v1/chat/completions",
    timeout = o.timeout, headers = headers, body = M.body(o) }
  if not status then
    return nil, failure((rh == "timeout" or rh == "cancelled") and rh or "network", "openai: " .. tostring(rh))
  end
  return M.parse_response(status, rh, text)
end

return M
