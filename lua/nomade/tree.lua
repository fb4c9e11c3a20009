-- nomade.tree: the data tree the dashboard reads (README, "The
-- dashboard"), with Firebase Realtime Database semantics: a JSON tree
-- addressed by paths "/a/b", written with put (replace a node) and patch
-- (replace named children), and watched by subscribers that receive the
-- same put/patch events a Firebase stream sends, relative to where they
-- listen. Empty tables are absent, as in Firebase (null).
local cjson = require "cjson.safe"
local scrub = require("nomade.secrets").scrub

local M = {}
local T = {}
T.__index = T

function M.new() return setmetatable({ root = nil, subs = {}, next_id = 0 }, T) end

-- "/a/b/" -> {"a", "b"}; nil and why for a key Firebase refuses
function M.split(path)
  local keys = {}
  for key in path:gmatch("[^/]+") do
    if key:find("[%.%$#%[%]%c]") or #key > 768 then
      return nil, "invalid key '" .. key .. "' (no . $ # [ ] or control characters)"
    end
    keys[#keys + 1] = key
  end
  if #keys > 32 then return nil, "path deeper than 32" end
  return keys
end

local function join(keys, from, to)
  local out = {}
  for k = from or 1, to or #keys do out[#out + 1] = keys[k] end
  return "/" .. table.concat(out, "/")
end

-- a value as the tree keeps it: keys as strings, no empty tables, and
-- null (cjson.null) as nothing
local function clean(v)
  if v == cjson.null then return nil end
  if type(v) ~= "table" then return v end
  local out, any = {}, false
  for k, x in pairs(v) do
    local c = clean(x)
    if c ~= nil then out[tostring(k)], any = c, true end
  end
  return any and out or nil
end

function T:get(path)
  local node = self.root
  for _, key in ipairs(assert(M.split(path))) do
    if type(node) ~= "table" then return nil end
    node = node[key]
  end
  return node
end

-- sets the node at keys (nil removes it, and parents left empty)
local function set(self, keys, value)
  if #keys == 0 then
    self.root = value
    return
  end
  local node = self.root
  if type(node) ~= "table" then node = {} self.root = node end
  local trail = {}
  for k = 1, #keys - 1 do
    local child = node[keys[k]]
    if type(child) ~= "table" then
      if value == nil then return end
      child = {}
      node[keys[k]] = child
    end
    trail[k] = node
    node = child
  end
  node[keys[#keys]] = value
  for k = #keys - 1, 1, -1 do  -- prune what the removal left empty
    if next(trail[k][keys[k]]) ~= nil then break end
    trail[k][keys[k]] = nil
  end
  if next(self.root) == nil then self.root = nil end
end

-- is keys a prefix of other?
local function under(prefix, other)
  if #prefix > #other then return false end
  for k = 1, #prefix do if prefix[k] ~= other[k] then return false end end
  return true
end

-- each subscriber sees the write as its Firebase stream would
function T:notify(keys, kind, data)
  for _, sub in pairs(self.subs) do
    if under(sub.keys, keys) then
      sub.fn(kind, join(keys, #sub.keys + 1), data)
    elseif under(keys, sub.keys) then
      sub.fn("put", "/", self:get(join(sub.keys)))
    end
  end
end

function T:put(path, value)
  local keys = assert(M.split(path))
  value = clean(value)
  set(self, keys, value)
  self:notify(keys, "put", value)
end

-- children of path replaced by those of tbl (a child set to cjson.null,
-- or to an empty table, is removed); one patch event
function T:patch(path, tbl)
  local keys = assert(M.split(path))
  local sent = {}
  for k, v in pairs(tbl) do
    local child = { table.unpack(keys) }
    child[#child + 1] = tostring(k)
    local c = clean(v)
    set(self, child, c)
    sent[tostring(k)] = c == nil and cjson.null or c
  end
  if next(sent) then self:notify(keys, "patch", sent) end
end

-- subscribe(path, fn(kind, path, data)) -> id; unsubscribe(id)
function T:subscribe(path, fn)
  self.next_id = self.next_id + 1
  self.subs[self.next_id] = { keys = assert(M.split(path)), fn = fn }
  return self.next_id
end

function T:unsubscribe(id) self.subs[id] = nil end

-- JSON as Firebase writes it: null for nothing, "/" unescaped
function M.json(v)
  if v == nil then return "null" end
  return scrub((assert(cjson.encode(v)):gsub("\\/", "/")))  -- what leaves for a page or Firebase: no secret
end

-- one Server-Sent Event, compact and "path" first, as Firebase sends them
function M.event(kind, path, data)
  if kind == "keep-alive" then return "event: keep-alive\ndata: null\n\n" end
  return "event: " .. kind .. "\ndata: {\"path\":" .. M.json(path) .. ",\"data\":" .. M.json(data) .. "}\n\n"
end

return M
