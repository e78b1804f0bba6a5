#!/usr/bin/env bash
# Start or stop ephemeral servers for the tests.
#
#   scripts/test-servers.sh start   # prints `export FF_TEST_...=...` lines
#   scripts/test-servers.sh stop    # stops exactly what `start` started
#
# For each of these variables that is unset, `start` starts a throw-away
# server on a free port of 127.0.0.1, in a temporary directory:
#   FF_TEST_POSTGRES_URL        PostgreSQL: initdb + pg_ctl, run as the
#                               unprivileged `postgres` user when invoked as
#                               root (initdb and postgres refuse root), trust
#                               auth, fsync and synchronous_commit on,
#                               max_connections=200, TLS with a self-signed
#                               certificate (clients use sslmode=disable);
#   FF_TEST_VALKEY_URL          valkey-server (Valkey 8) standalone;
#   FF_TEST_VALKEY_CLUSTER_URL  valkey-server cluster, 3 masters, no replicas;
#   FF_TEST_REDIS_URL           redis-server (Redis 7) standalone;
#   FF_TEST_REDIS_CLUSTER_URL   redis-server cluster, 3 masters, no replicas;
#   FF_TEST_POSTGRES_POOLER_URL PgBouncer in transaction mode in front of the
#                               server of FF_TEST_POSTGRES_URL, forwarding
#                               every database name (run as `postgres` when
#                               invoked as root: pgbouncer refuses root).
# Key-value servers run without persistence; clusters are created with
# `--cluster create` and their URLs are valkey+cluster://h:p,h:p,h:p. The
# binary and version of each server are logged on stderr. Servers already
# named by a variable are left alone, and so are the system servers on
# 5432/6379. The Valkey driver's tests read FF_TEST_VALKEY_*; scripts/test.sh
# runs them a second time with those pointing at the FF_TEST_REDIS_* servers.
#
# Missing packages are installed with apt-get when run as root, without
# starting Debian's own services (a policy-rc.d that forbids it): postgresql,
# pgbouncer, redis-server, and valkey-server + valkey-tools — on Debian 12 (bookworm)
# from bookworm-backports (Valkey 8), whose source is then added as
# /etc/apt/sources.list.d/flowfabric-bookworm-backports.list with the
# archive URL of the machine's bookworm entry.
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

# find_bin NAME...: prints the path of the first NAME found in PATH or in
# /usr/bin, where the Debian packages install them.
find_bin() {
	local n
	for n in "$@"; do
		command -v "$n" 2>/dev/null && return 0
		[[ -x "/usr/bin/$n" ]] && { echo "/usr/bin/$n"; return 0; }
	done
	return 1
}

# server_version BIN: prints e.g. "Valkey 8.0.2" or "Redis 7.0.15".
server_version() {
	local out
	out="$("$1" --version 2>/dev/null | head -n 1)" || true
	if [[ "$out" =~ ^([A-Za-z]+)\ server\ v=([0-9][0-9.]*) ]]; then
		echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
	else
		echo "unknown version (${out:-no output})"
	fi
}

need_valkey() { [[ -z "${FF_TEST_VALKEY_URL:-}" || -z "${FF_TEST_VALKEY_CLUSTER_URL:-}" ]]; }
need_redis() { [[ -z "${FF_TEST_REDIS_URL:-}" || -z "${FF_TEST_REDIS_CLUSTER_URL:-}" ]]; }

# with_policy CMD...: runs CMD with a policy-rc.d in place that keeps
# Debian's maintainer scripts from starting the packaged services.
with_policy() {
	local policy=/usr/sbin/policy-rc.d placed=0 rc=0
	if [[ ! -e "$policy" ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" # 101 = action forbidden
		chmod 755 "$policy"
		placed=1
	fi
	"$@" || rc=$?
	if ((placed)); then rm -f "$policy"; fi
	return "$rc"
}

can_apt() {
	is_root || die "missing $* and not root: install them (apt-get install $*) or set the FF_TEST_* URLs"
	command -v apt-get >/dev/null || die "missing $* and no apt-get: install them or set the FF_TEST_* URLs"
}

APT_UPDATED=0
apt_update() {
	((APT_UPDATED)) && return 0
	apt-get update -qq >&2 || return 1
	APT_UPDATED=1
}

# apt_install [-t SUITE] PKG...: installs Debian packages without starting
# their services.
apt_install() {
	APT_TARGET=()
	if [[ "$1" == -t ]]; then APT_TARGET=(-t "$2"); shift 2; fi
	APT_PKGS=("$@")
	can_apt "$@"
	log "installing $* with apt-get${APT_TARGET[*]:+ ${APT_TARGET[*]}}"
	with_policy apt_run || die "apt-get install ${APT_TARGET[*]} $* failed"
}
apt_run() {
	apt_update && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${APT_TARGET[@]}" "${APT_PKGS[@]}" >&2
}

os_codename() { (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}"); }

# bookworm_source: prints "URI [SIGNED-BY]" of the first enabled `deb` entry
# for suite bookworm, from /etc/apt/sources.list{,.d/*.list} (one-line format)
# or /etc/apt/sources.list.d/*.sources (deb822).
bookworm_source() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f "$f" ]] || continue
		awk '
			$1 != "deb" { next }
			{
				i = 2; signed = ""
				if ($2 ~ /^\[/) {
					for (; i <= NF; i++) {
						if ($i ~ /signed-by=/) { signed = $i; sub(/.*signed-by=/, "", signed); sub(/\]$/, "", signed) }
						if ($i ~ /\]$/) { i++; break }
					}
				}
				if ($(i + 1) == "bookworm") { print $i, signed; found = 1; exit }
			}
			END { exit !found }' "$f" && return 0
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f "$f" ]] || continue
		awk '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ / bookworm / && enabled != "no" && uri != "") {
					print uri, signed; found = 1; exit
				}
				types = suites = uri = signed = enabled = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			/^[A-Za-z-]+:/ {
				key = tolower($1); sub(/:$/, "", key)
				val = $0; sub(/^[^:]*:[ \t]*/, "", val)
				if (key == "types") types = val
				else if (key == "suites") suites = val
				else if (key == "uris") { split(val, u, /[ \t]+/); uri = u[1] }
				else if (key == "signed-by" && val ~ /^\//) signed = val
				else if (key == "enabled") enabled = tolower(val)
			}
			END { if (!found) flush(); exit !found }' "$f" && return 0
	done
	return 1
}

BACKPORTS_LIST=/etc/apt/sources.list.d/flowfabric-bookworm-backports.list

# add_bookworm_backports: makes bookworm-backports available to apt, with the
# archive URL of the existing bookworm entry (deb.debian.org by default).
add_bookworm_backports() {
	if grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		return 0
	fi
	local uri="" signed=""
	read -r uri signed < <(bookworm_source || true) || true
	uri="${uri:-http://deb.debian.org/debian}"
	log "adding bookworm-backports ($uri) as $BACKPORTS_LIST"
	if [[ -n "$signed" ]]; then
		echo "deb [signed-by=$signed] $uri bookworm-backports main" >"$BACKPORTS_LIST"
	else
		echo "deb $uri bookworm-backports main" >"$BACKPORTS_LIST"
	fi
	APT_UPDATED=0
}

ensure_packages() {
	local need=() valkey=0
	if [[ -z "${FF_TEST_POSTGRES_URL:-}" ]] && ! find_pg_bin >/dev/null; then need+=(postgresql); fi
	if [[ -z "${FF_TEST_POSTGRES_URL:-}" ]] && ! command -v openssl >/dev/null; then need+=(openssl); fi
	if [[ -z "${FF_TEST_POSTGRES_POOLER_URL:-}" ]] && ! find_bin pgbouncer >/dev/null; then need+=(pgbouncer); fi
	if need_redis && ! { find_bin redis-server >/dev/null && find_bin redis-cli >/dev/null; }; then
		need+=(redis-server redis-tools)
	fi
	if need_valkey && ! { find_bin valkey-server >/dev/null && find_bin valkey-cli >/dev/null; }; then
		can_apt valkey-server valkey-tools
		valkey=1
		# Before the first apt-get update, so that one update does.
		if [[ "$(os_codename)" == bookworm ]]; then add_bookworm_backports; fi
	fi
	# The console's browser tests (internal/integration/console) drive
	# Debian's chromium; without root they skip (and fail under CI=true).
	if [[ -z "${FF_CHROMIUM:-}" ]] && ! command -v chromium >/dev/null && is_root; then need+=(chromium); fi
	if ((${#need[@]})); then apt_install "${need[@]}"; fi
	if ((valkey)); then
		if [[ "$(os_codename)" == bookworm ]]; then
			apt_install -t bookworm-backports valkey-server valkey-tools
		else
			apt_install valkey-server valkey-tools
		fi
	fi
	if [[ -z "${FF_TEST_POSTGRES_URL:-}${FF_TEST_POSTGRES_POOLER_URL:-}" ]] && is_root && ! id -u postgres >/dev/null 2>&1; then
		die "user postgres is missing: initdb and pgbouncer refuse to run as root"
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
	log "PostgreSQL server: $bin/postgres ($("$bin/postgres" --version 2>/dev/null || echo unknown version))"
	dir="$WORK_DIR/postgres"
	mkdir -p "$dir"
	if is_root; then chown postgres: "$dir"; fi
	as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C \
		--no-instructions >"$WORK_DIR/initdb.log" 2>&1 ||
		{ cat "$WORK_DIR/initdb.log" >&2; die "initdb failed"; }
	# A self-signed certificate, so that TLS failures can be tested for real.
	openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=flowfabric-test -addext subjectAltName=IP:127.0.0.1 \
		-keyout "$dir/server.key" -out "$dir/server.crt" >/dev/null 2>&1 || die "openssl req failed"
	chmod 600 "$dir/server.key"
	if is_root; then chown postgres: "$dir/server.key" "$dir/server.crt"; fi
	# One line: pg_ctl hands these options to a shell.
	local opts="-c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir"
	opts+=" -c fsync=on -c synchronous_commit=on -c max_connections=200"
	opts+=" -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
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

# start_pgbouncer: starts a PgBouncer in transaction mode in front of the
# server of FF_TEST_POSTGRES_URL (the one just started, or the one given),
# forwarding every database name to it as that URL's user.
start_pgbouncer() {
	local bin dir port attempt pg_host pg_port pg_user rest
	bin="$(find_bin pgbouncer)" || die "pgbouncer not found (install pgbouncer or set FF_TEST_POSTGRES_POOLER_URL)"
	log "PgBouncer: $bin ($("$bin" --version 2>/dev/null | head -n 1 || echo unknown version))"
	# postgres://user[:pw]@host:port/db?...: the pooler logs in as that user
	# (trust auth on the servers this script starts).
	rest="${FF_TEST_POSTGRES_URL#*://}"
	[[ "$rest" == *@* ]] && pg_user="${rest%%@*}" && rest="${rest#*@}" || pg_user=postgres
	pg_user="${pg_user%%:*}"
	rest="${rest%%/*}"
	pg_host="${rest%:*}" pg_port="${rest##*:}"
	[[ "$pg_port" =~ ^[0-9]+$ ]] || pg_port=5432
	dir="$WORK_DIR/pgbouncer"
	mkdir -p "$dir"
	if is_root; then chown postgres: "$dir"; fi
	for attempt in 1 2 3 4 5; do
		port="$(free_port)"
		cat >"$dir/pgbouncer.ini" <<-INI
			[databases]
			* = host=$pg_host port=$pg_port user=$pg_user
			[pgbouncer]
			listen_addr = 127.0.0.1
			listen_port = $port
			unix_socket_dir =
			auth_type = any
			pool_mode = transaction
			max_client_conn = 2000
			default_pool_size = 10
			max_user_connections = 60
			server_idle_timeout = 30
			logfile = $dir/pgbouncer.log
			pidfile = $dir/pgbouncer.pid
		INI
		if is_root; then chown postgres: "$dir/pgbouncer.ini"; fi
		if as_pg "$bin" -d -q "$dir/pgbouncer.ini" >/dev/null 2>&1 &&
			wait_for 10 port_in_use "$port"; then
			record "PGBOUNCER_PID=$dir/pgbouncer.pid"
			echo "export FF_TEST_POSTGRES_POOLER_URL='postgres://$pg_user@127.0.0.1:$port/postgres?sslmode=disable'" >>"$ENV_FILE"
			log "PgBouncer (transaction pooling) on 127.0.0.1:$port, in front of $pg_host:$pg_port"
			return 0
		fi
		log "PgBouncer failed to start on port $port (attempt $attempt)"
		tail -n 5 "$dir/pgbouncer.log" >&2 || true
		[[ -f "$dir/pgbouncer.pid" ]] && kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
	done
	die "PgBouncer did not start"
}

# ------------------------------------------------------- valkey and redis --

# The server binary, its CLI and a label ("Valkey", "Redis") of the family
# being started: set by use_family.
SERVER="" CLI="" FAMILY=""

# use_family valkey|redis: selects the binaries and logs their version.
use_family() {
	case "$1" in
	valkey)
		FAMILY=Valkey
		SERVER="$(find_bin valkey-server)" || die "valkey-server not found (install valkey-server 8 or set FF_TEST_VALKEY_URL and FF_TEST_VALKEY_CLUSTER_URL)"
		CLI="$(find_bin valkey-cli redis-cli)" || die "valkey-cli not found"
		;;
	redis)
		FAMILY=Redis
		SERVER="$(find_bin redis-server)" || die "redis-server not found (install redis-server 7 or set FF_TEST_REDIS_URL and FF_TEST_REDIS_CLUSTER_URL)"
		CLI="$(find_bin redis-cli valkey-cli)" || die "redis-cli not found"
		;;
	esac
	local version want
	version="$(server_version "$SERVER")"
	log "$FAMILY servers: $SERVER ($version), cli $CLI"
	case "$1" in valkey) want="Valkey 8." ;; redis) want="Redis 7." ;; esac
	[[ "$version" == "$want"* ]] || log "warning: expected ${want}x from $SERVER, got $version"
}

# start_kv PORT NAME [ARGS...]: starts one daemonized $SERVER; fails if it
# does not answer PING.
start_kv() {
	local port="$1" name="$2"
	shift 2
	local dir="$WORK_DIR/$name"
	mkdir -p "$dir"
	"$SERVER" --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
		--daemonize yes --pidfile "$dir/server.pid" --logfile "$dir/server.log" "$@" >/dev/null 2>&1 || return 1
	if wait_for 10 "$CLI" -h 127.0.0.1 -p "$port" ping; then
		record "KV_NODE=$port $dir/server.pid $CLI"
		return 0
	fi
	[[ -f "$dir/server.pid" ]] && kill "$(cat "$dir/server.pid")" 2>/dev/null || true
	tail -n 5 "$dir/server.log" >&2 || true
	return 1
}

# start_standalone VAR: starts one standalone server, exports VAR.
start_standalone() {
	local var="$1" port attempt name
	name="$(tr '[:upper:]' '[:lower:]' <<<"$FAMILY")"
	for attempt in 1 2 3 4 5; do
		port="$(free_port)"
		if start_kv "$port" "$name-$port"; then
			echo "export $var='redis://127.0.0.1:$port/0'" >>"$ENV_FILE"
			log "$FAMILY on 127.0.0.1:$port ($var)"
			return 0
		fi
		log "$FAMILY failed to start on port $port (attempt $attempt)"
	done
	die "$FAMILY did not start"
}

cluster_ok() {
	local info
	info="$("$CLI" -h 127.0.0.1 -p "$1" cluster info)" || return 1
	grep -q '^cluster_state:ok' <<<"$info" && grep -q '^cluster_known_nodes:3' <<<"$info"
}

# start_cluster VAR: starts a 3-master cluster, exports VAR.
start_cluster() {
	local var="$1" ports=() port attempt n name
	name="$(tr '[:upper:]' '[:lower:]' <<<"$FAMILY")-cluster"
	for n in 1 2 3; do
		for attempt in 1 2 3 4 5; do
			port="$(free_port)"
			if start_kv "$port" "$name-$port" --cluster-enabled yes \
				--cluster-config-file nodes.conf --cluster-node-timeout 5000; then
				ports+=("$port")
				break
			fi
			log "$FAMILY cluster node failed to start on port $port (attempt $attempt)"
			((attempt < 5)) || die "$FAMILY cluster node did not start"
		done
	done
	"$CLI" --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes \
		>"$WORK_DIR/$name-create.log" 2>&1 ||
		{ cat "$WORK_DIR/$name-create.log" >&2; die "$CLI --cluster create failed"; }
	for port in "${ports[@]}"; do
		wait_for 30 cluster_ok "$port" || die "$FAMILY cluster node $port never reached cluster_state:ok"
	done
	local IFS=,
	echo "export $var='valkey+cluster://${ports[*]/#/127.0.0.1:}'" >>"$ENV_FILE"
	log "$FAMILY cluster on ${ports[*]} ($var)"
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

	if [[ -z "${FF_TEST_POSTGRES_URL:-}" ]]; then
		start_postgres
		eval "$(grep FF_TEST_POSTGRES_URL "$ENV_FILE")"
	fi
	if [[ -z "${FF_TEST_POSTGRES_POOLER_URL:-}" ]]; then start_pgbouncer; fi
	if need_valkey; then
		use_family valkey
		if [[ -z "${FF_TEST_VALKEY_URL:-}" ]]; then start_standalone FF_TEST_VALKEY_URL; fi
		if [[ -z "${FF_TEST_VALKEY_CLUSTER_URL:-}" ]]; then start_cluster FF_TEST_VALKEY_CLUSTER_URL; fi
	fi
	if need_redis; then
		use_family redis
		if [[ -z "${FF_TEST_REDIS_URL:-}" ]]; then start_standalone FF_TEST_REDIS_URL; fi
		if [[ -z "${FF_TEST_REDIS_CLUSTER_URL:-}" ]]; then start_cluster FF_TEST_REDIS_CLUSTER_URL; fi
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
	local line key value pg_bin="" pg_data="" work_dir="" nodes=() pgbouncer_pid=""
	while IFS= read -r line; do
		key="${line%%=*}" value="${line#*=}"
		case "$key" in
		WORK_DIR) work_dir="$value" ;;
		PG_BIN) pg_bin="$value" ;;
		PG_DATA) pg_data="$value" ;;
		KV_NODE) nodes+=("$value") ;;
		PGBOUNCER_PID) pgbouncer_pid="$value" ;;
		esac
	done <"$STATE_FILE"

	local rc=0 node port pidfile cli pid
	if [[ -n "$pgbouncer_pid" ]]; then
		pid="$(cat "$pgbouncer_pid" 2>/dev/null || true)"
		if [[ -n "$pid" ]] && running "$pid"; then
			kill -INT "$pid" 2>/dev/null || true # immediate shutdown
			wait_for 10 not_running "$pid" || { kill -9 "$pid" 2>/dev/null || true; rc=1; }
		fi
	fi
	if [[ -n "$pg_data" ]]; then
		as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			{ log "pg_ctl stop failed for $pg_data"; rc=1; }
	fi
	for node in "${nodes[@]}"; do
		read -r port pidfile cli <<<"$node"
		pid="$(cat "$pidfile" 2>/dev/null || true)"
		# Only a server still running from our pidfile: the port may be
		# someone else's by now.
		if [[ -z "$pid" ]] || ! running "$pid"; then continue; fi
		"$cli" -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
		# Make sure the process we started is gone, whatever SHUTDOWN said.
		if ! wait_for 10 not_running "$pid"; then
			log "server $pid on $port ignored SHUTDOWN; killing it"
			kill -9 "$pid" 2>/dev/null || true
			rc=1
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
