-- nomade.pretty: turns any Lua value into readable text for eval and the
-- REPL. Tables print as Lua constructors, keys sorted, with caps on depth,
-- items per table and total length so a huge value cannot flood a
-- terminal; cycles print as <cycle>. Series print their length and last
-- values rather than every element.
local M = {}

M.defaults = { depth = 4, items = 50, width = 4000 }

local keywords = {}
for w in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do
  keywords[w] = true
end

local function key_text(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") and not keywords[k] then
    return k
  end
  return "[" .. (type(k) == "string" and string.format("%q", k) or tostring(k)) .. "]"
end

-- M.number(x): the shortest text that reads back as x (nan for NaN)
function M.number(x)
  if x ~= x then return "nan" end
  if math.type(x) == "integer" then return tostring(x) end
  for digits = 15, 17 do
    local s = string.format("%." .. digits .. "g", x)
    if tonumber(s) == x then return s end
  end
end
local number_text = M.number

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local format

local function table_text(t, opts, depth, seen)
  if seen[t] then return "<cycle>" end
  if depth >= opts.depth then return "{...}" end
  seen[t] = true
  local parts, n = {}, #t
  for i = 1, math.min(n, opts.items) do
    parts[#parts + 1] = format(t[i], opts, depth + 1, seen)
  end
  local keys = {}
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_order)
  for _, k in ipairs(keys) do
    if #parts >= opts.items then break end
    parts[#parts + 1] = key_text(k) .. " = " .. format(t[k], opts, depth + 1, seen)
  end
  local shown = #parts
  local total = n + #keys
  if total > shown then parts[#parts + 1] = string.format("... (%d more)", total - shown) end
  seen[t] = nil
  return "{" .. table.concat(parts, ", ") .. "}"
end

function format(v, opts, depth, seen)
  local tv = type(v)
  if tv == "string" then return string.format("%q", v) end
  if tv == "number" then return number_text(v) end
  if tv == "table" then
    local mt = getmetatable(v)
    if mt and mt.__tostring then return tostring(v) end
    return table_text(v, opts, depth, seen)
  end
  return tostring(v)
end

-- M.format(v [, opts]): opts may override depth, items and width
function M.format(v, opts)
  opts = setmetatable(opts or {}, { __index = M.defaults })
  local s = format(v, opts, 0, {})
  if #s > opts.width then
    s = s:sub(1, opts.width) .. string.format(" ... (%d chars cut)", #s - opts.width)
  end
  return s
end

-- M.print(...): each value on its own line
function M.print(...)
  for i = 1, select("#", ...) do
    io.stdout:write(M.format((select(i, ...))), "\n")
  end
end

return M
