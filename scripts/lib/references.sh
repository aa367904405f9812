# Sourced by scripts/make-transcode-references.sh and scripts/make-render-references.sh (after `set -euo pipefail`,
# with $testdata set): what both need before they run the third-party tools on the test data.
#   - DCMTK (dcmdump, dcmconv, dcmdjpeg, dcmdjpls, dcmdrle, dcmj2pnm, dcml2pnm) and GDCM's gdcmconv (JPEG 2000, for
#     which DCMTK has no free codec), installed from Debian once; later runs find them.
#   - $work, a temporary folder removed on exit, and $list, an empty file in it for the script's TSV.
#   - image_paths: the testdata path of every image file, one a line.

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=
for tool in dcmdump dcmconv dcmdjpeg dcmdjpls dcmdrle dcmj2pnm dcml2pnm gdcmconv; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  echo "$(basename "$0" .sh): installing dcmtk libgdcm-tools (apt) for$missing" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends dcmtk libgdcm-tools >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
list=$work/list.tsv
: >"$list"

# The rows of INDEX.tsv that parse, have Rows > 0 and are outside broken/ (test/helpers/testdata.ts imagePaths
# applies the same rule). Columns: path(1) bytes parse(3) transfer_syntax sop_class modality frames rows(8) ...
image_paths() {
  awk -F'\t' 'NR > 1 && $3 == "ok" && $8 + 0 > 0 && $1 !~ /^broken\// { print $1 }' "$testdata/INDEX.tsv"
}
