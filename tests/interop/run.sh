#!/usr/bin/env bash
# Interop suite: the vendors' official Python SDKs against `apiconform serve`.
#
#   tests/interop/run.sh                           # the suite against a correct emulator
#   tests/interop/run.sh --fault windows-accepted  # extra arguments go to `apiconform serve`
#
# Creates (or reuses) a virtualenv in target/interop-venv with the pinned SDKs, builds the release
# binary, starts the emulator on a free loopback port, runs tests/interop/check_sdks.py and stops
# the emulator. Prints one line per check and `N passed, M failed`; exits non-zero on any failure.
# Bounded: pip and the build by INTEROP_SETUP_TIMEOUT (default 900 s), the checks by
# INTEROP_TIMEOUT (default 300 s).
set -euo pipefail
cd "$(dirname "$0")/../.."

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
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -f "$LOG"
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
exit "$status"
