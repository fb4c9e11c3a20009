// nomade-ui.js: what both dashboard pages share: formatting (UTC times,
// prices, ages), the top bar (symbol, interval, mode, feed, paused/halted,
// connection), the "disconnected / stale" banner, tables, and the chart
// helpers over lightweight-charts (loaded from ./lightweight-charts.js,
// which `make web-assets` copies from vendor/web; the pages still work,
// without charts, when it is missing).
import { fmtDuration } from './nomade-source.js';

export { fmtDuration };

// ---------------------------------------------------------------- DOM

export const $ = (sel, root = document) => root.querySelector(sel);

export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'title') e.title = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e.setAttribute(k, v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

export function setText(node, text) {
  if (!node) return;
  const s = text === null || text === undefined ? '' : String(text);
  if (node.textContent !== s) node.textContent = s;
}

// ---------------------------------------------------------------- formats

const pad = (n, w = 2) => String(n).padStart(w, '0');

export function isNum(x) { return typeof x === 'number' && Number.isFinite(x); }

// 2026-11-24 14:03:22 (UTC)
export function fmtTime(ms, { seconds = true, date = true } = {}) {
  if (!isNum(ms)) return '—';
  const d = new Date(ms);
  const t = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}${seconds ? ':' + pad(d.getUTCSeconds()) : ''}`;
  return date ? `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${t}` : t;
}

// today: the clock only; else the date too
export function fmtWhen(ms, now = Date.now()) {
  if (!isNum(ms)) return '—';
  return fmtTime(ms, { date: Math.abs(now - ms) > 20 * 3600e3 });
}

export function fmtAgo(ms, now = Date.now()) {
  if (!isNum(ms)) return '—';
  const d = now - ms;
  return d < -1000 ? `in ${fmtDuration(-d)}` : `${fmtDuration(d)} ago`;
}

export function fmtPrice(x) {
  if (!isNum(x)) return '—';
  const a = Math.abs(x);
  const dp = a >= 1000 ? 2 : a >= 10 ? 3 : a >= 1 ? 4 : 6;
  return x.toLocaleString('en-US', { minimumFractionDigits: dp, maximumFractionDigits: dp });
}

export function fmtNum(x, dp = 2) {
  if (!isNum(x)) return '—';
  return x.toLocaleString('en-US', { minimumFractionDigits: dp, maximumFractionDigits: dp });
}

export function fmtQty(x) {
  if (!isNum(x)) return '—';
  return x.toLocaleString('en-US', { maximumFractionDigits: 8 });
}

export function fmtSigned(x, dp = 2) {
  if (!isNum(x)) return '—';
  return (x > 0 ? '+' : '') + fmtNum(x, dp);
}

export function fmtPct(x, dp = 2) {
  if (!isNum(x)) return '—';
  return (x > 0 ? '+' : '') + (x * 100).toFixed(dp) + '%';
}

export const signClass = (x) => (isNum(x) ? (x > 0 ? 'up' : x < 0 ? 'down' : '') : '');

// [key, value] pairs of a tree node, ordered by key (numerically when
// the keys are numbers: times, sequence numbers)
export function entries(node) {
  if (!node || typeof node !== 'object') return [];
  const out = Object.entries(node).filter(([, v]) => v !== null && v !== undefined);
  const numeric = out.every(([k]) => /^-?\d+(\.\d+)?$/.test(k));
  out.sort(numeric ? (a, b) => Number(a[0]) - Number(b[0]) : (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return out;
}

// ---------------------------------------------------------------- page frame

// the other page's link keeps ?db=, &auth=, &stale= (the source)
function keepQuery() {
  for (const a of document.querySelectorAll('a[data-keep-query]')) {
    const u = new URL(a.getAttribute('href'), location.href);
    u.search = location.search;
    a.href = u.href;
  }
}

// the top bar, the banner and the body's freshness classes, kept current
export function mountFrame(src, page) {
  keepQuery();
  const els = {
    symbol: $('#h-symbol'), meta: $('#h-meta'), flags: $('#h-flags'), source: $('#h-source'),
    conn: $('#h-conn'), clock: $('#h-clock'), banner: $('#banner'),
  };
  setText(els.source, src.remote ? `firebase ${src.label}` : src.label);
  let last = null;
  const render = () => {
    const now = Date.now();
    const m = src.market();
    const st = m.status || {};
    setText(els.symbol, m.symbol || '—');
    const meta = [st.interval, st.mode, st.feed, st.strategy].filter(Boolean).join(' · ');
    setText(els.meta, meta || 'no bot/status yet');
    if (els.flags && st !== last) {
      last = st;
      els.flags.replaceChildren(...[
        st.halted ? el('span', { class: 'pill red', title: String(st.halted) }, 'HALTED') : null,
        st.paused && !st.halted ? el('span', { class: 'pill amber' }, 'PAUSED') : null,
        m.replay ? el('span', { class: 'pill blue', title: 'a replay: its clock is not the wall clock' }, 'REPLAY') : null,
        m.replay ? el('span', { id: 'h-replay', class: 'meta', title: 'the replay\'s clock' }, '') : null,
      ].filter(Boolean));
    }
    setText(els.clock, fmtTime(now, { date: false }) + ' UTC');
    if (m.replay) setText($('#h-replay'), ` at ${fmtTime(src.dataNow(now), { seconds: false })}`);
    const v = src.verdict(now);
    document.body.dataset.health = v.level;
    document.body.classList.toggle('is-stale', !v.ok);
    if (els.conn) {
      els.conn.className = `conn ${v.level}`;
      setText(els.conn, `● ${v.title}`);
      els.conn.title = v.text;
    }
    if (els.banner) {
      if (v.ok) {
        els.banner.hidden = true;
      } else {
        els.banner.hidden = false;
        els.banner.className = `banner ${v.level}`;
        const asOf = v.since ? ` Data shown is from ${fmtWhen(v.since, now)} UTC (${fmtAgo(v.since, now)}), not live.` : ' Data shown is not live.';
        setText(els.banner, `${v.title} — ${v.text}.${asOf}`);
      }
    }
    document.title = `${v.ok ? '' : '⚠ '}${m.symbol || 'nomade'} ${page}`;
  };
  src.onChange(render);
  render();
  return render;
}

// a table body from rows of cells ({text, class, title} or a string)
export function fillTable(tbody, rows, empty = 'none') {
  if (!tbody) return;
  const cols = tbody.closest('table')?.querySelectorAll('thead th').length || 1;
  if (!rows.length) {
    tbody.replaceChildren(el('tr', { class: 'empty' }, el('td', { colspan: cols }, empty)));
    return;
  }
  tbody.replaceChildren(...rows.map((cells) => el('tr', {},
    cells.map((c) => (c && typeof c === 'object' && !(c instanceof Node)
      ? el('td', { class: c.class, title: c.title }, c.node ?? c.text ?? '')
      : el('td', {}, c ?? ''))))));
}

// ---------------------------------------------------------------- charts

export const COLORS = {
  bg: '#0b0e11', panel: '#11151b', grid: '#1a1f27', text: '#8b949e', up: '#26a69a', down: '#ef5350',
  ema: '#f0b90b', rsi: '#b388ff', equity: '#4aa3ff', amber: '#f0b90b', live: '#4aa3ff',
};

let chartLib = null;
export async function loadCharts() {
  if (chartLib) return chartLib;
  try {
    chartLib = await import('./lightweight-charts.js');
  } catch (e) {
    console.error('nomade: ./assets/lightweight-charts.js missing (run `make web-assets`)', e);
    chartLib = null;
  }
  return chartLib;
}

export function chartMissing(container) {
  container.replaceChildren(el('div', { class: 'chart-missing' },
    'chart library not found: web/assets/lightweight-charts.js (run `make web-assets`)'));
}

export function makeChart(lib, container, extra = {}) {
  return lib.createChart(container, {
    autoSize: true,
    layout: {
      background: { type: lib.ColorType.Solid, color: COLORS.panel }, textColor: COLORS.text, fontSize: 11,
      fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
      panes: { separatorColor: '#2a313c', separatorHoverColor: '#3a4250', enableResize: true },
    },
    grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
    rightPriceScale: { borderColor: '#2a313c' },
    timeScale: { borderColor: '#2a313c', timeVisible: true, secondsVisible: false, rightOffset: 4 },
    crosshair: { mode: lib.CrosshairMode.Normal },
    localization: { priceFormatter: (p) => fmtPrice(p) },
    ...extra,
  });
}

// keeps a series equal to rows [{time (s), ref, point}] sorted by time,
// with update() for what only moved forward (the live edge), setData() when
// history changed (a reconnect, a gap filled) or fell far out of the window
export class SeriesSync {
  constructor(series) {
    this.series = series;
    this.refs = new Map();
    this.last = -Infinity;
    this.count = 0;
  }

  sync(rows) {
    let full = this.count === 0 || rows.length === 0 || this.count > rows.length + 200;
    if (!full) {
      for (const r of rows) {
        if (r.time >= this.last) break;
        if (this.refs.get(r.time) !== r.ref) { full = true; break; }
      }
    }
    if (full) {
      this.series.setData(rows.map((r) => r.point));
      this.refs = new Map(rows.map((r) => [r.time, r.ref]));
      this.count = rows.length;
    } else {
      for (const r of rows) {
        if (r.time < this.last || this.refs.get(r.time) === r.ref) continue;
        this.series.update(r.point);
        if (!this.refs.has(r.time)) this.count++;
        this.refs.set(r.time, r.ref);
      }
    }
    this.last = rows.length ? rows[rows.length - 1].time : -Infinity;
    return full;
  }
}

export const toSec = (ms) => Math.floor(ms / 1000);
