#!/usr/bin/env bash
# Installs Orthanc and its DICOMweb plugin from Debian, once, for the tests and scripts that run it as a peer
# (test/interop/, conformance/): later runs find them and return at once. Prints ORTHANC=<binary> and
# ORTHANC_DICOMWEB=<plugin .so>. Start Orthanc with ../shared/bench/orthanc.sh or your own configuration;
# INTEROP.md lists its quirks on Debian 12 (no HTTPS of its own, no bind address, leave orthanc-gdcm out).
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

plugin_path() {
  dpkg -L orthanc-dicomweb 2>/dev/null | grep -E '/plugins/libOrthancDicomWeb\.so$' | head -1 || true
}

if ! command -v Orthanc >/dev/null 2>&1 || [ -z "$(plugin_path)" ]; then
  echo "orthanc-deps: installing orthanc orthanc-dicomweb (apt)" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends orthanc orthanc-dicomweb >&2
  # The package's service is not started here (no init), and must not be: tests run private instances.
fi
plugin=$(plugin_path)
[ -n "$plugin" ] || { echo "orthanc-deps: the DICOMweb plugin is not where dpkg says" >&2; exit 1; }
echo "ORTHANC=$(command -v Orthanc)"
echo "ORTHANC_DICOMWEB=$plugin"
