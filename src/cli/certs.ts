// `dicomvault certs ...`: the development PKI and further client certificates (security/pki.ts).
// Returns an exit code instead of touching `process`, so tests run it in-process: 0 success,
// 1 the operation failed, 2 the command line was wrong. Every error is one line on stderr.

import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PRINCIPAL_URI_PREFIX, normalizeFingerprint } from '../security/principal.js';
import {
  DEFAULT_CLIENT_VALIDITY_DAYS,
  DEV_CLIENT_PRINCIPAL,
  DEV_CLIENT_VALIDITY_DAYS,
  DEV_P12_PASSWORD,
  MAX_CLIENT_VALIDITY_DAYS,
  SERVER_VALIDITY_DAYS,
  createDevPki,
  devPkiPaths,
  issueClientCertificate,
} from '../security/pki.js';
import { type CliIo, UsageError, parseOptions as parse, runSubcommand } from './cli-args.js';

const DEFAULT_DEV_DIR = 'certs/dev';

const USAGE = `usage: dicomvault certs <subcommand> [options]

subcommands:
  init [--dir DIR] [--host NAME]... [--force]
      Create a development CA, a server certificate (localhost, 127.0.0.1, ::1 and each --host)
      and an administrator client certificate in DIR (default ${DEFAULT_DEV_DIR}).
      Refuses to touch an existing PKI unless --force is given.

  issue-client --name NAME [--role ROLE] --out DIR [--ca-dir DIR] [--days N]
      Issue a client certificate from the CA in --ca-dir (default ${DEFAULT_DEV_DIR}) into
      DIR/NAME.crt, DIR/NAME.key and DIR/NAME.p12. The certificate names the principal
      ${PRINCIPAL_URI_PREFIX}NAME; --role adds the SAN URI urn:dicomvault:role:ROLE.
      --days: 1 to ${MAX_CLIENT_VALIDITY_DAYS} (default ${DEFAULT_CLIENT_VALIDITY_DAYS}).

Keys and .p12 files are written with mode 0600, new directories with mode 0700.
Every .p12 file has the password "${DEV_P12_PASSWORD}".
`;

export function runCertsCommand(argv: string[], io: CliIo): Promise<number> {
  return runSubcommand('certs', USAGE, { init, 'issue-client': issueClient }, argv, io);
}

async function init(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    dir: { type: 'string' },
    host: { type: 'string', multiple: true },
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) {
    io.stdout.write(USAGE);
    return 0;
  }
  const dir = path.resolve(values.dir ?? DEFAULT_DEV_DIR);
  const hosts = values.host ?? [];
  const force = values.force === true;
  const replacing = force && fs.existsSync(devPkiPaths(dir).caCert);

  const paths = await createDevPki(dir, { hosts, force });

  const fingerprint = normalizeFingerprint(new X509Certificate(fs.readFileSync(paths.clientCert)).fingerprint256);
  // Paths inside the working directory read best relative (certs/dev/ca.crt); others stay absolute.
  const relative = (file: string): string => {
    const rel = path.relative(process.cwd(), file);
    return rel === '' ? '.' : rel.startsWith('..') || path.isAbsolute(rel) ? path.resolve(file) : rel;
  };
  io.stdout.write(
    [
      `Development PKI written to ${paths.dir}`,
      `  ${relative(paths.caCert)}      CA certificate: give it to clients as the server's trust anchor`,
      `  ${relative(paths.caKey)}      CA key: signs further client certificates (certs issue-client)`,
      `  ${relative(paths.serverCert)}  server certificate (localhost, 127.0.0.1, ::1${hosts.length > 0 ? `, ${hosts.join(', ')}` : ''}), ${SERVER_VALIDITY_DAYS} days`,
      `  ${relative(paths.clientCert)}  client certificate for ${PRINCIPAL_URI_PREFIX}${DEV_CLIENT_PRINCIPAL}, ${DEV_CLIENT_VALIDITY_DAYS} days`,
      `  ${relative(paths.clientP12)}  the same for browsers and keychains; password: ${DEV_P12_PASSWORD}`,
      `Client certificate SHA-256: ${fingerprint}`,
      `Try (default host and port): curl --cacert ${relative(paths.caCert)} --cert ${relative(paths.clientCert)} --key ${relative(paths.clientKey)} https://localhost:8443/dicomweb/studies`,
      '',
    ].join('\n'),
  );
  if (replacing) {
    io.stderr.write('dicomvault certs: replaced the previous CA; certificates it issued are no longer trusted\n');
  }
  return 0;
}

async function issueClient(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    name: { type: 'string' },
    role: { type: 'string' },
    out: { type: 'string' },
    'ca-dir': { type: 'string' },
    days: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) {
    io.stdout.write(USAGE);
    return 0;
  }
  const { name, out } = values;
  if (name === undefined) throw new UsageError('issue-client needs --name NAME');
  if (out === undefined) throw new UsageError('issue-client needs --out DIR');
  const daysText = values.days;
  let days: number | undefined;
  if (daysText !== undefined) {
    if (!/^[0-9]+$/.test(daysText)) throw new UsageError(`--days must be a whole number of days, got ${JSON.stringify(daysText)}`);
    days = Number(daysText);
  }

  const issued = await issueClientCertificate(path.resolve(values['ca-dir'] ?? DEFAULT_DEV_DIR), {
    name,
    role: values.role,
    outDir: path.resolve(out),
    days,
  });
  io.stdout.write(
    [
      `Issued ${PRINCIPAL_URI_PREFIX}${name}`,
      `  certificate: ${issued.certPath}`,
      `  key:         ${issued.keyPath}`,
      `  PKCS#12:     ${issued.p12Path} (password: ${DEV_P12_PASSWORD})`,
      `  SHA-256:     ${issued.fingerprint256}`,
      '',
    ].join('\n'),
  );
  return 0;
}
