#!/usr/bin/env bash
# What a policy costs QIDO (issue 5): one dicomvault, one data set, the shared harness's QIDO scenarios asked by
# two principals side by side (A B A B):
#   admin      the development admin certificate: its search condition folds to "true", so the SQL is what it
#              was before policies (the baseline: "policy off");
#   radiology  a registered certificate whose policy is compiled into every query
#              (principal.sites.contains(resource.institution), the sites being every institution gen.mjs uses,
#              so both principals get the same answers and the harness checks both against the manifest).
#
#   bench/policy-qido.sh DATA_DIR RESULTS_DIR [run.mjs options]
#   e.g. bench/policy-qido.sh /tmp/bench-data/s20k /tmp/bench-results/policy --rounds 3 --max-other 25
#
# Writes RESULTS_DIR/policy-qido.txt (table: ratio = radiology / admin time), .json and .log.
# Environment: DICOMVAULT_BENCH  harness dir (default ../shared/bench, relative to the repository)
set -euo pipefail
data=${1:?usage: bench/policy-qido.sh DATA_DIR RESULTS_DIR [run.mjs options]}
results=${2:?usage: bench/policy-qido.sh DATA_DIR RESULTS_DIR [run.mjs options]}
shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/dicomvault.sh
source "$repo/bench/lib/dicomvault.sh"
bench=$(cd "$repo" && cd "${DICOMVAULT_BENCH:-../shared/bench}" && pwd)
data=$(cd "$data" && pwd)
mkdir -p "$results"; results=$(cd "$results" && pwd)
log=$results/policy-qido.log; : > "$log"
tmp=$(mktemp -d -t dv-policy-XXXXXX)
dv_pid=
cleanup() {
  if [ -n "$dv_pid" ]; then kill "$dv_pid" 2>/dev/null || true; wait "$dv_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench=$(dv_harness "$bench" "$tmp" "$log")

# dicomvault: build, a fresh PKI with a second client certificate, the registry and the policy
(cd "$repo" && npm run build) >> "$log" 2>&1
certs=$tmp/certs
(cd "$repo" && node dist/cli/dicomvault.js certs init --dir "$certs" && \
  node dist/cli/dicomvault.js certs issue-client --name radiology --ca-dir "$certs" --out "$certs") >> "$log" 2>&1
# every institution gen.mjs writes: its own list, plus the STOW throwaway study's
sites=$(node -e '
  const src = require("fs").readFileSync(process.argv[1], "utf8");
  const m = /const INSTITUTIONS = (\[[\s\S]*?\]);/.exec(src);
  const list = Function(`return ${m[1]}`)();
  console.log(JSON.stringify([...list, "BENCH"]));' "$bench/gen.mjs")
cat > "$tmp/policies.cedar" <<CEDAR
@id("admin-all")
permit (principal in Role::"admin", action, resource);

@id("radiology-sites")
permit (principal in Role::"radiology", action in [Action::"search", Action::"read"], resource)
when { principal.sites.contains(resource.institution) };
CEDAR
principals=$(node -e 'console.log(JSON.stringify([{ id: "radiology", match: { sanUri: "urn:dicomvault:principal:radiology" }, roles: ["radiology"], attributes: { sites: JSON.parse(process.argv[1]) } }]))' "$sites")
dv_start "$repo" "$tmp/dv" "$certs" "$tmp/dv.out" DICOMVAULT_POLICY_FILE="$tmp/policies.cedar" DICOMVAULT_PRINCIPALS="$principals"
echo "dicomvault $dv_url PID $dv_pid ($(git -C "$repo" describe --always --dirty))" | tee -a "$log" >&2

admin=(--cert "$certs/client.crt" --key "$certs/client.key" --ca "$certs/ca.crt")
radiology=(--vs-cert "$certs/radiology.crt" --vs-key "$certs/radiology.key" --vs-ca "$certs/ca.crt")
# load once, as the admin (radiology may not store); the measurement then runs without loading
node "$bench/run.mjs" "$dv_url" "${admin[@]}" --data "$data" --scenarios qido-studies --cases none \
  >> "$log" 2>&1 || true
status=0
node "$bench/run.mjs" "$dv_url" "${admin[@]}" --name admin --pid "$dv_pid" \
  --vs "$dv_url" "${radiology[@]}" --vs-name radiology --vs-pid "$dv_pid" --no-load \
  --scenarios qido-studies,qido-instances --data "$data" --json "$results/policy-qido.json" "$@" \
  > "$results/policy-qido.txt" 2> >(tee -a "$log" >&2) || status=$?
cat "$results/policy-qido.txt"
{ echo "--- dicomvault output"; cat "$tmp/dv.out"; } >> "$log"
echo "results: $results/policy-qido.{txt,json,log}" >&2
exit "$status"
