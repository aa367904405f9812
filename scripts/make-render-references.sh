#!/usr/bin/env bash
# Makes test/fixtures/render/: for every image file of ../shared/testdata (INDEX.tsv rows with Rows > 0, outside
# broken/), frame 1 rendered by DCMTK's dcmj2pnm / dcml2pnm (an independent renderer, never dicomvault's code;
# JPEG 2000 decoded first by GDCM's gdcmconv, as DCMTK has no free JPEG 2000 decoder), then scaled
# to 64 x 64 (test/render/make-references.ts, sharp, the same scaling the test applies to our output), as PNG.
# VOI as dicomvault chooses it by default (docs/rendering.md): the first window of the dataset (+Wi 1, with its
# VOI LUT Function), else the first VOI LUT (+Wl 1), else the frame's min..max (+Wm). Files dcmj2pnm cannot
# render are listed in test/fixtures/render/references.json with the reason. Run it again when the test data
# changes:
#   bash scripts/make-render-references.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
testdata=${TESTDATA_DIR:-$root/../shared/testdata}
out=$root/test/fixtures/render

# DCMTK and GDCM; $work, $list and image_paths.
# shellcheck source=lib/references.sh
. "$root/scripts/lib/references.sh"

image_paths |
while IFS= read -r path; do
  src=$testdata/$path
  dump=$(dcmdump -q +P 0028,1050 +P 0028,1051 +P 0028,3010 "$src" </dev/null 2>/dev/null || true)
  # A window is used when its first width is valid (PS3.3 C.11.2.1.2: at least 1 for LINEAR; dicomvault skips an
  # invalid window, DCMTK would render without VOI).
  width=$(sed -n 's/^(0028,1051) DS \[\([^]\\]*\).*/\1/p' <<<"$dump" | head -1)
  if [ -n "$width" ] && awk -v w="$width" 'BEGIN { exit !(w + 0 >= 1) }'; then voi='+Wi 1'
  elif grep -q '(0028,3010)' <<<"$dump"; then voi='+Wl 1'
  else voi='+Wm'; fi
  png=$work/$(echo "$path" | tr '/' '_').png
  uid=$(dcmdump -q -Un +P 0002,0010 "$src" </dev/null 2>/dev/null | sed -n 's/.*\[\([0-9.]*\).*/\1/p' | head -1 || true)
  tool=dcmj2pnm
  input=$src
  case $uid in
    # JPEG-LS: DCMTK's dcml2pnm (dcmj2pnm has no JPEG-LS decoder).
    1.2.840.10008.1.2.4.80|1.2.840.10008.1.2.4.81) tool=dcml2pnm ;;
    # JPEG 2000: DCMTK has no free decoder; GDCM (OpenJPEG) decodes, DCMTK renders.
    1.2.840.10008.1.2.4.90|1.2.840.10008.1.2.4.91)
      input=$work/j2k.dcm
      gdcmconv --raw "$src" "$input" </dev/null >/dev/null 2>&1 || input=$src ;;
  esac
  # shellcheck disable=SC2086
  if err=$($tool -q +on $voi "$input" "$png" </dev/null 2>&1); then status=ok; else status=failed; fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$path" "$voi" "$status" "$png" "$(echo "$err" | head -1 | tr '\t' ' ')" >>"$list"
done

node --import tsx "$root/test/render/make-references.ts" "$list" "$out"
echo "make-render-references: wrote $out" >&2
