// dcmjs ships no types. Declared here: only what dicomvault uses (the data dictionary and the logger).

declare module 'dcmjs' {
  export interface DictionaryEntry {
    /** "(GGGG,EEEE)" */
    tag: string;
    /** PS3.6 VR, or a lower-case code for context-dependent ones: ox, xs, lt, up, na. */
    vr: string;
    vm: string;
    /** PS3.6 keyword; retired attributes are prefixed "RETIRED_". */
    name: string;
    version: string;
  }

  interface Logger {
    setLevel(level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent', persist?: boolean): void;
    getLogger(name: string): Logger;
  }

  const dcmjs: {
    log: Logger;
    data: {
      DicomMetaDictionary: {
        /** Proxy: accepts "(GGGG,EEEE)" or "GGGGEEEE", returns undefined for unknown tags. */
        dictionary: Record<string, DictionaryEntry | undefined>;
        /** Keyword -> entry. */
        nameMap: Record<string, DictionaryEntry | undefined>;
      };
    };
  };
  export default dcmjs;
}
