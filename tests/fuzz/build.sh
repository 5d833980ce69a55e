#!/bin/sh
# build.sh SRC DIR: configures (once) and builds the libFuzzer targets of tests/fuzz with
# clang into DIR, apart from the gcc build: every library they link is compiled with
# -fsanitize=fuzzer-no-link,address,undefined at -O1 and with assertions on.
# Usage: tests/fuzz/build.sh SRC DIR   (JOBS=N: parallel compile jobs, default 2)
set -eu
[ $# -eq 2 ] || { echo "usage: build.sh SRC DIR" >&2; exit 1; }
src=$1 dir=$2
cc=$(command -v clang || command -v clang-14 || true)
if [ -z "$cc" ]; then
	echo "build.sh: clang not found: run scripts/install-deps (it installs clang and libclang-rt-dev)" >&2
	exit 1
fi
if [ ! -f "$dir/CMakeCache.txt" ]; then
	cmake -S "$src" -B "$dir" -DCMAKE_C_COMPILER="$cc" -DERRQ_FUZZ=ON \
	      -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" >/dev/null
fi
cmake --build "$dir" --target errq_fuzzers -j"${JOBS:-2}"
