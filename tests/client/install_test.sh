#!/bin/sh
# install_test.sh BUILD_DIR SOURCE_DIR [SANITIZER_FLAGS]
#
# The installed-package test.  First the liberrq component alone (cmake --install --component
# liberrq) must install the library files and nothing else.  Then `make install` as a packager
# runs it (DESTDIR=TMP/dest, prefix /usr/local: every file errqd, errq, liberrq, the unit and
# the sample config need), and examples/report_failure.c is built against that tree only, four
# ways: pkg-config (shared), pkg-config --static, find_package(errq) -> errq::errq and
# find_package(errq COMPONENTS static) -> errq::errq_static, plus once with the build tree's
# own errq.pc; each build runs against the installed errqd (ephemeral port, its installed
# sample config), where it must store its three events.
# SANITIZER_FLAGS (e.g. "-fsanitize=address,undefined") are added to every compile and link,
# for builds whose library is instrumented.  Exits 0 on success.
set -eu

build=$1
src=$2
san=${3:-}

tmp=$(mktemp -d /tmp/errq-install-XXXXXX)
errqd_pid=
cleanup() {
	if [ -n "$errqd_pid" ]; then
		kill "$errqd_pid" 2>/dev/null || true
		wait "$errqd_pid" 2>/dev/null || true
	fi
	if [ -z "${ERRQ_KEEP_TMP:-}" ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT
fail() {
	echo "install_test: $*" >&2
	exit 1
}

# the liberrq component: the library files, and only those
comp=$tmp/component
cmake --install "$build" --component liberrq --prefix "$comp" >"$tmp/install.log" ||
	fail "cmake --install --component liberrq failed: $(cat "$tmp/install.log")"
[ -n "$(find "$comp" -name errq.pc)" ] || fail "no errq.pc in the liberrq component"
if [ -e "$comp/bin" ] || [ -e "$comp/etc" ] || [ -e "$comp/lib/systemd" ]; then
	fail "the liberrq component installs more than the library: $(find "$comp" -type f)"
fi

# everything, as `make install DESTDIR=... PREFIX=/usr/local` does it
prefix=$tmp/dest/usr/local
DESTDIR=$tmp/dest cmake --install "$build" --prefix /usr/local >"$tmp/install.log" ||
	fail "cmake --install failed: $(cat "$tmp/install.log")"
pc=$(find "$prefix" -name errq.pc)
[ -n "$pc" ] || fail "no errq.pc under $prefix"
libdir=$(dirname "$(dirname "$pc")")
[ -f "$prefix/include/errq.h" ] || fail "no errq.h installed"
[ -f "$libdir/liberrq.a" ] || fail "no liberrq.a installed"
[ -f "$libdir/cmake/errq/errqConfig.cmake" ] || fail "no CMake package installed"
if [ -n "$(find "$prefix" -name '*.h' ! -name errq.h)" ]; then
	fail "headers other than errq.h installed: $(find "$prefix" -name '*.h' ! -name errq.h)"
fi
# liberrq.so -> liberrq.so.0 -> liberrq.so.X.Y.Z, the one file
[ "$(readlink "$libdir/liberrq.so")" = liberrq.so.0 ] || fail "liberrq.so is not a link to liberrq.so.0"
real=$(readlink "$libdir/liberrq.so.0")
case "$real" in
liberrq.so.0.*.*)
	if [ ! -f "$libdir/$real" ] || [ -L "$libdir/$real" ]; then fail "$real is not a file"; fi
	;;
*) fail "liberrq.so.0 points at '$real'" ;;
esac
[ "$(objdump -p "$libdir/$real" | awk '$1 == "SONAME" {print $2}')" = liberrq.so.0 ] ||
	fail "the SONAME of $real is not liberrq.so.0"
for f in bin/errqd bin/errq; do
	[ -x "$prefix/$f" ] || fail "no $f installed"
done
for f in share/errq/errqd.yaml etc/errq/errqd.yaml lib/systemd/system/errqd.service \
	share/man/man1/errq.1; do
	[ -f "$prefix/$f" ] || fail "no $f installed"
done
# the unit names the prefix, not DESTDIR
grep -qx 'ExecStart=/usr/local/bin/errqd --config /usr/local/etc/errq/errqd.yaml' \
	"$prefix/lib/systemd/system/errqd.service" ||
	fail "unexpected ExecStart: $(grep ExecStart= "$prefix/lib/systemd/system/errqd.service")"
# a reinstall keeps the operator's config
echo "log_level: debug" >"$prefix/etc/errq/errqd.yaml"
DESTDIR=$tmp/dest cmake --install "$build" --prefix /usr/local >"$tmp/install.log" ||
	fail "second cmake --install failed: $(cat "$tmp/install.log")"
[ "$(cat "$prefix/etc/errq/errqd.yaml")" = "log_level: debug" ] || fail "a reinstall overwrote etc/errq/errqd.yaml"
cp "$prefix/share/errq/errqd.yaml" "$prefix/etc/errq/errqd.yaml"
errqd=$prefix/bin/errqd

cc=${CC:-cc}
example=$src/examples/report_failure.c
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2086
$cc $san -o "$tmp/rf-pc" "$example" $(pkg-config --cflags --libs errq) -Wl,-rpath,"$libdir" ||
	fail "pkg-config (shared) build failed"
libs_static=$(pkg-config --static --libs errq | sed 's/-lerrq//')
# shellcheck disable=SC2086
$cc $san -o "$tmp/rf-pc-static" "$example" $(pkg-config --cflags errq) \
	-Wl,-Bstatic -L"$libdir" -lerrq -Wl,-Bdynamic $libs_static ||
	fail "pkg-config --static build failed"
if ldd "$tmp/rf-pc-static" | grep -q liberrq; then
	fail "the static build links liberrq.so"
fi
# the build tree's errq.pc names the build tree's library and the source tree's header
# shellcheck disable=SC2086
$cc $san -o "$tmp/rf-pc-buildtree" "$example" \
	$(PKG_CONFIG_PATH="$build/lib/pkgconfig" pkg-config --cflags --libs errq) \
	-Wl,-rpath,"$build/lib" || fail "build against the build tree's errq.pc failed"

mkdir "$tmp/consumer"
cp "$example" "$tmp/consumer/"
cat >"$tmp/consumer/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.18)
project(errq_consumer C)
find_package(errq 0.1 REQUIRED COMPONENTS static)
add_executable(rf_shared report_failure.c)
target_link_libraries(rf_shared PRIVATE errq::errq)
add_executable(rf_static report_failure.c)
target_link_libraries(rf_static PRIVATE errq::errq_static)
EOF
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" >"$tmp/cmake.log" 2>&1 ||
	fail "find_package(errq) configure failed: $(cat "$tmp/cmake.log")"
cmake --build "$tmp/consumer/build" >"$tmp/build.log" 2>&1 ||
	fail "find_package(errq) build failed: $(cat "$tmp/build.log")"

# run all against the installed collector, without a developer's ERRQ_* settings
for v in $(env | sed -n 's/^\(ERRQ_[A-Z0-9_]*\)=.*/\1/p'); do
	[ "$v" = ERRQ_KEEP_TMP ] || unset "$v"
done
"$errqd" --config "$prefix/etc/errq/errqd.yaml" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
	--db "$tmp/errq.db" --port-file "$tmp/port" 2>"$tmp/errqd.log" &
errqd_pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
	i=$((i + 1))
	[ $i -lt 3000 ] || fail "errqd did not start: $(cat "$tmp/errqd.log")"
	kill -0 "$errqd_pid" 2>/dev/null || fail "errqd exited: $(cat "$tmp/errqd.log")"
	sleep 0.01
done
addr=127.0.0.1:$(sed -n 1p "$tmp/port") # line 1: gRPC (line 2, with HTTP on: its port)
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0
for bin in "$tmp/rf-pc" "$tmp/rf-pc-static" "$tmp/consumer/build/rf_shared" \
	"$tmp/consumer/build/rf_static" "$tmp/rf-pc-buildtree"; do
	ERRQ_ADDR=$addr "$bin" install-test >"$tmp/run.log" 2>&1 ||
		fail "$(basename "$bin") failed: $(cat "$tmp/run.log")"
	grep -q "3 reported, 3 acknowledged" "$tmp/run.log" ||
		fail "$(basename "$bin"): unexpected output: $(cat "$tmp/run.log")"
done
echo "install_test: make install layout, pkg-config (shared, static, build tree) and find_package(errq) (errq::errq, errq::errq_static) builds work"
