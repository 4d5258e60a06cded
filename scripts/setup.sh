#!/usr/bin/env bash
# Create .venv and install the gateway (package `segel`) into it. Used by demo.sh and test.sh.
#   scripts/setup.sh           the gateway and its runtime dependencies
#   scripts/setup.sh --test    plus what the test suite needs (Debian servers, Node MicroPython)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ "$want_test" = 1 ]; then
  command -v mosquitto >/dev/null || need_apt+=(mosquitto mosquitto-clients)
  command -v influxd >/dev/null || need_apt+=(influxdb)
  command -v influx >/dev/null || need_apt+=(influxdb-client)  # the 1.x CLI deploy/influxdb/setup-1x.sh uses
  command -v victoria-metrics >/dev/null || need_apt+=(victoria-metrics)
  command -v node >/dev/null || need_apt+=(nodejs npm)
  command -v pdftotext >/dev/null || need_apt+=(poppler-utils)  # reads and renders the custody reports
  command -v chromium >/dev/null || need_apt+=(chromium)  # the console's browser tests (Playwright drives it)
  command -v nats-server >/dev/null || need_apt+=(nats-server)  # the national message layer (docs/national.md)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)  # the national store
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
fi
# Debian's packaged servers start as services on install; the tests run their own on free
# loopback ports, so the system ones are not needed (and must not hold the default ports).
if [ "$want_test" = 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl stop mosquitto influxdb victoria-metrics nats-server postgresql 2>/dev/null || true
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
extra=""
[ "$want_test" = 1 ] && extra="[test]"
echo "setup: installing the gateway into .venv"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e "gateway${extra}"

if [ "$want_test" = 1 ]; then
  echo "setup: installing MicroPython (WebAssembly port) for the firmware tests"
  (cd tools/mpy-node && npm ci --no-audit --no-fund --loglevel=error)
  echo "setup: installing the console's map libraries (to check the bundled copies against them)"
  (cd tools/console-vendor && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: done"
