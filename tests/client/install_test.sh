#!/bin/sh
# install_test.sh BUILD_DIR SOURCE_DIR ERRQD [SANITIZER_FLAGS]
#
# The installed-package test: installs the liberrq component of BUILD_DIR into a temporary
# prefix (cmake --install), then builds examples/report_failure.c against that prefix only,
# four ways: pkg-config (shared), pkg-config --static, find_package(errq) -> errq::errq and
# find_package(errq COMPONENTS static) -> errq::errq_static; and runs each build against a
# real errqd (ERRQD, on an ephemeral port), where it must store its three events.
# SANITIZER_FLAGS (e.g. "-fsanitize=address,undefined") are added to every compile and link,
# for builds whose library is instrumented.  Exits 0 on success.
set -eu

build=$1
src=$2
errqd=$3
san=${4:-}

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

prefix=$tmp/prefix
cmake --install "$build" --component liberrq --prefix "$prefix" >"$tmp/install.log" ||
	fail "cmake --install failed: $(cat "$tmp/install.log")"

# what was installed, and only that
pc=$(find "$prefix" -name errq.pc)
[ -n "$pc" ] || fail "no errq.pc under $prefix"
libdir=$(dirname "$(dirname "$pc")")
[ -f "$prefix/include/errq.h" ] || fail "no errq.h installed"
[ -f "$libdir/liberrq.a" ] || fail "no liberrq.a installed"
ls "$libdir"/liberrq.so.0* >/dev/null 2>&1 || fail "no liberrq.so.0 installed"
[ -f "$libdir/cmake/errq/errqConfig.cmake" ] || fail "no CMake package installed"
if [ -n "$(find "$prefix" -name '*.h' ! -name errq.h)" ]; then
	fail "headers other than errq.h installed: $(find "$prefix" -name '*.h' ! -name errq.h)"
fi

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

# run all four against a real collector
"$errqd" --listen 127.0.0.1:0 --db "$tmp/errq.db" --port-file "$tmp/port" --http-listen 127.0.0.1:0 2>"$tmp/errqd.log" &
errqd_pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
	i=$((i + 1))
	[ $i -lt 3000 ] || fail "errqd did not start: $(cat "$tmp/errqd.log")"
	kill -0 "$errqd_pid" 2>/dev/null || fail "errqd exited: $(cat "$tmp/errqd.log")"
	sleep 0.01
done
addr=127.0.0.1:$(cat "$tmp/port")
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0
for bin in "$tmp/rf-pc" "$tmp/rf-pc-static" "$tmp/consumer/build/rf_shared" \
	"$tmp/consumer/build/rf_static"; do
	ERRQ_ADDR=$addr "$bin" install-test >"$tmp/run.log" 2>&1 ||
		fail "$(basename "$bin") failed: $(cat "$tmp/run.log")"
	grep -q "3 reported, 3 acknowledged" "$tmp/run.log" ||
		fail "$(basename "$bin"): unexpected output: $(cat "$tmp/run.log")"
done
echo "install_test: pkg-config (shared, static) and find_package(errq) (errq::errq, errq::errq_static) builds work"
