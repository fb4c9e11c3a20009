#!/usr/bin/env node
// TA-Lib reference columns for tests/vectors (see README.md).
//
// Usage: node talib_ref.js INPUT.csv > OUT.csv
//
// INPUT.csv: `open_time_ms,open,high,low,close,volume`, ascending.
// OUT.csv: header `rsi_14,rsi_2,atr_14,macd_12_26_9,macd_12_26_9_signal,
// macd_12_26_9_hist`, one row per input row, same order. Values are JS
// shortest round-trip strings (String(x)); positions before TA-Lib's outBegIdx
// are written as `nan`.
//
// Values come from genuine TA-Lib C (bundled in, and compiled by, the npm
// package `talib`, installed in vendor/node_modules by vendor/install-talib.sh).
// Defaults: unstable period 0 (never changed here), default compatibility.
'use strict';
const fs = require('fs');
const path = require('path');

const talib = require(path.join(__dirname, '..', '..', 'vendor', 'node_modules', 'talib'));

function readCandles(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
  const header = lines[0].trim();
  if (header !== 'open_time_ms,open,high,low,close,volume') {
    throw new Error(`${file}: unexpected header ${header}`);
  }
  const n = lines.length - 1;
  const high = new Array(n), low = new Array(n), close = new Array(n);
  for (let i = 0; i < n; i++) {
    const f = lines[i + 1].split(',');
    if (f.length !== 6) throw new Error(`${file}:${i + 2}: expected 6 fields`);
    high[i] = Number(f[2]);
    low[i] = Number(f[3]);
    close[i] = Number(f[4]);
    if (!Number.isFinite(high[i]) || !Number.isFinite(low[i]) || !Number.isFinite(close[i])) {
      throw new Error(`${file}:${i + 2}: bad number`);
    }
  }
  return { n, high, low, close };
}

// Run one TA-Lib function over the whole series (startIdx 0) and return
// { name: paddedArray } for each requested output.
function run(n, params, outputs) {
  const r = talib.execute(Object.assign({ startIdx: 0, endIdx: n - 1 }, params));
  if (r.error) throw new Error(`${params.name}: ${r.error}`);
  const res = {};
  for (const [col, out] of Object.entries(outputs)) {
    const vals = r.result[out];
    if (r.begIndex + r.nbElement !== n || vals.length !== r.nbElement) {
      throw new Error(`${params.name}: begIndex ${r.begIndex} + nbElement ${r.nbElement} != ${n}`);
    }
    const padded = new Array(n).fill(NaN);
    for (let i = 0; i < r.nbElement; i++) padded[r.begIndex + i] = vals[i];
    res[col] = padded;
    process.stderr.write(`  talib ${col}: begIndex=${r.begIndex} nbElement=${r.nbElement}\n`);
  }
  return res;
}

function main() {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: talib_ref.js INPUT.csv > OUT.csv\n');
    process.exit(2);
  }
  const { n, high, low, close } = readCandles(file);
  const cols = Object.assign(
    {},
    run(n, { name: 'RSI', inReal: close, optInTimePeriod: 14 }, { rsi_14: 'outReal' }),
    run(n, { name: 'RSI', inReal: close, optInTimePeriod: 2 }, { rsi_2: 'outReal' }),
    run(n, { name: 'ATR', high, low, close, optInTimePeriod: 14 }, { atr_14: 'outReal' }),
    run(n, { name: 'MACD', inReal: close, optInFastPeriod: 12, optInSlowPeriod: 26, optInSignalPeriod: 9 }, {
      macd_12_26_9: 'outMACD',
      macd_12_26_9_signal: 'outMACDSignal',
      macd_12_26_9_hist: 'outMACDHist',
    }),
  );
  const names = ['rsi_14', 'rsi_2', 'atr_14', 'macd_12_26_9', 'macd_12_26_9_signal', 'macd_12_26_9_hist'];
  const fmt = (x) => (Number.isNaN(x) ? 'nan' : String(x));
  const out = [names.join(',')];
  for (let i = 0; i < n; i++) out.push(names.map((c) => fmt(cols[c][i])).join(','));
  process.stdout.write(out.join('\n') + '\n');
}

main();
