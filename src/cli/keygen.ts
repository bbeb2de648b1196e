/**
 * `deno task keygen <path> [--force] [--help]`: writes a new cluster key file (32 random bytes as
 * 64 hex digits and a newline) with mode 0600, for the `cluster-key-file` setting.
 *
 * Exit codes: 0 when written (or after `--help`), 2 for bad usage, 1 when the file exists (without
 * `--force`) or cannot be written.
 *
 * @module
 */
import { parseCommandLine } from "../config/command_line.ts";
import { KeyFileError, writeKeyFile } from "../config/cluster_key.ts";

/** The `--help` text. */
const KEYGEN_USAGE = `Usage: deno task keygen <path> [--force]
       ./lamportkv keygen <path> [--force]

Writes a new cluster key to <path>: 32 random bytes as one line of 64 hex digits, mode 0600
(readable by its owner only). Copy the same file to every replica (keep it 0600) and add
  cluster-key-file <path>
to the cluster config file (a relative path is relative to the config file), or start every
replica with --cluster-key-file <path>. Replicas then authenticate each other and protect every
peer frame with a MAC; a replica without the key, or with another one, is kept out.

Options:
  --force     overwrite <path> if it exists (it is made 0600 first)
  -h, --help  show this help and exit`;

/** A command line that cannot be run. */
export class KeygenUsageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "KeygenUsageError";
  }
}

/** Runs the keygen entry point with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let path: string;
  let force: boolean;
  try {
    const parsed = parseCommandLine(args, {
      force: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    }, KeygenUsageError);
    if (parsed.values.help) {
      console.log(KEYGEN_USAGE);
      return 0;
    }
    const [first, ...extra] = parsed.positionals;
    if (first === undefined) throw new KeygenUsageError("expected the path of the key file");
    if (extra.length > 0) throw new KeygenUsageError(`unexpected argument "${extra[0]}"`);
    path = first;
    force = parsed.values.force ?? false;
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n\n${KEYGEN_USAGE}`);
    return 2;
  }
  try {
    await writeKeyFile(path, force);
  } catch (err) {
    if (!(err instanceof KeyFileError)) throw err;
    console.error(`error: ${err.message}`);
    return 1;
  }
  console.log(`wrote a new cluster key to ${path} (mode 0600)`);
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
