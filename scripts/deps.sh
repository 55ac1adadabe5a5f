#!/usr/bin/env bash
# Installs the Debian packages sluice builds with, and any named as arguments, if any is missing
# (needs root on a fresh machine).  Usage: scripts/deps.sh [EXTRA-PACKAGE...]
set -euo pipefail
packages=(meson ninja-build pkg-config cmake g++ libboost-dev libfmt-dev doctest-dev libbenchmark-dev
          libsimdjson-dev librdkafka-dev
          python3-prometheus-client  # the e2e tests check GET /metrics with its text-format parser
          "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
