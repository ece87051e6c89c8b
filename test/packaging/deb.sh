#!/usr/bin/env bash
# The Debian packages, end to end. Prints TAP-style "ok N - ..." and
# "not ok N - ..." lines (scripts/test.sh counts them); exits non-zero if
# anything failed.
#
#   1. `make deb` (scripts/build-deb.sh) builds postgresql-NN-jobq for every
#      installed postgresql-server-dev-NN and jobq-runner, at jobq.control's
#      version, with the files where Debian expects them.
#   2. As root, in a throwaway root: `apt-get install ./....deb`, a fresh
#      cluster of each packaged server (initdb, shared_preload_libraries =
#      jobq), CREATE EXTENSION jobq, the runner started from the packaged
#      systemd unit (its ExecStart, as its User; systemd itself cannot run
#      here) running a job to completion, SIGTERM, then `apt-get purge`.
#
# The throwaway root is an overlay of this very system (lower: /, upper: a
# tmpfs) in a private mount namespace: the packages install and purge there
# and the system underneath keeps its own jobq (the suite's `make install`
# into the same server directories). The mounts vanish with the namespace.
# Where no private mount namespace can be made (a chroot whose / is no
# mount point), the chroot is taken as the throwaway root itself: the
# packages install into it, then are purged and the `make install` files put
# back. Nothing is downloaded unless a runtime dependency of the packages is
# missing. Clusters and the runner are stopped by PID.
#
# JOBQ_DEBS=DIR tests the packages already in DIR instead of building them.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SELF="$ROOT/test/packaging/deb.sh"

# The install part runs in a second process: it continues the numbering.
TESTS=${DEB_TEST_COUNT:-0}
FAILS=${DEB_TEST_FAILS:-0}
ok() { TESTS=$((TESTS + 1)); echo "ok $TESTS - $*"; }
not_ok() { TESTS=$((TESTS + 1)); FAILS=$((FAILS + 1)); echo "not ok $TESTS - $*"; }
# check DESCRIPTION CMD...: one result line from a command's exit status.
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
note() { echo "# $*"; }
quiet() { "$@" >/dev/null 2>&1; }
done_testing() {
    echo "1..$TESTS"
    [[ $FAILS -eq 0 ]]
    exit $?
}

VERSION=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$ROOT/jobq.control")
ARCH=$(dpkg --print-architecture)

# Server versions with headers installed, >= 15: what `make deb` builds for.
server_versions() {
    dpkg-query -W -f '${db:Status-Status} ${Package}\n' 'postgresql-server-dev-[1-9]*' 2>/dev/null |
        sed -n 's/^installed postgresql-server-dev-\([0-9]*\)$/\1/p' |
        awk '$1 >= 15' | sort -n | xargs
}

# ---------------------------------------------------------------------------
# 2. Install and run (this script re-run: by unshare in the overlay mode).
# ---------------------------------------------------------------------------
in_root() {
    local mode=$1 debs=$2 work=$3 versions=$4
    local R="" layer="$work/layer" v
    # inr CMD...: run as root in the root under test; inr_pg: as postgres.
    inr() { if [[ -n $R ]]; then chroot "$R" "$@"; else "$@"; fi; }
    inr_pg() { inr runuser -u postgres -- "$@"; }
    local packages="jobq-runner"
    for v in $versions; do packages+=" postgresql-$v-jobq"; done

    if [[ $mode == overlay ]]; then
        R="$work/root"
        mkdir -p "$layer" "$R"
        mount -t tmpfs -o size=4g,mode=755 jobq-deb-layer "$layer" &&
            mkdir "$layer/upper" "$layer/work" &&
            mount -t overlay jobq-deb-root -o "lowerdir=/,upperdir=$layer/upper,workdir=$layer/work" "$R" &&
            mount -t proc proc "$R/proc" &&
            mount --rbind /dev "$R/dev" &&
            mount -t tmpfs -o mode=755 tmpfs "$R/run" &&
            mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
        if [[ $? -ne 0 ]]; then
            not_ok "an overlay root of this system (tmpfs, overlay and bind mounts)"
            done_testing
        fi
        ok "an overlay root of this system"
    else
        # This root itself is the throwaway one: refuse to touch packaged
        # jobq it already has, keep the suite's `make install` to put back.
        local have
        have=$(dpkg-query -W -f '${db:Status-Status} ${Package}\n' $packages 2>/dev/null |
            awk '$1 != "not-installed" {print $2}' | xargs)
        if [[ -n $have ]]; then
            not_ok "this root has no jobq packages yet (has: $have; not replacing them)"
            done_testing
        fi
        ok "this root (a chroot) has no jobq packages yet"
    fi

    local runner_pid="" cluster="" own_policy="" backup="$work/make-install.tar"
    stop_all() {
        if [[ -n $runner_pid ]] && kill -0 "$runner_pid" 2>/dev/null; then
            kill -KILL "$runner_pid" 2>/dev/null
            wait "$runner_pid" 2>/dev/null
        fi
        runner_pid=""
        if [[ -n $cluster && -f $R$cluster/data/postmaster.pid ]]; then
            inr_pg "/usr/lib/postgresql/$v/bin/pg_ctl" -D "$cluster/data" -m immediate -w stop >/dev/null 2>&1
        fi
        [[ $cluster == /var/tmp/jobq-deb-cluster.* ]] && rm -rf "$R$cluster"
        cluster=""
    }
    # Leaves a chroot as it was: packages purged, `make install` files back.
    # (The overlay goes away with the namespace.)
    put_back() {
        stop_all
        [[ -n $R ]] && return
        rm -f /etc/jobq/runner.toml
        local left
        left=$(dpkg-query -W -f '${db:Status-Status} ${Package}\n' $packages 2>/dev/null |
            awk '$1 != "not-installed" {print $2}' | xargs)
        [[ -n $left ]] && DEBIAN_FRONTEND=noninteractive dpkg --purge $left >/dev/null 2>&1
        [[ -f $backup ]] && tar -xpf "$backup" -C /
        [[ -n $own_policy ]] && rm -f /usr/sbin/policy-rc.d
    }
    trap put_back EXIT

    # No service starts from a maintainer script in here.
    if [[ ! -e $R/usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
        chmod 755 "$R/usr/sbin/policy-rc.d"
        own_policy=yes
    fi

    # Install onto a system without jobq: set aside what `make install` put
    # in the packages' places (and /usr/local/bin/jobq-runner).
    local made=()
    for v in $versions; do
        made+=("usr/lib/postgresql/$v/lib/jobq.so" "usr/share/postgresql/$v/extension/jobq.control")
        for f in "$R"/usr/share/postgresql/"$v"/extension/jobq--*.sql; do made+=("${f#"$R"/}"); done
    done
    made+=(usr/local/bin/jobq-runner)
    local present=()
    for f in "${made[@]}"; do [[ -f $R/$f ]] && present+=("$f"); done
    if ((${#present[@]})); then
        [[ -z $R ]] && tar -cpf "$backup" -C / "${present[@]}"
        for f in "${present[@]}"; do rm -f "$R/$f"; done
    fi
    if [[ -n $R ]] && inr dpkg-query -W -f '${db:Status-Status}\n' $packages 2>/dev/null | grep -qvx not-installed; then
        inr env DEBIAN_FRONTEND=noninteractive dpkg --purge $packages >/dev/null 2>&1
    fi

    local debdir=/tmp/jobq-debs pkgs=()
    [[ -z $R ]] && debdir="$work/debs-in"
    mkdir -p "$R$debdir"
    for p in $packages; do
        cp "$debs/${p}_${VERSION}_${ARCH}.deb" "$R$debdir/"
        pkgs+=("$debdir/${p}_${VERSION}_${ARCH}.deb")
    done
    chmod 755 "$R$debdir"
    chmod 644 "$R$debdir"/*.deb
    if inr sh -c 'cd / && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"' sh "${pkgs[@]}" \
        >"$work/apt-install.log" 2>&1; then
        ok "apt-get install ${pkgs[*]##*/}"
    else
        not_ok "apt-get install ${pkgs[*]##*/}"
        sed 's/^/#   /' "$work/apt-install.log" | tail -30
        done_testing
    fi
    local p
    for p in jobq-runner $(for v in $versions; do echo "postgresql-$v-jobq"; done); do
        check "$p $VERSION is installed" \
            test "$(inr dpkg-query -W -f '${db:Status-Status} ${Version}' "$p")" = "installed $VERSION"
    done

    # The unit: where debhelper puts it on this release (/lib or /usr/lib).
    local unit="" u
    for u in /usr/lib/systemd/system/jobq-runner.service /lib/systemd/system/jobq-runner.service; do
        [[ -f $R$u ]] && { unit=$R$u; break; }
    done
    if [[ -z $unit ]]; then
        not_ok "jobq-runner.service is installed"
        done_testing
    fi
    ok "jobq-runner.service is installed (${unit#"$R"})"
    local exec_start user group
    exec_start=$(sed -n 's/^ExecStart=[-@+!:]*//p' "$unit" | tail -1)
    user=$(sed -n 's/^User=//p' "$unit" | tail -1)
    group=$(sed -n 's/^Group=//p' "$unit" | tail -1)
    user=${user:-root}
    group=${group:-$(inr id -gn "$user")}
    local argv
    read -r -a argv <<<"$exec_start"
    check "the unit's ExecStart is the packaged binary (${argv[0]:-none})" \
        test -n "${argv[0]:-}" -a -x "$R${argv[0]:-/nonexistent}"
    check "the unit's User $user exists" quiet inr getent passwd "$user"
    check "/etc/jobq is root:$group, mode 750" \
        test "$(inr stat -c '%U:%G %a' /etc/jobq)" = "root:$group 750"
    check "jobq-runner --help runs" quiet inr "${argv[0]}" --help


    local sock port=5432
    for v in $versions; do
        note "PostgreSQL $v"
        local bin=/usr/lib/postgresql/$v/bin
        # Unix socket only (listen_addresses = ''): no TCP port to collide.
        cluster=$(inr mktemp -d /var/tmp/jobq-deb-cluster.XXXXXX)
        sock=$cluster
        chmod 755 "$R$cluster"
        inr chown postgres: "$cluster"
        if ! inr_pg "$bin/initdb" -D "$cluster/data" -A trust -U postgres --no-sync -E UTF8 --locale=C \
            >"$work/initdb-$v.log" 2>&1; then
            not_ok "initdb of PostgreSQL $v"
            tail -20 "$work/initdb-$v.log" | sed 's/^/#   /'
            continue
        fi
        cat >>"$R$cluster/data/postgresql.conf" <<CONF
listen_addresses = ''
port = $port
unix_socket_directories = '$sock'
shared_preload_libraries = 'jobq'
CONF
        if ! inr_pg "$bin/pg_ctl" -D "$cluster/data" -l "$cluster/server.log" -w -t 60 start >/dev/null; then
            not_ok "PostgreSQL $v starts with shared_preload_libraries = 'jobq'"
            tail -20 "$R$cluster/server.log" | sed 's/^/#   /'
            stop_all
            continue
        fi
        ok "PostgreSQL $v starts with shared_preload_libraries = 'jobq'"
        psql_as() {  # ROLE SQL
            inr_pg "$bin/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U "$1" -d app -c "$2"
        }
        inr_pg "$bin/createdb" -h "$sock" -p "$port" app
        check "CREATE EXTENSION jobq" quiet psql_as postgres "CREATE EXTENSION jobq"
        check "the extension is at version $VERSION" \
            test "$(psql_as postgres "SELECT extversion FROM pg_extension WHERE extname = 'jobq'")" = "$VERSION"
        local launcher=""
        for _ in $(seq 1 50); do
            launcher=$(psql_as postgres "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'jobq launcher'")
            [[ $launcher == 1 ]] && break
            sleep 0.2
        done
        check "the background worker runs (jobq launcher)" test "$launcher" = 1
        psql_as postgres "CREATE ROLE runner LOGIN; GRANT jobq_worker TO runner;
                          SELECT jobq.create_queue('greetings')" >/dev/null

        # The packaged example handler, the runner's config in /etc/jobq.
        local http_port
        http_port=$(free_port)
        cat >"$R/etc/jobq/runner.toml" <<TOML
[database]
dsn = "host=$sock port=$port dbname=app user=runner"
[http]
listen = "127.0.0.1:$http_port"
[runner]
poll_interval = "1s"
[queues.greetings]
handler = "exec"
command = ["/usr/share/doc/jobq-runner/examples/handlers/greet.sh"]
timeout = "30s"
TOML
        inr chown "root:$group" /etc/jobq/runner.toml
        chmod 640 "$R/etc/jobq/runner.toml"
        check "jobq-runner --check accepts /etc/jobq/runner.toml as $user" \
            quiet inr setpriv --reuid="$user" --regid="$group" --init-groups -- \
            "${argv[0]}" --config /etc/jobq/runner.toml --check

        # As systemd would: ExecStart's argv, the unit's user and group, a
        # clean environment, / as working directory.
        local into_root=()
        [[ -n $R ]] && into_root=(chroot "$R")
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
            "${into_root[@]}" setpriv --reuid="$user" --regid="$group" --init-groups -- "${argv[@]}" \
            >"$work/runner-$v.log" 2>&1 &
        runner_pid=$!
        local id state=""
        id=$(psql_as postgres "SELECT jobq.enqueue('greetings', '{\"name\": \"debian\"}')")
        for _ in $(seq 1 120); do
            state=$(psql_as postgres "SELECT state FROM jobq.job($id)")
            [[ $state == completed || $state == dead ]] && break
            kill -0 "$runner_pid" 2>/dev/null || break
            sleep 0.5
        done
        if [[ $state == completed ]]; then
            ok "the runner from the unit completes a job (PostgreSQL $v)"
        else
            not_ok "the runner from the unit completes a job (PostgreSQL $v): state ${state:-none}"
            sed 's/^/#   /' "$work/runner-$v.log" | tail -20
        fi
        check "the job's result comes from the example handler" \
            test "$(psql_as postgres "SELECT result->>'greeting' FROM jobq.job($id)")" = "hello debian"
        check "the runner runs as $user" \
            test "$(awk '/^Uid:/ {print $2}' "/proc/$runner_pid/status" 2>/dev/null)" = "$(inr id -u "$user")"
        check "/healthz answers 200" healthz_ok "$http_port"
        kill -TERM "$runner_pid"
        local rc=""
        for _ in $(seq 1 120); do
            kill -0 "$runner_pid" 2>/dev/null || break
            sleep 0.5
        done
        if ! kill -0 "$runner_pid" 2>/dev/null; then
            wait "$runner_pid"
            rc=$?
            runner_pid=""
        fi
        check "the runner exits 0 on SIGTERM (exit ${rc:-still running})" test "$rc" = 0
        stop_all
    done

    # Purge takes every packaged file away again (the config we wrote is
    # the admin's: dpkg would keep it, and /etc/jobq with it).
    rm -f "$R/etc/jobq/runner.toml"
    local files
    files=$(for p in $packages; do
        inr dpkg -L "$p" | while read -r f; do [[ -f $R$f ]] && echo "$f"; done
    done)
    if inr env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q $packages >"$work/apt-purge.log" 2>&1; then
        local left
        left=$(for f in $files /etc/jobq; do [[ -e $R$f ]] && echo "$f"; done | xargs)
        check "apt-get purge removes every packaged file${left:+ (left: $left)}" test -z "$left"
    else
        not_ok "apt-get purge"
        tail -20 "$work/apt-purge.log" | sed 's/^/#   /'
    fi
    done_testing
}

# free_port: a TCP port nobody listens on (checked on loopback).
free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# healthz_ok PORT: GET /healthz answers 200 (bash's /dev/tcp, no curl needed).
healthz_ok() {
    local status=""
    for _ in $(seq 1 20); do
        status=$(
            exec 2>/dev/null
            exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
            printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
            timeout 5 head -1 <&3
        )
        [[ $status == *" 200"* ]] && return 0
        sleep 0.5
    done
    return 1
}

if [[ ${1:-} == --in-root ]]; then
    shift
    in_root "$@"
fi

# ---------------------------------------------------------------------------
# 1. Build
# ---------------------------------------------------------------------------
[[ -n $VERSION ]] || { not_ok "default_version in jobq.control"; done_testing; }
VERSIONS=$(server_versions)
[[ -n $VERSIONS ]] || { not_ok "a postgresql-server-dev-NN (NN >= 15) is installed"; done_testing; }
note "jobq $VERSION, PostgreSQL $VERSIONS, $ARCH"

WORK=$(mktemp -d /var/tmp/jobq-deb-test.XXXXXX)
DEBS="$WORK/deb"
if [[ -n ${JOBQ_DEBS:-} ]]; then
    # For development: test packages built before (`make deb`).
    DEBS=$JOBQ_DEBS
    note "testing the packages in $DEBS (JOBQ_DEBS), not a fresh build"
elif DEB_OUT="$DEBS" bash "$ROOT/scripts/build-deb.sh" >"$WORK/build.log" 2>&1; then
    ok "make deb (scripts/build-deb.sh) builds"
else
    not_ok "make deb (scripts/build-deb.sh) builds"
    sed 's/^/#   /' "$WORK/build.log" | tail -40
    done_testing
fi

# contents DEB: the paths a package installs, without the leading "."
contents() { dpkg-deb -c "$1" | awk '{print substr($6, 2)}'; }

for v in $VERSIONS; do
    deb="$DEBS/postgresql-${v}-jobq_${VERSION}_${ARCH}.deb"
    if [[ ! -f $deb ]]; then
        not_ok "postgresql-$v-jobq_${VERSION}_$ARCH.deb is built"
        continue
    fi
    ok "postgresql-$v-jobq_${VERSION}_$ARCH.deb is built"
    files=$(contents "$deb")
    missing=""
    for f in "/usr/lib/postgresql/$v/lib/jobq.so" "/usr/share/postgresql/$v/extension/jobq.control" \
        "/usr/share/postgresql/$v/extension/jobq--$VERSION.sql"; do
        grep -qxF "$f" <<<"$files" || missing+=" $f"
    done
    check "postgresql-$v-jobq has the module, control file and script${missing:+ (missing:$missing)}" \
        test -z "$missing"
    stray=$(grep -E '^/usr/local/|/bin/|/lib/systemd/' <<<"$files" | xargs)
    check "postgresql-$v-jobq has no runner, nothing in /usr/local${stray:+ (has: $stray)}" test -z "$stray"
    check "postgresql-$v-jobq depends on postgresql-$v" \
        grep -qE "(^|, )postgresql-$v( |,|$)" <<<"$(dpkg-deb -f "$deb" Depends)"
done

deb="$DEBS/jobq-runner_${VERSION}_${ARCH}.deb"
if [[ -f $deb ]]; then
    ok "jobq-runner_${VERSION}_$ARCH.deb is built"
    files=$(contents "$deb")
    missing=""
    for f in /usr/bin/jobq-runner /usr/share/doc/jobq-runner/examples/runner.example.toml \
        /usr/share/doc/jobq-runner/runner.md /etc/jobq/; do
        grep -qxF "$f" <<<"$files" || missing+=" $f"
    done
    grep -qE '^(/usr)?/lib/systemd/system/jobq-runner\.service$' <<<"$files" || missing+=" jobq-runner.service"
    check "jobq-runner has the binary, unit, example config and docs${missing:+ (missing:$missing)}" \
        test -z "$missing"
else
    not_ok "jobq-runner_${VERSION}_$ARCH.deb is built"
fi

# ---------------------------------------------------------------------------
# 2. Install and run, as root, in the throwaway root
# ---------------------------------------------------------------------------
if [[ $(id -u) -ne 0 ]]; then
    note "SKIP install: needs root (mounts a throwaway root); the packages are built and checked"
    rm -rf "$WORK"
    done_testing
fi

if unshare --mount --propagation private true 2>/dev/null; then
    DEB_TEST_COUNT=$TESTS DEB_TEST_FAILS=$FAILS \
        unshare --mount --propagation private bash "$SELF" --in-root overlay "$DEBS" "$WORK" "$VERSIONS"
    rc=$?
else
    # No private mount namespace here (a chroot whose / is no mount point,
    # like scripts/pgroot.sh's roots on bookworm's util-linux), so no overlay.
    # The root is a throwaway one: the packages install into it and are
    # purged again.
    note "no private mount namespace (a chroot?): installing into this root, restoring it afterwards"
    DEB_TEST_COUNT=$TESTS DEB_TEST_FAILS=$FAILS bash "$SELF" --in-root in-place "$DEBS" "$WORK" "$VERSIONS"
    rc=$?
fi
# The mounts lived in the namespace only: here root/ and layer/ are plain
# empty directories.
rm -rf "$WORK"
exit $rc
