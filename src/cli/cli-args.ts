// Command-line parsing shared by the dicomvault subcommands (certs.ts, keys.ts): strict options, no
// positionals, and one-line errors that map to exit code 2.

import { type ParseArgsConfig, parseArgs } from 'node:util';

/** The command line was wrong: exit code 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseOptions<const T extends Options>(args: string[], options: T) {
  try {
    return parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>({
      args,
      options,
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new UsageError(oneLine(err));
  }
}

/** The first sentence of the message on one line (parseArgs appends a paragraph of advice). */
export function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const line = message.split('\n')[0] ?? message;
  const advice = line.indexOf('. To specify a positional argument');
  return advice > 0 ? line.slice(0, advice) : line;
}

export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/**
 * Runs `dicomvault <command> <subcommand> ...`: help on help/--help/-h, usage on stderr (2) without a
 * subcommand, and every error as one line "dicomvault <command>: ..." (2 for usage errors, 1 otherwise).
 */
export async function runSubcommand<Io extends CliIo>(
  command: string,
  usage: string,
  subcommands: Record<string, (args: string[], io: Io) => Promise<number>>,
  argv: string[],
  io: Io,
): Promise<number> {
  const [subcommand, ...rest] = argv;
  try {
    if (subcommand === 'help' || subcommand === '--help' || subcommand === '-h') {
      io.stdout.write(usage);
      return 0;
    }
    if (subcommand === undefined) {
      io.stderr.write(usage);
      return 2;
    }
    const run = Object.hasOwn(subcommands, subcommand) ? subcommands[subcommand] : undefined;
    if (!run) throw new UsageError(`unknown subcommand ${JSON.stringify(subcommand)} (try: dicomvault ${command} --help)`);
    return await run(rest, io);
  } catch (err) {
    io.stderr.write(`dicomvault ${command}: ${oneLine(err)}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}
