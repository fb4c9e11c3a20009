#!/bin/sh
# Install the pinned npm dependencies of vendor/package-lock.json into
# vendor/node_modules (git-ignored). The `talib` package compiles TA-Lib's own
# C sources (bundled in the package) and its Node addon with node-gyp.
#
# Offline notes:
#  - node-gyp needs the Node headers. Without a `nodedir` it tries to download
#    node-vX-headers.tar.gz from the internet, which fails here. The nodesource
#    /usr/bin/node ships them in /usr/include/node, so we point node-gyp at
#    nodedir=/usr (it then uses /usr/include/node) unless the caller already
#    set npm_config_nodedir.
#  - Idempotent: skips `npm ci` when node_modules already matches the lockfile
#    and the node binary (stamp file).
set -eu
here=$(cd "$(dirname "$0")" && pwd)

if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then
    npm_config_nodedir=/usr
    export npm_config_nodedir
fi

stamp="$here/node_modules/.nomade-install-stamp"
want="$(cat "$here/package-lock.json" | sha256sum | cut -d' ' -f1) $(node -v)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
   [ -f "$here/node_modules/talib/build/Release/talib.node" ]; then
    exit 0
fi

echo "vendor: npm ci --prefix $here (nodedir=${npm_config_nodedir:-<default>})" >&2
npm ci --prefix "$here" --no-audit --no-fund >&2
node -e "require('$here/node_modules/talib')" >&2
printf '%s\n' "$want" > "$stamp"
