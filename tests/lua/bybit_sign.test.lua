-- Bybit V5 signatures reproduce every vector in the fixture (made with
-- python hmac, checked against pybit, bybit-api and ccxt).
local t = require "testlib"
local core = require "nomade._bybit"
local cjson = require "cjson"

local f = assert(io.open("tests/fixtures/bybit/sign_vectors.json"))
local doc = cjson.decode(f:read("a"))
f:close()
local n = 0
for _, v in ipairs(doc.vectors) do
  local got
  if v.kind == "rest" then
    local payload = v.method == "GET" and v.queryString or v.body
    got = core.sign(v.secret, v.timestamp, v.apiKey, v.recvWindow, payload)
  else
    got = core.sign_ws(v.secret, string.format("%d", v.expires))
  end
  n = n + 1
  t.eq(got, v.expectedSign, "vector " .. v.name)
end
t.ok(n >= 10, "all " .. n .. " vectors were checked")
t.raises(function() core.sign("", "1", "k", "5000", "") end, "empty secret", "an empty secret is misuse")
t.done()
