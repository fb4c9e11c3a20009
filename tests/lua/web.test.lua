-- The dashboard's pages in a real browser (Debian's Chromium, driven by
-- playwright-core from vendor/web): tests/web/pages.test.mjs against its
-- scripted stand-in (tests/web/fake_source.py), then against a running
-- `nomade run --http` on the replay feed: the pages load, price and chart
-- move, a verdict and a trade appear, a control is refused without the
-- token and works with it, and the pages turn stale when the stream stops
-- (the process frozen with SIGSTOP). Screenshots: build/web-artifacts/.
local t = require "testlib"
local http = require "nomade.http"

local slurp = t.slurp

-- what the browser run needs; make test builds the assets and installs the rest
local node = io.popen("node --version 2>/dev/null"):read("a")
local major = tonumber(node:match("^v(%d+)"))
local ready = major and major >= 18 and os.execute("test -x /usr/bin/chromium")
  and io.open("web/assets/lightweight-charts.js") and io.open("vendor/web/node_modules/playwright-core/package.json")
t.ok(ready, "node >= 18, chromium, playwright-core and the chart bundle are there (make web-assets)",
  "node " .. (node ~= "" and node or "missing"))
if not ready then t.done() end

-- the harness's own TAP lines, passed through (the runner counts them)
local function browse(env)
  local out = os.tmpname()
  os.execute((env or "") .. " node tests/web/pages.test.mjs > " .. out .. " 2>&1")
  local text = slurp(out)
  os.remove(out)
  io.write(text)
  return text
end

local fake = browse()
t.ok(fake:find("web: %d+ passed, 0 failed"), "the pages against the stand-in")

local dir = os.tmpname() .. ".d"
os.execute("mkdir -p " .. dir)
local out = dir .. "/out"
os.execute(string.format("NOMADE_DASHBOARD_TOKEN=web-token %s run --feed replay:data/binance-spot-btcusdt-1h-2022-2023.csv "
  .. "--speed 36000 --journal %s/j --socket %s/sock --http 127.0.0.1:0 --log-format json > %s 2>&1 & echo $! > %s.pid",
  t.bin, dir, dir, out, out))
local pid = slurp(out .. ".pid"):match("%d+")
local url
for _ = 1, 100 do
  url = slurp(out):match('"url":"(http:[^"]+)"')
  if url then break end
  os.execute("sleep 0.05")
end
url = url and url:gsub("\\/", "/"):gsub("/$", "")
t.ok(url and http.request { url = url .. "/bot/status.json" } == 200, "nomade run --http is up", slurp(out):sub(1, 400))
local real = browse(string.format("NOMADE_WEB_BASE=%s NOMADE_WEB_TOKEN=web-token NOMADE_WEB_HALT=1 "
  .. "NOMADE_WEB_STALL_CMD='kill -STOP %s' NOMADE_WEB_RESUME_CMD='kill -CONT %s' "
  .. "NOMADE_WEB_ARTIFACTS=build/web-artifacts/nomade", url, pid, pid))
t.ok(real:find("web: %d+ passed, 0 failed"), "the pages against nomade run")
os.execute("kill -CONT " .. pid .. "; kill -TERM " .. pid)
t.done()
