#!/usr/bin/env bash
# Makes test/fixtures/transcode/references.json: for every image file of ../shared/testdata (INDEX.tsv rows with
# Rows > 0, outside broken/), the digest of a reference decode to Explicit VR Little Endian made by third-party
# tools, never by dicomvault's own code:
#   native syntaxes (Implicit VR LE, Explicit VR LE/BE, Deflated)   dcmconv +te        (DCMTK)
#   JPEG baseline / extended / lossless                              dcmdjpeg           (DCMTK, +cp: YBR -> RGB)
#   JPEG-LS lossless / near-lossless                                 dcmdjpls           (DCMTK)
#   RLE lossless                                                     dcmdrle            (DCMTK)
#   JPEG 2000 (DCMTK has no free JPEG 2000 codec)                    gdcmconv --raw     (GDCM, OpenJPEG)
# The digests (test/transcode/pixel-digest.ts, which reads the decoded files with dcmjs) are committed; the tests
# compare against them without these tools. Run it again when the test data changes:
#   bash scripts/make-transcode-references.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
testdata=${TESTDATA_DIR:-$root/../shared/testdata}
out=$root/test/fixtures/transcode/references.json

# DCMTK and GDCM; $work, $list and image_paths.
# shellcheck source=lib/references.sh
. "$root/scripts/lib/references.sh"

image_paths |
while IFS= read -r path; do
  src=$testdata/$path
  uid=$(dcmdump -q -Un +P 0002,0010 "$src" </dev/null 2>/dev/null | sed -n 's/.*\[\([0-9.]*\).*/\1/p' | head -1 || true)
  dst=$work/$(echo "$path" | tr '/' '_').dcm
  case $uid in
    1.2.840.10008.1.2|1.2.840.10008.1.2.1|1.2.840.10008.1.2.1.99|1.2.840.10008.1.2.2)
      tool=dcmconv; dcmconv -q +te "$src" "$dst" </dev/null 2>/dev/null || tool=failed ;;
    1.2.840.10008.1.2.4.50|1.2.840.10008.1.2.4.51|1.2.840.10008.1.2.4.57|1.2.840.10008.1.2.4.70)
      tool=dcmdjpeg; dcmdjpeg -q "$src" "$dst" </dev/null 2>/dev/null || tool=failed ;;
    1.2.840.10008.1.2.4.80|1.2.840.10008.1.2.4.81)
      tool=dcmdjpls; dcmdjpls -q "$src" "$dst" </dev/null 2>/dev/null || tool=failed ;;
    1.2.840.10008.1.2.5)
      tool=dcmdrle; dcmdrle -q "$src" "$dst" </dev/null 2>/dev/null || tool=failed ;;
    1.2.840.10008.1.2.4.90|1.2.840.10008.1.2.4.91)
      tool=gdcmconv; gdcmconv --raw "$src" "$dst" </dev/null 2>/dev/null || tool=failed ;;
    *) tool=unsupported ;;
  esac
  printf '%s\t%s\t%s\t%s\n' "$path" "$uid" "$tool" "$dst" >>"$list"
done

node --import tsx "$root/test/transcode/make-references.ts" "$list" "$out"
echo "make-transcode-references: wrote $out" >&2
