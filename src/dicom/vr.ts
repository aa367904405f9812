// Value Representations (PS3.5 6.2, Table 6.2-1) and the facts the parser needs about each.

/** Every VR PS3.5 defines; anything else in an explicit VR stream is malformed. */
export const KNOWN_VRS: ReadonlySet<string> = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV',
  'OW', 'PN', 'SH', 'SL', 'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV',
]);

/**
 * VRs whose explicit-VR header has 2 reserved bytes and a 32-bit length (PS3.5 7.1.2, Table 7.1-1);
 * all others have a 16-bit length.
 */
export const LONG_LENGTH_VRS: ReadonlySet<string> = new Set([
  'OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV',
]);

/**
 * Explicit VR header layout by packed VR code (first letter << 8 | second letter): 0 = not a VR,
 * 1 = 16-bit length, 2 = two reserved bytes and a 32-bit length. A table, because the walk asks per element.
 */
export const VR_LENGTH_CLASS = new Uint8Array(65536);
for (const vr of KNOWN_VRS) VR_LENGTH_CLASS[(vr.charCodeAt(0) << 8) | vr.charCodeAt(1)] = LONG_LENGTH_VRS.has(vr) ? 2 : 1;

/** Binary VRs carried as InlineBinary / BulkDataURI in the JSON model (PS3.18 F.2.7). */
export const BINARY_VRS: ReadonlySet<string> = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);

/** Numeric VRs whose values may be large arrays (LUTs, waveform-like data): bulk-data candidates too. */
export const NUMERIC_ARRAY_VRS: ReadonlySet<string> = new Set(['FL', 'FD', 'SL', 'SS', 'UL', 'US', 'SV', 'UV']);

/** VRs whose text is encoded with the Specific Character Set (PS3.5 6.1.2.3); the rest use the default repertoire. */
export const CHARSET_VRS: ReadonlySet<string> = new Set(['SH', 'LO', 'ST', 'LT', 'UC', 'UT', 'PN']);

/** Text VRs with VM 1 where backslash is an ordinary character, not a value delimiter (PS3.5 6.2). */
export const SINGLE_VALUE_TEXT_VRS: ReadonlySet<string> = new Set(['ST', 'LT', 'UT', 'UR']);

/** Byte size of one value of the fixed-width binary VRs (PS3.5 Table 6.2-1). */
export const FIXED_SIZE: Readonly<Record<string, number>> = {
  AT: 4, FL: 4, FD: 8, SL: 4, SS: 2, SV: 8, UL: 4, US: 2, UV: 8,
  // word size for byte swapping of the "other" VRs in big endian
  OW: 2, OF: 4, OL: 4, OD: 8, OV: 8,
};

/**
 * The dictionary uses lower-case codes for VRs that depend on context (PS3.6: "US or SS", "OB or OW"...).
 * In implicit VR the context is lost; PS3.5 A.1 says Pixel Data and Overlay Data are OW there, LUT data too.
 */
export function concreteVr(dictionaryVr: string): string {
  switch (dictionaryVr) {
    case 'ox': // OB or OW
    case 'lt': // US or OW (LUT Data)
      return 'OW';
    case 'xs': // US or SS
      return 'US';
    case 'up': // UL or SV (and the retired "UP" pointer)
      return 'UL';
    default:
      return dictionaryVr;
  }
}
