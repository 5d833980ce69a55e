#!/bin/sh
# run.sh DIR TARGET [LIBFUZZER FLAGS...]: fuzzes one target built by build.sh into DIR, e.g.
#   tests/fuzz/run.sh build/fuzz-clang report -max_total_time=30
#   tests/fuzz/run.sh build/fuzz-clang report -runs=1000000
# Inputs: the committed seeds (tests/fuzz/corpus/TARGET) and regressions
# (tests/fuzz/regressions/TARGET), read only; what libFuzzer finds goes to DIR/corpus/TARGET,
# kept between runs.  At the end it prints one line: executions, time, libFuzzer's cov: and
# ft: figures and the corpus size (also in DIR/results/TARGET.txt).  A crash (or a leak, a
# timeout, a broken FUZZ_CHECK) fails it, its input saved under DIR/artifacts/TARGET/: copy
# that file to tests/fuzz/regressions/TARGET/ (the replay test runs it from then on) and fix.
set -eu
[ $# -ge 2 ] || { echo "usage: run.sh DIR TARGET [LIBFUZZER FLAGS...]" >&2; exit 1; }
dir=$1 t=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
bin="$dir/bin/fuzz_$t"
[ -x "$bin" ] || { echo "run.sh: '$bin' not built: run tests/fuzz/build.sh first" >&2; exit 1; }
mkdir -p "$dir/corpus/$t" "$dir/artifacts/$t" "$dir/results" "$dir/logs"
log="$dir/logs/$t.$$.log" # renamed to TARGET.log at the end: two runs of one target may overlap
start=$(date +%s)
rc=0
# -timeout: an input that takes 25 s is a hang; -rss_limit_mb: errqd's own bound on a batch
# is 32 MiB decoded, so 2 GiB is a leak or a runaway allocation
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
"$bin" -print_final_stats=1 -timeout=25 -rss_limit_mb=2048 \
	-artifact_prefix="$dir/artifacts/$t/" "$@" \
	"$dir/corpus/$t" "$here/corpus/$t" "$here/regressions/$t" >"$log" 2>&1 || rc=$?
secs=$(( $(date +%s) - start ))
# the last status line ("#N DONE cov: X ft: Y corp: Z/..."), and the executions
st=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
cov=$(printf '%s\n' "$st" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
ft=$(printf '%s\n' "$st" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
corp=$(printf '%s\n' "$st" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
line="fuzz $t: ${execs:-?} executions in ${secs} s, cov: ${cov:-?} ft: ${ft:-?} corpus: ${corp:-?}"
if [ "$rc" -ne 0 ]; then
	line="$line: FAILED (exit $rc)"
	tail -n 60 "$log" >&2
	echo "run.sh: the log is $dir/logs/$t.log" >&2
	echo "run.sh: the input is in $dir/artifacts/$t/: copy it to $here/regressions/$t/ and fix the bug" >&2
fi
echo "$line" | tee "$dir/results/$t.txt"
mv "$log" "$dir/logs/$t.log"
exit "$rc"
