// Builds the absolute URLs the server hands out (RetrieveURL, later BulkDataURI). The HTTP layer decides
// the base (configured public URL, or the listener's address); services only call these.

export interface ResourceUrls {
  /** The service root, e.g. https://host:8443/dicomweb (used as the Warning header's agent). */
  base: string;
  study(study: string): string;
  series(study: string, series: string): string;
  instance(study: string, series: string, instance: string): string;
}

export function resourceUrls(baseUrl: string): ResourceUrls {
  const base = baseUrl.replace(/\/+$/, '');
  // UIDs are validated to digits and dots before they get here, so no escaping is needed; encode anyway
  // so a URL built from any stored value stays a single path segment.
  const seg = encodeURIComponent;
  return {
    base,
    study: (s) => `${base}/studies/${seg(s)}`,
    series: (s, x) => `${base}/studies/${seg(s)}/series/${seg(x)}`,
    instance: (s, x, i) => `${base}/studies/${seg(s)}/series/${seg(x)}/instances/${seg(i)}`,
  };
}
