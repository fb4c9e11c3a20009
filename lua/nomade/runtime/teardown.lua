-- nomade.runtime.teardown: the end of a run: the feed, timers, watchers,
-- the REPL, the dashboard and Firebase stopped, the journal closed, and
-- the end line. Methods of the runtime object (nomade.runtime).
local events = require "nomade.runtime.events"
local sched = require "nomade.sched"

local emit = events.emit

local R = {}

function R:stop_all()
  sched.cancel_all("tribunal")  -- a call in flight ends as a WAIT, cause cancelled
  self.feed.stop()
  for _, t in ipairs(self.timers) do t:stop() end
  if self.book_due then self.book_due:stop() end
  if self.caps.private_stream then self.book:stop() end
  for _, w in ipairs(self.watchers) do w:stop() end
  for _, w in pairs(self.watched) do w:stop() end
  self.server:close()
  if self.web then self.web:close() end
  if self.publisher then self.publisher:stop() end
  self.journal:close()
end

-- everything stopped, the run summed up -> the exit status
function R:teardown()
  self:stop_all()
  self:flush_repeats()
  local book, close = self.book, self.inner.close or 0
  local failed = self:failed_calls()
  emit(failed and "warn" or "info", "end", { finished = self.finished, candles = self.e.n,
    equity = book:equity(close), trades = #book.trades, errors = failed },
    "nomade run: %s after %d candles: equity %.2f, %d trades, %s%s", self.finished and "replay done" or "stopped",
    self.e.n, book:equity(close), #book.trades, book.position and "a position open" or "flat",
    failed and string.format("; %d failed strategy calls, the last on the candle of %s: %s", failed.count,
      failed.candle, failed.last) or "")
  return 0
end

return { methods = R }
