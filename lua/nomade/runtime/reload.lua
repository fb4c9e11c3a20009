-- nomade.runtime.reload: the strategy file reloaded in place, as a
-- transaction: the new file is loaded and checked, or the old one keeps
-- running; `state` and the book are kept. Methods of the runtime object
-- (nomade.runtime).
local host = require "nomade.host"
local sched = require "nomade.sched"
local strategy = require "nomade.strategy"
local engine = require "nomade.engine"
local events = require "nomade.runtime.events"

local emit = events.emit

local R = {}

-- the new strategy from the file, or nil and why
function R:load_again()
  local f, oerr = io.open(self.path, "rb")
  if not f then return nil, oerr end
  local src = f:read("a")
  f:close()
  return strategy.load(src, "@" .. self.path, self.state, function(line) self:print(line) end)
end

-- a reload that did not happen: kept, noted and said
function R:reload_failed(why, err, fmt)
  local reloads = self.reloads
  reloads.ok, reloads.error = false, err
  self.journal:note(self.inner.time, "reload", { ok = false, why = why, error = err })
  emit("error", "reload", { ok = false, why = why, error = err }, fmt, why, err)
  return false, err
end

-- reload(why) -> true, or false and why the previous strategy goes on
function R:reload(why)
  local reloads, old = self.reloads, self.strat
  local new, lerr = self:load_again()
  reloads.count, reloads.last, reloads.why = reloads.count + 1, os.date("!%Y-%m-%dT%H:%M:%SZ"), why
  if not new then
    return self:reload_failed(why, tostring(lerr), "  error reload (%s) failed, the previous strategy keeps running: %s")
  end
  if new.settings.symbol ~= old.settings.symbol or new.settings.interval ~= old.settings.interval then
    return self:reload_failed(why, string.format("symbol and interval cannot change while running (%s %s)",
      old.settings.symbol, old.settings.interval), "  error reload (%s) refused: %s")
  end
  self.journal:note(self.inner.time, "reload", { ok = true, why = why })
  self.journal:strategy_version(self.path, new.source, self.inner.time and self.inner.time + self.step_ms or 0)
  self.strat = new
  self.e.reload(new)
  sched.cancel_all("tribunal")  -- a verdict asked for the old strategy's prompt is not the new one's
  if new.env.on_reload then
    local ok, rerr = host.limit(engine.CANDLE_BUDGET, new.env.on_reload, self.state)
    if not ok then
      emit("error", "on_reload", { error = tostring(rerr) }, "  error on_reload(state) failed: %s", tostring(rerr))
    end
  end
  reloads.ok, reloads.error = true, nil
  self:watch_files()
  emit("info", "reload", { ok = true, why = why, path = self.path },
    "  reload %s (%s): the new strategy decides from the next candle", self.path, why)
  return true
end

return { methods = R }
