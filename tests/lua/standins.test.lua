-- The stand-ins' own self-tests (tests/stand-ins/*/selftest.py: Bybit's
-- REST and WebSocket sides, Firebase, Gemini), run side by side with
-- --no-timing (no upper bound on how fast an answer came: the machine is
-- shared), each of their checks reported here as one of ours.
local t = require "testlib"
local slurp = t.slurp

local NAMES = { "bybit", "firebase", "gemini" }
local dir = os.tmpname() .. ".d"
os.execute("mkdir -p " .. dir)
local jobs = {}
for _, name in ipairs(NAMES) do
  jobs[#jobs + 1] = string.format("( /usr/bin/python3 tests/stand-ins/%s/selftest.py --no-timing > %s/%s 2>&1; "
    .. "echo $? > %s/%s.rc ) &", name, dir, name, dir, name)
end
os.execute(table.concat(jobs, " ") .. " wait")

for _, name in ipairs(NAMES) do
  local out = slurp(dir .. "/" .. name)
  local lines, checks = {}, 0
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  for k, line in ipairs(lines) do
    local failed = line:match("^not ok %d+ %- ") ~= nil
    local desc = line:match("^ok %d+ %- (.*)$") or line:match("^not ok %d+ %- (.*)$")
    if desc then
      checks = checks + 1
      local detail = {}
      for j = k + 1, #lines do
        if not lines[j]:match("^#") then break end
        detail[#detail + 1] = lines[j]
      end
      t.ok(not failed, name .. ": " .. desc, table.concat(detail, "\n"))
    end
  end
  local rc = tonumber(slurp(dir .. "/" .. name .. ".rc"))
  local summary = out:match("(%d+ passed, %d+ failed)%s*$")
  t.ok(rc == 0 and checks > 0 and summary and summary:match("^(%d+)") == tostring(checks)
    and summary:match(", 0 failed$"), name .. ": the self-test ran to its end and passed (exit " .. tostring(rc) .. ")",
    out:sub(-600))
end
os.execute("rm -rf " .. dir)
t.done()
