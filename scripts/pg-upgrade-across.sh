#!/usr/bin/env bash
# pg_upgrade of a PostgreSQL 15 cluster using jobq to a newer major version,
# both servers side by side: test/t/pg_upgrade.pl runs inside the Debian
# root of the new major (scripts/pgroot.sh) with the old server's binaries
# next to the new ones.
#
#   bash scripts/pg-upgrade-across.sh 17     (as root; prints the TAP output)
#
# How (vocabulary: "old" is this machine's PostgreSQL 15, "new" the root's):
#   1. the old installation (pg_config on PATH, with jobq from `make install`)
#      is copied into the root under /opt/jobq-old, with the few shared
#      libraries it needs that the newer Debian does not ship (ICU 72,
#      OpenLDAP 2.5, fmt 9, ...) in /opt/jobq-old/libs, reached only through
#      LD_LIBRARY_PATH: their sonames differ from the new server's;
#   2. the root's PostgreSQL NN is copied to /opt/jobq-new (a private copy:
#      the root's own stays as `test.sh --pg NN` uses it) and jobq is built
#      and installed into it from this checkout;
#   3. test/t/pg_upgrade.pl runs with the new binaries on PATH and
#      JOBQ_OLD_BINDIR naming the old ones.
set -euo pipefail

major=${1:?usage: $0 NN (the new PostgreSQL major, e.g. 17)}
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
PGROOT="$ROOT_DIR/scripts/pgroot.sh"
[[ -f $PGROOT ]] || { echo "pg-upgrade-across: scripts/pgroot.sh is missing" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "pg-upgrade-across: must run as root (chroot)" >&2; exit 1; }

bash "$PGROOT" build "$major"
root=$(bash "$PGROOT" path "$major")
old_bindir=$(pg_config --bindir)
old_major=$(pg_config --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
old_sharedir=$(pg_config --sharedir)
[[ -f $(pg_config --pkglibdir)/jobq.so ]] || { echo "pg-upgrade-across: run make install first" >&2; exit 1; }

# 1. The old installation, in Debian's layout so its relative paths hold.
old="$root/opt/jobq-old"
rm -rf "$old"
mkdir -p "$old/usr/lib/postgresql" "$old/usr/share/postgresql" "$old/libs"
cp -a "$(dirname "$old_bindir")" "$old/usr/lib/postgresql/$old_major"
cp -a "$old_sharedir" "$old/usr/share/postgresql/$old_major"
in_root_old_bindir=/opt/jobq-old/usr/lib/postgresql/$old_major/bin
for _ in 1 2 3; do  # a library found may need another one
    missing=$(for f in "$old/usr/lib/postgresql/$old_major"/bin/* "$old/usr/lib/postgresql/$old_major"/lib/jobq.so; do
        chroot "$root" env LD_LIBRARY_PATH=/opt/jobq-old/libs ldd "${f#"$root"}" 2>/dev/null || true
    done | awk '/not found/ {print $1}' | sort -u)
    [[ -z $missing ]] && break
    for lib in $missing; do
        path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
        [[ -n $path ]] || { echo "pg-upgrade-across: $lib is missing here too" >&2; exit 1; }
        cp -L "$path" "$old/libs/"
    done
done

# 2. A private copy of the new server, with jobq built from this checkout.
new="$root/opt/jobq-new"
rm -rf "$new"
mkdir -p "$new/usr/lib/postgresql" "$new/usr/share/postgresql" "$new/usr/include"
cp -a "$root/usr/lib/postgresql/$major" "$new/usr/lib/postgresql/"
cp -a "$root/usr/share/postgresql/$major" "$new/usr/share/postgresql/"
cp -a "$root/usr/include/postgresql" "$new/usr/include/"
new_bindir=/opt/jobq-new/usr/lib/postgresql/$major/bin
src=$(bash "$PGROOT" copy "$major" "$ROOT_DIR")
rm -f "$root$src/runner/CMakeLists.txt"  # the extension only
bash "$PGROOT" run "$major" sh -c "cd $src && make -j2 PG_CONFIG=$new_bindir/pg_config >build.log 2>&1 &&
    make install PG_CONFIG=$new_bindir/pg_config >>build.log 2>&1" ||
    { tail -30 "$root$src/build.log" >&2; exit 1; }

# 3. The test, as postgres.
tap=$(mktemp -d "$root/tmp/jobq-upgrade-tap.XXXXXX")
chmod 755 "$tap"
chroot "$root" chown postgres: "${tap#"$root"}"
bash "$PGROOT" run "$major" runuser -u postgres -- env \
    PATH="$new_bindir:/usr/bin:/bin" LD_LIBRARY_PATH=/opt/jobq-old/libs \
    JOBQ_OLD_BINDIR="$in_root_old_bindir" TESTDIR="${tap#"$root"}" \
    PG_REGRESS="/opt/jobq-new/usr/lib/postgresql/$major/lib/pgxs/src/test/regress/pg_regress" \
    sh -c "cd ${tap#"$root"} && prove -v -I /opt/jobq-new/usr/lib/postgresql/$major/lib/pgxs/src/test/perl \
        -I $src/test/perl $src/test/t/pg_upgrade.pl"
