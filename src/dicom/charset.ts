// Decoding of text values with the Specific Character Set (0008,0005): PS3.3 C.12.1.1.2 (Tables C.12-2..5)
// and PS3.5 6.1 (code extensions with ISO/IEC 2022 escape sequences).
//
// Why not dcmjs: it throws on any multi-valued (0008,0005) (every ISO 2022 Japanese/Korean file), ignores the
// escape sequences, ignores a Specific Character Set inside a sequence item, and splits values on the 0x5C byte
// before decoding, which breaks GB18030/GBK (0x5C can be a trail byte). Node's TextDecoder (full ICU) does the
// byte -> code point work; this file only picks the decoder for each run of bytes.

import { TextDecoder } from 'node:util';

export interface TextDecoderFn {
  (bytes: Uint8Array): string;
}

const decoders = new Map<string, TextDecoder>();
function whatwg(label: string): TextDecoder {
  let d = decoders.get(label);
  if (!d) {
    d = new TextDecoder(label);
    decoders.set(label, d);
  }
  return d;
}

/** True ISO 8859-1 (WHATWG's "latin1" label means windows-1252). Also the lenient default repertoire. */
function latin1(bytes: Uint8Array): string {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buf.toString('latin1');
}

/** A 94/96-character single-byte set: one byte per character, ASCII in the low half. */
type SingleByte = { kind: 'single'; decode: TextDecoderFn };
/** JIS X 0201 katakana in G1 (ISO-IR 13): bytes A1..DF are half-width katakana U+FF61..U+FF9F. */
type Katakana = { kind: 'katakana' };
/** A 94x94 double-byte set: JIS X 0208 / 0212 in G0, KS X 1001 or GB 2312 in G1. */
type DoubleByte = { kind: 'double'; set: 'jisx0208' | 'jisx0212' | 'ksx1001' | 'gb2312' };
type CodeElement = SingleByte | Katakana | DoubleByte;

const single = (label: string): SingleByte => ({
  kind: 'single',
  decode: label === 'latin1' ? latin1 : (b) => whatwg(label).decode(b),
});

// G1 96-character sets by ISO-IR number (PS3.3 Table C.12-3).
const SINGLE_BYTE_SETS: Record<string, string> = {
  '100': 'latin1',
  '101': 'iso-8859-2',
  '109': 'iso-8859-3',
  '110': 'iso-8859-4',
  '144': 'iso-8859-5',
  '127': 'iso-8859-6',
  '126': 'iso-8859-7',
  '138': 'iso-8859-8',
  '148': 'windows-1254', // ISO 8859-9; WHATWG maps it to its windows superset (differs only in C1 controls)
  '203': 'iso-8859-15',
  '166': 'windows-874', // TIS 620-2533 plus C1 extras
};

/** Normalise spelling variants seen in the wild: "ISO_IR 100", "ISO-IR 100", "iso_ir_100" -> "ISO IR 100". */
function normaliseTerm(term: string): string {
  return term.trim().toUpperCase().replace(/[_-]/g, ' ').replace(/\s+/g, ' ');
}

/** Decoders for terms without code extensions (PS3.3 Table C.12-2 and C.12-5). */
function plainDecoder(term: string): TextDecoderFn | undefined {
  if (term === '' || term === 'ISO IR 6') return latin1;
  if (term === 'ISO IR 192') return (b) => whatwg('utf-8').decode(b);
  if (term === 'GB18030') return (b) => whatwg('gb18030').decode(b);
  if (term === 'GBK') return (b) => whatwg('gbk').decode(b);
  // JIS X 0201: katakana in the high half, Roman in the low half; Shift_JIS decodes single bytes that way.
  if (term === 'ISO IR 13') return (b) => whatwg('shift_jis').decode(b);
  const m = /^ISO IR (\d+)$/.exec(term);
  const label = m ? SINGLE_BYTE_SETS[m[1]!] : undefined;
  return label ? single(label).decode : undefined;
}

interface Iso2022State {
  g0: 'ascii' | DoubleByte;
  g1: CodeElement | undefined;
}

/** Initial designations implied by a "ISO 2022 IR nnn" term (PS3.3 Table C.12-3 / C.12-4). */
function applyTerm(term: string, state: Iso2022State): void {
  const m = /^ISO (?:2022 )?IR (\d+)$/.exec(term);
  const ir = m?.[1];
  if (ir === undefined || ir === '6') return;
  if (ir === '13') state.g1 = { kind: 'katakana' };
  else if (ir === '87') state.g0 = { kind: 'double', set: 'jisx0208' };
  else if (ir === '159') state.g0 = { kind: 'double', set: 'jisx0212' };
  else if (ir === '149') state.g1 = { kind: 'double', set: 'ksx1001' };
  else if (ir === '58') state.g1 = { kind: 'double', set: 'gb2312' };
  else if (SINGLE_BYTE_SETS[ir]) state.g1 = single(SINGLE_BYTE_SETS[ir]!);
}

// Final bytes of "ESC - F" (designate a 96-set to G1), PS3.3 Table C.12-3.
const G1_96_FINAL: Record<number, string> = {
  0x41: '100', 0x42: '101', 0x43: '109', 0x44: '110', 0x46: '126', 0x47: '127', 0x48: '138', 0x4c: '144',
  0x4d: '148', 0x54: '166', 0x62: '203',
};

/**
 * Recognise the escape sequence at `i` (bytes[i] === ESC), update the state, return its length
 * (0 when unknown: the ESC byte is then dropped and decoding continues in the current state).
 */
function escape(bytes: Uint8Array, i: number, state: Iso2022State): number {
  const b1 = bytes[i + 1];
  const b2 = bytes[i + 2];
  const b3 = bytes[i + 3];
  if (b1 === 0x28 && (b2 === 0x42 || b2 === 0x4a)) { // ESC ( B ASCII, ESC ( J JIS X 0201 Roman
    state.g0 = 'ascii';
    return 3;
  }
  if (b1 === 0x29 && b2 === 0x49) { // ESC ) I JIS X 0201 katakana
    state.g1 = { kind: 'katakana' };
    return 3;
  }
  if (b1 === 0x24 && (b2 === 0x42 || b2 === 0x40)) { // ESC $ B JIS X 0208 (ESC $ @ is its 1978 edition)
    state.g0 = { kind: 'double', set: 'jisx0208' };
    return 3;
  }
  if (b1 === 0x24 && b2 === 0x28 && b3 === 0x44) { // ESC $ ( D JIS X 0212
    state.g0 = { kind: 'double', set: 'jisx0212' };
    return 4;
  }
  if (b1 === 0x24 && b2 === 0x29 && b3 === 0x43) { // ESC $ ) C KS X 1001
    state.g1 = { kind: 'double', set: 'ksx1001' };
    return 4;
  }
  if (b1 === 0x24 && b2 === 0x29 && b3 === 0x41) { // ESC $ ) A GB 2312
    state.g1 = { kind: 'double', set: 'gb2312' };
    return 4;
  }
  if (b1 === 0x2d && b2 !== undefined && G1_96_FINAL[b2]) { // ESC - F: a 96-character set into G1
    state.g1 = single(SINGLE_BYTE_SETS[G1_96_FINAL[b2]!]!);
    return 3;
  }
  return 0;
}

/**
 * ISO 2022 decoding: each byte (or byte pair) goes to the decoder of the set designated to G0 (bytes < 0x80)
 * or G1 (bytes >= 0x80). Double-byte sets are re-expressed in the EUC form ICU knows (JIS X 0208 as EUC-JP,
 * KS X 1001 as EUC-KR, GB 2312 as EUC-CN within GB18030).
 */
function iso2022Decoder(terms: string[]): TextDecoderFn {
  return (bytes) => {
    const state: Iso2022State = { g0: 'ascii', g1: undefined };
    applyTerm(terms[0] ?? '', state);
    const initial = { ...state };
    let out = '';
    let run: number[] = [];
    let runDecoder: TextDecoderFn = latin1;
    const flush = () => {
      if (run.length > 0) out += runDecoder(Uint8Array.from(run));
      run = [];
    };
    const emit = (decoder: TextDecoderFn, ...b: number[]) => {
      if (decoder !== runDecoder) {
        flush();
        runDecoder = decoder;
      }
      run.push(...b);
    };
    for (let i = 0; i < bytes.length; ) {
      const b = bytes[i]!;
      if (b === 0x1b) {
        const n = escape(bytes, i, state);
        i += n === 0 ? 1 : n;
        continue;
      }
      if (b === 0x0d || b === 0x0a || b === 0x0c) {
        // PS3.5 6.1.2.5.3: designations return to the initial ones at the end of a line.
        Object.assign(state, initial);
      }
      if (b < 0x80) {
        const g0 = state.g0;
        if (g0 !== 'ascii' && b >= 0x21 && b <= 0x7e && i + 1 < bytes.length) {
          const b2 = bytes[i + 1]!;
          if (g0.set === 'jisx0212') emit(EUC_JP, 0x8f, b | 0x80, b2 | 0x80);
          else emit(EUC_JP, b | 0x80, b2 | 0x80);
          i += 2;
        } else {
          emit(latin1, b);
          i += 1;
        }
        continue;
      }
      const g1 = state.g1;
      if (g1?.kind === 'katakana' && b >= 0xa1 && b <= 0xdf) {
        flush();
        out += String.fromCharCode(0xff61 + (b - 0xa1));
        i += 1;
      } else if (g1?.kind === 'double' && i + 1 < bytes.length) {
        emit(g1.set === 'ksx1001' ? EUC_KR : GB, b, bytes[i + 1]!);
        i += 2;
      } else {
        emit(g1?.kind === 'single' ? g1.decode : latin1, b);
        i += 1;
      }
    }
    flush();
    return out;
  };
}

const EUC_JP: TextDecoderFn = (b) => whatwg('euc-jp').decode(b);
const EUC_KR: TextDecoderFn = (b) => whatwg('euc-kr').decode(b);
const GB: TextDecoderFn = (b) => whatwg('gb18030').decode(b);

const cache = new Map<string, TextDecoderFn>();

/**
 * The decoder for a value of (0008,0005) given as its list of terms (first may be empty = default repertoire).
 * Unknown terms fall back to ISO 8859-1, which never fails and keeps every byte visible (pydicom does the same).
 */
export function charsetDecoder(terms: readonly string[]): TextDecoderFn {
  const normalised = terms.length === 0 ? [''] : terms.map(normaliseTerm);
  const key = normalised.join('\\');
  let fn = cache.get(key);
  if (!fn) {
    const usesExtensions = normalised.length > 1 || normalised[0]!.startsWith('ISO 2022');
    fn = usesExtensions ? iso2022Decoder(normalised) : (plainDecoder(normalised[0]!) ?? latin1);
    cache.set(key, fn);
  }
  return fn;
}

/** The default character repertoire (no (0008,0005)); lenient: bytes above 0x7F decode as ISO 8859-1. */
export const defaultDecoder: TextDecoderFn = latin1;
