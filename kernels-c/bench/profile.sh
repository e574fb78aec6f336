#!/usr/bin/env bash
# Where a kernel's time goes: a sampled profile (perf, cpu-clock: works in VMs without hardware
# counters) of one gemm_bench or ops_bench case on one thread, top symbols by self time.
#   kernels-c/bench/profile.sh BUILD_DIR gemm CASE        e.g. gemm bf16:1024
#   kernels-c/bench/profile.sh BUILD_DIR ops FILTER       e.g. ops "silu_and_mul bf16"
# BUILD_DIR is a CMake build of kernels-c (Release); SIPU_NUM_THREADS defaults to 1 here.
set -euo pipefail
build=$1 kind=$2 what=$3 rows=${ROWS:-12}
data=$(mktemp /tmp/sipu-profile.XXXXXX)
trap 'rm -f "$data"' EXIT
export SIPU_NUM_THREADS=${SIPU_NUM_THREADS:-1}
case $kind in
  gemm) cmd=("$build/gemm_bench" 3 "$what") ;;
  ops) cmd=("$build/ops_bench" 3 "$what") ;;
  *) echo "profile.sh: kind is gemm or ops, not '$kind'" >&2; exit 2 ;;
esac
perf record -q -e cpu-clock -F 1999 -o "$data" -- "${cmd[@]}" >&2
perf report -i "$data" --stdio --no-children --sort symbol 2>/dev/null |
  grep -v '^#' | grep -v '^$' | head -n "$rows" | sed 's/ \+- \+- *$//'
