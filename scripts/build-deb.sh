#!/usr/bin/env bash
# Builds the Debian packages (`make deb`): postgresql-NN-jobq for every
# installed PostgreSQL server with headers (postgresql-server-dev-NN, NN >= 15)
# and jobq-runner, with dpkg-buildpackage, into build/deb/ (or $DEB_OUT).
#
# The build runs in a copy of the source tree (tracked and untracked files,
# minus what .gitignore lists), so the working tree's own build stays as it
# is. The package version is jobq.control's default_version: the copy's
# debian/changelog is written from it here, and debian/control from
# debian/control.in by `pg_buildext updatecontrol`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${DEB_OUT:-$ROOT/build/deb}

die() { echo "build-deb: $*" >&2; exit 1; }

for tool in dpkg-buildpackage dh pg_buildext; do
    command -v "$tool" >/dev/null ||
        die "$tool not found: run scripts/install-deps.sh (debhelper, dpkg-dev, postgresql-server-dev-all)"
done

VERSION=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" jobq.control)
[[ -n $VERSION ]] || die "no default_version in jobq.control"

export PG_SUPPORTED_VERSIONS=installed
SRC="$OUT/jobq-$VERSION"
mkdir -p "$OUT"
rm -rf "$SRC"
rm -f "$OUT"/*.deb "$OUT"/*.ddeb "$OUT"/*.changes "$OUT"/*.buildinfo
mkdir -p "$SRC"

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard |
        xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
        tar --null -T - -cf - | tar -xf - -C "$SRC"
else
    tar --exclude-vcs --exclude=./build --exclude=./runner/build --exclude=./test/unit/build \
        --exclude=./.jobq --exclude='*.o' --exclude='*.so' -cf - . | tar -xf - -C "$SRC"
fi

# Date of the last commit: the same tree builds the same changelog.
DATE=$(git log -1 --format=%cD 2>/dev/null || date -R)
cat >"$SRC/debian/changelog" <<EOF
jobq ($VERSION) unstable; urgency=medium

  * jobq $VERSION: see CHANGELOG.md.

 -- jobq maintainers <maintainers@jobq.invalid>  $DATE
EOF

cd "$SRC"
versions=$(pg_buildext supported-versions 2>/dev/null | xargs)
[[ -n $versions ]] ||
    die "no PostgreSQL server headers for a version in debian/pgversions ($(grep -v '^#' debian/pgversions | xargs)): install postgresql-server-dev-NN"
echo "build-deb: jobq $VERSION for PostgreSQL $versions, in $SRC"
pg_buildext updatecontrol

export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$(nproc)}"
if ! dpkg-buildpackage -us -uc -b >"$OUT/build.log" 2>&1; then
    tail -40 "$OUT/build.log" >&2
    die "dpkg-buildpackage failed; the whole log is $OUT/build.log"
fi
cd "$ROOT"
rm -rf "$SRC"
ls -1 "$OUT"/*.deb
