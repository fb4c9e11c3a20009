// market.js: the logic of market.html: a candlestick chart of
// market/<SYMBOL>/candles with the first ema* indicator as an overlay, the
// rsi* indicator in its own pane, the regime as a coloured strip under the
// candles, trade entries and exits as markers, the live price as a price
// line; beside it the live price, the shield state, the regime and the
// indicators, the last candle and the tribunal's last verdict.
// window.nomade exposes the source and what was drawn (for tests).
import { Source } from './nomade-source.js';
import {
  $, el, setText, fmtPrice, fmtNum, fmtQty, fmtPct, fmtSigned, fmtWhen, fmtAgo, fmtDuration, isNum, entries,
  mountFrame, fillTable, signClass, loadCharts, chartMissing, makeChart, SeriesSync, toSec, COLORS,
} from './nomade-ui.js';

// the strategy names its regimes; colour the usual words, hash the rest
const REGIME_COLORS = [[/down|bear|short|crash/, '#7a2a31'], [/up|bull|long|trend/, '#1f6b4f'],
  [/range|chop|side|flat|mean/, '#3b4a63'], [/warm|unknown|none/, '#2a2f37'], [/vol|risk|news/, '#7a5a12']];
const PALETTE = ['#1f6b4f', '#3b4a63', '#7a5a12', '#5b3b78', '#1d5a78', '#7a2a31'];
function regimeColor(name) {
  if (!name) return 'rgba(0,0,0,0)';
  const key = String(name).toLowerCase();
  for (const [re, c] of REGIME_COLORS) if (re.test(key)) return c;
  let h = 0;
  for (const ch of key) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

const debug = { candles: 0, lastCandle: null, ema: null, emaPoints: 0, rsi: null, rsiPoints: 0, markers: 0,
  fullRedraws: 0, updates: 0, price: null, chart: false };
let src;
try {
  src = new Source();
} catch (e) {
  document.body.prepend(el('div', { class: 'banner down' }, `bad ?db= in the page URL: ${e.message}`));
  throw e;
}
window.nomade = { src, debug };
mountFrame(src, 'market');

// ---------------------------------------------------------------- chart

const chart = { lib: null, api: null };
const seen = {};
const changed = (key, v) => {
  if (key in seen && seen[key] === v) return false;
  seen[key] = v;
  return true;
};
const state = { candles: undefined, trades: undefined, position: undefined, names: null, live: null };

async function setupChart() {
  const lib = await loadCharts();
  const box = $('#chart');
  if (!lib) { chartMissing(box); return; }
  const api = makeChart(lib, box);
  const candles = api.addSeries(lib.CandlestickSeries, {
    upColor: COLORS.up, downColor: COLORS.down, borderVisible: false, wickUpColor: COLORS.up, wickDownColor: COLORS.down,
    priceLineVisible: false, lastValueVisible: true,
  });
  const regime = api.addSeries(lib.HistogramSeries, {
    priceScaleId: 'regime', priceLineVisible: false, lastValueVisible: false, base: 0,
  });
  regime.priceScale().applyOptions({ scaleMargins: { top: 0.965, bottom: 0 }, visible: false });
  const ema = api.addSeries(lib.LineSeries, {
    color: COLORS.ema, lineWidth: 1.5, priceLineVisible: false, lastValueVisible: true, crosshairMarkerVisible: false,
  });
  const rsi = api.addSeries(lib.LineSeries, {
    color: COLORS.rsi, lineWidth: 1.5, priceLineVisible: false, lastValueVisible: true,
    priceFormat: { type: 'price', precision: 1, minMove: 0.1 },
  }, 1);
  for (const [p, c] of [[70, '#7a2a31'], [30, '#1f6b4f'], [50, '#2a313c']]) {
    rsi.createPriceLine({ price: p, color: c, lineWidth: 1, lineStyle: lib.LineStyle.Dashed, axisLabelVisible: false });
  }
  const panes = api.panes();
  if (panes[0]) panes[0].setStretchFactor(3);
  if (panes[1]) panes[1].setStretchFactor(1);
  const markers = lib.createSeriesMarkers(candles, []);
  Object.assign(chart, {
    lib, api, candles, regime, ema, rsi, markers,
    syncs: { candles: new SeriesSync(candles), regime: new SeriesSync(regime), ema: new SeriesSync(ema), rsi: new SeriesSync(rsi) },
  });
  api.subscribeCrosshairMove((p) => legend(p?.time ?? null));
  debug.chart = true;
  state.candles = undefined;  // draw what came before the library
  render();
}

// the first ema* and rsi* among the indicators (last candle first)
function indicatorNames(rows) {
  const seen = new Set();
  for (let i = rows.length - 1; i >= 0 && i >= rows.length - 5; i--) {
    for (const k of Object.keys(rows[i].c.ind || {})) seen.add(k);
  }
  if (!seen.size) for (const r of rows) for (const k of Object.keys(r.c.ind || {})) seen.add(k);
  const names = [...seen].sort();
  return { all: names, ema: names.find((n) => /^ema/i.test(n)) || null, rsi: names.find((n) => /^rsi/i.test(n)) || null };
}

function candleRows(node) {
  const rows = [];
  for (const [, c] of entries(node)) {
    if (!c || !isNum(c.t) || !isNum(c.o) || !isNum(c.h) || !isNum(c.l) || !isNum(c.c)) continue;
    rows.push({ time: toSec(c.t), c });
  }
  return rows;
}

function drawCandles(rows) {
  const names = indicatorNames(rows);
  const namesChanged = !state.names || names.ema !== state.names.ema || names.rsi !== state.names.rsi;
  state.names = names;
  state.rows = rows;
  debug.candles = rows.length;
  debug.lastCandle = rows.length ? rows[rows.length - 1].c.t : null;
  debug.ema = names.ema;
  debug.rsi = names.rsi;
  if (!chart.api) return;
  const s = chart.syncs;
  if (namesChanged) { s.ema.count = 0; s.rsi.count = 0; }
  const full = s.candles.sync(rows.map((r) => ({
    time: r.time, ref: r.c, point: { time: r.time, open: r.c.o, high: r.c.h, low: r.c.l, close: r.c.c },
  })));
  debug[full ? 'fullRedraws' : 'updates']++;
  s.regime.sync(rows.map((r) => ({
    time: r.time, ref: r.c, point: { time: r.time, value: 1, color: regimeColor(r.c.regime) },
  })));
  const line = (name) => rows.map((r) => {
    const v = name ? r.c.ind?.[name] : undefined;
    return { time: r.time, ref: r.c, point: isNum(v) ? { time: r.time, value: v } : { time: r.time } };
  });
  s.ema.sync(line(names.ema));
  s.rsi.sync(line(names.rsi));
  chart.ema.applyOptions({ title: names.ema || '', visible: Boolean(names.ema) });
  chart.rsi.applyOptions({ title: names.rsi || '', visible: Boolean(names.rsi) });
  debug.emaPoints = names.ema ? rows.filter((r) => isNum(r.c.ind?.[names.ema])).length : 0;
  debug.rsiPoints = names.rsi ? rows.filter((r) => isNum(r.c.ind?.[names.rsi])).length : 0;
}

// the open time of the candle holding ms (markers sit on candles)
function candleAt(rows, ms) {
  if (!rows?.length || !isNum(ms)) return null;
  let lo = 0, hi = rows.length - 1, best = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid].c.t <= ms) { best = rows[mid].time; lo = mid + 1; } else hi = mid - 1;
  }
  return best;
}

function drawMarkers(trades, positions, symbol) {
  if (!chart.api) return;
  const rows = state.rows || [];
  const out = [];
  for (const [, t] of entries(trades)) {
    const a = candleAt(rows, t.entry_time), b = candleAt(rows, t.exit_time);
    if (a !== null) out.push({ time: a, position: 'belowBar', shape: 'arrowUp', color: COLORS.up, text: 'buy' });
    if (b !== null) {
      out.push({ time: b, position: 'aboveBar', shape: 'arrowDown', color: isNum(t.pnl) && t.pnl < 0 ? COLORS.down : '#8fd3c8',
        text: `sell ${isNum(t.pnl) ? fmtSigned(t.pnl) : ''}`.trim() });
    }
  }
  const p = positions?.[symbol];
  if (p) {
    const a = candleAt(rows, p.time);
    if (a !== null) out.push({ time: a, position: 'belowBar', shape: 'arrowUp', color: COLORS.live, text: 'open' });
  }
  out.sort((x, y) => x.time - y.time);
  chart.markers.setMarkers(out);
  debug.markers = out.length;
}

function drawLivePrice(price) {
  if (!chart.api) return;
  if (!isNum(price)) {
    if (state.live) { chart.candles.removePriceLine(state.live); state.live = null; }
    return;
  }
  const opts = { price, color: COLORS.live, lineWidth: 1, lineStyle: chart.lib.LineStyle.Dotted, axisLabelVisible: true, title: 'live' };
  if (state.live) state.live.applyOptions(opts);
  else state.live = chart.candles.createPriceLine(opts);
}

// the legend: the hovered candle, else the last one
function legend(time) {
  const rows = state.rows || [];
  let r = rows[rows.length - 1];
  if (time !== null && time !== undefined) r = rows.find((x) => x.time === time) || r;
  const box = $('#legend');
  if (!r) { box.replaceChildren(); return; }
  const c = r.c, n = state.names || {};
  const part = (k, v, cls) => el('span', {}, `${k} `, el('b', { class: cls }, v));
  box.replaceChildren(...[
    el('span', {}, fmtWhen(c.t)),
    part('O', fmtPrice(c.o)), part('H', fmtPrice(c.h)), part('L', fmtPrice(c.l)),
    part('C', fmtPrice(c.c), c.c >= c.o ? 'up' : 'down'),
    isNum(c.v) ? part('V', fmtNum(c.v, 3)) : null,
    n.ema ? part(n.ema, fmtPrice(c.ind?.[n.ema])) : null,
    n.rsi ? part(n.rsi, fmtNum(c.ind?.[n.rsi], 1)) : null,
    c.regime ? part('regime', String(c.regime)) : null,
  ].filter(Boolean));
}

// ---------------------------------------------------------------- side

function drawSide(wall) {
  const now = src.dataNow(wall);  // the tree's times against the tree's clock (a replay's)
  const m = src.market();
  const node = m.node || {};
  const rows = state.rows || [];
  const last = rows[rows.length - 1]?.c;
  const prev = rows[rows.length - 2]?.c;
  // price
  const cur = node.current;
  const price = isNum(cur?.price) ? cur.price : last?.c;
  debug.price = price ?? null;
  const ref = last?.c ?? null;
  const priceEl = $('#price');
  setText(priceEl, fmtPrice(price));
  priceEl.className = `price live-value ${isNum(price) && isNum(ref) ? (price >= ref ? 'up' : 'down') : ''}`;
  const dayAgo = rows.length && isNum(price) ? rows.find((r) => r.c.t >= (cur?.time ?? last.t) - 864e5)?.c : null;
  setText($('#price-change'), isNum(price) && isNum(ref) ? `${fmtPct(price / ref - 1)} vs last close` : '');
  setText($('#price-day'), dayAgo && dayAgo !== last && isNum(price)
    ? `${fmtPct(price / dayAgo.o - 1)} ${fmtDuration((cur?.time ?? last.t) - dayAgo.t).split(' ')[0]}` : '');
  setText($('#price-time'), cur?.time ? `as of ${fmtWhen(cur.time, wall)} UTC` : '');
  setText($('#price-age'), cur?.time ? (m.replay ? 'replay clock' : fmtAgo(cur.time, wall)) : '');
  // position
  const pos = src.get('positions')?.[m.symbol];
  const posEl = $('#position-line');
  if (pos && isNum(pos.qty)) {
    const u = isNum(price) && isNum(pos.price) ? (price - pos.price) * pos.qty : null;
    setText(posEl, `long ${fmtQty(pos.qty)} @ ${fmtPrice(pos.price)}  uPnL ${fmtSigned(u)}`);
    posEl.className = signClass(u) || 'muted';
  } else {
    setText(posEl, 'flat');
    posEl.className = 'muted';
  }
  // the rest changes with the tree, or its "ago"s every few seconds:
  // redrawn only then (a table redrawn ten times a second cannot be read
  // or selected)
  const tick = Math.floor(wall / 5000);
  if (!changed('side', `${tick}`) & !changed('shield', src.get('shield')) & !changed('rows', state.rows)
    & !changed('verdict', src.get('tribunal/last'))) return price;
  // shield
  const sh = src.get('shield') || {};
  const stEl = $('#shield-state');
  setText(stEl, sh.state || '—');
  stEl.className = `shield-state live-value ${sh.state || ''}`;
  const tr = entries(sh.transitions).pop()?.[1];
  setText($('#shield-since'), tr?.time ? `for ${fmtDuration(now - tr.time)}` : '');
  const reasons = entries(sh.reasons);
  $('#shield-reasons').replaceChildren(...(reasons.length
    ? reasons.map(([k, r]) => el('li', {}, el('span', { class: `sev ${r.severity === 'RED' ? 'down' : 'muted'}` }, r.severity || ''),
      el('b', {}, r.check || k), ' ', el('span', { class: 'muted' }, r.detail || ''),
      r.since ? el('span', { class: 'dim' }, ` · ${fmtAgo(r.since, now)}`) : null))
    : [el('li', { class: 'none' }, 'no active reason')]));
  // regime and indicators
  const reg = $('#regime');
  setText(reg, last?.regime ?? '—');
  reg.style.borderLeft = last?.regime ? `6px solid ${regimeColor(last.regime)}` : '';
  reg.style.paddingLeft = last?.regime ? '6px' : '';
  let since = null;
  for (let i = rows.length - 1; i >= 0 && rows[i].c.regime === last?.regime; i--) since = rows[i].c.t;
  setText($('#regime-since'), since !== null && last?.regime ? `since ${fmtWhen(since, now)}` : '');
  const ind = last?.ind || {};
  fillTable($('#ind tbody'), Object.keys(ind).sort().map((k) => {
    const d = prev?.ind?.[k];
    return [k, { text: `${Math.abs(ind[k]) >= 1000 ? fmtPrice(ind[k]) : fmtNum(ind[k], 2)}${isNum(d) ? (ind[k] > d ? ' ▲' : ind[k] < d ? ' ▼' : ' ·') : ''}`,
      class: isNum(d) ? (ind[k] > d ? 'up' : ind[k] < d ? 'down' : '') : '' }];
  }), 'no indicators');
  // last candle
  setText($('#candle-time'), last ? `${fmtWhen(last.t, now)} UTC` : '');
  fillTable($('#ohlc tbody'), last ? [['open', fmtPrice(last.o)], ['high', fmtPrice(last.h)], ['low', fmtPrice(last.l)],
    ['close', { text: fmtPrice(last.c), class: last.c >= last.o ? 'up' : 'down' }], ['volume', fmtNum(last.v, 4)],
    ['candles', `${rows.length}${m.interval ? ` × ${fmtDuration(m.interval).replace(/ 0+s$/, '')}` : ''}`]] : [], 'no candle yet');
  // tribunal
  const v = src.get('tribunal/last');
  setText($('#verdict-time'), v?.time ? fmtAgo(v.time, now) : '');
  $('#verdict-head').replaceChildren(...(v ? [el('span', { class: `sig ${v.signal}` }, v.signal || '?'), ` score ${v.score ?? '—'}`,
    v.model ? el('span', { class: 'dim' }, ` · ${v.model}`) : null].filter(Boolean) : ['—']));
  setText($('#verdict-reason'), v?.reasoning || '');
  return price;
}

// ---------------------------------------------------------------- render

function render() {
  const now = Date.now();
  const m = src.market();
  const node = m.node || {};
  if (node.candles !== state.candles) {
    state.candles = node.candles;
    drawCandles(candleRows(node.candles));
    legend(null);
    state.trades = undefined;  // markers sit on candles
  }
  const trades = src.get('trades'), positions = src.get('positions');
  if (trades !== state.trades || positions !== state.position) {
    state.trades = trades;
    state.position = positions;
    drawMarkers(trades, positions, m.symbol);
  }
  const price = drawSide(now);
  drawLivePrice(isNum(node.current?.price) ? price : null);
}

src.onChange(render);
render();
setupChart();
src.start();
