#!/usr/bin/env bash
# Server CPU per QIDO request and per STOWed instance with the audit trail written and not written
# (bench/audit-cpu.mjs: main thread and whole process, A B B A). Both servers: this tree's build, real, encrypted,
# mutual TLS, the same data imported first (`dicomvault import`), the not-written one started by
# bench/serve-unaudited.mjs.
#
#   bench/audit-cpu.sh DATA_DIR RESULTS_DIR [audit-cpu.mjs options, e.g. --requests 2000 --rounds 5]
set -euo pipefail
data=${1:?usage: bench/audit-cpu.sh DATA_DIR RESULTS_DIR [audit-cpu.mjs options]}
results=${2:?usage: bench/audit-cpu.sh DATA_DIR RESULTS_DIR [audit-cpu.mjs options]}
shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/dicomvault.sh
source "$repo/bench/lib/dicomvault.sh"
data=$(cd "$data" && pwd)
mkdir -p "$results"; results=$(cd "$results" && pwd)
log=$results/audit-cpu.log; : > "$log"
tmp=$(mktemp -d -t dv-audit-cpu-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

(cd "$repo" && npm run build) >> "$log" 2>&1
certs=$tmp/certs
(cd "$repo" && node dist/cli/dicomvault.js certs init --dir "$certs") >> "$log" 2>&1
for side in audited unwritten; do
  # import needs an archive: one start creates it (keys, index, audit log)
  dv_start "$repo" "$tmp/$side" "$certs" "$tmp/$side.out"
  kill "$dv_pid"; wait "$dv_pid" || true
  echo "importing $data into the $side server's folder" >&2
  DICOMVAULT_STORAGE_DATA_DIR="$tmp/$side/data" DICOMVAULT_KEYS_FILE="$tmp/$side/keys/kek.json" DICOMVAULT_TLS_DEV_DIR="$certs" \
    node "$repo/dist/cli/dicomvault.js" import "$data" >> "$log" 2>&1 || [ $? -eq 1 ] # 1: some file failed (manifest.json)
done
dv_start "$repo" "$tmp/audited" "$certs" "$tmp/audited.out"
a_pid=$dv_pid a_url=$dv_url; pids+=("$dv_pid")
dv_entry=$repo/bench/serve-unaudited.mjs dv_start "$repo" "$tmp/unwritten" "$certs" "$tmp/unwritten.out"
b_pid=$dv_pid b_url=$dv_url; pids+=("$dv_pid")
node "$repo/bench/audit-cpu.mjs" --a "$a_url" --a-pid "$a_pid" --b "$b_url" --b-pid "$b_pid" \
  --cert "$certs/client.crt" --key "$certs/client.key" --ca "$certs/ca.crt" --data "$data" --json "$results/audit-cpu.json" "$@" \
  | tee "$results/audit-cpu.txt"
