#!/usr/bin/env bash
# Installs the Debian packages sluice builds with, and any named as arguments, if any is missing
# (needs root on a fresh machine).  Usage: scripts/deps.sh [EXTRA-PACKAGE...]
set -euo pipefail
packages=(meson ninja-build pkg-config cmake g++ libboost-dev libfmt-dev doctest-dev libbenchmark-dev
          libsimdjson-dev librdkafka-dev
          python3-prometheus-client  # the e2e tests check GET /metrics with its text-format parser
          curl  # docs/cookbook.md's commands query the HTTP server (the cookbook test runs them)
          "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # A fresh machine may be running its own apt (unattended upgrades at boot): wait for the dpkg
  # lock instead of failing at once, and try a failed download again (a mirror's hiccup).
  apt=($SUDO apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
  for attempt in 1 2 3; do
    if "${apt[@]}" update -qq &&
       DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
      exit 0
    fi
    echo "deps: apt-get failed (attempt $attempt of 3)" >&2
    sleep $((attempt * 10))
  done
  echo "deps: could not install ${missing[*]}" >&2
  exit 1
fi
