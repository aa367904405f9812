#!/usr/bin/env bash
# Rendered-image and thumbnail latency, dicomvault against Orthanc from scratch (issue 9): builds, starts both
# empty on free loopback ports (ours over mutual TLS, as bench/compare.sh does; Orthanc installed if missing), runs
# bench/render.mjs on files of ../shared/testdata, stops both.
#
#   bench/render.sh RESULTS_DIR [render.mjs options, e.g. --requests 20 --rounds 3]
set -euo pipefail
results=${1:?usage: bench/render.sh RESULTS_DIR [render.mjs options]}
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/dicomvault.sh
source "$repo/bench/lib/dicomvault.sh"
bench=$(cd "$repo" && cd "${DICOMVAULT_BENCH:-../shared/bench}" && pwd)
mkdir -p "$results"; results=$(cd "$results" && pwd)
log=$results/render.log; : > "$log"
tmp=$(mktemp -d -t dv-render-XXXXXX)
dv_pid=
cleanup() {
  if [ -n "$dv_pid" ]; then kill "$dv_pid" 2>/dev/null || true; wait "$dv_pid" 2>/dev/null || true; fi
  "$bench/orthanc.sh" stop "$tmp/orthanc" >> "$log" 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

(cd "$repo" && npm run build) >> "$log" 2>&1
certs=$tmp/certs
(cd "$repo" && node dist/cli/dicomvault.js certs init --dir "$certs") >> "$log" 2>&1
dv_start "$repo" "$tmp/dv" "$certs" "$tmp/dv.out"
dv_orthanc_start "$bench" "$tmp/orthanc"
echo "dicomvault $dv_url PID $dv_pid ($(git -C "$repo" describe --always --dirty)); Orthanc $ORTHANC_URL PID $ORTHANC_PID" | tee -a "$log" >&2
status=0
node "$repo/bench/render.mjs" --url "$dv_url" --cert "$certs/client.crt" --key "$certs/client.key" --ca "$certs/ca.crt" \
  --orthanc "$ORTHANC_URL" --testdata "$(cd "$repo/.." && pwd)/shared/testdata" --json "$results/render.json" "$@" \
  > "$results/render.txt" 2> >(tee -a "$log" >&2) || status=$?
cat "$results/render.txt"
{ echo "--- dicomvault output"; cat "$tmp/dv.out"; } >> "$log"
exit "$status"
