# Shell functions to run a private PostgreSQL 15 cluster for jobq: initdb
# into a directory, its own port and Unix socket there, started and stopped
# by the caller. Sourced by scripts/test.sh, scripts/demo.sh and bench/.
#
# Postgres refuses to run as root, so as root the cluster runs as the
# `postgres` OS user (present on every machine with the server package).

PG_BIN=${PG_BIN:-$(pg_config --bindir)}

# as_pg CMD...: run a command as the cluster's OS user.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- env PATH="$PG_BIN:$PATH" "$@"
    else
        env PATH="$PG_BIN:$PATH" "$@"
    fi
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
    echo "cluster.sh: no free port found" >&2
    return 1
}

# cluster_init DIR PORT [extra postgresql.conf lines...]
cluster_init() {
    local dir=$1 port=$2
    shift 2
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    as_pg initdb -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; return 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'jobq'
max_connections = 200
log_line_prefix = '%m [%p] %b '
CONF
    local line
    for line in "$@"; do echo "$line" >>"$dir/data/postgresql.conf"; done
}

cluster_start() {
    local dir=$1
    as_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { tail -20 "$dir/server.log" >&2; return 1; }
}

cluster_stop() {
    local dir=$1 mode=${2:-fast}
    [[ -f "$dir/data/postmaster.pid" ]] || return 0
    as_pg pg_ctl -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || true
}

# cluster_psql DIR PORT DB [psql args...]
cluster_psql() {
    local dir=$1 port=$2 db=$3
    shift 3
    as_pg psql -X -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -d "$db" "$@"
}
