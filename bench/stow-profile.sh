#!/usr/bin/env bash
# Where a STOW-RS instance's server time goes: this tree's build, started empty with a V8 CPU profile and a GC
# trace, loaded by the shared harness's STOW scenario only (fresh instances, no data set), then stopped
# (SIGTERM: the profile is written at exit) and summarised by bench/cpu-profile-summary.mjs.
#
#   bench/stow-profile.sh RESULTS_DIR [run.mjs options]
#   e.g. bench/stow-profile.sh /tmp/bench-results/prof --stow-batch 1 --stow-concurrency 8 --stow-count 1000
#   (at most 1000 per measurement: the harness checks them with one QIDO, whose page the server caps at 1000)
#
# Writes RESULTS_DIR/*.cpuprofile (main thread and parse workers; open them in Chrome DevTools), gc.log (the
# --trace-gc lines), run.txt (the harness table: srv ms/op is the server CPU per instance), summary.txt (self
# time by function and by area, per instance; GC counts). The profiler itself costs some CPU: compare srv ms/op
# between builds with compare.sh, and use this for the shares.
# Environment: DICOMVAULT_BENCH  harness dir (default ../shared/bench, relative to the repository)
set -euo pipefail
results=${1:?usage: bench/stow-profile.sh RESULTS_DIR [run.mjs options]}
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/dicomvault.sh
source "$repo/bench/lib/dicomvault.sh"
bench=$(cd "$repo" && cd "${DICOMVAULT_BENCH:-../shared/bench}" && pwd)
mkdir -p "$results"; results=$(cd "$results" && pwd)
rm -f "$results"/*.cpuprofile
log=$results/profile.log; : > "$log"
tmp=$(mktemp -d -t dv-profile-XXXXXX)
dv_pid=
cleanup() {
  if [ -n "$dv_pid" ]; then kill "$dv_pid" 2>/dev/null || true; wait "$dv_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

status=0
bench=$(dv_harness "$bench" "$tmp" "$log")
(cd "$repo" && npm run build) >> "$log" 2>&1
certs=$tmp/certs
(cd "$repo" && node dist/cli/dicomvault.js certs init --dir "$certs") >> "$log" 2>&1
dv_node_args="--cpu-prof --cpu-prof-dir=$results --trace-gc" dv_start "$repo" "$tmp/dv" "$certs" "$tmp/dv.out"
node "$bench/run.mjs" "$dv_url" --cert "$certs/client.crt" --key "$certs/client.key" --ca "$certs/ca.crt" \
  --name dicomvault --pid "$dv_pid" --scenarios stow --rounds 1 "$@" > "$results/run.txt" 2> >(tee -a "$log" >&2) || status=$?
kill -TERM "$dv_pid"; wait "$dv_pid" || true; dv_pid=
# instances stored = blob files (every measured STOW stores fresh instances)
instances=$(find "$tmp/dv/data/blobs/objects" -type f | wc -l)
grep -E '^\[[0-9]+:0x[0-9a-f]+\] +[0-9]+ ms: ' "$tmp/dv.out" > "$results/gc.log" || true
cat "$results/run.txt"
node "$repo/bench/cpu-profile-summary.mjs" --instances "$instances" --gc "$results/gc.log" "$results"/*.cpuprofile | tee "$results/summary.txt"
exit "$status"
