# web/web.mk: make fragment for the dashboard (web/market.html,
# web/trading.html), included from the top-level Makefile.
#   make web-assets   npm ci in vendor/web (only when its lockfile changed),
#                     then copy lightweight-charts' standalone production
#                     bundle to web/assets/lightweight-charts.js (generated,
#                     git-ignored): the pages load no CDN at run time
#   make web-test     the pages in Debian's headless Chromium against
#                     tests/web/fake_source.py (TAP-ish "ok N - ..." lines);
#                     NOMADE_WEB_BASE=http://HOST:PORT runs the same checks
#                     against a running nomade instead (tests/web/pages.test.mjs)
# Needs node + npm (web-assets) and /usr/bin/chromium (web-test).

WEB_VENDOR := vendor/web
WEB_NODE_MODULES := $(WEB_VENDOR)/node_modules
# touched after a successful npm ci; older than the lockfile = install again
WEB_NPM_STAMP := $(WEB_NODE_MODULES)/.nomade-web-stamp
WEB_LWC_BUNDLE := $(WEB_NODE_MODULES)/lightweight-charts/dist/lightweight-charts.standalone.production.mjs
WEB_ASSETS := web/assets/lightweight-charts.js
WEB_ARTIFACTS := build/web-artifacts

# keep whatever default goal the including Makefile has
web_saved_goal := $(.DEFAULT_GOAL)

.PHONY: web-assets web-test

web-assets: $(WEB_ASSETS)

$(WEB_NPM_STAMP): $(WEB_VENDOR)/package.json $(WEB_VENDOR)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "web-assets: npm not found (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	@echo "NPM ci $(WEB_VENDOR)"
	@npm ci --prefix $(WEB_VENDOR) --no-audit --no-fund --loglevel=error >&2
	@touch $@

$(WEB_LWC_BUNDLE): $(WEB_NPM_STAMP)
	@test -f $@ || { echo "web-assets: $@ missing after npm ci" >&2; exit 1; }
	@touch $@

$(WEB_ASSETS): $(WEB_LWC_BUNDLE)
	@mkdir -p $(@D)
	@cp $< $@.tmp && mv $@.tmp $@
	@echo "WEB $@ (lightweight-charts $$(sed -n 's/.*Lightweight Charts.* v\([0-9.]*\).*/\1/p' $@ | head -n 1))"

web-test: $(WEB_ASSETS)
	@test -x $${CHROMIUM:-/usr/bin/chromium} || { echo "web-test: no $${CHROMIUM:-/usr/bin/chromium} (Debian: apt-get install chromium)" >&2; exit 1; }
	@mkdir -p $(WEB_ARTIFACTS)
	node tests/web/pages.test.mjs

.DEFAULT_GOAL := $(web_saved_goal)
