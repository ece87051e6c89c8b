#!/usr/bin/env bash
# Installs every Debian package jobq needs to build, test and run.
# Idempotent: does nothing when everything is already present.
set -euo pipefail

PACKAGES=(
  postgresql-15 postgresql-client-15 postgresql-server-dev-15 postgresql-contrib
  libpq-dev libfmt-dev libtomlplusplus-dev libcli11-dev
  libcurl4-openssl-dev libssl-dev libgtest-dev
  libipc-run-perl libjson-pp-perl
  pkg-config make g++ cmake
  libio-socket-ssl-perl openssl
)
# `make deb` (scripts/build-deb.sh) and its test (test/packaging/deb.sh).
PACKAGES+=(build-essential debhelper dpkg-dev postgresql-server-dev-all)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root to install)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The server headers come from the mirror's newest 15.x; keep the server at
# the same minor release so the module is built for exactly what runs it.
server=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
headers=$(dpkg-query -W -f='${Version}' postgresql-server-dev-15 2>/dev/null || true)
if [[ -n $server && -n $headers && $server != "$headers" && $(id -u) -eq 0 ]]; then
  echo "install-deps: upgrading postgresql-15 $server to $headers to match the server headers"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "postgresql-15=$headers" >/dev/null ||
    echo "install-deps: could not upgrade postgresql-15; building against $headers headers" >&2
fi
