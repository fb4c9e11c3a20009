// trading.js: the logic of trading.html: the shield (state, reasons,
// transitions), positions with unrealised P&L at the live price, the bot's
// status and reloads, the strategy's failed calls, orders, trades, the equity curve (lightweight-charts),
// the tribunal's verdicts with reasoning, and the controls: POST
// {"action": "pause"|"resume"|"halt"|"unhalt", "time": {".sv": "timestamp"}} to
// commands.json?auth=<token> (Firebase REST push; 401 without the token),
// then the bot's result from commands/<push id>/result. The token is typed
// by the user and kept in sessionStorage (this tab only), never in the URL.
// Everything from the tree is shown as text (textContent), never as HTML.
// window.nomade exposes the source and what was drawn (for tests).
import { Source } from './nomade-source.js';
import {
  $, el, setText, fmtPrice, fmtNum, fmtQty, fmtPct, fmtSigned, fmtWhen, fmtAgo, fmtDuration, isNum, entries,
  mountFrame, fillTable, signClass, loadCharts, chartMissing, makeChart, SeriesSync, toSec, COLORS,
} from './nomade-ui.js';

const debug = { verdicts: 0, trades: 0, orders: 0, positions: 0, equityPoints: 0, commands: 0, chart: false,
  lastResult: null, errors: 0 };
let src;
try {
  src = new Source();
} catch (e) {
  document.body.prepend(el('div', { class: 'banner down' }, `bad ?db= in the page URL: ${e.message}`));
  throw e;
}
window.nomade = { src, debug };
mountFrame(src, 'trading');

const seen = {};
const changed = (key, v) => {
  if (seen[key] === v && key in seen) return false;
  seen[key] = v;
  return true;
};

// ---------------------------------------------------------------- equity

const eq = { api: null, series: null, sync: null };
async function setupEquity() {
  const lib = await loadCharts();
  const box = $('#equity');
  if (!lib) { chartMissing(box); return; }
  eq.api = makeChart(lib, box, { timeScale: { borderColor: '#2a313c', timeVisible: true, secondsVisible: false, rightOffset: 2 } });
  eq.series = eq.api.addSeries(lib.BaselineSeries, {
    baseValue: { type: 'price', price: 0 }, lineWidth: 1.5, priceLineVisible: false,
    topLineColor: COLORS.up, topFillColor1: 'rgba(38,166,154,.25)', topFillColor2: 'rgba(38,166,154,.02)',
    bottomLineColor: COLORS.down, bottomFillColor1: 'rgba(239,83,80,.02)', bottomFillColor2: 'rgba(239,83,80,.25)',
  });
  eq.sync = new SeriesSync(eq.series);
  debug.chart = true;
  delete seen.equity;
  render();
}

function drawEquity(node) {
  const rows = entries(node).filter(([k, v]) => isNum(v) && /^\d+$/.test(k)).map(([k, v]) => ({ time: toSec(Number(k)), v }));
  debug.equityPoints = rows.length;
  if (rows.length) {
    const first = rows[0].v, last = rows[rows.length - 1].v;
    let peak = -Infinity, dd = 0;
    for (const r of rows) { peak = Math.max(peak, r.v); dd = Math.min(dd, r.v / peak - 1); }
    const s = $('#eq-summary');
    s.replaceChildren(el('b', {}, fmtNum(last)), ' ', el('span', { class: signClass(last - first) }, `${fmtPct(last / first - 1)} in window`),
      el('span', { class: 'muted' }, `  max dd ${fmtPct(dd)}`));
  } else setText($('#eq-summary'), 'no equity yet');
  if (!eq.series) return;
  // the baseline: the window's first value, green above, red below
  eq.series.applyOptions({ baseValue: { type: 'price', price: rows.length ? rows[0].v : 0 } });
  eq.sync.sync(rows.map((r) => ({ time: r.time, ref: r.v, point: { time: r.time, value: r.v } })));
}

// ---------------------------------------------------------------- panels

function drawShield(sh, now) {
  sh = sh || {};
  const stEl = $('#shield-state');
  setText(stEl, sh.state || '—');
  stEl.className = `shield-state live-value ${sh.state || ''}`;
  const trs = entries(sh.transitions).map(([, t]) => t).filter(Boolean);
  const lastTr = trs[trs.length - 1];
  setText($('#shield-since'), lastTr?.time ? `for ${fmtDuration(now - lastTr.time)}` : '');
  const reasons = entries(sh.reasons);
  $('#shield-reasons').replaceChildren(...(reasons.length
    ? reasons.map(([k, r]) => el('li', {}, el('span', { class: `sev ${r.severity === 'RED' ? 'down' : 'muted'}` }, r.severity || ''),
      el('b', {}, r.check || k), ' ', el('span', { class: 'muted' }, r.detail || ''),
      r.since ? el('span', { class: 'dim' }, ` · ${fmtAgo(r.since, now)}`) : null))
    : [el('li', { class: 'none' }, 'no active reason')]));
  fillTable($('#transitions tbody'), trs.slice().reverse().map((t) => [
    { text: fmtWhen(t.time, now), title: `seq ${t.seq}` },
    { node: el('span', {}, el('span', { class: `pill ${colorOf(t.from)}` }, t.from || '?'), ' → ', el('span', { class: `pill ${colorOf(t.to)}` }, t.to || '?')) },
    t.check || '', { text: t.detail || '', class: 'wrap' },
  ]), 'no transition');
}

const colorOf = (state) => ({ GREEN: 'green', AMBER: 'amber', RED: 'red' }[state] || 'grey');

function drawPosition(positions, m, now) {
  const cur = m.node?.current;
  const price = cur?.price;
  setText($('#pos-price'), isNum(price) ? `${m.symbol} ${fmtPrice(price)}` : '');
  const list = entries(positions).filter(([, p]) => p && isNum(p.qty) && p.qty !== 0);
  debug.positions = list.length;
  const rows = [];
  for (const [sym, p] of list) {
    const px = sym === m.symbol ? price : null;
    const u = isNum(px) && isNum(p.price) ? (px - p.price) * p.qty : null;
    rows.push(['symbol', { text: `${sym} long`, class: 'up' }], ['qty', fmtQty(p.qty)], ['entry', fmtPrice(p.price)],
      ['since', `${fmtWhen(p.time, now)} (${fmtAgo(p.time, now)})`],
      ['stop', { text: fmtPrice(p.stop), class: 'down' }], ['take', { text: fmtPrice(p.take), class: 'up' }],
      ['uPnL', { text: u === null ? '—' : `${fmtSigned(u)}  ${fmtPct(px / p.price - 1)}`, class: signClass(u) }]);
  }
  fillTable($('#position tbody'), rows, 'flat: no position');
}

function drawBot(st, now) {
  st = st || {};
  const r = st.reload || {};
  setText($('#bot-updated'), st.updated ? `updated ${fmtAgo(st.updated, now)}` : '');
  fillTable($('#bot tbody'), st.mode ? [
    ['mode', { text: st.mode, class: st.mode === 'paper' ? '' : 'down' }],
    ['feed', { text: st.feed ?? '—', title: st.feed }],
    ['strategy', { text: st.strategy ?? '—', title: st.strategy }],
    ['entries', { text: st.halted ? `HALTED: ${st.halted}` : st.paused ? 'paused' : 'allowed', class: st.halted ? 'down' : st.paused ? 'muted' : 'up' }],
    ['candles', st.candles ?? '—'],
    ['started', st.started ? `${fmtWhen(st.started, now)} (${fmtAgo(st.started, now)})` : '—'],
    ['reloads', { text: `${r.count ?? 0}${r.last ? `, last ${fmtAgo(r.last, now)}` : ''}${r.count ? (r.ok === false ? ' FAILED' : ' ok') : ''}`, class: r.ok === false ? 'down' : '' }],
    r.error ? ['reload error', { text: String(r.error), class: 'down wrap', title: String(r.error) }] : null,
  ].filter(Boolean) : [], 'no bot/status yet');
}

// the strip over the panels: shown while the strategy has failed calls
function drawErrors(errors) {
  const n = isNum(errors?.count) ? errors.count : 0;
  debug.errors = n;
  $('#p-errors').hidden = n === 0;
  if (n === 0) return;
  const row = isNum(errors.in_a_row) && errors.in_a_row > 0 ? `, ${errors.in_a_row} in a row` : '';
  setText($('#errors-count'), `${n} failed call${n === 1 ? '' : 's'}${row}`);
  setText($('#errors-last'), `last, on the candle of ${errors.candle ?? '?'}: ${errors.last ?? '?'}`);
}

function drawOrders(orders, now) {
  const list = entries(orders).map(([k, o]) => ({ k, ...o })).sort((a, b) => (b.time ?? 0) - (a.time ?? 0));
  debug.orders = list.length;
  const open = list.filter((o) => !/fill|cancel|reject|deactiv/i.test(String(o.status || ''))).length;
  setText($('#orders-summary'), list.length ? `${list.length} (${open} open)` : '');
  fillTable($('#orders tbody'), list.slice(0, 200).map((o) => [
    fmtWhen(o.time, now),
    { text: o.side || '', class: /^b/i.test(o.side || '') ? 'up' : 'down' },
    { text: fmtQty(o.qty), class: 'r' },
    { text: o.status || '', class: /reject|cancel/i.test(o.status || '') ? 'muted' : '' },
    o.reason || '', { text: o.link || o.k, class: 'dim' },
  ]), 'no order');
}

function drawTrades(trades, now) {
  const list = entries(trades).map(([k, t]) => ({ k, ...t }));
  debug.trades = list.length;
  const pnls = list.map((t) => t.pnl).filter(isNum);
  const total = pnls.reduce((a, b) => a + b, 0);
  const wins = pnls.filter((x) => x > 0).length;
  const s = $('#trades-summary');
  if (list.length) {
    s.replaceChildren(`${list.length} trades · win ${pnls.length ? Math.round(100 * wins / pnls.length) : 0}% · P&L `,
      el('b', { class: signClass(total) }, fmtSigned(total)));
  } else s.replaceChildren();
  fillTable($('#trades tbody'), list.slice().reverse().map((t) => [
    t.k, fmtWhen(t.entry_time, now), fmtWhen(t.exit_time, now),
    { text: fmtPrice(t.entry_price), class: 'r' }, { text: fmtPrice(t.exit_price), class: 'r' },
    { text: fmtQty(t.qty), class: 'r' }, { text: fmtSigned(t.pnl), class: `r ${signClass(t.pnl)}` },
    { text: isNum(t.exit_price) && isNum(t.entry_price) ? fmtPct(t.exit_price / t.entry_price - 1) : '—', class: `r ${signClass(t.pnl)}` },
    t.reason || '',
  ]), 'no trade yet');
}

function drawVerdicts(last, verdicts, now) {
  const list = entries(verdicts).map(([, v]) => v).filter(Boolean).reverse();
  if (!list.length && last) list.push(last);
  debug.verdicts = list.length;
  const buys = list.filter((v) => v.signal === 'BUY').length;
  setText($('#trib-summary'), list.length ? `${list.length} recent · ${buys} BUY` : '');
  const v = last || list[0];
  const box = $('#verdict-last');
  if (v) {
    box.className = `verdict-last ${v.signal || ''}`;
    box.replaceChildren(
      el('div', { class: 'head' }, el('span', { class: `sig ${v.signal}` }, v.signal || '?'),
        el('span', {}, 'score ', el('b', {}, String(v.score ?? '—')), ' ', score(v.score)),
        el('span', { class: 'muted' }, `${fmtWhen(v.time, now)} · ${fmtAgo(v.time, now)}`),
        el('span', { class: 'dim' }, [v.model, v.source, v.cause, isNum(v.latency_ms) ? `${v.latency_ms} ms` : null].filter(Boolean).join(' · '))),
      el('div', { class: 'reasoning' }, v.reasoning || '(no reasoning given)'));
  } else {
    box.className = 'verdict-last';
    box.replaceChildren(el('span', { class: 'muted' }, 'no verdict yet'));
  }
  fillTable($('#verdicts tbody'), list.map((x) => [
    fmtWhen(x.time, now), { node: el('span', { class: `sig ${x.signal}` }, x.signal || '?') },
    { text: String(x.score ?? '—'), class: 'r' }, { text: x.reasoning || '', class: 'wrap reasoning', title: x.reasoning || '' },
    { text: isNum(x.latency_ms) ? `${x.latency_ms} ms` : '—', class: 'r dim' },
  ]), 'no verdict yet');
}

function score(s) {
  const bar = el('span', { class: 'score' }, el('i'));
  if (isNum(s)) bar.firstChild.style.width = `${Math.max(0, Math.min(100, s))}%`;
  return bar;
}

// ---------------------------------------------------------------- controls

const TOKEN_KEY = `nomade.token ${src.remote ? src.label : location.origin}`;
const ctl = { pending: null };
const tokenEl = $('#token');
try { tokenEl.value = sessionStorage.getItem(TOKEN_KEY) || ''; } catch { /* storage off */ }
tokenEl.addEventListener('input', () => {
  try {
    if (tokenEl.value) sessionStorage.setItem(TOKEN_KEY, tokenEl.value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage off */ }
});
$('#token-forget').addEventListener('click', () => {
  tokenEl.value = '';
  try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* storage off */ }
  showResult('token forgotten', '');
});
setText($('#ctl-source'), `→ ${src.label}`);

function showResult(text, cls) {
  const r = $('#control-result');
  setText(r, text);
  r.className = `result ${cls}`;
  debug.lastResult = { text, cls };
}

let armed = null;
for (const b of document.querySelectorAll('#p-ctl button[data-action]')) {
  b.dataset.label = b.textContent;
  b.addEventListener('click', () => {
    const action = b.dataset.action;
    if (b.dataset.confirm && armed !== b) {  // halt and unhalt take a second click
      if (armed) disarm(armed);
      armed = b;
      b.classList.add('armed');
      setText(b, b.dataset.confirm);
      setTimeout(() => { if (armed === b) disarm(b); }, 4000);
      return;
    }
    if (b.dataset.confirm) disarm(b);
    send(action);
  });
}
function disarm(b) {
  armed = null;
  b.classList.remove('armed');
  setText(b, b.dataset.label);
}

async function send(action) {
  const token = tokenEl.value.trim();
  if (!token) {
    showResult(`${action}: not sent: type the controls token first`, 'err');
    return;
  }
  showResult(`${action}: sending…`, 'pending');
  const buttons = document.querySelectorAll('#p-ctl button[data-action]');
  buttons.forEach((x) => { x.disabled = true; });
  const res = await src.command(action, token);
  buttons.forEach((x) => { x.disabled = false; });
  if (!res.ok) {
    ctl.pending = null;
    showResult(`${action}: REFUSED: ${res.error}${res.status ? ` (HTTP ${res.status})` : ''}`, 'err');
    return;
  }
  ctl.pending = { action, name: res.name, at: Date.now() };
  showResult(`${action}: accepted as ${res.name || '?'}; waiting for the bot's result${src.verdict().ok ? '' : ' (the stream is not live: it may not show)'}`, 'pending');
  render();
}

function drawCommands(cmds, now) {
  const list = entries(cmds).map(([k, c]) => ({ k, ...c })).sort((a, b) => (b.time ?? 0) - (a.time ?? 0));
  debug.commands = list.length;
  fillTable($('#commands tbody'), list.slice(0, 5).map((c) => [fmtWhen(c.time, now), c.action || '?',
    { text: c.result ?? '…', class: /refus|error|fail/i.test(String(c.result ?? '')) ? 'down wrap' : 'wrap' }]), 'no command yet');
  const p = ctl.pending;
  if (p && p.name && cmds?.[p.name]?.result !== undefined) {
    showResult(`${p.action}: done: ${cmds[p.name].result}`, /refus|error|fail/i.test(String(cmds[p.name].result)) ? 'err' : 'ok');
    ctl.pending = null;
  }
}

// ---------------------------------------------------------------- render

function render() {
  const wall = Date.now();
  const now = src.dataNow(wall);  // the tree's times against the tree's clock (a replay's)
  const t = src.tree || {};
  const m = src.market();
  const tick = Math.floor(wall / 5000);  // "ago"s move on every few seconds
  if (changed('shield', t.shield) | changed('shieldTick', tick)) drawShield(t.shield, now);
  if (changed('pos', `${JSON.stringify(t.positions ?? null)} ${m.node?.current?.price} ${Math.floor(wall / 1000)}`)) drawPosition(t.positions, m, now);
  if (changed('bot', t.bot?.status) | changed('botTick', Math.floor(wall / 1000))) {
    drawBot(t.bot?.status, wall);
    drawErrors(t.bot?.status?.errors);
  }
  if (changed('orders', t.orders) | changed('ordersMin', Math.floor(wall / 30000))) drawOrders(t.orders, now);
  if (changed('trades', t.trades) | changed('tradesMin', Math.floor(wall / 30000))) drawTrades(t.trades, now);
  if (changed('verdicts', t.tribunal) | changed('verdictsTick', tick)) drawVerdicts(t.tribunal?.last, t.tribunal?.verdicts, now);
  if (changed('equity', t.equity)) drawEquity(t.equity);
  if (changed('commands', t.commands) || ctl.pending) drawCommands(t.commands, wall);
}

src.onChange(render);
render();
setupEquity();
src.start();
