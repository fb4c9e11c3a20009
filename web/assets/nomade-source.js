// nomade-source.js: where the dashboard pages get the bot's data tree, and
// whether what they show is fresh. One protocol, two places:
//   - same origin: nomade's built-in server (`nomade run --http`) serves the
//     pages and the tree: GET ./market/BTCUSDT.json, EventSource('./.json');
//   - ?db=https://<name>.firebaseio.com[/prefix] (optionally &auth=<token>
//     for reads): a Firebase Realtime Database the bot writes to.
// Both speak Firebase's REST + SSE shape: a GET of <path>.json, then a
// stream of `put` / `patch` events {"path": "/rel", "data": ...} applied to
// a local copy of the tree, `keep-alive` (data null) when quiet, `cancel` and
// `auth_revoked` when the server ends it.
//
// Freshness, never shown as fresh when it is not:
//   - the stream erred or closed -> "down" (and we reconnect);
//   - no event at all (keep-alive included) for ?stale= seconds (default 65,
//     about twice the keep-alive interval) -> "silent" (and we reconnect);
//   - market/<SYMBOL>/current.time older than 2 candle intervals (live feeds;
//     a replay's clock is not the wall clock) -> "market data old";
//   - bot/status.updated, once seen ticking regularly, stops -> "bot silent".
// The tree is updated copy-on-write: a node that did not change keeps its
// identity, so a page can skip re-rendering what is the same object.

export const DEFAULT_STALE_S = 65;
const BACKOFF_MS = [1000, 2000, 5000, 10000, 30000];

// ---------------------------------------------------------------- the tree

export function splitPath(path) {
  return String(path || '').split('/').filter((k) => k !== '');
}

// Firebase returns objects with small integer keys as arrays (with nulls in
// the holes); the pages want maps, so arrays become objects, nulls go.
export function normalize(v) {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object') return v;
  const out = {};
  for (const [k, x] of Object.entries(v)) {
    const c = normalize(x);
    if (c !== null) out[k] = c;
  }
  return Object.keys(out).length ? out : null;
}

// node with value set at keys (null removes it, and parents left empty);
// copies only the objects along the path
export function setIn(node, keys, value, i = 0) {
  if (i === keys.length) return value;
  const obj = node && typeof node === 'object' ? { ...node } : {};
  const child = setIn(obj[keys[i]], keys, value, i + 1);
  if (child === null || child === undefined) delete obj[keys[i]];
  else obj[keys[i]] = child;
  return Object.keys(obj).length ? obj : null;
}

export function getIn(node, keys) {
  for (const k of keys) {
    if (!node || typeof node !== 'object') return null;
    node = node[k];
  }
  return node === undefined ? null : node;
}

// ---------------------------------------------------------------- time

const UNIT_MS = { s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5 };

// "1h", "15m", "1d" (nomade), "60", "D" (Bybit's) -> ms; else from the
// candles' spacing; else null
export function intervalMs(interval, candles) {
  const s = String(interval ?? '').trim();
  let m = /^(\d+)\s*([smhdw])$/i.exec(s);
  if (m) return Number(m[1]) * UNIT_MS[m[2].toLowerCase()];
  if (/^\d+$/.test(s)) return Number(s) * 6e4;
  if (s === 'D') return UNIT_MS.d;
  if (s === 'W') return UNIT_MS.w;
  if (candles && typeof candles === 'object') {
    const ts = Object.keys(candles).map(Number).filter(Number.isFinite).sort((a, b) => a - b).slice(-30);
    let best = Infinity;
    for (let i = 1; i < ts.length; i++) if (ts[i] - ts[i - 1] > 0) best = Math.min(best, ts[i] - ts[i - 1]);
    if (Number.isFinite(best)) return best;
  }
  return null;
}

export function fmtDuration(ms) {
  if (!Number.isFinite(ms)) return '?';
  ms = Math.max(0, ms);
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

// ---------------------------------------------------------------- the source

export class Source {
  constructor(search = location.search) {
    const q = new URLSearchParams(search);
    const db = q.get('db');
    this.remote = Boolean(db);
    if (db) {
      const u = new URL(db);  // throws on a bad ?db=, which the page reports
      const prefix = u.pathname.replace(/(\/\.json|\.json)$/, '').replace(/\/+$/, '');
      this.base = new URL(u.origin + prefix);
      this.label = u.host + prefix;
    } else {
      this.base = new URL('./', location.href);  // beside the page: nomade, or a proxy prefix
      this.label = location.host;
    }
    this.readAuth = q.get('auth') || '';
    const stale = Number(q.get('stale'));
    this.staleMs = (stale > 0 ? stale : DEFAULT_STALE_S) * 1000;
    this.tree = null;
    this.health = { state: 'connecting', text: 'connecting', since: Date.now() };
    this.healthLog = [];          // [ms, state, text], for tests and the curious
    this.lastEventAt = 0;         // local ms of the last stream event, keep-alive included
    this.eventCount = 0;          // stream events received, keep-alive included
    this.lastDataAt = 0;          // local ms of the last put/patch (or the first GET)
    this.beat = { value: null, at: 0, gaps: [] };  // bot/status.updated as a heartbeat
    this.listeners = new Set();
    this.es = null;
    this.attempt = 0;
    this.timer = null;
    this.scheduled = false;
    this.changed = [];
  }

  // the URL of <path>.json: same origin "./<path>.json" ("./.json" for the
  // root), Firebase "<db>/<path>.json" ("<db>/.json" for the root)
  url(path, auth) {
    const keys = splitPath(path);
    const u = new URL(this.base.href);
    if (this.remote) {
      const prefix = u.pathname.replace(/\/+$/, '');
      const p = [prefix, ...keys.map(encodeURIComponent)].filter(Boolean).join('/');
      u.pathname = p ? `${p.startsWith('/') ? '' : '/'}${p}.json` : '/.json';
    } else {
      u.pathname = u.pathname + (keys.length ? keys.map(encodeURIComponent).join('/') : '') + '.json';
    }
    if (auth) u.searchParams.set('auth', auth);
    return u.href;
  }

  get(path) { return getIn(this.tree, splitPath(path)); }

  // fn(source, changedPaths) after each batch of changes (coalesced)
  onChange(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }

  setHealth(state, text) {
    if (this.health.state === state && this.health.text === text) return;
    const since = this.health.state === state ? this.health.since : Date.now();
    this.health = { state, text, since };
    this.healthLog.push([Date.now(), state, text]);
    if (this.healthLog.length > 200) this.healthLog.shift();
    this.notify('health');
  }

  notify(path) {
    this.changed.push(path);
    if (this.scheduled) return;
    this.scheduled = true;
    setTimeout(() => {
      this.scheduled = false;
      const changed = this.changed;
      this.changed = [];
      for (const fn of this.listeners) {
        try { fn(this, changed); } catch (e) { console.error('nomade: render failed', e); }
      }
    }, 16);
  }

  apply(kind, path, data) {
    const keys = splitPath(path);
    if (kind === 'put') {
      this.tree = setIn(this.tree, keys, normalize(data));
      this.notify('/' + keys.join('/'));
    } else if (kind === 'patch' && data && typeof data === 'object') {
      for (const [k, v] of Object.entries(data)) {
        const at = keys.concat(splitPath(k));
        this.tree = setIn(this.tree, at, normalize(v));
        this.notify('/' + at.join('/'));
      }
    }
    this.lastDataAt = Date.now();
    this.watchBeat();
  }

  // bot/status.updated ticking regularly is a heartbeat; remember its pace
  watchBeat() {
    const v = getIn(this.tree, ['bot', 'status', 'updated']);
    if (v === null || v === this.beat.value) return;
    const now = Date.now();
    if (this.beat.value !== null && this.beat.at) {
      this.beat.gaps.push(now - this.beat.at);
      if (this.beat.gaps.length > 10) this.beat.gaps.shift();
    }
    this.beat.value = v;
    this.beat.at = now;
  }

  async start() {
    try {
      const res = await fetch(this.url('', this.readAuth), { cache: 'no-store' });
      const body = await res.json().catch(() => null);
      if (!res.ok) {
        this.refusal = `${res.status} ${body?.error || res.statusText} from ${this.label}`;
        this.setHealth('down', this.refusal);
      } else if (!this.lastEventAt) {  // the stream may have been quicker
        this.tree = normalize(body);
        this.lastDataAt = Date.now();
        this.watchBeat();
        this.notify('/');
      }
    } catch (e) {
      this.setHealth('down', `cannot reach ${this.label}: ${e.message || e}`);
    }
    this.open();
    this.timer = setInterval(() => this.check(), 1000);
    // a hidden tab's timers are throttled: judge freshness again on return
    document.addEventListener('visibilitychange', () => { if (!document.hidden) this.check(); });
  }

  open() {
    if (this.es) this.es.close();
    const es = new EventSource(this.url('', this.readAuth));
    this.es = es;
    const seen = () => {
      this.refusal = null;
      this.lastEventAt = Date.now();
      this.eventCount++;
      this.attempt = 0;
      this.setHealth('live', 'live');
    };
    const onData = (kind) => (ev) => {
      if (es !== this.es) return;
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (!msg || typeof msg !== 'object' || typeof msg.path !== 'string') return;
      this.apply(kind, msg.path, msg.data);
      seen();
    };
    es.addEventListener('put', onData('put'));
    es.addEventListener('patch', onData('patch'));
    es.addEventListener('keep-alive', () => { if (es === this.es) seen(); });
    es.addEventListener('cancel', (ev) => {
      if (es !== this.es) return;
      this.fail(`the server ended the stream: ${quoted(ev.data) || 'cancelled'}`);
    });
    es.addEventListener('auth_revoked', (ev) => {
      if (es !== this.es) return;
      this.fail(`read token no longer valid (${quoted(ev.data) || 'auth_revoked'}): reload with a fresh &auth=`);
    });
    es.onerror = () => {
      if (es !== this.es) return;
      if (es.readyState === EventSource.CLOSED) {
        this.fail(this.refusal || 'the stream was refused or closed');
        this.explain();
      } else {
        this.setHealth('down', 'connection lost; reconnecting');
      }
    };
  }

  // the stream is over: say so, and try again later
  fail(text) {
    if (this.es) this.es.close();
    this.es = null;
    const wait = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt++;
    this.setHealth('down', `${text}; retry in ${Math.round(wait / 1000)}s`);
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.open(), wait);
  }

  // why a stream was refused: EventSource does not tell, a GET does
  async explain() {
    try {
      const res = await fetch(this.url('', this.readAuth), { cache: 'no-store' });
      if (!res.ok) {
        const body = await res.json().catch(() => null);
        this.refusal = `${res.status} ${body?.error || res.statusText} from ${this.label}`;
        if (this.health.state === 'down') this.setHealth('down', `${this.refusal}; retrying`);
      } else {
        this.refusal = null;
      }
    } catch { /* unreachable: the state already says down */ }
  }

  check() {
    const now = Date.now();
    const { state, since } = this.health;
    const quiet = now - (this.lastEventAt || since);
    if ((state === 'live' || state === 'connecting' || state === 'silent') && quiet > this.staleMs) {
      this.setHealth('silent', `no event from ${this.label} for ${fmtDuration(quiet)}`);
      // a half-dead connection never errs: open a new one (every stale period)
      if (!this.es || now - (this.reopenedAt || 0) > this.staleMs) {
        this.reopenedAt = now;
        this.open();
      }
    }
    this.notify('tick');
  }

  // is the bot's heartbeat (bot/status.updated) late? Only once it has
  // been seen ticking, and judged on its own pace
  beatLate(now = Date.now()) {
    const g = this.beat.gaps;
    if (g.length < 2) return null;
    const pace = [...g].sort((a, b) => a - b)[Math.floor(g.length / 2)];
    const limit = Math.max(this.staleMs, 3 * pace);
    const late = now - this.beat.at;
    return late > limit ? late : null;
  }

  // the symbol, its node, and whether its data is recent enough
  market() {
    const status = this.get('bot/status') || {};
    const markets = this.get('market') || {};
    const symbol = status.symbol || Object.keys(markets)[0] || null;
    const node = symbol ? markets[symbol] || null : null;
    const iv = intervalMs(status.interval, node?.candles);
    const replay = /^replay/i.test(String(status.feed || ''));
    return { symbol, node, status, interval: iv, replay };
  }

  // "now" for the tree's own times (candles, verdicts, shield, orders): the
  // wall clock, or in a replay its clock: the last price's time
  dataNow(now = Date.now()) {
    const m = this.market();
    if (!m.replay) return now;
    const cur = m.node?.current;
    if (cur && Number.isFinite(cur.time)) return cur.time;
    const ts = Object.keys(m.node?.candles || {}).map(Number).filter(Number.isFinite);
    return ts.length ? Math.max(...ts) + (m.interval || 0) : now;
  }

  // everything that makes the page's data not fresh, worst first:
  // {ok, level: 'live'|'connecting'|'stale'|'down'|'old', title, text}
  verdict(now = Date.now()) {
    const h = this.health;
    if (h.state === 'down') return { ok: false, level: 'down', title: 'DISCONNECTED', text: h.text, since: this.lastEventAt || this.lastDataAt };
    if (h.state === 'silent') return { ok: false, level: 'stale', title: 'STALE', text: h.text, since: this.lastEventAt || this.lastDataAt };
    const late = this.beatLate(now);
    if (late) {
      return { ok: false, level: 'stale', title: 'STALE', since: this.beat.at,
        text: `the bot has not updated bot/status for ${fmtDuration(late)} (stream alive, bot silent)` };
    }
    const m = this.market();
    const cur = m.node?.current;
    if (!m.replay && m.interval && cur && Number.isFinite(cur.time)) {
      const age = now - cur.time;
      if (age > 2 * m.interval) {
        return { ok: false, level: 'old', title: 'MARKET DATA OLD', since: null,
          text: `last ${m.symbol} price is ${fmtDuration(age)} old (more than 2 candle intervals of ${m.status?.interval || fmtDuration(m.interval)})` };
      }
    }
    if (h.state === 'connecting') return { ok: true, level: 'connecting', title: 'CONNECTING', text: `connecting to ${this.label}` };
    return { ok: true, level: 'live', title: 'LIVE', text: `live from ${this.label}` };
  }

  // POST a control: {ok, name} or {ok: false, status, error}
  async command(action, token) {
    if (!token) return { ok: false, status: 0, error: 'no token: type the controls token first' };
    let res;
    try {
      // no Content-Type header: a "simple" request, no CORS preflight
      // needed against Firebase; the body is JSON all the same
      res = await fetch(this.url('commands', token), {
        method: 'POST', cache: 'no-store',
        body: JSON.stringify({ action, time: { '.sv': 'timestamp' } }),
      });
    } catch (e) {
      return { ok: false, status: 0, error: `cannot reach ${this.label}: ${e.message || e}` };
    }
    const body = await res.json().catch(() => null);
    if (!res.ok) return { ok: false, status: res.status, error: body?.error || res.statusText || 'refused' };
    return { ok: true, status: res.status, name: body?.name || null };
  }
}

function quoted(data) {
  if (data === undefined || data === null || data === 'null') return '';
  try {
    const v = JSON.parse(data);
    return v === null ? '' : String(v);
  } catch {
    return String(data);
  }
}
