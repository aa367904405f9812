#!/usr/bin/env bash
# What the audit trail costs (issue 6: "audit writing costs under 5 % of QIDO and STOW throughput"), side by
# side (A B A B) with the shared harness, same data, same PKI, both servers real, encrypted, over mutual TLS:
#
# - default: this tree as `dicomvault serve` runs it, against the same build started by bench/serve-unaudited.mjs
#   (identical but for the Auditor, which builds and writes no record). The ratio is the cost of writing the
#   records: building, RFC 8785 form, SHA-256 chain, AES-GCM, the group-committed write and fdatasync.
# - DICOMVAULT_AUDIT_BASELINE=REF: against a git worktree of REF built with this checkout's node_modules (e.g.
#   0330fb7, the index of issue 6 before the audit trail and the lifecycle services were wired in). The ratio
#   is then everything issue 6 added to a request, including keep-until on STOW and the hooks.
#
#   bench/audit-cost.sh DATA_DIR RESULTS_DIR [run.mjs options]
#   e.g. bench/audit-cost.sh /tmp/bench-data/ct2k /tmp/bench-results/audit --rounds 3 --max-other 25
#
# Writes RESULTS_DIR/audit-cost.txt (ratio = audited / baseline time), .json and .log.
# Environment: DICOMVAULT_BENCH          harness dir (default ../shared/bench, relative to the repository)
#              DICOMVAULT_AUDIT_BASELINE  a git ref to compare with instead (see above)
set -euo pipefail
data=${1:?usage: bench/audit-cost.sh DATA_DIR RESULTS_DIR [run.mjs options]}
results=${2:?usage: bench/audit-cost.sh DATA_DIR RESULTS_DIR [run.mjs options]}
shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/dicomvault.sh
source "$repo/bench/lib/dicomvault.sh"
bench=$(cd "$repo" && cd "${DICOMVAULT_BENCH:-../shared/bench}" && pwd)
baseline_ref=${DICOMVAULT_AUDIT_BASELINE:-}
data=$(cd "$data" && pwd)
mkdir -p "$results"; results=$(cd "$results" && pwd)
log=$results/audit-cost.log; : > "$log"
tmp=$(mktemp -d -t dv-audit-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  git -C "$repo" worktree remove --force "$tmp/baseline" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench=$(dv_harness "$bench" "$tmp" "$log")

(cd "$repo" && npm run build) >> "$log" 2>&1
certs=$tmp/certs
(cd "$repo" && node dist/cli/dicomvault.js certs init --dir "$certs") >> "$log" 2>&1
dv_start "$repo" "$tmp/audited" "$certs" "$tmp/audited.out"
audited_pid=$dv_pid audited_url=$dv_url; pids+=("$dv_pid")
if [ -n "$baseline_ref" ]; then
  # the baseline worktree, with this checkout's dependencies
  git -C "$repo" worktree add --detach "$tmp/baseline" "$baseline_ref" >> "$log" 2>&1
  ln -s "$repo/node_modules" "$tmp/baseline/node_modules"
  (cd "$tmp/baseline" && npm run build) >> "$log" 2>&1
  dv_start "$tmp/baseline" "$tmp/before" "$certs" "$tmp/before.out"
  baseline_name=$baseline_ref
else
  dv_entry=$repo/bench/serve-unaudited.mjs dv_start "$repo" "$tmp/before" "$certs" "$tmp/before.out"
  baseline_name="records not written"
fi
before_pid=$dv_pid before_url=$dv_url; pids+=("$dv_pid")
echo "audited $audited_url PID $audited_pid ($(git -C "$repo" describe --always --dirty)); baseline $before_url PID $before_pid ($baseline_name)" | tee -a "$log" >&2

status=0
node "$bench/run.mjs" "$audited_url" --cert "$certs/client.crt" --key "$certs/client.key" --ca "$certs/ca.crt" \
  --name audited --pid "$audited_pid" --vs "$before_url" --vs-name baseline --vs-pid "$before_pid" \
  --scenarios qido-studies,qido-instances,stow --data "$data" --json "$results/audit-cost.json" "$@" \
  > "$results/audit-cost.txt" 2> >(tee -a "$log" >&2) || status=$?
cat "$results/audit-cost.txt"
records=$(find "$tmp/audited/data/audit" -name 'audit-*.jsonl' -exec cat {} + 2>/dev/null | wc -l)
echo "audit records written by the audited server: $records" | tee -a "$results/audit-cost.txt"
{ echo "--- audited output"; cat "$tmp/audited.out"; echo "--- baseline output"; cat "$tmp/before.out"; } >> "$log"
echo "results: $results/audit-cost.{txt,json,log}" >&2
exit "$status"
