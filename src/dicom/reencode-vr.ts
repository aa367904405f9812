// The explicit VR each element gets when an Implicit VR Little Endian or Explicit VR Big Endian object is
// re-encoded as Explicit VR Little Endian (reencode.ts). In Implicit VR the walk (dataset-walk.ts) took the VR
// from the dictionary, with lower-case codes where PS3.6 gives a choice; here every choice is made, the way
// the reader (dataset-reader.ts) makes it, so the re-encoded object reads back as the same DICOM JSON.

import { TokenKind, type TokenList, packVr, unpackVr } from './scan-tokens.js';
import { KNOWN_VRS, LONG_LENGTH_VRS, concreteVr } from './vr.js';

const PIXEL_REPRESENTATION = 0x00280103;
const UN = packVr('UN');

/**
 * The concrete VR of a value:
 * - "US or SS" (xs): SS when the same dataset has PixelRepresentation 1, else US, and US when empty
 *   (as dataset-reader.ts decides; PS3.3 C.7.6.3.1.1 ties the sign of those values to PixelRepresentation);
 * - "OB or OW" (ox, e.g. Pixel Data in Implicit VR) and "US or OW" (lt, LUT Data): OW (PS3.5 A.1, 8.2);
 * - "UL or SV" (up): UL; a code that is no PS3.5 VR: UN;
 * - a value longer than 0xFFFF in a VR with a 16-bit length field: UN (PS3.5 6.2.2), whose 32-bit length
 *   holds it; the bytes stay little endian, as a UN value must (readers map it back by the dictionary).
 */
export function explicitVr(code: number, length: number, pixelRepresentation: number | undefined): number {
  const raw = unpackVr(code);
  let vr = raw === 'xs' ? (length > 0 && pixelRepresentation === 1 ? 'SS' : 'US') : concreteVr(raw);
  if (!KNOWN_VRS.has(vr)) vr = 'UN';
  if (length > 0xffff && !LONG_LENGTH_VRS.has(vr)) return UN;
  return packVr(vr);
}

/**
 * Token indexes of the datasets (root = -1, else the ItemStart token) whose own PixelRepresentation element
 * has a value, with the offset and byte order of that value: the caller reads the few bytes it needs.
 */
export function pixelRepresentationElements(tokens: TokenList): { dataset: number; token: number }[] {
  const found: { dataset: number; token: number }[] = [];
  const stack: number[] = [-1];
  for (let i = 0; i < tokens.length; i++) {
    const kind = tokens.kind[i]!;
    if (kind === TokenKind.ItemStart) stack.push(i);
    else if (kind === TokenKind.ItemEnd) stack.pop();
    else if (kind === TokenKind.Leaf && tokens.tag[i] === PIXEL_REPRESENTATION && tokens.valueLength[i]! >= 2) {
      found.push({ dataset: stack[stack.length - 1]!, token: i });
    }
  }
  return found;
}
