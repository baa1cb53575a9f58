#!/usr/bin/env bash
# Profiles one phase of the benchmark with perf, attached only while that
# phase runs (the bench prints a line when it starts and when it ends).
#
#   crates/tongban-bench/profile.sh drain     # the 10,000-case drain
#   crates/tongban-bench/profile.sh stream    # the 256 MiB handoff (and the upload before it)
#   perf report -i target/perf-PHASE.data --children --sort sym -g none | head -80
#   perf report -i target/perf-PHASE.data --sort pid,sym -g none | head -80   # A, B, bench apart
#
# Needs `perf` (Debian: linux-perf) and a release build (`cargo build --release`).
set -euo pipefail
phase=${1:?usage: profile.sh drain|stream [extra bench args]}
shift
case "$phase" in
  drain) start='intake while B is down'; end='drain rate' ;;
  stream) start='bare upload'; end='handoff A → B' ;;
  *) echo "unknown phase $phase (drain, stream)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/../.."
out=target/perf-$phase.data
log=$(mktemp)
only=$phase
[ "$phase" = stream ] && only=echo,stream
target/release/tongban-bench --only "$only" --no-write "$@" >"$log" 2>&1 &
bench=$!
until grep -q "$start" "$log"; do
  kill -0 "$bench" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.05
done
# Nodes A and B are `tongban node` processes of the bench: perf follows
# them and the bench (its clients). The drain's B starts right after the
# start line; wait for it (at most 2 s; none when the nodes run in-process).
want=2
pids=
for _ in $(seq 40); do
  pids=$(pgrep -d, -x tongban -P "$bench" || true)
  [ "$(echo "$pids" | tr ',' '\n' | grep -c .)" -ge "$want" ] && break
  sleep 0.05
done
perf record -F ${PERF_FREQ:-299} --call-graph dwarf,32768 -p "$bench${pids:+,$pids}" -o "$out" 2>/dev/null &
perf_pid=$!
until grep -q "$end" "$log"; do
  kill -0 "$bench" 2>/dev/null || break
  sleep 0.05
done
kill -INT "$perf_pid"
wait "$perf_pid" || true
wait "$bench" || true
grep '^\[' "$log"
rm -f "$log"
echo "profile: $out"
