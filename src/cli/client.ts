/**
 * `deno task client <config> [options] [<command> <args...>]`: the lamportkv command-line client.
 * With a command it runs it once and exits; without one it starts the interactive REPL. Run with
 * `--help` for the details.
 *
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { ConfigError, findReplica, loadConfig } from "../config/config.ts";
import { integerInRange } from "./options.ts";
import type { ReplicaId } from "../core/types.ts";
import { byteStringToBytes } from "../kv/bytes.ts";
import { ClientError, DEFAULT_DEADLINE_MS, LamportClient } from "../client/client.ts";
import {
  argsToByteStrings,
  type ClientCommand,
  describeSwitch,
  formatError,
  formatStatusTable,
  parseClientCommand,
  REPL_HELP,
  replicaAddressText,
  runRepl,
  UsageError,
} from "../client/repl.ts";

/** The `--help` text. */
export const USAGE = `Usage: deno task client <config> [options] [<command> [<args>...]]

The lamportkv client. <config> is the cluster config file (the same one the replicas read). It
connects to the first reachable replica (or the one given with --replica) and fails over to the
next one when a replica stops answering, resending the request so it is applied exactly once.

Options (they go before the command):
  -r, --replica <id>   try this replica first
  -t, --timeout <ms>   deadline of each operation, failover included (default ${DEFAULT_DEADLINE_MS})
  -h, --help           show this help

With a command, run it once and print the result for scripts (names are case-insensitive):
  put <key> <value>    store a value (alias: set)                  prints OK
  get <key>            read a value                                prints the raw value bytes and
                                                                   a newline, or (nil) when absent
  delete <key>         delete a key (alias: del)                   prints 1 if it existed, else 0
  has <key>            does the key exist? (alias: exists)         prints 1 or 0
  status               INFO of every replica as a table (exit status 1 if none is reachable)
Keys and values are taken as UTF-8 text, literally: words after the command are never options
(\`put k -1\` stores "-1"). Use \`has\` to tell a missing key from the value "(nil)".

Without a command, start the interactive shell (Ctrl-D or Ctrl-C to leave, "help" for its
commands; arguments may be quoted as in redis-cli).

Exit status: 0 success, 1 the operation failed (message on stderr), 2 bad usage or config.`;

interface Invocation {
  help: boolean;
  configPath: string | undefined;
  replica: ReplicaId | undefined;
  timeoutMs: number;
  command: string[];
}

const OPTIONS = {
  replica: { type: "string", short: "r" },
  timeout: { type: "string", short: "t" },
  help: { type: "boolean", short: "h" },
} as const;

/** The spellings of the options that take a value (`-r`, `--replica`, ...). */
const VALUE_OPTIONS = new Set(
  Object.entries(OPTIONS).flatMap(([name, o]) =>
    o.type === "string" ? [`--${name}`, `-${o.short}`] : []
  ),
);

/**
 * Parses the command line. Options are read up to the command (the second positional); the
 * command and its arguments are taken literally.
 *
 * @throws {UsageError} on unknown options or bad values.
 */
export function parseInvocation(args: string[]): Invocation {
  // Find where the command starts: after the config path and the options before it.
  let positionals = 0;
  let split = args.length;
  let afterDashDash = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!afterDashDash && arg === "--") {
      afterDashDash = true;
      continue;
    }
    if (!afterDashDash && arg.startsWith("-") && arg !== "-") {
      if (VALUE_OPTIONS.has(arg)) i++;
      continue;
    }
    positionals++;
    if (positionals === 2) {
      split = i;
      break;
    }
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: args.slice(0, split),
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals: head } = parsed;
  let replica: ReplicaId | undefined;
  if (values.replica !== undefined) {
    const id = integerInRange(values.replica, 1);
    if (id === null) {
      throw new UsageError(`--replica must be a positive integer, got "${values.replica}"`);
    }
    replica = id;
  }
  let timeoutMs = DEFAULT_DEADLINE_MS;
  if (values.timeout !== undefined) {
    const ms = integerInRange(values.timeout, 1);
    if (ms === null) {
      throw new UsageError(`--timeout must be a positive number of ms, got "${values.timeout}"`);
    }
    timeoutMs = ms;
  }
  return {
    help: values.help === true,
    configPath: head[0],
    replica,
    timeoutMs,
    command: args.slice(split),
  };
}

async function writeAll(writer: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  let written = 0;
  while (written < bytes.length) written += await writer.write(bytes.subarray(written));
}

const encoder = new TextEncoder();

/** Prints one line of text on stdout. */
function out(text: string): Promise<void> {
  return writeAll(Deno.stdout, encoder.encode(text + "\n"));
}

/** Prints one line of text on stderr (synchronously, so nothing is lost at exit). */
function err(text: string): void {
  const bytes = encoder.encode(text + "\n");
  let written = 0;
  while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
}

/** Runs one command for scripts; returns the exit status. */
async function runOnce(client: LamportClient, command: ClientCommand): Promise<number> {
  switch (command.kind) {
    case "put":
      await client.put(command.key, command.value);
      await out("OK");
      return 0;
    case "get": {
      const value = await client.get(command.key);
      if (value === null) {
        await out("(nil)");
      } else {
        await writeAll(Deno.stdout, byteStringToBytes(value + "\n"));
      }
      return 0;
    }
    case "delete":
      await out((await client.delete(command.key)) ? "1" : "0");
      return 0;
    case "has":
      await out((await client.has(command.key)) ? "1" : "0");
      return 0;
    case "status": {
      const reports = await client.statusAll();
      await out(formatStatusTable(reports));
      return reports.some((r) => r.reachable) ? 0 : 1;
    }
    case "help":
      await out(REPL_HELP);
      return 0;
    case "quit":
      return 0;
  }
}

/** The client's entry point: runs with `args` and returns the exit status. */
export async function main(args: string[]): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseInvocation(args);
  } catch (e) {
    err(`lamportkv client: ${formatError(e)}\n(run with --help for usage)`);
    return 2;
  }
  if (invocation.help) {
    await out(USAGE);
    return 0;
  }
  if (invocation.configPath === undefined) {
    err(`lamportkv client: missing <config>\n(run with --help for usage)`);
    return 2;
  }

  let command: ClientCommand | null = null;
  if (invocation.command.length > 0) {
    try {
      command = parseClientCommand(argsToByteStrings(invocation.command));
    } catch (e) {
      err(`lamportkv client: ${formatError(e)}\n(run with --help for usage)`);
      return 2;
    }
  }

  let client: LamportClient;
  try {
    const config = await loadConfig(invocation.configPath);
    if (invocation.replica !== undefined) findReplica(config, invocation.replica);
    client = new LamportClient(config, {
      preferredReplica: invocation.replica,
      deadlineMs: invocation.timeoutMs,
      onSwitch: (event) => err(describeSwitch(event)),
    });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err(`lamportkv client: ${e.message}`);
    return 2;
  }

  try {
    if (command !== null) return await runOnce(client, command);
    return await interactive(client);
  } catch (e) {
    if (!(e instanceof ClientError)) throw e;
    err(`lamportkv client: ${formatError(e)}`);
    return 1;
  } finally {
    await client.close();
  }
}

async function interactive(client: LamportClient): Promise<number> {
  const terminal = Deno.stdin.isTerminal();
  try {
    await client.connect();
  } catch (e) {
    if (!(e instanceof ClientError)) throw e;
    err(`warning: ${e.message}; will retry on the first command`);
  }
  if (terminal && client.replicaAddress) {
    const replica = client.replicaAddress;
    err(
      `connected to replica ${replica.id} (${replicaAddressText(replica)}); type "help" for help`,
    );
  }
  let stopRepl: (() => void) | null = null;
  const onSignal = () => stopRepl?.();
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    await runRepl({
      client,
      input: process.stdin,
      output: process.stdout,
      terminal,
      onStopper: (stop) => (stopRepl = stop),
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  return 0;
}

if (import.meta.main) {
  const status = await main(Deno.args);
  Deno.exit(status);
}
