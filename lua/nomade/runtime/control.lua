-- nomade.runtime.control: the operator's controls over a run. Every one
-- (the REPL, the dashboard, Firebase's /commands, the halt file, signals,
-- the strategy file's watcher) goes through command(action, source, why):
-- pause and resume new entries, halt and unhalt (the kill switch), reload.
-- Methods of the runtime object (nomade.runtime).
local loop = require "nomade.loop"
local events = require "nomade.runtime.events"

local emit, FROM = events.emit, events.FROM

local R = {}

-- the remote controls, said as they come in
local ANNOUNCED = { dashboard = true, firebase = true }

local ACTIONS = {
  pause = function(rt, from)
    rt.e.paused = true
    emit("warn", "pause", { from = from }, "  pause entries paused from %s", FROM[from])
    return "entries paused"
  end,
  resume = function(rt, from)
    rt.e.paused = false
    emit("info", "resume", { from = from }, "  resume entries resumed from %s", FROM[from])
    return "entries resumed"
  end,
  halt = function(rt, from, why) return rt:halt(why or "halt from " .. FROM[from]) end,
  unhalt = function(rt, from) return rt:unhalt(from) end,
  reload = function(rt, _, why)
    if not rt.path then return nil, "the default strategy has no file to reload" end
    return rt:reload(why)
  end,
}

-- action (pause, resume, halt, unhalt, reload) from source (repl,
-- dashboard, firebase, signal, halt_file, watch), why: what to say it was
-- -> its result text, or nil and why not
function R:command(action, source, why)
  if ANNOUNCED[source] then
    emit("warn", "command", { action = action, from = source }, "  control %s from %s", action, FROM[source])
  end
  local act = ACTIONS[action]
  if not act then return nil, "no such control: " .. tostring(action) end
  return act(self, source, why)
end

-- the kill switch: the shield stops entries (in C) and the open order is
-- cancelled; it lasts, in the journal, until unhalt() with the file gone
function R:halt(why)
  local journal = self.journal
  local was = journal:flag("halted")
  journal:flag("halted", why)
  self.sh:signal("halted", true, why, self:clock())
  self:report_shield()
  if not was then
    emit("error", "halt", { why = why }, "  HALT  %s: no entries; open orders cancelled", why)
    journal:note(self.inner.time, "halt", { why = why })
  end
  if self.caps.cancel then
    local ok, cerr = self.book:cancel_open()
    if not ok then
      emit("error", "halt", { why = why, error = tostring(cerr) }, "  error halt: the open order could not be "
        .. "cancelled (%s); retried with the next check", tostring(cerr))
    end
  end
  return "halted: " .. why
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

function R:unhalt(from)
  if exists(self.halt_file) then return nil, "the halt file " .. self.halt_file .. " still exists: remove it first" end
  self.journal:flag("halted", false)
  self.sh:signal("halted", false, "", self:clock())
  self:report_shield()
  emit("warn", "unhalt", { from = from }, "  unhalt the kill switch is lifted from %s (entries resume once the "
    .. "shield is GREEN)", FROM[from])
  self.journal:note(self.inner.time, "unhalt", { from = from })
  return "unhalted"
end

-- the halt file, checked every second: halts (again while an order is open)
function R:check_halt_file()
  if exists(self.halt_file) and (not self.journal:flag("halted") or (self.book.open and self.book.open.order_id)) then
    self:command("halt", "halt_file", "the halt file " .. self.halt_file)
  end
end

-- the kill switch as it was left, and the halt file watched
function R:arm_kill_switch()
  self.halt_file = self.opts["halt-file"] or (self.jpath .. ".halt")
  local halted = self.journal:flag("halted")
  if halted then
    self.sh:signal("halted", true, halted, self:clock())
    self:report_shield()
    emit("error", "halt", { why = halted }, "  HALT  still halted (%s): unhalt() in the REPL lifts it", halted)
  end
  self.timers[#self.timers + 1] = loop.timer(1, 1, function() self:check_halt_file() end)
  self:check_halt_file()
end

-- how long a saved file must stay unchanged before it is reloaded: an
-- editor's save is one write (or a write and a rename) well inside it;
-- a save caught half-way fails its load and the old strategy goes on
local RELOAD_SETTLE = 0.01

-- the strategy file and the modules it requires: watched, and rewatched
-- after each reload (a reload may require other modules)
function R:watch_files()
  for _, w in pairs(self.watched) do w:stop() end
  self.watched = {}
  for _, f in ipairs(self.strat.files or {}) do
    self.watched[f] = loop.watch(f, function(changed)
      self:command("reload", "watch", changed == self.path and "file changed" or (changed .. " changed"))
    end, RELOAD_SETTLE)
  end
end

-- SIGHUP reloads (with a file), SIGUSR1 halts, SIGINT and SIGTERM stop
function R:listen_signals()
  local watchers = self.watchers
  if self.path then
    self:watch_files()
    watchers[#watchers + 1] = loop.signal("HUP", function() self:command("reload", "signal", "SIGHUP") end)
  end
  watchers[#watchers + 1] = loop.signal("USR1", function() self:command("halt", "signal", "SIGUSR1") end)
  for _, sig in ipairs({ "INT", "TERM" }) do
    watchers[#watchers + 1] = loop.signal(sig, function()
      emit("info", "stop", { signal = "SIG" .. sig }, "  stop  SIG%s: stopping after this candle", sig)
      loop.stop()
    end)
  end
end

return { methods = R }
