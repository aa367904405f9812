# Sourced by the bench scripts: start a built dicomvault (REPO/dist) in the background and wait until it listens.
#
#   dv_start REPO DATA_DIR CERTS_DIR OUT_FILE [VAR=value ...]
#
# The entry is REPO/dist/cli/dicomvault.js serve, or the script named by $dv_entry (a bench-only composition such
# as bench/serve-unaudited.mjs, which reads the same DICOMVAULT_* settings). $dv_node_args: options for node
# itself, space-separated (bench/stow-profile.sh: --cpu-prof ...; NODE_OPTIONS refuses those).
# Sets dv_pid and dv_url. The server starts empty on a free loopback port with its own data folder and key
# file under DATA_DIR, the development PKI of CERTS_DIR, log level warn, and the extra DICOMVAULT_* settings
# given. Every other DICOMVAULT_* variable of the caller's environment is dropped: the server refuses any
# that is not a config key (DICOMVAULT_BENCH, ...).
dv_start() {
  local repo=$1 data=$2 certs=$3 out=$4
  shift 4
  local unset_args
  mapfile -t unset_args < <(env | sed -n 's/^\(DICOMVAULT_[A-Za-z0-9_]*\)=.*/-u\n\1/p')
  local entry=("$repo/dist/cli/dicomvault.js" serve)
  [ -n "${dv_entry:-}" ] && entry=("$dv_entry")
  local node_args=()
  [ -n "${dv_node_args:-}" ] && read -ra node_args <<< "$dv_node_args"
  env "${unset_args[@]}" DICOMVAULT_SERVER_PORT=0 DICOMVAULT_STORAGE_DATA_DIR="$data/data" DICOMVAULT_KEYS_FILE="$data/keys/kek.json" \
    DICOMVAULT_TLS_DEV_DIR="$certs" DICOMVAULT_LOG_LEVEL=warn "$@" node "${node_args[@]}" "${entry[@]}" > "$out" 2>&1 &
  dv_pid=$!
  dv_url=
  local _
  for _ in $(seq 1 150); do
    dv_url=$(grep -o 'listening on https://[^ ]*' "$out" | head -1 | cut -d' ' -f3) || true
    [ -n "$dv_url" ] && return 0
    kill -0 "$dv_pid" 2>/dev/null || { cat "$out" >&2; echo "dicomvault ($repo) did not start" >&2; return 1; }
    sleep 0.2
  done
  cat "$out" >&2; echo "dicomvault ($repo) did not listen within 30 s" >&2
  return 1
}

# The shared harness with its node_modules: $1 the harness dir, $2 a temp dir, $3 the log. Prints the dir to use.
dv_harness() {
  local bench=$1 tmp=$2 log=$3
  if [ ! -d "$bench/node_modules" ]; then
    # shared/ may be read-only: install into a copy (run.mjs needs undici only, hence --ignore-scripts)
    mkdir -p "$tmp/harness"; cp -r "$bench" "$tmp/harness/bench"
    [ -d "$bench/../tools" ] && cp -r "$bench/../tools" "$tmp/harness/tools"
    chmod -R u+w "$tmp/harness"; bench=$tmp/harness/bench
    echo "npm ci in $bench" >&2
    (cd "$bench" && npm ci --ignore-scripts --no-audit --no-fund) >> "$log" 2>&1
  fi
  echo "$bench"
}

# A free loopback TCP port (the kernel's choice; closed again before it is used, so there is a small race).
dv_free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# The reference Orthanc of ../shared/bench/orthanc.sh on a free port, installed with apt if missing: $1 the harness
# dir, $2 its folder (give it to `orthanc.sh stop` on cleanup). Sets ORTHANC_URL and ORTHANC_PID.
dv_orthanc_start() {
  local bench=$1 dir=$2
  command -v Orthanc >/dev/null || "$bench/orthanc.sh" install
  eval "$("$bench/orthanc.sh" start "$dir" --http-port "$(dv_free_port)" | tail -1)"
  [ -n "${ORTHANC_PID:-}" ] || { echo "Orthanc did not start" >&2; return 1; }
}
