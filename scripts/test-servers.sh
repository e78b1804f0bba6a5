#!/usr/bin/env bash
# Start or stop ephemeral servers for the tests.
#
#   scripts/test-servers.sh start   # prints `export FF_TEST_...=...` lines
#   scripts/test-servers.sh stop    # stops exactly what `start` started
#
# For each of FF_TEST_POSTGRES_URL, FF_TEST_VALKEY_URL and
# FF_TEST_VALKEY_CLUSTER_URL that is unset, `start` starts a throw-away server
# on a free port of 127.0.0.1, in a temporary directory:
#   - PostgreSQL: initdb + pg_ctl, run as the unprivileged `postgres` user when
#     invoked as root (initdb and postgres refuse root), trust auth, fsync and
#     synchronous_commit on, max_connections=200;
#   - Valkey standalone: redis-server (or valkey-server), no persistence;
#   - Valkey cluster: 3 masters, no replicas, created with `--cluster create`.
# Servers already named by a variable are left alone, and so are the system
# servers on 5432/6379. Missing packages are installed with apt-get when run
# as root (without starting Debian's own services).
#
# State lives in $FF_TEST_STATE_DIR (default: $TMPDIR/flowfabric-test-servers):
# `env` holds the exports of the servers started, `state` what `stop` must stop.
# Give each concurrent run its own FF_TEST_STATE_DIR (scripts/test.sh does).
set -euo pipefail

STATE_DIR="${FF_TEST_STATE_DIR:-${TMPDIR:-/tmp}/flowfabric-test-servers}"
ENV_FILE="$STATE_DIR/env"
STATE_FILE="$STATE_DIR/state"

log() { echo "test-servers: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- helpers --

is_root() { [[ "$(id -u)" == 0 ]]; }

# port_in_use PORT: true when something accepts connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: prints a random port P such that P and P+10000 (the cluster bus
# port) are both free. Random ports keep concurrent runs apart; start-up
# failures on a lost race are retried by the callers.
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 12000))
		if ! port_in_use "$p" && ! port_in_use $((p + 10000)); then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

# as_pg CMD...: runs CMD as the unprivileged postgres user when root.
as_pg() {
	if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

find_pg_bin() {
	local d
	if [[ -n "${FF_PG_BIN:-}" ]]; then echo "$FF_PG_BIN"; return 0; fi
	d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
	if [[ -n "$d" && -x "$d/initdb" ]]; then echo "$d"; return 0; fi
	if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
	return 1
}

find_redis_server() {
	command -v redis-server 2>/dev/null || command -v valkey-server 2>/dev/null
}

find_redis_cli() {
	command -v redis-cli 2>/dev/null || command -v valkey-cli 2>/dev/null
}

# apt_install PKG...: installs Debian packages without starting their services.
apt_install() {
	is_root || die "missing $* and not root: install them (apt-get install $*) or set the FF_TEST_* URLs"
	command -v apt-get >/dev/null || die "missing $* and no apt-get: install them or set the FF_TEST_* URLs"
	log "installing $* with apt-get"
	local policy=/usr/sbin/policy-rc.d placed=0
	if [[ ! -e "$policy" ]]; then
		# Keep Debian from starting the packaged services (exit 101 = forbidden).
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		placed=1
	fi
	local rc=0
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >&2 || rc=$?
	if ((placed)); then rm -f "$policy"; fi
	((rc == 0)) || die "apt-get install $* failed"
}

ensure_packages() {
	local need=()
	if [[ -z "${FF_TEST_POSTGRES_URL:-}" ]] && ! find_pg_bin >/dev/null; then need+=(postgresql); fi
	if [[ -z "${FF_TEST_VALKEY_URL:-}" || -z "${FF_TEST_VALKEY_CLUSTER_URL:-}" ]] &&
		! { find_redis_server >/dev/null && find_redis_cli >/dev/null; }; then
		need+=(redis-server)
	fi
	if ((${#need[@]})); then apt_install "${need[@]}"; fi
	if [[ -z "${FF_TEST_POSTGRES_URL:-}" ]] && is_root && ! id -u postgres >/dev/null 2>&1; then
		die "user postgres is missing: initdb refuses to run as root"
	fi
}

# wait_for SECONDS CMD...: retries CMD every 0.1s until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

record() { echo "$1" >>"$STATE_FILE"; }

# running PID: true while PID runs. A daemonized server is reparented to PID 1,
# which may reap it late: a zombie counts as stopped.
running() {
	local stat
	stat="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
	[[ -n "$stat" && "$stat" != Z* ]]
}
not_running() { ! running "$1"; }

# --------------------------------------------------------------- postgres --

start_postgres() {
	local bin dir port attempt
	bin="$(find_pg_bin)" || die "PostgreSQL binaries not found"
	dir="$WORK_DIR/postgres"
	mkdir -p "$dir"
	if is_root; then chown postgres: "$dir"; fi
	as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C \
		--no-instructions >"$WORK_DIR/initdb.log" 2>&1 ||
		{ cat "$WORK_DIR/initdb.log" >&2; die "initdb failed"; }
	# One line: pg_ctl hands these options to a shell.
	local opts="-c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir"
	opts+=" -c fsync=on -c synchronous_commit=on -c max_connections=200"
	for attempt in 1 2 3 4 5; do
		port="$(free_port)"
		if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start -o \
			"$opts -c port=$port" >/dev/null 2>&1; then
			record "PG_BIN=$bin"
			record "PG_DATA=$dir/data"
			wait_for 30 "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" || die "PostgreSQL on $port not ready"
			echo "export FF_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable'" >>"$ENV_FILE"
			log "PostgreSQL on 127.0.0.1:$port"
			return 0
		fi
		log "PostgreSQL failed to start on port $port (attempt $attempt)"
		tail -n 5 "$dir/postgres.log" >&2 || true
	done
	die "PostgreSQL did not start"
}

# ------------------------------------------------------------------ valkey --

# start_redis PORT NAME [ARGS...]: starts one daemonized server; fails if it
# does not answer PING.
start_redis() {
	local port="$1" name="$2"
	shift 2
	local dir="$WORK_DIR/$name"
	mkdir -p "$dir"
	"$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
		--daemonize yes --pidfile "$dir/server.pid" --logfile "$dir/server.log" "$@" >/dev/null 2>&1 || return 1
	if wait_for 10 "$REDIS_CLI" -h 127.0.0.1 -p "$port" ping; then
		record "REDIS_PORT=$port"
		record "REDIS_PIDFILE=$dir/server.pid"
		return 0
	fi
	[[ -f "$dir/server.pid" ]] && kill "$(cat "$dir/server.pid")" 2>/dev/null || true
	tail -n 5 "$dir/server.log" >&2 || true
	return 1
}

start_valkey() {
	local port attempt
	for attempt in 1 2 3 4 5; do
		port="$(free_port)"
		if start_redis "$port" "valkey-$port"; then
			echo "export FF_TEST_VALKEY_URL='redis://127.0.0.1:$port/0'" >>"$ENV_FILE"
			log "Valkey on 127.0.0.1:$port"
			return 0
		fi
		log "Valkey failed to start on port $port (attempt $attempt)"
	done
	die "Valkey did not start"
}

cluster_ok() {
	local info
	info="$("$REDIS_CLI" -h 127.0.0.1 -p "$1" cluster info)" || return 1
	grep -q '^cluster_state:ok' <<<"$info" && grep -q '^cluster_known_nodes:3' <<<"$info"
}

start_valkey_cluster() {
	local ports=() port attempt n
	for n in 1 2 3; do
		for attempt in 1 2 3 4 5; do
			port="$(free_port)"
			if start_redis "$port" "cluster-$port" --cluster-enabled yes \
				--cluster-config-file nodes.conf --cluster-node-timeout 5000; then
				ports+=("$port")
				break
			fi
			log "cluster node failed to start on port $port (attempt $attempt)"
			((attempt < 5)) || die "cluster node did not start"
		done
	done
	"$REDIS_CLI" --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes \
		>"$WORK_DIR/cluster-create.log" 2>&1 ||
		{ cat "$WORK_DIR/cluster-create.log" >&2; die "redis-cli --cluster create failed"; }
	for port in "${ports[@]}"; do
		wait_for 30 cluster_ok "$port" || die "cluster node $port never reached cluster_state:ok"
	done
	local IFS=,
	echo "export FF_TEST_VALKEY_CLUSTER_URL='valkey+cluster://${ports[*]/#/127.0.0.1:}'" >>"$ENV_FILE"
	log "Valkey cluster on ${ports[*]}"
}

# ------------------------------------------------------------------ start --

cmd_start() {
	if [[ -e "$STATE_FILE" ]]; then
		die "$STATE_FILE exists: servers already started; run '$0 stop' first (or use another FF_TEST_STATE_DIR)"
	fi
	ensure_packages
	mkdir -p "$STATE_DIR"
	WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/ff-test-servers.XXXXXX")"
	chmod 755 "$WORK_DIR"
	: >"$ENV_FILE"
	echo "WORK_DIR=$WORK_DIR" >"$STATE_FILE"
	# Whatever happens next, a failed start leaves nothing running.
	trap 'rc=$?; if ((rc != 0)); then log "start failed; stopping what was started"; cmd_stop || true; fi' EXIT

	if [[ -z "${FF_TEST_POSTGRES_URL:-}" ]]; then start_postgres; fi
	if [[ -z "${FF_TEST_VALKEY_URL:-}" || -z "${FF_TEST_VALKEY_CLUSTER_URL:-}" ]]; then
		REDIS_SERVER="$(find_redis_server)" || die "redis-server not found"
		REDIS_CLI="$(find_redis_cli)" || die "redis-cli not found"
		record "REDIS_CLI=$REDIS_CLI"
		if [[ -z "${FF_TEST_VALKEY_URL:-}" ]]; then start_valkey; fi
		if [[ -z "${FF_TEST_VALKEY_CLUSTER_URL:-}" ]]; then start_valkey_cluster; fi
	fi
	trap - EXIT
	cat "$ENV_FILE"
}

# ------------------------------------------------------------------- stop --

cmd_stop() {
	if [[ ! -e "$STATE_FILE" ]]; then
		log "nothing to stop ($STATE_FILE not found)"
		return 0
	fi
	local line key value pg_bin="" pg_data="" redis_cli="" work_dir="" ports=() pidfiles=()
	while IFS= read -r line; do
		key="${line%%=*}" value="${line#*=}"
		case "$key" in
		WORK_DIR) work_dir="$value" ;;
		PG_BIN) pg_bin="$value" ;;
		PG_DATA) pg_data="$value" ;;
		REDIS_CLI) redis_cli="$value" ;;
		REDIS_PORT) ports+=("$value") ;;
		REDIS_PIDFILE) pidfiles+=("$value") ;;
		esac
	done <"$STATE_FILE"

	local rc=0 i pid
	if [[ -n "$pg_data" ]]; then
		as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			{ log "pg_ctl stop failed for $pg_data"; rc=1; }
	fi
	for i in "${!ports[@]}"; do
		pid="$(cat "${pidfiles[$i]}" 2>/dev/null || true)"
		"$redis_cli" -h 127.0.0.1 -p "${ports[$i]}" shutdown nosave >/dev/null 2>&1 || true
		if [[ -n "$pid" ]]; then
			# Make sure the process we started is gone, whatever SHUTDOWN said.
			if ! wait_for 10 not_running "$pid"; then
				log "redis-server $pid on ${ports[$i]} ignored SHUTDOWN; killing it"
				kill -9 "$pid" 2>/dev/null || true
				rc=1
			fi
		fi
	done
	if [[ -n "$work_dir" && "$work_dir" == */ff-test-servers.* ]]; then rm -rf "$work_dir"; fi
	rm -f "$STATE_FILE" "$ENV_FILE"
	rmdir "$STATE_DIR" 2>/dev/null || true
	return "$rc"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
