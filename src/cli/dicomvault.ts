#!/usr/bin/env node
// The dicomvault command: `serve` (the default of npm start), `certs` (development PKI, client certificates),
// `keys` (the key-encryption key: status, rotation), `verify` (read back and check every stored object),
// `audit` (check the audit log), `retention` (purge the bin, show a study's keep-until date) and `import` (a folder
// of DICOM files into the archive).

import { parseArgs } from 'node:util';
import { runCertsCommand } from './certs.js';

const USAGE = `usage: dicomvault <command> [options]

commands:
  serve [--config FILE]        run the DICOMweb server (configuration: README.md)
  certs init [--dir DIR]       create a development CA, server and client certificates
  certs issue-client --name NAME [--role ROLE] --out DIR
                               issue another client certificate from the development CA
  keys status [--config FILE]  key-encryption key versions and the study keys each wraps
  keys rotate [--config FILE] [--batch-size N] [--max-batches N]
                               new key version; re-wrap every key under it; retire the old one
  verify [--study UID] [--config FILE]
                               read back every stored object and check its size and SHA-256
  audit verify [--public-key FILE] [--config FILE]
                               check the audit log's hash chain and signed checkpoints
  audit report --patient ID [--from DATE] [--to DATE] [--format text|json] [--config FILE]
                               accounting of disclosures of one patient (itself audited)
  retention sweep [--dry-run] [--config FILE]
                               purge what has waited in the bin for its grace period
  retention show --study UID [--config FILE]
                               a study's keep-until date, its rules and legal holds
  import DIR [--config FILE]   store the DICOM files of a folder (recursively), skipping what is already
                               stored; summary of failures by reason (not beside a running server)
  help                         this text
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } }, strict: true });
      const { serve } = await import('../server.js');
      await serve({ configFile: values.config });
      return -1; // keeps running
    }
    case 'certs':
      return runCertsCommand(rest, { stdout: process.stdout, stderr: process.stderr });
    case 'keys': {
      // Loaded on demand: it opens the index (a native module) that the other commands do not need.
      const { runKeysCommand } = await import('./keys.js');
      return runKeysCommand(rest, { stdout: process.stdout, stderr: process.stderr, env: process.env });
    }
    case 'verify': {
      // Loaded on demand, like keys: it opens the storage.
      const { runVerifyCommand } = await import('./verify.js');
      return runVerifyCommand(rest, { stdout: process.stdout, stderr: process.stderr, env: process.env });
    }
    case 'audit': {
      // Loaded on demand, like keys: it unwraps the audit keys.
      const { runAuditCommand } = await import('./audit.js');
      return runAuditCommand(rest, { stdout: process.stdout, stderr: process.stderr, env: process.env });
    }
    case 'retention': {
      // Loaded on demand, like keys: it opens the storage.
      const { runRetentionCommand } = await import('./retention.js');
      return runRetentionCommand(rest, { stdout: process.stdout, stderr: process.stderr, env: process.env });
    }
    case 'import': {
      // Loaded on demand, like keys: it opens the storage and the audit log. Ctrl-C stops it after the file in
      // progress, with what was stored audited and reported (a second Ctrl-C ends the process at once).
      const { runImportCommand } = await import('./import.js');
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
      try {
        return await runImportCommand(rest, { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: stop.signal });
      } finally {
        process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      }
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`dicomvault: unknown command ${command}\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`dicomvault: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
