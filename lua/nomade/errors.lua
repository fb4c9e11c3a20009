-- nomade.errors: the one shape of a runtime failure, returned as nil, err
-- by the adapters (Bybit, the LLM providers): a table with a kind, a
-- message (what tostring gives) and whatever else the caller may use
-- (status, retry_after, retCode ...). The tribunal calls a kind a cause:
-- err.cause is err.kind. Plain Lua (scripts/layers: base).
local M = {}

-- the kinds callers branch on; an adapter may add its own
--   network, timeout          no answer
--   bad_response              an answer that is not what the protocol says
--   rate_limit, http_429      asked too often;  http_5xx, exchange: the server failed
--   auth, config              nomade was not set up to ask;  refused: nomade would not send it
--   invalid_request, not_found, duplicate, insufficient_balance   the exchange said no
--   deadline, budget          the tribunal's own limits;  blocked, empty, safety,
--   max_tokens, finish_*      what an LLM's answer was instead of one

local E = {
  __tostring = function(e) return e.message end,
  __index = function(e, k) if k == "cause" then return rawget(e, "kind") end end,
}

-- errors.new(kind, message [, extra]) -> the error: extra (a table) given
-- the kind and message
function M.new(kind, message, extra)
  local e = extra or {}
  e.kind, e.message = kind, message
  return setmetatable(e, E)
end

return M
