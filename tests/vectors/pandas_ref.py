#!/usr/bin/python3
"""pandas reference columns for tests/vectors, merged with the TA-Lib columns.

Usage: /usr/bin/python3 pandas_ref.py INPUT.csv TALIB.csv > OUT.csv

INPUT.csv: `open_time_ms,open,high,low,close,volume`, ascending.
TALIB.csv: output of talib_ref.js for the same INPUT.csv.
OUT.csv:   one row per input candle, columns COLUMNS below; every value is
           Python repr(float) (shortest round-trip), NaN written as `nan`.

Run with Debian's /usr/bin/python3 (pandas 1.5.3). See README.md.
"""
import csv
import math
import sys

import numpy as np
import pandas as pd

COLUMNS = [
    "open_time_ms",
    "ema_10", "ema_200",
    "rsi_sma_14", "rsi_sma_2",
    "sma_20", "sma_200", "stddev_20",
    "bb_20_2_upper", "bb_20_2_middle", "bb_20_2_lower",
    "highest_20", "lowest_20",
    "rsi_14", "rsi_2", "atr_14",
    "macd_12_26_9", "macd_12_26_9_signal", "macd_12_26_9_hist",
]
TALIB_COLUMNS = COLUMNS[13:]


def rsi_sma(close: pd.Series, n: int) -> pd.Series:
    # Exactly the "seed" RSI from the spec (simple rolling means of gain/loss).
    delta = close.diff()
    gain = delta.where(delta > 0, 0).rolling(window=n).mean()
    loss = (-delta.where(delta < 0, 0)).rolling(window=n).mean()
    rs = gain / loss
    rsi = 100 - (100 / (1 + rs))
    return rsi


def pandas_columns(df: pd.DataFrame) -> dict:
    close = df["close"]
    cols = {}
    cols["ema_10"] = close.ewm(span=10, adjust=False).mean()
    cols["ema_200"] = close.ewm(span=200, adjust=False).mean()
    cols["rsi_sma_14"] = rsi_sma(close, 14)
    cols["rsi_sma_2"] = rsi_sma(close, 2)
    cols["sma_20"] = close.rolling(20).mean()
    cols["sma_200"] = close.rolling(200).mean()
    # Not close.rolling(20).std(ddof=0): pandas' online rolling variance
    # drifts by up to ~1e-9 relative on these candles (checked against exact
    # rational arithmetic), more than the tolerance the tests use. numpy's
    # two-pass std over each window agrees with the exact value to ~1e-15.
    cols["stddev_20"] = close.rolling(20).apply(np.std, raw=True)
    cols["bb_20_2_middle"] = cols["sma_20"]
    cols["bb_20_2_upper"] = cols["sma_20"] + 2 * cols["stddev_20"]
    cols["bb_20_2_lower"] = cols["sma_20"] - 2 * cols["stddev_20"]
    cols["highest_20"] = close.rolling(20).max()
    cols["lowest_20"] = close.rolling(20).min()
    return {k: [float(x) for x in v.to_numpy(dtype="float64")] for k, v in cols.items()}


def fmt(x: float) -> str:
    if math.isnan(x):
        return "nan"
    return repr(x)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, talib_csv = sys.argv[1], sys.argv[2]
    # open_time_ms kept as int64; prices parsed with a correctly rounded parser.
    df = pd.read_csv(src, dtype={"open_time_ms": "int64"}, float_precision="round_trip")
    if list(df.columns) != ["open_time_ms", "open", "high", "low", "close", "volume"]:
        raise SystemExit(f"{src}: unexpected header {list(df.columns)}")
    if not df["open_time_ms"].is_monotonic_increasing:
        raise SystemExit(f"{src}: open_time_ms not ascending")
    n = len(df)
    cols = pandas_columns(df)

    with open(talib_csv, newline="") as f:
        rows = list(csv.reader(f))
    if rows[0] != TALIB_COLUMNS:
        raise SystemExit(f"{talib_csv}: unexpected header {rows[0]}")
    if len(rows) - 1 != n:
        raise SystemExit(f"{talib_csv}: {len(rows) - 1} rows, expected {n}")
    for j, name in enumerate(TALIB_COLUMNS):
        cols[name] = [float(r[j]) for r in rows[1:]]

    out = sys.stdout
    out.write(",".join(COLUMNS) + "\n")
    times = df["open_time_ms"].tolist()
    value_cols = [cols[c] for c in COLUMNS[1:]]
    for i in range(n):
        out.write(str(times[i]))
        for col in value_cols:
            out.write(",")
            out.write(fmt(col[i]))
        out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
