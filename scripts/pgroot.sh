#!/usr/bin/env bash
# A Debian root (chroot) with one PostgreSQL major version, for building and
# testing jobq on servers this machine's own Debian does not ship.
#
#   scripts/pgroot.sh build NN        make the root for major NN (once; cached)
#   scripts/pgroot.sh run NN CMD...   run CMD as root inside it (builds it first;
#                                     one `run` per root at a time, others wait)
#   scripts/pgroot.sh path NN         print the root's directory
#   scripts/pgroot.sh copy NN DIR     copy source tree DIR into the root; print
#                                     the copy's path as seen inside the root
#   scripts/pgroot.sh suite NN        print the Debian suite that ships major NN
#
# Vocabulary: a "root" is a Debian tree made by `debootstrap --variant=minbase`
# from the Debian release that ships PostgreSQL NN (15 bookworm, 17 trixie,
# 18 sid), plus the packages the test suite needs (the list of
# scripts/install-deps.sh for major NN). Roots live under
# $JOBQ_ROOTS (default /var/tmp/jobq-roots)/pgNN and are reused once finished
# (a `.jobq-root-done` stamp); a half-made root is thrown away and made again.
#
# `run` mounts /proc, /sys, /dev (with /dev/pts and /dev/shm) into the root in
# a private mount namespace (unshare -m) and makes it that namespace's root,
# so the mounts exist only while CMD runs and disappear with it, also when it
# fails or is killed; nothing is left mounted on the host. The packages come from the Debian mirror this machine's
# apt already uses; the roots' apt ignores an expired Release file's
# Valid-Until (the mirror may be a dated snapshot).
set -euo pipefail

ROOTS=${JOBQ_ROOTS:-/var/tmp/jobq-roots}
SCRIPTS=$(cd "$(dirname "$0")" && pwd)

die() { echo "pgroot: $*" >&2; exit 1; }

suite_for() {
    case $1 in
        15) echo bookworm ;;
        17) echo trixie ;;
        18) echo sid ;;
        *) die "no Debian suite reachable here ships PostgreSQL $1 (supported: 15, 17, 18)" ;;
    esac
}

root_dir() { echo "$ROOTS/pg$1"; }

# The Debian mirror of this machine's apt (first deb.debian.org-style URI that
# is not the security archive), unless JOBQ_DEBIAN_MIRROR says otherwise.
debian_mirror() {
    if [[ -n ${JOBQ_DEBIAN_MIRROR:-} ]]; then echo "$JOBQ_DEBIAN_MIRROR"; return; fi
    local uri
    uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        sed -n 's/^URIs:[[:space:]]*//p' | tr ' ' '\n' | grep -v -- '-security' | grep '/debian/\?$' | head -1 || true)
    if [[ -z $uri ]]; then
        uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
            awk '{print $2}' | grep -v -- '-security' | grep '/debian/\?$' | head -1 || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

# in_root DIR CMD...: CMD inside the root with /proc, /sys and /dev mounted,
# in a mount namespace of its own (the mounts vanish when CMD ends). The
# root becomes the namespace's own root (pivot_root, not chroot): the kernel
# refuses user namespaces (`unshare -r`, which tests use for network
# namespaces) to a chrooted process.
in_root() {
    local dir=$1
    shift
    [[ $(id -u) -eq 0 ]] || die "must run as root (mounts and pivot_root)"
    cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
    unshare --mount --propagation private -- bash -c '
        set -e
        dir=$1; major=${dir##*pg}; shift
        mount --bind "$dir" "$dir"
        mount -t proc proc "$dir/proc"
        mount --rbind /sys "$dir/sys"
        mount --rbind /dev "$dir/dev"
        cd "$dir"
        mkdir -p .jobq-oldroot
        pivot_root . .jobq-oldroot
        umount -l /.jobq-oldroot
        cd /
        exec /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 JOBQ_PG_MAJOR="$major" \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
    ' in_root "$dir" "$@"
}

build_root() {
    local major=$1 suite dir mirror start
    suite=$(suite_for "$major")
    dir=$(root_dir "$major")
    [[ -f $dir/.jobq-root-done ]] && return 0
    [[ $(id -u) -eq 0 ]] || die "must run as root to build $dir"
    command -v debootstrap >/dev/null || die "debootstrap is missing (scripts/install-deps.sh installs it)"
    mkdir -p "$ROOTS"
    # One builder per root: a second caller waits, then finds the stamp.
    exec 9>"$ROOTS/pg$major.lock"
    flock 9
    if [[ -f $dir/.jobq-root-done ]]; then exec 9>&-; return 0; fi
    start=$SECONDS
    mirror=$(debian_mirror)
    echo "pgroot: building $dir (Debian $suite from $mirror, PostgreSQL $major)" >&2
    rm -rf "$dir"
    mkdir -p "$dir"
    # debootstrap mounts /proc itself; its own namespace keeps the host clean.
    unshare --mount --propagation private -- \
        debootstrap --variant=minbase --components=main "$suite" "$dir" "$mirror" \
        >"$ROOTS/pg$major.debootstrap.log" 2>&1 ||
        { tail -20 "$ROOTS/pg$major.debootstrap.log" >&2; die "debootstrap of $suite failed (log: $ROOTS/pg$major.debootstrap.log)"; }

    cat >"$dir/etc/apt/apt.conf.d/90jobq" <<'CONF'
// jobq test root: the mirror may be a dated snapshot whose Release expired.
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
CONF
    # Package scripts must not start services inside the root.
    printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
    chmod 755 "$dir/usr/sbin/policy-rc.d"
    # No "main" cluster: the tests make their own.
    mkdir -p "$dir/etc/postgresql-common"
    echo "create_main_cluster = false" >"$dir/etc/postgresql-common/createcluster.conf"

    local packages
    packages=$(JOBQ_PG_MAJOR=$major bash "$SCRIPTS/install-deps.sh" --list)
    # shellcheck disable=SC2086
    in_root "$dir" sh -c "export DEBIAN_FRONTEND=noninteractive &&
        apt-get update -qq && apt-get install -y -qq -o Dpkg::Options::=--force-confold $packages" \
        >"$ROOTS/pg$major.apt.log" 2>&1 ||
        { tail -20 "$ROOTS/pg$major.apt.log" >&2; die "installing packages into $dir failed (log: $ROOTS/pg$major.apt.log)"; }
    in_root "$dir" apt-get clean
    touch "$dir/.jobq-root-done"
    echo "pgroot: $dir ready in $((SECONDS - start)) s" >&2
    exec 9>&-
}

# copy_tree NN DIR: the files git sees in DIR (tracked and untracked, not
# ignored: uncommitted edits included, build outputs not), or DIR without its
# build outputs when it is no git checkout, into a new directory of the root.
copy_tree() {
    local dir src
    dir=$(root_dir "$1")
    src=$(mktemp -d "$dir/tmp/jobq-src.XXXXXX")
    chmod 755 "$src"
    if git -C "$2" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$2" && git ls-files -z --cached --others --exclude-standard |
            tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$src" -xf -
    else
        tar -C "$2" --exclude=./runner/build --exclude='*.o' --exclude='*.so' --exclude=./.git \
            -cf - . | tar -C "$src" -xf -
    fi
    echo "${src#"$dir"}"
}

# The whole dispatch, and the exit after it, are read before it runs: bash
# reads a script as it goes, and editing this file under a running suite
# must not change what that suite's pgroot.sh does next.
main() {
    local cmd=${1:-} major
    [[ $# -ge 2 ]] || die "usage: $0 build|run|path|copy|suite NN [CMD...|DIR]"
    major=$2
    shift 2
    case $cmd in
        suite) suite_for "$major" ;;
        path) suite_for "$major" >/dev/null && root_dir "$major" ;;
        build) build_root "$major" ;;
        copy)
            [[ $# -eq 1 ]] || die "usage: $0 copy NN DIR"
            build_root "$major"
            copy_tree "$major" "$1"
            ;;
        run)
            [[ $# -ge 1 ]] || die "usage: $0 run NN CMD..."
            build_root "$major"
            # One command at a time per root: suites of two checkouts would
            # `make install` over each other. The children do not inherit the
            # lock (8>&-), so a server left running cannot keep it.
            exec 8>"$ROOTS/pg$major.use.lock"
            if ! flock -n 8; then
                echo "pgroot: waiting for another command in $(root_dir "$major") to end" >&2
                flock 8
            fi
            in_root "$(root_dir "$major")" "$@" 8>&-
            ;;
        *) die "unknown command '$cmd' (build, run, path, copy, suite)" ;;
    esac
}

main "$@"; exit $?
