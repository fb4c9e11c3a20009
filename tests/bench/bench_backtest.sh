#!/bin/sh
# Backtest throughput and peak memory: the default strategy (tribunal off)
# over the 525,600 one-minute BTCUSDT candles of 2023. The data is read
# from ../shared/data (not committed: 45 MB) and decompressed into build/.
# The default strategy's interval is 1h, so a copy with interval 1m runs.
#   tests/bench/bench_backtest.sh NOMADE
set -eu
nomade=$1
src=${NOMADE_1M_DATA:-../shared/data/binance-spot-btcusdt-1m-2023.csv.gz}
if [ ! -f "$src" ]; then
	echo "backtest: skipped, no $src (set NOMADE_1M_DATA)"
	exit 0
fi
data=build/bench/btcusdt-1m-2023.csv
mkdir -p build/bench
[ -f "$data" ] || gzip -dc "$src" >"$data"
sed 's/interval = "1h"/interval = "1m"/' lua/strategy.lua >build/bench/strategy-1m.lua
"$nomade" script tests/bench/bench_backtest.lua "$data" build/bench/strategy-1m.lua
# peak RSS of the whole command, as a user runs it
/usr/bin/time -f "backtest  whole command: %e s wall, peak RSS %M KB" \
	"$nomade" backtest build/bench/strategy-1m.lua --data "$data" >/dev/null
