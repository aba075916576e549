#!/usr/bin/env bash
# Renders the HTML report of a run with an emulator fault in headless Chromium (--dump-dom) and
# checks that the rendered DOM holds each API's section and a failure with its curl. Installs
# Debian's chromium with apt-get when it is missing and apt is available (bounded by timeout);
# prints "skipped: ..." and exits 0 only when no browser can be had.
set -euo pipefail
cd "$(dirname "$0")/../.."

browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser="$b"; break; fi
done
if [ -z "$browser" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing chromium with apt-get (at most 10 minutes)"
  timeout 600 sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium' >/dev/null 2>&1 || true
  command -v chromium >/dev/null 2>&1 && browser=chromium
fi
if [ -z "$browser" ]; then
  echo "skipped: no headless Chromium found and none could be installed"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Exit 1 is expected: the fault is a nonconformance.
code=0
cargo run --quiet -- run --fault disassociate-noop --cases 60 --no-rate-probes \
  --report-html "$work/report.html" --report-json "$work/report.json" >/dev/null || code=$?
if [ "$code" != 1 ]; then
  echo "FAIL: the run with a fault exited $code, not 1" >&2
  exit 1
fi
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" --dump-dom "file://$work/report.html" \
  >"$work/dom.html" 2>"$work/browser.log" || {
  echo "FAIL: $browser could not render the report:" >&2
  tail -5 "$work/browser.log" >&2
  exit 1
}

fail=0
check() { # what, pattern
  if ! grep -qF -- "$2" "$work/dom.html"; then echo "FAIL: the rendered DOM lacks $1 ($2)" >&2; fail=1; fi
}
for api in alibaba-ecs/DetachKeyPair tencent-cvm/AssociateInstancesKeyPairs \
  tencent-cvm/DisassociateInstancesKeyPairs tencent-cvm/UnBindInstanceKey \
  tencent-ecm/DisassociateInstancesKeyPairs; do
  check "the section of $api" "<h2>$api</h2>"
done
check "a failure" '<article class="failure"'
check "a curl command" "curl -sS"
check "the rule matrix" "Rules × outcome"
if grep -qi "<script" "$work/dom.html"; then echo "FAIL: a script in the DOM" >&2; fail=1; fi
[ "$fail" = 0 ] && echo "ok: $browser rendered the report: $(grep -c '<section class="api"' "$work/dom.html") API sections, $(grep -c '<article class="failure"' "$work/dom.html") failures"
exit "$fail"
