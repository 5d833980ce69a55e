#!/bin/sh
# unit_pg_server: tests/support/pg-server (the PostgreSQL tests' private server).  Two servers
# side by side, each answering on its own URL and its own unix socket with nothing of the
# other's; a start over a running server of the same DIR replaces it with a fresh one; stop
# ends only its own server, removes its data, and may be repeated; as root, a DIR the server's
# user cannot reach moves the server under /tmp, and a server its user cannot run runs in a user
# namespace; bad usage is refused.
# Usage: test_pg_server.sh PG_SERVER_SCRIPT WORK_DIR
set -eu
srv=$1
base=$2
rm -rf "$base"
mkdir -p "$base"

cleanup() {
	for d in a b closed/c ns; do
		sh "$srv" stop "$base/$d" >/dev/null 2>&1 || true
	done
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
# pid has ended: pg_ctl stop returns when the server removes its pid file, just before the
# process exits (and is reaped); waits for that, up to 60 s
gone() {
	i=0
	while [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le 600 ] || return 1
		sleep 0.1
	done
}
q() { # URL or conninfo, SQL: the one value
	psql "$1" -X -A -t -q -c "$2"
}

url_a=$(sh "$srv" start "$base/a")
url_b=$(sh "$srv" start "$base/b")
echo "a: $url_a"
echo "b: $url_b"
[ "$url_a" != "$url_b" ] || fail "two servers, one URL: $url_a"
[ "$(cat "$base/a/url")" = "$url_a" ] || fail "$base/a/url is not the printed URL"
[ "$(q "$url_a" "SELECT 40 + 2")" = 42 ] || fail "server a does not answer on $url_a"
q "$url_a" "CREATE TABLE mark_a ()"
[ "$(q "$url_b" "SELECT count(*) FROM pg_tables WHERE tablename = 'mark_a'")" = 0 ] ||
	fail "server b sees server a's table"
# the unix socket in DIR, the same port
port_b=${url_b##*:}
port_b=${port_b%%/*}
[ -S "$base/b/.s.PGSQL.$port_b" ] || fail "no socket $base/b/.s.PGSQL.$port_b"
[ "$(q "host=$base/b port=$port_b user=errq dbname=postgres" "SELECT 1")" = 1 ] ||
	fail "server b does not answer on its socket"

# a start over a's running server: the old one ends, a fresh cluster answers
pid_a=$(head -n 1 "$base/a/data/postmaster.pid")
kill -0 "$pid_a" || fail "server a's pid $pid_a is not running"
url_a2=$(sh "$srv" start "$base/a")
gone "$pid_a" || fail "the replaced server $pid_a still runs"
[ "$(q "$url_a2" "SELECT count(*) FROM pg_tables WHERE tablename = 'mark_a'")" = 0 ] ||
	fail "the replacement is not a fresh cluster"

# stop a: its server and data go, b's stays
pid_a=$(head -n 1 "$base/a/data/postmaster.pid")
sh "$srv" stop "$base/a"
gone "$pid_a" || fail "server a ($pid_a) still runs after stop"
[ ! -e "$base/a/data" ] && [ ! -e "$base/a/url" ] || fail "stop left $base/a/data or url"
[ "$(q "$url_b" "SELECT 1")" = 1 ] || fail "stopping a stopped b"
sh "$srv" stop "$base/a" || fail "a second stop failed"
sh "$srv" stop "$base/b"
! psql "$url_b" -X -A -t -q -c "SELECT 1" >/dev/null 2>&1 || fail "server b answers after stop"

# as root, a DIR the server's user cannot reach (under a directory only root may enter): the
# server lives under /tmp instead, named in DIR/home; stop removes it
if [ "$(id -u)" = 0 ]; then
	mkdir -m 700 "$base/closed"
	url_c=$(sh "$srv" start "$base/closed/c")
	home=$(cat "$base/closed/c/home")
	case "$home" in /tmp/errq-pg.*) ;; *) fail "DIR/home is '$home'" ;; esac
	[ "$(cat "$base/closed/c/url")" = "$url_c" ] || fail "no URL in the closed DIR"
	[ "$(q "$url_c" "SELECT 1")" = 1 ] || fail "the server of the closed DIR does not answer"
	port_c=${url_c##*:}
	port_c=${port_c%%/*}
	[ -S "$home/.s.PGSQL.$port_c" ] || fail "no socket in $home"
	pid_c=$(head -n 1 "$home/data/postmaster.pid")
	sh "$srv" stop "$base/closed/c"
	gone "$pid_c" || fail "the closed DIR's server ($pid_c) still runs after stop"
	[ ! -e "$home" ] && [ ! -e "$base/closed/c/home" ] || fail "stop left $home or DIR/home"
	# a DIR/home that this script did not write is refused, not removed
	echo / >"$base/closed/c/home"
	if sh "$srv" stop "$base/closed/c" 2>"$base/err"; then fail "a foreign DIR/home was accepted"; fi
	grep -q "not a directory this script made" "$base/err" || fail "no reason given: $(cat "$base/err")"
	rm "$base/closed/c/home"
fi

# as root, where the server's user cannot run it (a chroot whose / is mode 0700, as
# ../shared/tools/fresh-root makes): the server runs in a user namespace mapping root to that
# user (PG_SERVER_USERNS=1 takes that path here); initdb accepts it, it answers, stop ends it
# (where no user namespace can be made, as in a chroot, the path cannot be taken: said, skipped)
if [ "$(id -u)" = 0 ] && ! unshare --user --map-user=1 --map-group=1 true 2>/dev/null; then
	echo "no user namespace can be made here (a chroot?): the namespace path is not tested"
elif [ "$(id -u)" = 0 ]; then
	url_n=$(PG_SERVER_USERNS=1 sh "$srv" start "$base/ns")
	[ "$(q "$url_n" "SELECT current_user")" = errq ] || fail "the namespaced server does not answer on $url_n"
	pid_n=$(head -n 1 "$base/ns/data/postmaster.pid")
	grep -q "^Uid:.*\b0\b" "/proc/$pid_n/status" || fail "the namespaced server is not root's outside the namespace"
	PG_SERVER_USERNS=1 sh "$srv" stop "$base/ns"
	gone "$pid_n" || fail "the namespaced server ($pid_n) still runs after stop"
	[ ! -e "$base/ns/data" ] || fail "stop left $base/ns/data"
fi

# bad usage
if sh "$srv" frob "$base/a" 2>"$base/err"; then fail "an unknown command was accepted"; fi
grep -q "unknown command 'frob'" "$base/err" || fail "no reason given: $(cat "$base/err")"
if sh "$srv" start 2>"$base/err"; then fail "start without DIR was accepted"; fi
grep -q "usage" "$base/err" || fail "no usage given: $(cat "$base/err")"
rm -rf "$base"
echo "PASS"
