// pages.test.mjs: the dashboard pages (web/market.html, web/trading.html)
// in a real browser: Debian's headless Chromium driven by playwright-core
// (pinned in vendor/web; `make web-assets` installs it). Run: `node
// tests/web/pages.test.mjs` (or `make web-test`). Prints TAP-ish lines
// "ok N - ..." / "not ok N - ...", then "1..N" and "web: P passed, F failed";
// exits 1 on any failure. Screenshots go to build/web-artifacts/.
//
// By default it starts tests/web/fake_source.py (a scripted stand-in for
// the bot's data tree) on a free port, several times for the scenarios:
//   A. same origin, both pages: live price and chart move, verdict and trade
//      appear, controls refused without the token and working with it, a
//      dropped stream shows DISCONNECTED then recovers, and when the stream
//      stops the pages turn STALE;
//   B. Firebase mode (?db=, another origin, a read token): refused without
//      &auth= (and says why), live with it, controls cross-origin;
//   C. a live stream whose market price is old: MARKET DATA OLD; and the
//      pages without the chart library (they show the rest and say why).
// With NOMADE_WEB_BASE=http://HOST:PORT the checks of A run against that
// server instead (a running `nomade run --http`); what only the fake can do
// is skipped. Environment:
//   NOMADE_WEB_BASE        the server to test (default: start the fake)
//   NOMADE_WEB_TOKEN       the controls token (fake: test-token; external:
//                          control checks skipped when unset)
//   NOMADE_WEB_STALL_CMD   external only: a shell command that stops the
//                          stream (e.g. `kill -STOP <pid>`), for the STALE
//                          checks; NOMADE_WEB_RESUME_CMD undoes it
//   NOMADE_WEB_HALT=1      external only: also test HALT (it halts the bot)
//   NOMADE_WEB_WAIT        seconds to wait for things to appear (default 20)
//   NOMADE_WEB_STALE       the pages' ?stale= seconds (default 3)
//   NOMADE_WEB_ARTIFACTS   screenshots directory (default build/web-artifacts)
//   CHROMIUM               the browser (default /usr/bin/chromium)
import { spawn, execSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const env = process.env;
const EXTERNAL = env.NOMADE_WEB_BASE ? env.NOMADE_WEB_BASE.replace(/\/+$/, '') : null;
const TOKEN = env.NOMADE_WEB_TOKEN || (EXTERNAL ? null : 'test-token');
const WAIT = 1000 * Number(env.NOMADE_WEB_WAIT || 20);
const STALE = Number(env.NOMADE_WEB_STALE || 3);
const ARTIFACTS = path.resolve(ROOT, env.NOMADE_WEB_ARTIFACTS || 'build/web-artifacts');
const CHROMIUM = env.CHROMIUM || '/usr/bin/chromium';
const STALL_AFTER = 15;  // fake A: seconds of timeline before the stream stops

// ---------------------------------------------------------------- TAP

let n = 0, passed = 0, failed = 0, skipped = 0;
async function check(name, fn) {
  n++;
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    const took = (Date.now() - t0) / 1000;
    console.log(`ok ${n} - ${name}${took >= 2 ? ` (${took.toFixed(1)} s)` : ''}`);
  } catch (e) {
    failed++;
    console.log(`not ok ${n} - ${name}`);
    for (const line of String(e?.stack || e).split('\n').slice(0, 6)) console.log(`#   ${line}`);
  }
}
function skip(name, why) {
  n++;
  skipped++;
  console.log(`ok ${n} - ${name} # SKIP ${why}`);
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- fake

const fakes = [];
function startFake(args) {
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/python3', [path.join(HERE, 'fake_source.py'), '--port', '0', ...args],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    fakes.push(p);
    const rl = createInterface({ input: p.stdout });
    const t = setTimeout(() => reject(new Error('fake_source did not start in 10 s')), 10000);
    rl.on('line', (line) => {
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m) { clearTimeout(t); resolve({ proc: p, base: m[1], port: Number(new URL(m[1]).port) }); }
      else if (env.NOMADE_WEB_VERBOSE) console.log(`# ${line}`);
    });
    p.on('exit', (code) => { clearTimeout(t); reject(new Error(`fake_source exited (${code})`)); });
  });
}
function stopFakes() {
  for (const p of fakes) if (p.exitCode === null) p.kill('SIGTERM');
}
async function post(url) {
  const r = await fetch(url, { method: 'POST' });
  return r.status;
}

// ---------------------------------------------------------------- browser helpers

const pageErrors = [];
async function openPage(ctx, url, label) {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${label}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /^nomade:/.test(m.text())) pageErrors.push(`${label}: ${m.text()}`);
  });
  await page.goto(url, { waitUntil: 'load' });
  return page;
}
const health = (page) => page.evaluate(() => document.body.dataset.health);
const dbg = (page) => page.evaluate(() => ({ ...window.nomade?.debug }));
async function waitFor(page, fn, arg, timeout = WAIT, what = 'condition') {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (e) {
    const h = await health(page).catch(() => '?');
    const b = await page.locator('#banner').textContent().catch(() => '');
    throw new Error(`timed out (${timeout} ms) waiting for ${what}; health=${h} banner=${JSON.stringify(b)}`);
  }
}
const waitHealth = (page, level, timeout = WAIT) =>
  waitFor(page, (l) => document.body.dataset.health === l, level, timeout, `health ${level}`);
async function shot(page, name) {
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}
const text = (page, sel) => page.locator(sel).first().textContent();

// ---------------------------------------------------------------- scenario A

async function scenarioA(browser) {
  let base = EXTERNAL;
  let fake = null;
  if (!EXTERNAL) {
    fake = await startFake(['--stall-after', String(STALL_AFTER), '--wait-clients', '2']);
    base = fake.base;
  }
  console.log(`# A: same origin, ${base}`);
  const ctx = await browser.newContext({ viewport: { width: 1600, height: 900 } });
  const q = `?stale=${STALE}`;
  const market = await openPage(ctx, `${base}/market.html${q}`, 'market');
  const trading = await openPage(ctx, `${base}/trading.html${q}`, 'trading');
  const t0 = Date.now();

  await check('market: loads and goes live (stream events arrive)', async () => {
    await waitHealth(market, 'live');
    assert(/\S/.test(await text(market, '#h-symbol')) && (await text(market, '#h-symbol')) !== '—', 'no symbol in the top bar');
    assert(await market.locator('#banner').isHidden(), 'banner shown while live');
  });

  let before = null;
  await check('trading: loads and goes live, bot status shown', async () => {
    await waitHealth(trading, 'live');
    before = await dbg(trading);
    const bot = await text(trading, '#bot');
    assert(/mode/.test(bot), `no bot status: ${bot}`);
  });
  if (!EXTERNAL) {
    await check('fake: the timeline starts with no verdict and no trade', async () => {
      assert(before && before.verdicts === 0 && before.trades === 0, `verdicts=${before?.verdicts} trades=${before?.trades}`);
    });
  }

  await check('market: the live price changes as events arrive', async () => {
    const p0 = await text(market, '#price');
    assert(p0 && p0 !== '—', `no price: ${p0}`);
    await waitFor(market, (p) => document.querySelector('#price').textContent !== p, p0, WAIT, 'a new price');
  });

  await check('market: the chart moves as candles arrive (new candles, redrawn canvas)', async () => {
    const d0 = await dbg(market);
    assert(d0.chart, 'chart not set up (web/assets/lightweight-charts.js missing?)');
    assert(d0.candles > 0, 'no candle drawn');
    const img0 = await market.locator('#chart').screenshot();
    await waitFor(market, (t) => window.nomade.debug.lastCandle > t, d0.lastCandle, WAIT, 'a newer candle');
    await sleep(400);
    const img1 = await market.locator('#chart').screenshot();
    assert(!img0.equals(img1), 'chart pixels did not change');
  });

  await check('market: EMA overlay and RSI pane drawn from the candles\' indicators', async () => {
    const d = await dbg(market);
    assert(/^ema/i.test(d.ema || ''), `no ema* indicator: ${d.ema}`);
    assert(/^rsi/i.test(d.rsi || ''), `no rsi* indicator: ${d.rsi}`);
    assert(d.emaPoints > 0 && d.rsiPoints > 0, `points: ema ${d.emaPoints}, rsi ${d.rsiPoints}`);
    const legend = await text(market, '#legend');
    assert(legend.includes(d.ema) && legend.includes(d.rsi), `legend: ${legend}`);
  });

  await check('market: shield state (coloured) and regime shown', async () => {
    const s = (await text(market, '#shield-state')).trim();
    assert(['GREEN', 'AMBER', 'RED'].includes(s), `shield: ${s}`);
    const cls = await market.locator('#shield-state').getAttribute('class');
    assert(cls.includes(s), `shield class: ${cls}`);
    const r = (await text(market, '#regime')).trim();
    assert(r && r !== '—', `regime: ${r}`);
  });

  await check('trading: a tribunal verdict appears, with its reasoning', async () => {
    await waitFor(trading, () => window.nomade.debug.verdicts > 0, null, WAIT, 'a verdict');
    const reasoning = (await text(trading, '#verdict-last .reasoning')).trim();
    assert(reasoning.length > 10, `reasoning: ${reasoning}`);
    const rows = await trading.locator('#verdicts tbody tr:not(.empty)').count();
    assert(rows > 0, 'no verdict row');
  });

  await check('trading: a trade appears in the trades table', async () => {
    await waitFor(trading, () => window.nomade.debug.trades > 0, null, WAIT, 'a trade');
    const rows = await trading.locator('#trades tbody tr:not(.empty)').count();
    assert(rows > 0, 'no trade row');
  });

  if (!EXTERNAL) {
    await check('trading: failed strategy calls show a red strip with the last error', async () => {
      assert(await trading.locator('#p-errors').isHidden() || (await dbg(trading)).errors > 0, 'strip shown with no error');
      await waitFor(trading, () => window.nomade.debug.errors > 0, null, WAIT, 'strategy errors');
      assert(await trading.locator('#p-errors').isVisible(), 'the strip is hidden');
      const strip = await text(trading, '#p-errors');
      assert(/3 failed calls, 2 in a row/.test(strip) && strip.includes('strategy.lua:42: boom')
        && strip.includes('2024-01-01 10:00'), `strip: ${strip}`);
    });
  }

  await check('trading: equity curve drawn', async () => {
    const d = await dbg(trading);
    assert(d.chart, 'equity chart not set up');
    assert(d.equityPoints > 0, 'no equity point');
  });

  await check('market: the trade is marked on the chart', async () => {
    await waitFor(market, () => window.nomade.debug.markers > 0, null, WAIT, 'trade markers');
  });

  // controls
  const result = () => text(trading, '#control-result');
  const paused = () => trading.evaluate(() => window.nomade.src.get('bot/status')?.paused === true);
  await check('trading: a control without a token is not sent', async () => {
    await trading.fill('#token', '');
    await trading.click('#btn-pause');
    const r = await result();
    assert(/not sent/.test(r) && /token/.test(r), `result: ${r}`);
  });
  await check('trading: a control with a wrong token is refused (401 Permission denied)', async () => {
    await trading.fill('#token', 'not-the-token');
    await trading.click('#btn-pause');
    await waitFor(trading, () => /REFUSED/.test(document.querySelector('#control-result').textContent), null, WAIT, 'the refusal');
    const r = await result();
    assert(/Permission denied/.test(r) && /401/.test(r), `result: ${r}`);
    assert(!(await paused()), 'the bot paused all the same');
  });
  if (TOKEN) {
    await check('trading: pause with the token: accepted, the bot\'s result shown, PAUSED', async () => {
      await trading.fill('#token', TOKEN);
      await trading.click('#btn-pause');
      await waitFor(trading, () => /done:/.test(document.querySelector('#control-result').textContent), null, WAIT, 'the bot\'s result');
      const r = await result();
      assert(/^pause: done: /.test(r), `result: ${r}`);
      await waitFor(trading, () => /PAUSED|HALTED/.test(document.querySelector('#h-flags').textContent), null, WAIT, 'PAUSED in the top bar');
      const stored = await trading.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('nomade.token')).length);
      assert(stored === 1, 'token not kept in sessionStorage');
      assert(!trading.url().includes(TOKEN), 'token in the page URL');
    });
    await check('trading: the stream keeps flowing after a control (5 more events within 3 s)', async () => {
      const c0 = await trading.evaluate(() => window.nomade.src.eventCount);
      await waitFor(trading, (c) => window.nomade.src.eventCount >= c + 5, c0, 3000, '5 more stream events');
    });
    await check('trading: resume with the token: entries allowed again', async () => {
      await trading.click('#btn-resume');
      await waitFor(trading, () => /^resume: done: /.test(document.querySelector('#control-result').textContent), null, WAIT, 'resume done');
      await waitFor(trading, () => window.nomade.src.get('bot/status')?.paused !== true, null, WAIT, 'not paused');
    });
  } else {
    skip('trading: pause with the token', 'NOMADE_WEB_TOKEN not set');
    skip('trading: resume with the token', 'NOMADE_WEB_TOKEN not set');
  }

  if (!EXTERNAL) {
    await check('fake: a dropped stream shows DISCONNECTED, then reconnects to live', async () => {
      const mark = await market.evaluate(() => Date.now());
      assert((await post(`${base}/__fake/drop`)) === 200, 'drop refused');
      await waitFor(market, (m) => window.nomade.src.healthLog.some(([t, s]) => t >= m && s === 'down'), mark, 5000, 'down after the drop');
      await waitFor(market, (m) => window.nomade.src.healthLog.some(([t, s]) => t >= m && s === 'live')
        && document.body.dataset.health === 'live', mark, 10000, 'live again');
    });
  } else skip('a dropped stream shows DISCONNECTED, then reconnects', 'fake only');

  if (!EXTERNAL || env.NOMADE_WEB_HALT === '1') {
    if (TOKEN) {
      // halt and unhalt: armed by a first click, sent by the second
      const twoClicks = async (button, action) => {
        await trading.click(button);
        const armed = await text(trading, button);
        assert(/CONFIRM/.test(armed), `not armed: ${armed}`);
        assert(!(await result()).startsWith(`${action}:`), 'sent on the first click');
        await trading.click(button);
        await waitFor(trading, (a) => document.querySelector('#control-result').textContent.startsWith(`${a}: done: `),
          action, WAIT, `${action} done`);
      };
      await check('trading: HALT needs a second click, then halts (HALTED shown)', async () => {
        await twoClicks('#btn-halt', 'halt');
        await waitFor(trading, () => /HALTED/.test(document.querySelector('#h-flags').textContent), null, WAIT, 'HALTED in the top bar');
      });
      await check('trading: Unhalt needs a second click, then lifts the halt', async () => {
        await twoClicks('#btn-unhalt', 'unhalt');
        const label = await text(trading, '#btn-unhalt');
        assert(label === 'Unhalt', `label not restored: ${label}`);
        await waitFor(trading, () => !/HALTED/.test(document.querySelector('#h-flags').textContent), null, WAIT, 'HALTED gone from the top bar');
      });
    } else skip('trading: HALT', 'NOMADE_WEB_TOKEN not set');
  } else skip('trading: HALT', 'external: set NOMADE_WEB_HALT=1 to halt the bot under test');

  await shot(market, 'market-live.png');
  await shot(trading, 'trading-live.png');
  console.log(`# live checks took ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  // the stream stops
  let stopped = false;
  if (!EXTERNAL) {
    stopped = true;
    const left = STALL_AFTER * 1000 - (Date.now() - t0);
    if (left < 0) console.log('# (the live checks ran past the fake\'s stall; they may have seen it)');
  } else if (env.NOMADE_WEB_STALL_CMD) {
    execSync(env.NOMADE_WEB_STALL_CMD, { stdio: 'inherit', shell: '/bin/sh' });
    stopped = true;
  }
  if (stopped) {
    const limit = (STALL_AFTER + STALE + 15) * 1000;
    for (const [label, page] of [['market', market], ['trading', trading]]) {
      await check(`${label}: when the stream stops, the page says STALE (banner, greyed values)`, async () => {
        await waitHealth(page, 'stale', limit);
        const banner = page.locator('#banner');
        assert(await banner.isVisible(), 'no banner');
        const b = await banner.textContent();
        assert(/STALE/.test(b) && /not live/.test(b), `banner: ${b}`);
        assert(/STALE/.test(await text(page, '#h-conn')), 'connection pill not STALE');
        const op = await page.evaluate(() => Number(getComputedStyle(document.querySelector('.live-value')).opacity));
        assert(op < 0.6, `live values not greyed (opacity ${op})`);
      });
    }
    await shot(market, 'market-stale.png');
    await shot(trading, 'trading-stale.png');
    if (EXTERNAL && env.NOMADE_WEB_RESUME_CMD) {
      execSync(env.NOMADE_WEB_RESUME_CMD, { stdio: 'inherit', shell: '/bin/sh' });
      await check('market: live again once the stream resumes', () => waitHealth(market, 'live', (STALE + 40) * 1000));
    }
  } else {
    skip('market: STALE when the stream stops', 'external: set NOMADE_WEB_STALL_CMD');
    skip('trading: STALE when the stream stops', 'external: set NOMADE_WEB_STALL_CMD');
  }
  await ctx.close();
}

// ---------------------------------------------------------------- scenario B

async function scenarioB(browser) {
  const fake = await startFake(['--stall-after', '0', '--read-token', 'read-secret']);
  // the pages from one origin, the "database" on another (localhost vs 127.0.0.1)
  const db = `http://localhost:${fake.port}`;
  console.log(`# B: Firebase mode, pages from ${fake.base}, ?db=${db}`);
  const ctx = await browser.newContext({ viewport: { width: 1600, height: 900 } });
  await check('db mode: without &auth= the read is refused, and the banner says why', async () => {
    const page = await openPage(ctx, `${fake.base}/market.html?db=${encodeURIComponent(db)}&stale=${STALE}`, 'market-db-noauth');
    await waitHealth(page, 'down');
    await waitFor(page, () => /401/.test(document.querySelector('#banner').textContent), null, 5000, 'the reason in the banner');
    const b = await text(page, '#banner');
    assert(/DISCONNECTED/.test(b) && /401/.test(b) && /Permission denied/.test(b), `banner: ${b}`);
    await shot(page, 'market-db-refused.png');
    await page.close();
  });
  const q = `?db=${encodeURIComponent(db)}&auth=read-secret&stale=${STALE}`;
  const market = await openPage(ctx, `${fake.base}/market.html${q}`, 'market-db');
  await check('db mode: market page live from the other origin, candles arriving', async () => {
    await waitHealth(market, 'live');
    const d0 = await dbg(market);
    assert(d0.candles > 0, 'no candle');
    await waitFor(market, (t) => window.nomade.debug.lastCandle > t, d0.lastCandle, WAIT, 'a newer candle');
    assert(/firebase localhost/.test(await text(market, '#h-source')), 'source not shown as firebase');
  });
  const trading = await openPage(ctx, `${fake.base}/trading.html${q}`, 'trading-db');
  await check('db mode: controls cross-origin (wrong token refused, right token done)', async () => {
    await waitHealth(trading, 'live');
    await trading.fill('#token', 'read-secret');
    await trading.click('#btn-pause');
    await waitFor(trading, () => /REFUSED/.test(document.querySelector('#control-result').textContent), null, WAIT, 'refusal');
    await trading.fill('#token', 'test-token');
    await trading.click('#btn-pause');
    await waitFor(trading, () => /^pause: done: /.test(document.querySelector('#control-result').textContent), null, WAIT, 'pause done');
  });
  await check('db mode: the other page\'s link keeps ?db= and &auth=', async () => {
    const href = await market.locator('nav a[href*="trading.html"]').getAttribute('href');
    assert(href.includes('db=') && href.includes('auth=read-secret'), `href: ${href}`);
  });
  await sleep(1500);  // a few candles more for the picture
  await shot(market, 'market-db.png');
  await shot(trading, 'trading-db.png');
  await ctx.close();
}

// ---------------------------------------------------------------- scenario C

async function scenarioC(browser) {
  const fake = await startFake(['--stall-after', '0', '--lag', '600']);
  console.log(`# C: a live stream, a market price 10 minutes old (interval 1m), ${fake.base}`);
  const ctx = await browser.newContext({ viewport: { width: 1600, height: 900 } });
  const page = await openPage(ctx, `${fake.base}/market.html?stale=${STALE}`, 'market-old');
  await check('market: a price older than 2 candle intervals says MARKET DATA OLD (stream alive)', async () => {
    await waitHealth(page, 'old');
    const b = await text(page, '#banner');
    assert(/MARKET DATA OLD/.test(b) && /10m/.test(b), `banner: ${b}`);
    const es = await page.evaluate(() => window.nomade.src.health.state);
    assert(es === 'live', `stream state ${es}`);
  });
  await shot(page, 'market-old.png');
  await check('without web/assets/lightweight-charts.js the pages still show the data and say why', async () => {
    const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await ctx2.route('**/lightweight-charts.js', (r) => r.fulfill({ status: 404, body: 'not found' }));
    for (const name of ['market', 'trading']) {
      const p = await ctx2.newPage();
      p.on('pageerror', (e) => pageErrors.push(`${name}-nochart: ${e.message}`));
      await p.goto(`${fake.base}/${name}.html?stale=${STALE}`);
      await waitFor(p, () => /make web-assets/.test(document.body.textContent), null, WAIT, 'the missing-library note');
      await waitFor(p, () => document.body.dataset.health === 'old' || document.body.dataset.health === 'live', null, WAIT, 'data');
      const shield = (await text(p, '#shield-state')).trim();
      assert(['GREEN', 'AMBER', 'RED'].includes(shield), `shield: ${shield}`);
      await p.close();
    }
    await ctx2.close();
  });
  await ctx.close();
}

// ---------------------------------------------------------------- main

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const pw = path.join(ROOT, 'vendor/web/node_modules/playwright-core/index.mjs');
  if (!existsSync(pw)) {
    console.log('not ok 1 - playwright-core is installed (run `make web-assets`)');
    console.log('1..1\nweb: 0 passed, 1 failed');
    process.exit(1);
  }
  if (!existsSync(path.join(ROOT, 'web/assets/lightweight-charts.js'))) {
    console.log('# web/assets/lightweight-charts.js missing: run `make web-assets` (chart checks will fail)');
  }
  const { chromium } = await import(pw);
  let browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  } catch (e) {
    console.log(`not ok 1 - ${CHROMIUM} starts (apt-get install chromium)`);
    console.log(`#   ${String(e.message).split('\n')[0]}`);
    console.log('1..1\nweb: 0 passed, 1 failed');
    process.exit(1);
  }
  console.log(`# ${CHROMIUM} ${browser.version()}, screenshots in ${path.relative(process.cwd(), ARTIFACTS) || '.'}`);
  try {
    await scenarioA(browser);
    if (!EXTERNAL) {
      await scenarioB(browser);
      await scenarioC(browser);
    }
    await check('no script error in any page', async () => {
      assert(pageErrors.length === 0, pageErrors.join('\n'));
    });
  } catch (e) {
    await check('the harness itself ran through', async () => { throw e; });
  } finally {
    await browser.close().catch(() => {});
    stopFakes();
  }
  console.log(`1..${n}`);
  console.log(`web: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(failed ? 1 : 0);
}

process.on('SIGINT', () => { stopFakes(); process.exit(130); });
main();
