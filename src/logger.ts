// The application log (pino). It carries no DICOM values: request logs hold method, route pattern, status and
// the principal's certificate fingerprint, never a URL query string (QIDO values are PHI: SECURITY.md case 36).

import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export function createLogger(level: LoggerOptions['level'], destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'dicomvault' },
    // Belt and braces: should a DICOM value ever reach a log call under these keys, it is not written.
    redact: { paths: ['req.url', 'req.query', 'query', 'patientName', 'patientId'], censor: '[redacted]' },
    serializers: { err: pino.stdSerializers.err },
  };
  return destination ? pino(options, destination) : pino(options);
}
