// The instance that stands for a series or a study in its thumbnail or rendered resource (PS3.18 10.4 leaves the
// choice to the origin server): the middle image of the series in Instance Number order, so that a CT or MR
// series shows anatomy rather than a scout or an edge slice. The caller has the descriptors from its index.

export interface InstanceDescriptor {
  sopInstanceUID: string;
  seriesInstanceUID?: string;
  instanceNumber?: number;
  /** Rows > 0 means it has pixels; absent when unknown (taken as an image). */
  rows?: number;
  sopClassUID?: string;
}

/** The middle image (Instance Number, then UID order); undefined when there is none. */
export function representativeInstance<T extends InstanceDescriptor>(instances: readonly T[]): T | undefined {
  const images = instances.filter((i) => i.rows === undefined || i.rows > 0);
  if (images.length === 0) return undefined;
  const sorted = [...images].sort(
    (a, b) =>
      (a.seriesInstanceUID ?? '').localeCompare(b.seriesInstanceUID ?? '') ||
      (a.instanceNumber ?? Number.MAX_SAFE_INTEGER) - (b.instanceNumber ?? Number.MAX_SAFE_INTEGER) ||
      a.sopInstanceUID.localeCompare(b.sopInstanceUID),
  );
  // For a study: the middle image of its first series (UID order), so the choice is stable as series are added.
  const first = sorted[0]!.seriesInstanceUID;
  const series = sorted.filter((i) => i.seriesInstanceUID === first);
  return series[Math.floor((series.length - 1) / 2)];
}
