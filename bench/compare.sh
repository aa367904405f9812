#!/usr/bin/env bash
# dicomvault against the reference Orthanc, side by side (A B A B), with the shared harness (run.mjs).
#
#   bench/compare.sh DATA_DIR RESULTS_DIR [run.mjs options]
#   e.g. bench/compare.sh /tmp/bench-data/ct2k /tmp/bench-results/ct2k \
#            --scenarios stow,qido-studies,qido-instances --rounds 3 --max-other 25
#
# DATA_DIR is made by the harness's gen.mjs. Writes RESULTS_DIR/compare.txt (table), compare.json
# (every measurement) and compare.log (progress, server logs). Both servers start empty, on free loopback
# ports, with fresh temp data dirs, and are stopped (temp dirs removed) on exit.
# Environment: DICOMVAULT_BENCH  harness dir (default ../shared/bench, relative to the repository)
#              DICOMVAULT_CERTS  PKI dir with ca/client certs (default certs/dev if present, else a temp one)
# Exit status: run.mjs's (1 if any answer was wrong or any request failed).
set -euo pipefail
data=${1:?usage: bench/compare.sh DATA_DIR RESULTS_DIR [run.mjs options]}
results=${2:?usage: bench/compare.sh DATA_DIR RESULTS_DIR [run.mjs options]}
shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/dicomvault.sh
source "$repo/bench/lib/dicomvault.sh"
bench=$(cd "$repo" && cd "${DICOMVAULT_BENCH:-../shared/bench}" && pwd)
data=$(cd "$data" && pwd)
mkdir -p "$results"; results=$(cd "$results" && pwd)
log=$results/compare.log; : > "$log"
tmp=$(mktemp -d -t dv-compare-XXXXXX)
dv_pid=
cleanup() {
  if [ -n "$dv_pid" ]; then kill "$dv_pid" 2>/dev/null || true; wait "$dv_pid" 2>/dev/null || true; fi
  "$bench/orthanc.sh" stop "$tmp/orthanc" >> "$log" 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# (a) the harness
bench=$(dv_harness "$bench" "$tmp" "$log")

# (b) dicomvault: build, fresh data dir, dev PKI, free port; wait until it listens
(cd "$repo" && npm run build) >> "$log" 2>&1
certs=${DICOMVAULT_CERTS:-$repo/certs/dev}
if [ ! -f "$certs/client.crt" ]; then
  certs=$tmp/certs; (cd "$repo" && node dist/cli/dicomvault.js certs init --dir "$certs") >> "$log" 2>&1
fi
dv_start "$repo" "$tmp/dv" "$certs" "$tmp/dv.out"

# (c) a fresh Orthanc (installed with apt if missing)
dv_orthanc_start "$bench" "$tmp/orthanc"
echo "dicomvault $dv_url PID $dv_pid ($(git -C "$repo" describe --always --dirty)); Orthanc $ORTHANC_URL PID $ORTHANC_PID" | tee -a "$log" >&2

# (e) the measurement
status=0
node "$bench/run.mjs" "$dv_url" --cert "$certs/client.crt" --key "$certs/client.key" --ca "$certs/ca.crt" \
  --name dicomvault --pid "$dv_pid" --vs "$ORTHANC_URL/dicom-web" --vs-name orthanc --vs-pid "$ORTHANC_PID" \
  --data "$data" --json "$results/compare.json" "$@" > "$results/compare.txt" 2> >(tee -a "$log" >&2) || status=$?
cat "$results/compare.txt"
{ echo "--- dicomvault output"; cat "$tmp/dv.out"; } >> "$log"
echo "results: $results/compare.{txt,json,log}" >&2
exit "$status"
