#!/usr/bin/env bash
# Installs every Debian package jobq needs to build, test and run.
# Idempotent: does nothing when everything is already present.
#
# JOBQ_PG_MAJOR (default 15) picks the PostgreSQL major version; `--list`
# only prints the package names (scripts/pgroot.sh installs them into a root).
set -euo pipefail

PG_MAJOR=${JOBQ_PG_MAJOR:-15}

PACKAGES=(
  "postgresql-$PG_MAJOR" "postgresql-client-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"
  libpq-dev libfmt-dev libtomlplusplus-dev libcli11-dev
  libcurl4-openssl-dev libssl-dev libgtest-dev
  libipc-run-perl libjson-pp-perl
  pkg-config make g++ cmake
  libio-socket-ssl-perl openssl
  pgbouncer
  nlohmann-json3-dev python3 nodejs
  debootstrap util-linux iproute2
)
# `make deb` (scripts/build-deb.sh) and its test (test/packaging/deb.sh).
PACKAGES+=(build-essential debhelper dpkg-dev postgresql-server-dev-all)

if [[ ${1:-} == --list ]]; then
  echo "${PACKAGES[*]}"
  exit 0
fi

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

# The server headers come from the mirror's newest minor release; keep the
# server at the same one so the module is built for exactly what runs it.
server=$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR" 2>/dev/null || true)
headers=$(dpkg-query -W -f='${Version}' "postgresql-server-dev-$PG_MAJOR" 2>/dev/null || true)
if [[ -n $server && -n $headers && $server != "$headers" && $(id -u) -eq 0 ]]; then
  echo "install-deps: upgrading postgresql-$PG_MAJOR $server to $headers to match the server headers"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "postgresql-$PG_MAJOR=$headers" >/dev/null ||
    echo "install-deps: could not upgrade postgresql-$PG_MAJOR; building against $headers headers" >&2
fi
