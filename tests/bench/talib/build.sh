#!/bin/sh
# Build tests/bench/talib/bench_talib.c against TA-Lib's own C sources, as
# bundled in the npm package `talib` (installed into vendor/node_modules by
# vendor/install-talib.sh; nothing of TA-Lib is copied into the repo).
#
#   tests/bench/talib/build.sh OUTPUT_BINARY
#
# Only the TA-Lib translation units needed for TA_Initialize/TA_EMA/TA_RSI are
# compiled: ta_common/*.c, ta_func/ta_utility.c, ta_func/ta_EMA.c,
# ta_func/ta_RSI.c. Flags follow TA-Lib's own Linux makefile
# (-DTA_SINGLE_THREAD -fno-strict-aliasing) with -O2.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 OUTPUT_BINARY" >&2
    exit 2
fi
out=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
CC=${CC:-cc}

ta="$root/vendor/node_modules/talib/src/lib"
if [ ! -f "$ta/src/ta_func/ta_EMA.c" ]; then
    "$root/vendor/install-talib.sh"
fi

set -x
$CC -O2 -std=gnu99 -fno-strict-aliasing -DTA_SINGLE_THREAD \
    -I"$here/.." -I"$ta/include" -I"$ta/src/ta_common" -I"$ta/src/ta_func" \
    -o "$out" \
    "$here/bench_talib.c" \
    "$ta/src/ta_common/ta_global.c" \
    "$ta/src/ta_common/ta_retcode.c" \
    "$ta/src/ta_common/ta_version.c" \
    "$ta/src/ta_func/ta_utility.c" \
    "$ta/src/ta_func/ta_EMA.c" \
    "$ta/src/ta_func/ta_RSI.c" \
    -lm
