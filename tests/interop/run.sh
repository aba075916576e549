#!/usr/bin/env bash
# Interop suite: the vendors' official Python SDKs against `apiconform serve`.
#
#   tests/interop/run.sh                           # the suite against a correct emulator
#   tests/interop/run.sh --fault windows-accepted  # extra arguments go to `apiconform serve`
#   tests/interop/run.sh --proxy                   # every check through `apiconform proxy`
#   tests/interop/run.sh --proxy --fault disassociate-noop   # the proxy must name the fault
#
# Proxy mode puts `apiconform proxy` between the SDKs and the emulator and, once the checks are
# done, stops it (SIGTERM) and asserts from its JSON summary: no server-side finding (with a
# fault: at least one), and exactly the client-side findings the checks provoke on purpose (a
# malformed id, a missing parameter, a wrong secret; check_sdks.py lists them per check). It
# prints the number of exchanges judged.
#
# Creates (or reuses) a virtualenv in target/interop-venv with the pinned SDKs, builds the release
# binary, starts the emulator on a free loopback port, runs tests/interop/check_sdks.py and stops
# the emulator. Prints one line per check and `N passed, M failed`; exits non-zero on any failure.
# Bounded: pip and the build by INTEROP_SETUP_TIMEOUT (default 900 s), the checks by
# INTEROP_TIMEOUT (default 300 s).
set -euo pipefail
cd "$(dirname "$0")/../.."

PROXY=0
if [ "${1:-}" = "--proxy" ]; then
  PROXY=1
  shift
fi

SETUP_TIMEOUT="${INTEROP_SETUP_TIMEOUT:-900}"
CHECK_TIMEOUT="${INTEROP_TIMEOUT:-300}"
case "$SETUP_TIMEOUT$CHECK_TIMEOUT" in
  *[!0-9]*) echo "error: INTEROP_SETUP_TIMEOUT and INTEROP_TIMEOUT take whole seconds" >&2; exit 2 ;;
esac
VENV=target/interop-venv
# Pinned to the versions that produced shared/reference/sdk-captures. QcloudApi 2.0.15 ships
# inside tencentcloud-sdk-python 3.1.195 as well; the PyPI package is pinned to the same version.
SDKS=(
  tencentcloud-sdk-python==3.1.195
  qcloudapi-sdk-python==2.0.15
  aliyun-python-sdk-core==2.16.1
  aliyun-python-sdk-ecs==4.24.83
  alibabacloud-ecs20140526==7.11.8
  alibabacloud-tea-openapi==0.4.6
)

# Requests go to loopback only: no proxy may take them elsewhere, and the emulator's default
# credentials must not be overridden from the environment.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
unset TENCENTCLOUD_SECRET_ID TENCENTCLOUD_SECRET_KEY ALIBABA_CLOUD_ACCESS_KEY_ID ALIBABA_CLOUD_ACCESS_KEY_SECRET

mkdir -p target
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  timeout "$SETUP_TIMEOUT" python3 -m venv "$VENV"
fi
# pip is quick when everything is already there.
timeout "$SETUP_TIMEOUT" "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${SDKS[@]}"

echo "== cargo build --release"
timeout "$SETUP_TIMEOUT" cargo build --release --quiet

LOG="$(mktemp -t apiconform-serve.XXXXXX)"
PROXY_LOG="$(mktemp -t apiconform-proxy.XXXXXX)"
PROXY_JSON="$(mktemp -t apiconform-proxy-json.XXXXXX)"
PROXY_EXPECT="$(mktemp -t apiconform-proxy-expect.XXXXXX)"
SERVER_PID=""
PROXY_PID=""
cleanup() {
  for pid in "$PROXY_PID" "$SERVER_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$LOG" "$PROXY_LOG" "$PROXY_JSON" "$PROXY_EXPECT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The emulator must not outlive the suite even if this script is killed hard.
timeout $((CHECK_TIMEOUT + 60)) target/release/apiconform serve --listen 127.0.0.1:0 "$@" >"$LOG" 2>&1 &
SERVER_PID=$!

# The banner `apiconform emulator on http://ADDR — ...` names the port it bound.
ADDR=""
for _ in $(seq 1 100); do
  ADDR="$(sed -n 's#^apiconform emulator on http://\([^ ]*\) .*#\1#p' "$LOG")"
  [ -n "$ADDR" ] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
if [ -z "$ADDR" ]; then
  echo "error: the emulator did not start:" >&2
  cat "$LOG" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
echo "== emulator on $ADDR${*:+ (serve $*)}"

if [ "$PROXY" -eq 1 ]; then
  # The proxy in front of the emulator; the SDKs are pointed at it instead.
  timeout $((CHECK_TIMEOUT + 60)) target/release/apiconform proxy --listen 127.0.0.1:0 \
    --target "http://$ADDR" --fail-on server --report-json "$PROXY_JSON" >"$PROXY_LOG" 2>&1 &
  PROXY_PID=$!
  PADDR=""
  for _ in $(seq 1 100); do
    PADDR="$(sed -n 's#^apiconform proxy on http://\([^ ]*\) .*#\1#p' "$PROXY_LOG")"
    [ -n "$PADDR" ] && break
    if ! kill -0 "$PROXY_PID" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  if [ -z "$PADDR" ]; then
    echo "error: the proxy did not start:" >&2
    cat "$PROXY_LOG" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  echo "== proxy on $PADDR -> $ADDR"
  ADDR="$PADDR"
  export APICONFORM_PROXY_EXPECT="$PROXY_EXPECT"
fi

OUT="$(mktemp -t apiconform-interop.XXXXXX)"
set +e
timeout "$CHECK_TIMEOUT" "$VENV/bin/python" -u tests/interop/check_sdks.py "$ADDR" | tee "$OUT"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 124 ]; then
  # Killed mid-way: count what finished and the timeout itself as a failure.
  echo "FAIL suite: the checks did not finish within ${CHECK_TIMEOUT}s"
  echo "$(grep -c '^ok ' "$OUT" || true) passed, $(($(grep -c '^FAIL ' "$OUT" || true) + 1)) failed"
fi
rm -f "$OUT"

if [ "$PROXY" -eq 1 ]; then
  kill -TERM "$PROXY_PID" 2>/dev/null || true
  set +e
  wait "$PROXY_PID"
  proxy_status=$?
  set -e
  PROXY_PID=""
  # With a fault given to the emulator the proxy must name it on the server side.
  WANT_SERVER=none
  [ "$#" -gt 0 ] && WANT_SERVER=some
  set +e
  "$VENV/bin/python" - "$PROXY_JSON" "$PROXY_EXPECT" "$WANT_SERVER" "$proxy_status" <<'PY'
import collections, json, sys

summary_path, expect_path, want_server, proxy_status = sys.argv[1:5]
try:
    summary = json.load(open(summary_path))
except ValueError:
    print("FAIL proxy: no JSON summary (the proxy exited %s)" % proxy_status)
    sys.exit(1)
expected = json.load(open(expect_path))
found = summary["findings"]
server = [f for f in found if f["side"] == "server"]
client = collections.Counter((f["api"], f["rule"]) for f in found if f["side"] == "client")
want = collections.Counter((e["api"], e["rule"]) for e in expected)
ok = True
print("proxy: %d exchanges judged on both sides (%d requests, %d admin calls, %d forwarded unjudged)"
      % (summary["judged"], summary["requests"], summary["admin"], sum(summary["other"].values())))
for f in server:
    print("proxy server-side finding: %s %s: expected %s; actual %s"
          % (f["api"], f["rule"], f["expected"], f["actual"]))
if want_server == "none" and server:
    print("FAIL proxy: %d server-side findings against a correct emulator" % len(server)); ok = False
if want_server == "some" and not server:
    print("FAIL proxy: the emulator's fault was not named on the server side"); ok = False
if client != want:
    print("FAIL proxy: client-side findings %s, expected (provoked on purpose) %s"
          % (sorted(client.items()), sorted(want.items()))); ok = False
else:
    print("proxy: %d client-side findings, each one a check provoked on purpose" % sum(client.values()))
if summary["unreachable"]:
    print("FAIL proxy: %d requests answered 502" % summary["unreachable"]); ok = False
print("ok proxy summary" if ok else "FAIL proxy summary")
sys.exit(0 if ok else 1)
PY
  pstatus=$?
  set -e
  if [ "$pstatus" -ne 0 ]; then
    status=1
  fi
fi
exit "$status"
