#!/usr/bin/env bash
# Installs what the OHIF viewer test (test/viewer/) needs, once; later runs find it and return at once.
#   - Debian's chromium (apt), driven by the devDependency playwright-core.
#   - The OHIF viewer's production build: npm @ohif/app (its dist/ is the complete static app), unpacked
#     into .cache/viewer/ohif-<version>/ (git-ignored). `npm pack` fetches only that package's tarball,
#     checked against the registry's integrity; none of its ~40 runtime dependencies are installed
#     because dist/ already bundles them.
# Prints the two paths the test reads: OHIF_DIST=<dir> and CHROMIUM=<binary>.
set -euo pipefail
cd "$(dirname "$0")/.."

OHIF_VERSION=3.13.2
OHIF_INTEGRITY='sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA=='

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v chromium >/dev/null 2>&1; then
  echo "viewer-deps: installing chromium (apt)" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium >&2
fi
chromium_bin=$(command -v chromium)

ohif_dir=".cache/viewer/ohif-${OHIF_VERSION}"
if [ ! -f "${ohif_dir}/dist/index.html" ]; then
  echo "viewer-deps: fetching @ohif/app@${OHIF_VERSION}" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  tgz=$(npm pack --silent --pack-destination "$tmp" "@ohif/app@${OHIF_VERSION}" | tail -n 1)
  got=$(node -e 'const c=require("node:crypto"),f=require("node:fs");process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tmp/$tgz")
  if [ "$got" != "$OHIF_INTEGRITY" ]; then
    echo "viewer-deps: @ohif/app@${OHIF_VERSION} tarball integrity mismatch: $got" >&2
    exit 1
  fi
  mkdir -p "$tmp/unpacked"
  tar -xzf "$tmp/$tgz" -C "$tmp/unpacked"
  if [ ! -f "$tmp/unpacked/package/dist/index.html" ]; then
    echo "viewer-deps: @ohif/app@${OHIF_VERSION} has no dist/index.html" >&2
    exit 1
  fi
  rm -rf "$ohif_dir"
  mkdir -p "$(dirname "$ohif_dir")"
  mv "$tmp/unpacked/package" "$ohif_dir"
fi

echo "OHIF_DIST=$(pwd)/${ohif_dir}/dist"
echo "CHROMIUM=${chromium_bin}"
