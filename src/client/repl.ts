/**
 * The interactive client: reads command lines, runs them with a {@link LamportClient}, and prints
 * the answers the way `redis-cli` does. Also home of the pieces the one-shot command line shares
 * with it: command parsing ({@link parseClientCommand}), line splitting ({@link splitLine}), value
 * quoting ({@link quoteByteString}) and the status table ({@link formatStatusTable}).
 *
 * @module
 */
import * as readline from "node:readline";
import type { Readable, Writable } from "node:stream";
import type { ByteString } from "../core/types.ts";
import { splitInlineArgs } from "../net/resp.ts";
import { byteStringToUtf8, utf8ToByteString } from "../kv/bytes.ts";
import type { ReplicaAddress } from "../config/config.ts";
import { ClientError, type LamportClient, type ReplicaReport, type SwitchEvent } from "./client.ts";

/** One command of the client, parsed. */
export type ClientCommand =
  | { kind: "put"; key: ByteString; value: ByteString }
  | { kind: "get"; key: ByteString }
  | { kind: "delete"; key: ByteString }
  | { kind: "has"; key: ByteString }
  | { kind: "status" }
  | { kind: "help" }
  | { kind: "quit" };

/** A command line that cannot be run: unknown command, wrong arguments, unbalanced quotes. */
export class UsageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

interface CommandSpec {
  kind: ClientCommand["kind"];
  args: string[];
}

const COMMANDS: Record<string, CommandSpec> = {
  put: { kind: "put", args: ["key", "value"] },
  set: { kind: "put", args: ["key", "value"] },
  get: { kind: "get", args: ["key"] },
  delete: { kind: "delete", args: ["key"] },
  del: { kind: "delete", args: ["key"] },
  has: { kind: "has", args: ["key"] },
  exists: { kind: "has", args: ["key"] },
  status: { kind: "status", args: [] },
  help: { kind: "help", args: [] },
  quit: { kind: "quit", args: [] },
  exit: { kind: "quit", args: [] },
};

/** The REPL's `help` text. */
export const REPL_HELP = `Commands (names are case-insensitive):
  put <key> <value>   store a value (alias: set)                  -> OK
  get <key>           read a value                                -> "value" or (nil)
  delete <key>        delete a key (alias: del)                   -> (integer) 1 if it existed, else 0
  has <key>           does the key exist? (alias: exists)         -> (integer) 1 or 0
  status              INFO of every replica as a table
  help                this text
  quit, exit          leave (Ctrl-D and Ctrl-C too)
Arguments may be quoted: "a b\\n\\x00" understands \\n \\r \\t \\b \\a \\\\ \\" \\xHH; 'a b' only \\'.
Values are shown as UTF-8 text in quotes; other bytes are escaped as \\xHH.`;

/**
 * Parses a command's words (the first is the command name, any case).
 *
 * @throws {UsageError} for an empty line, an unknown command or a wrong number of arguments.
 */
export function parseClientCommand(argv: ByteString[]): ClientCommand {
  if (argv.length === 0) throw new UsageError("no command given");
  const name = argv[0].toLowerCase();
  const spec = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!spec) {
    throw new UsageError(`unknown command '${byteStringToUtf8(argv[0])}' (try "help")`);
  }
  const args = argv.slice(1);
  if (args.length !== spec.args.length) {
    const usage = [name, ...spec.args.map((a) => `<${a}>`)].join(" ");
    throw new UsageError(`wrong number of arguments for '${name}' (usage: ${usage})`);
  }
  switch (spec.kind) {
    case "put":
      return { kind: "put", key: args[0], value: args[1] };
    case "get":
    case "delete":
    case "has":
      return { kind: spec.kind, key: args[0] };
    case "status":
    case "help":
    case "quit":
      return { kind: spec.kind };
  }
}

/**
 * Splits a typed line into arguments like `redis-cli` (see `splitInlineArgs` in
 * `src/net/resp.ts`): the text is taken as UTF-8 and `\xHH` escapes give raw bytes.
 *
 * @throws {UsageError} on unbalanced quotes or a closing quote not followed by a space.
 */
export function splitLine(line: string): ByteString[] {
  const bytes = new TextEncoder().encode(line);
  const args = splitInlineArgs(bytes, 0, bytes.length);
  if (args === null) {
    throw new UsageError("unbalanced quotes (or a closing quote not followed by a space)");
  }
  return args;
}

const ESCAPES: Record<number, string> = {
  0x5c: "\\\\",
  0x22: '\\"',
  0x0a: "\\n",
  0x0d: "\\r",
  0x09: "\\t",
  0x07: "\\a",
  0x08: "\\b",
};

/**
 * Quotes a byte string for display the way `redis-cli` does (`"a\x00b"`), except that valid
 * UTF-8 sequences are shown as the characters they encode. Control bytes, DEL, C1 controls and
 * bytes that are not valid UTF-8 are shown as `\xHH`; `"` and `\` are escaped. Typing the result
 * back into the REPL gives the original bytes.
 */
export function quoteByteString(s: ByteString): string {
  let out = '"';
  let i = 0;
  while (i < s.length) {
    const b = s.charCodeAt(i);
    if (b < 0x80) {
      const escape = ESCAPES[b];
      if (escape !== undefined) out += escape;
      else if (b < 0x20 || b === 0x7f) out += hexByte(b);
      else out += s[i];
      i++;
      continue;
    }
    const length = utf8SequenceLength(s, i);
    const cp = length === 0 ? -1 : decodeUtf8At(s, i, length);
    // Invalid bytes, C1 controls and invisible separators are escaped byte by byte.
    if (cp < 0xa0 || cp === 0x2028 || cp === 0x2029 || cp === 0xfeff) {
      for (let k = 0; k < Math.max(length, 1); k++) out += hexByte(s.charCodeAt(i + k));
    } else {
      out += String.fromCodePoint(cp);
    }
    i += Math.max(length, 1);
  }
  return out + '"';
}

/** A GET result as the REPL shows it: the quoted value, or `(nil)`. */
export function formatValue(value: ByteString | null): string {
  return value === null ? "(nil)" : quoteByteString(value);
}

function hexByte(b: number): string {
  return "\\x" + b.toString(16).padStart(2, "0");
}

/** Length of the valid (shortest-form, non-surrogate) UTF-8 sequence at `i`, or 0. */
function utf8SequenceLength(s: ByteString, i: number): number {
  const b0 = s.charCodeAt(i);
  let length: number;
  let min: number;
  if (b0 >= 0xc2 && b0 <= 0xdf) [length, min] = [2, 0x80];
  else if (b0 >= 0xe0 && b0 <= 0xef) [length, min] = [3, 0x800];
  else if (b0 >= 0xf0 && b0 <= 0xf4) [length, min] = [4, 0x10000];
  else return 0;
  if (i + length > s.length) return 0;
  for (let k = 1; k < length; k++) {
    if ((s.charCodeAt(i + k) & 0xc0) !== 0x80) return 0;
  }
  const cp = decodeUtf8At(s, i, length);
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return length;
}

function decodeUtf8At(s: ByteString, i: number, length: number): number {
  const b0 = s.charCodeAt(i);
  let cp = length === 2 ? b0 & 0x1f : length === 3 ? b0 & 0x0f : b0 & 0x07;
  for (let k = 1; k < length; k++) cp = (cp << 6) | (s.charCodeAt(i + k) & 0x3f);
  return cp;
}

/** `host:port` of a replica's client port. */
export function replicaAddressText(replica: ReplicaAddress): string {
  return `${replica.host}:${replica.clientPort}`;
}

const SWITCH_WHY: Record<SwitchEvent["reason"], string> = {
  unreachable: "is unreachable",
  timeout: "did not answer in time",
  noquorum: "cannot reach a quorum",
  unknown: "could not tell the outcome",
};

/**
 * The line announcing a replica switch, e.g.
 * `replica 1 (127.0.0.1:7001) is unreachable; switched to replica 2 (127.0.0.1:7002)`.
 */
export function describeSwitch(event: SwitchEvent): string {
  const to = `replica ${event.to.id} (${replicaAddressText(event.to)})`;
  if (!event.from) return `connected to ${to}`;
  const from = `replica ${event.from.id} (${replicaAddressText(event.from)})`;
  return `${from} ${SWITCH_WHY[event.reason]}; switched to ${to}`;
}

/** An error as one line: `NOQUORUM: ...` for client errors, else the message. */
export function formatError(err: unknown): string {
  if (err instanceof ClientError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

const STATUS_COLUMNS = [
  "id",
  "address",
  "reachable",
  "view",
  "state",
  "members",
  "clock",
  "delivered",
  "holdback",
  "keys",
  "digest",
] as const;

/** Marks a digest that differs from the majority at the same delivered index. */
export const DIGEST_MISMATCH_MARK = " *";

/** Marks a reachable replica that is not normal in the majority's view. */
export const OUTSIDE_VIEW_MARK = " !";

/**
 * The view that a majority of the configured replicas (all of `reports`) say they are normal in,
 * or null when no view has a majority (then the cluster cannot serve).
 */
export function majorityView(reports: ReplicaReport[]): string | null {
  const counts = new Map<string, number>();
  for (const r of reports) {
    if (!r.reachable || !r.info?.view || (r.info.state ?? "normal") !== "normal") continue;
    counts.set(r.info.view, (counts.get(r.info.view) ?? 0) + 1);
  }
  for (const [view, count] of counts) if (count * 2 > reports.length) return view;
  return null;
}

/**
 * The `status` table: one row per replica with its INFO fields (`-` when unreachable). Among the
 * reachable replicas at the same delivered index, a digest that differs from the majority's (or
 * every digest, when there is no majority) is marked with {@link DIGEST_MISMATCH_MARK}, and a
 * footnote explains the mark.
 */
export function formatStatusTable(reports: ReplicaReport[]): string {
  const suspicious = digestMismatches(reports);
  const view = majorityView(reports);
  const outside = new Set(
    reports.flatMap((r, i) =>
      r.reachable && r.info && (r.info.view !== view || (r.info.state ?? "normal") !== "normal")
        ? [i]
        : []
    ),
  );
  const rows: string[][] = reports.map((report, i) => {
    const info = report.info ?? {};
    return STATUS_COLUMNS.map((column): string => {
      switch (column) {
        case "id":
          return String(report.replica.id);
        case "address":
          return replicaAddressText(report.replica);
        case "reachable":
          return report.reachable ? "yes" : "no";
        case "digest": {
          const digest = info.digest ?? "-";
          return suspicious.has(i) ? digest + DIGEST_MISMATCH_MARK : digest;
        }
        case "view": {
          const v = info.view ?? "-";
          return outside.has(i) && view !== null ? v + OUTSIDE_VIEW_MARK : v;
        }
        default:
          return info[column] ?? "-";
      }
    });
  });
  const table = [STATUS_COLUMNS.map((c) => c), ...rows];
  const widths = STATUS_COLUMNS.map((_, c) => Math.max(...table.map((row) => row[c].length)));
  const lines = table.map((row) =>
    row.map((cell, c) => c === row.length - 1 ? cell : cell.padEnd(widths[c])).join("  ")
  );
  if (suspicious.size > 0) {
    lines.push("*" + " digest differs from the majority of replicas at the same delivered index");
  }
  for (const r of reports) if (r.error) lines.push(`replica ${r.replica.id}: ${r.error}`);
  if (view === null && reports.some((r) => r.reachable)) {
    lines.push(
      `no view has a majority of the ${reports.length} replicas: the cluster cannot serve now`,
    );
  } else if (view !== null && outside.size > 0) {
    lines.push(`! not serving in the majority's view ${view} (cut off, paused, or catching up)`);
  }
  return lines.join("\n");
}

/** Indexes (into `reports`) of digests that differ from the majority at their delivered index. */
export function digestMismatches(reports: ReplicaReport[]): Set<number> {
  const groups = new Map<string, number[]>();
  reports.forEach((report, i) => {
    const delivered = report.info?.delivered;
    if (!report.reachable || delivered === undefined || report.info?.digest === undefined) return;
    const group = groups.get(delivered) ?? [];
    group.push(i);
    groups.set(delivered, group);
  });
  const out = new Set<number>();
  for (const group of groups.values()) {
    const counts = new Map<string, number>();
    for (const i of group) {
      const digest = reports[i].info!.digest;
      counts.set(digest, (counts.get(digest) ?? 0) + 1);
    }
    if (counts.size < 2) continue;
    let majority: string | null = null;
    for (const [digest, count] of counts) if (count * 2 > group.length) majority = digest;
    for (const i of group) if (reports[i].info!.digest !== majority) out.add(i);
  }
  return out;
}

/** The prompt: `lamportkv 1@127.0.0.1:7001> `, or `lamportkv (not connected)> `. */
export function promptFor(client: LamportClient): string {
  const replica = client.replicaAddress;
  if (!replica) return "lamportkv (not connected)> ";
  return `lamportkv ${replica.id}@${replicaAddressText(replica)}> `;
}

/**
 * Runs one command and returns what the REPL prints for it (errors are thrown, not formatted).
 * `quit` returns an empty string; the caller stops.
 */
export async function runReplCommand(
  client: LamportClient,
  command: ClientCommand,
): Promise<string> {
  switch (command.kind) {
    case "put":
      await client.put(command.key, command.value);
      return "OK";
    case "get":
      return formatValue(await client.get(command.key));
    case "delete":
      return `(integer) ${(await client.delete(command.key)) ? 1 : 0}`;
    case "has":
      return `(integer) ${(await client.has(command.key)) ? 1 : 0}`;
    case "status":
      return formatStatusTable(await client.statusAll());
    case "help":
      return REPL_HELP;
    case "quit":
      return "";
  }
}

/** Options of {@link runRepl}. */
export interface ReplOptions {
  /** The client to use (connected or not); the REPL closes it when the user presses Ctrl-C. */
  client: LamportClient;
  /** Where lines come from (e.g. `process.stdin`). */
  input: Readable;
  /** Where prompts and answers go (e.g. `process.stdout`). */
  output: Writable;
  /** Whether `input`/`output` are a terminal (line editing, arrow-key history). */
  terminal?: boolean;
  /** Lines of history kept in memory (default 1000). */
  historySize?: number;
  /**
   * Called with a function that ends the REPL as Ctrl-C does (closes the client, which aborts a
   * running command); the CLI wires it to the SIGINT signal when stdin is not a terminal.
   */
  onStopper?: (stop: () => void) => void;
}

/**
 * Runs the interactive loop until `quit`/`exit`, end of input (Ctrl-D) or Ctrl-C. Announces
 * replica switches while it runs. Resolves when the loop has ended; never rejects for command
 * errors (they are printed as `(error) ...`).
 */
export async function runRepl(options: ReplOptions): Promise<void> {
  const { client, input, output } = options;
  const terminal = options.terminal ?? false;
  const rl = readline.createInterface({
    input,
    output,
    terminal,
    historySize: options.historySize ?? 1000,
    prompt: promptFor(client),
  });
  const print = (text: string): void => {
    output.write(text + "\n");
  };
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    if (terminal) output.write("\n");
    rl.close();
    void client.close();
  };
  rl.on("SIGINT", stop);
  options.onStopper?.(stop);
  const previousOnSwitch = client.onSwitch;
  client.onSwitch = (event) => print(describeSwitch(event));
  // Prompts only make sense for a person at a terminal; piped input gets just the answers.
  const prompt = (): void => {
    if (!terminal) return;
    rl.setPrompt(promptFor(client));
    rl.prompt();
  };
  let quit = false;
  try {
    prompt();
    for await (const line of rl) {
      if (stopped) break;
      let argv: ByteString[];
      let command: ClientCommand | null = null;
      try {
        argv = splitLine(line);
        if (argv.length > 0) command = parseClientCommand(argv);
      } catch (err) {
        print(`(error) ${formatError(err)}`);
      }
      if (command?.kind === "quit") {
        quit = true;
        break;
      }
      if (command) {
        try {
          print(await runReplCommand(client, command));
        } catch (err) {
          if (stopped) break;
          print(`(error) ${formatError(err)}`);
        }
      }
      if (stopped) break;
      prompt();
    }
    if (terminal && !quit && !stopped) output.write("\n"); // Ctrl-D: end the prompt line
  } finally {
    client.onSwitch = previousOnSwitch;
    rl.close();
  }
}

/** Converts shell arguments (text) to byte strings (UTF-8). */
export function argsToByteStrings(args: string[]): ByteString[] {
  return args.map(utf8ToByteString);
}
