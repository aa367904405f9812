#!/usr/bin/env bash
# Runs the conformance suite against Orthanc + DICOMweb from Debian (behind conformance/mtls-front.ts, since
# Orthanc's own HTTPS crashes on Debian 12) and, for the side-by-side table, against this server; then prints
# the comparison table that conformance/COMPARISON.md records.
#
#   conformance/run-orthanc.sh [WORKDIR]     (default: a new temporary directory, removed at the end)
#
# Installs Orthanc if missing (scripts/orthanc-deps.sh, apt). Starts only private processes (a private Orthanc
# on a free loopback port via ../shared/bench/orthanc.sh, the front, this server) and stops each by its PID.
# Results: WORKDIR/orthanc.json, WORKDIR/dicomvault.json, WORKDIR/comparison.md. Exit status: the Orthanc
# run's (0 when Orthanc fails exactly the checks conformance/suite/expectations.json says it fails).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
bench=${ORTHANC_SH:-$repo/../shared/bench/orthanc.sh}
keep=${1:+yes}
work=${1:-$(mktemp -d /tmp/dicomvault-conformance.XXXXXX)}
mkdir -p "$work"; work=$(cd "$work" && pwd)

bash scripts/orthanc-deps.sh >/dev/null

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  bash "$bench" stop "$work/orthanc" >/dev/null 2>&1 || true
  [ -n "$keep" ] || rm -rf "$work"
}
trap cleanup EXIT

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
# Waits for "listening on https://..." in a log file and prints the URL.
listening_url() {
  for _ in $(seq 1 300); do
    url=$(grep -oE 'listening on https://[^ ]+' "$1" 2>/dev/null | head -1 | sed 's/^listening on //') || true
    [ -n "$url" ] && { echo "$url"; return 0; }
    sleep 0.1
  done
  echo "no 'listening on' line in $1:" >&2; cat "$1" >&2; return 1
}

# The dev PKI: the front's server certificate and the suite's client certificate (and this server's).
node --import tsx src/cli/dicomvault.ts certs init --dir "$work/pki" >/dev/null
pki=$work/pki
tls=(--ca "$pki/ca.crt" --cert "$pki/client.crt" --key "$pki/client.key")

# Orthanc (RemoteAccessAllowed false, DefaultEncoding Utf8, no gdcm: see the bench script) and its front.
rm -rf "$work/orthanc"
bash "$bench" start "$work/orthanc" --http-port "$(free_port)" > "$work/orthanc-start.log"
orthanc_url=$(grep -oE 'ORTHANC_URL=[^ ]+' "$work/orthanc-start.log" | cut -d= -f2)
node --import tsx conformance/mtls-front.ts --target "$orthanc_url" --ca "$pki/ca.crt" --cert "$pki/server.crt" --key "$pki/server.key" > "$work/front.log" 2>&1 &
pids+=($!)
front=$(listening_url "$work/front.log")

# This server, from source, with the same PKI.
DICOMVAULT_SERVER_PORT=0 DICOMVAULT_STORAGE_DATA_DIR="$work/dicomvault/data" DICOMVAULT_KEYS_FILE="$work/dicomvault/keys/kek.json" \
  DICOMVAULT_TLS_DEV_DIR="$pki" node --import tsx src/cli/dicomvault.ts serve > "$work/dicomvault.log" 2>&1 &
pids+=($!)
dicomvault=$(listening_url "$work/dicomvault.log")

echo "== dicomvault ($dicomvault)"
npm run --silent conformance -- --base "$dicomvault" "${tls[@]}" --server dicomvault --json "$work/dicomvault.json" || true
echo "== orthanc ($orthanc_url behind $front)"
status=0
npm run --silent conformance -- --base "$front/dicom-web" --wado-uri "$front/wado" "${tls[@]}" --server orthanc --json "$work/orthanc.json" || status=$?
node --import tsx conformance/suite/compare.ts "$work/dicomvault.json" "$work/orthanc.json" > "$work/comparison.md"
echo "== comparison table: $work/comparison.md"
cat "$work/comparison.md"
exit "$status"
