// The comparison space of the rendering test: any rendered image decoded and scaled to 64 x 64 (fill, sharp's
// default Lanczos kernel) with its channels as they are (grey stays grey). Both DCMTK's renderings (when the
// references are made) and ours (in the test) go through this same function.
import sharp from 'sharp';

export const REFERENCE_SIZE = 64;

export interface ReferencePixels {
  channels: number;
  data: Buffer;
  png: Buffer;
}

/** One row of test/fixtures/render/references.json (written by make-references.ts, read by testdata.test.ts). */
export interface Reference {
  /** The file under ../shared/testdata. */
  path: string;
  /** The VOI option DCMTK rendered it with (+Wi 1, +Wl 1 or +Wm). */
  voi: string;
  /** The 64 x 64 PNG in test/fixtures/render/; absent when DCMTK could not render the file (`error`). */
  reference?: string;
  error?: string;
}

export const referenceName = (file: string) => `${file.replace(/[^A-Za-z0-9._-]/g, '_')}.png`;

export async function toReference(image: Buffer): Promise<ReferencePixels> {
  const { data, info } = await sharp(image)
    .resize(REFERENCE_SIZE, REFERENCE_SIZE, { fit: 'fill' })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const png = await sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } }).png({ compressionLevel: 9 }).toBuffer();
  return { channels: info.channels, data, png };
}

/** Mean absolute difference per sample, 0..255; grey against RGB compares the grey with each channel. */
export function meanAbsDiff(a: ReferencePixels, b: ReferencePixels): number {
  const pixels = REFERENCE_SIZE * REFERENCE_SIZE;
  const channels = Math.max(a.channels, b.channels);
  let sum = 0;
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < channels; c++) {
      const x = a.data[p * a.channels + Math.min(c, a.channels - 1)]!;
      const y = b.data[p * b.channels + Math.min(c, b.channels - 1)]!;
      sum += Math.abs(x - y);
    }
  }
  return sum / (pixels * channels);
}
