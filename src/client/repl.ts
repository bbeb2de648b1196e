/**
 * The interactive client: reads command lines, sends every one that is not its own (`status`,
 * `members`, `add`, `remove`, `promote`, `help`, `quit`/`exit`) to the cluster with {@link LamportClient.command}, and prints the replies
 * the way `redis-cli` does in a terminal. Tab completes command names. Also home of the pieces
 * the one-shot command line shares with it: line splitting ({@link splitLine}), error lines
 * ({@link formatError}) and the status table ({@link formatStatusTable}).
 *
 * @module
 */
import * as readline from "node:readline";
import type { Readable, Writable } from "node:stream";
import type { ByteString } from "../core/types.ts";
import { RespError, splitInlineArgs, type TaggedRespValue } from "../net/resp.ts";
import { byteStringToUtf8, utf8ToByteString } from "../kv/bytes.ts";
import type { ReplicaAddress } from "../config/config.ts";
import { ClientError, type LamportClient, type ReplicaReport, type SwitchEvent } from "./client.ts";
import {
  arityError,
  clientArityError,
  clientCommand,
  type ClientCommandSpec,
  clientHelp,
  completeLine,
  isHelpRequest,
  REPL_COMMANDS,
  REPL_HELP_NOTES,
  topicHelp,
} from "./commands.ts";
import { formatReply } from "./display.ts";
import { MEMBERSHIP_NAMES, membershipArgsError, runMembershipCommand } from "./admin.ts";

/** A command line that cannot be run: unknown command, wrong arguments, unbalanced quotes. */
export class UsageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
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

/** `host:port` of a replica's client port. */
export function replicaAddressText(replica: ReplicaAddress): string {
  return `${replica.host}:${replica.clientPort}`;
}

/** Why a replica was left (a MOVED or ASK redirection is announced as redis-cli -c does). */
const SWITCH_WHY: Record<Exclude<SwitchEvent["reason"], "moved" | "ask">, string> = {
  unreachable: "is unreachable",
  timeout: "did not answer in time",
  noquorum: "cannot reach a quorum",
  unknown: "could not tell the outcome",
  notmember: "is not a member of the cluster",
  readonly: "is a learner (read-only)",
};

/**
 * The line announcing a replica switch, e.g.
 * `replica 1 (127.0.0.1:7001) is unreachable; switched to replica 2 (127.0.0.1:7002)`.
 */
export function describeSwitch(event: SwitchEvent): string {
  const to = `replica ${event.to.id} (${replicaAddressText(event.to)})`;
  if (!event.from) return `connected to ${to}`;
  if (event.reason === "moved" || event.reason === "ask") {
    // As redis-cli -c says it.
    const slot = event.detail.replace(/^slot /, "");
    return `-> Redirected to slot [${slot}] located at ${replicaAddressText(event.to)} ` +
      `(replica ${event.to.id}${event.to.group === undefined ? "" : `, group ${event.to.group}`})`;
  }
  const from = `replica ${event.from.id} (${replicaAddressText(event.from)})`;
  return `${from} ${SWITCH_WHY[event.reason]}; switched to ${to}`;
}

/**
 * An error as one line: for a client error its code, message and what it promises about the
 * command (`NOQUORUM: ... (it was not applied)`, `TIMEOUT: ... (it may have been applied)`);
 * else the message.
 */
export function formatError(err: unknown): string {
  if (err instanceof ClientError) {
    const promise = err.maybeApplied ? "it may have been applied" : "it was not applied";
    const text = err.message.includes(promise) ? err.message : `${err.message} (${promise})`;
    return `${err.code}: ${text}`;
  }
  return err instanceof Error ? err.message : String(err);
}

const STATUS_COLUMNS = [
  "id",
  "address",
  "reachable",
  "view",
  "state",
  "role",
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
 * The configuration in force as the reachable replicas' INFO reports it (`voters`, `learners`:
 * the one most of them report), or null when none reports it (an older server).
 */
export function reportedConfiguration(
  reports: ReplicaReport[],
): { voters: number[]; learners: number[] } | null {
  const counts = new Map<string, number>();
  for (const r of reports) {
    const voters = r.info?.voters;
    if (!r.reachable || voters === undefined || voters === "") continue;
    const key = `${voters}|${r.info?.learners ?? ""}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let best: string | null = null;
  for (const [key, count] of counts) if (best === null || count > counts.get(best)!) best = key;
  if (best === null) return null;
  const ids = (text: string) => text.split(",").filter((x) => x !== "").map(Number);
  const [voters, learners] = best.split("|");
  return { voters: ids(voters), learners: ids(learners) };
}

/**
 * The view that a majority of the voters say they are normal in, or null when no view has a
 * majority (then the cluster cannot serve). The voters are those INFO reports (see
 * {@link reportedConfiguration}), or else every replica of `reports`.
 */
export function majorityView(reports: ReplicaReport[]): string | null {
  const config = reportedConfiguration(reports);
  const voters = config === null ? null : new Set(config.voters);
  const counts = new Map<string, number>();
  for (const r of reports) {
    if (!r.reachable || !r.info?.view || (r.info.state ?? "normal") !== "normal") continue;
    if (voters !== null && !voters.has(r.replica.id)) continue;
    counts.set(r.info.view, (counts.get(r.info.view) ?? 0) + 1);
  }
  const total = voters?.size ?? reports.length;
  for (const [view, count] of counts) if (count * 2 > total) return view;
  return null;
}

/**
 * The `status` table: one row per replica with its INFO fields (`-` when unreachable). Among the
 * reachable replicas at the same delivered index, a digest that differs from the majority's (or
 * every digest, when there is no majority) is marked with {@link DIGEST_MISMATCH_MARK}, and a
 * footnote explains the mark. `group`: the group of a sharded cluster the reports are of (a last
 * line says so).
 */
export function formatStatusTable(reports: ReplicaReport[], group?: string): string {
  const suspicious = digestMismatches(reports);
  const view = majorityView(reports);
  const outside = new Set(
    reports.flatMap((r, i) =>
      r.reachable && r.info && r.info.replica_role !== "none" &&
        (r.info.view !== view || (r.info.state ?? "normal") !== "normal")
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
        case "role":
          // An older server has no lamportkv role (its replication section says "master").
          return info.replica_role ?? "-";
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
  const config = reportedConfiguration(reports);
  if (config !== null) {
    lines.push(
      `configuration: voters ${config.voters.join(",")}; learners ` +
        (config.learners.length === 0 ? "none" : config.learners.join(",")),
    );
  }
  if (view === null && reports.some((r) => r.reachable)) {
    const of = config === null ? `${reports.length} replicas` : `${config.voters.length} voters`;
    lines.push(`no view has a majority of the ${of}: the cluster cannot serve now`);
  } else if (view !== null && outside.size > 0) {
    lines.push(`! not serving in the majority's view ${view} (cut off, paused, or catching up)`);
  }
  if (group !== undefined) {
    lines.push(`group ${group} only (each group is a replica set of its own; -r <id> for another)`);
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

/**
 * What the REPL knows of its connection's session on the replica, tracked from the commands it
 * sent and their replies as `redis-cli` tracks MULTI: inside MULTI, and keys watched. While
 * either holds, commands are sent on that connection only (see `CommandOptions.session`): on
 * another replica they would run outside the transaction.
 */
export class ReplSession {
  /** Between a successful MULTI and its EXEC or DISCARD. */
  inMulti = false;
  /** After a successful WATCH, until EXEC, DISCARD, UNWATCH or RESET. */
  watching = false;

  /** True while the connection holds state that another replica would not have. */
  get active(): boolean {
    return this.inMulti || this.watching;
  }

  /** Notes that `argv` got `reply`. */
  update(argv: readonly ByteString[], reply: TaggedRespValue): void {
    const ok = !(reply instanceof RespError);
    const alone = argv.length === 1;
    switch (argv[0].toLowerCase()) {
      case "multi":
        if (ok && alone) this.inMulti = true;
        break;
      case "exec": // ends the transaction, even with an error (EXECABORT)
        if (alone) this.inMulti = this.watching = false;
        break;
      case "discard":
      case "reset":
        if (ok && alone) this.inMulti = this.watching = false;
        break;
      case "watch":
        if (ok) this.watching = true;
        break;
      case "unwatch":
        if (ok) this.watching = false;
        break;
    }
  }

  /** Forgets everything: the connection holding the session is gone. */
  lost(): void {
    this.inMulti = this.watching = false;
  }
}

/**
 * The prompt: `lamportkv 1@127.0.0.1:7001> `, `lamportkv 1@127.0.0.1:7001(TX)> ` inside MULTI
 * (as redis-cli marks it), or `lamportkv (not connected)> `; logged in as another user than
 * `default`, its name comes first: `lamportkv alice:1@127.0.0.1:7001> `.
 */
export function promptFor(client: LamportClient, session?: ReplSession): string {
  const replica = client.replicaAddress;
  const who = client.user === "default" ? "" : `${client.user}:`;
  if (!replica) return `lamportkv ${who}(not connected)> `;
  const tx = session?.inMulti ? "(TX)" : "";
  return `lamportkv ${who}${replica.id}@${replicaAddressText(replica)}${tx}> `;
}

/** True for a line the REPL ends on (`quit`, `exit`, any case, no arguments). */
export function isQuit(argv: readonly ByteString[]): boolean {
  const own = argv.length === 1 ? clientCommand(REPL_COMMANDS, argv[0]) : undefined;
  return own?.name === "quit" || own?.name === "exit";
}

/**
 * Runs one command line (not empty, not {@link isQuit}) and returns what the REPL prints for
 * it: the REPL's own commands run here, any other line goes to the cluster and its reply is
 * formatted as redis-cli formats it (error replies too: `(error) ERR ...`). A wrong number of
 * arguments is answered here, as the server would, except inside a transaction, where the
 * server must see it to abort EXEC. Failures of the client itself are thrown.
 *
 * @throws {ClientError} when no replica could answer, or the connection holding a session (see
 * {@link ReplSession}) is gone; the session is then forgotten.
 */
export async function runReplCommand(
  client: LamportClient,
  argv: ByteString[],
  session: ReplSession = new ReplSession(),
): Promise<string> {
  const own = clientCommand(REPL_COMMANDS, argv[0]);
  if (own !== undefined) {
    if (isHelpRequest(own, argv)) return topicHelp(REPL_COMMANDS, own.name) ?? "";
    const membership = MEMBERSHIP_NAMES.has(own.name);
    const bad = clientArityError(own, argv.length);
    if (bad) return formatReply(bad) + (membership ? `\n${usageOf(own)}` : "");
    if (own.name === "status") {
      return formatStatusTable(await client.statusAll(), client.group);
    }
    if (membership) {
      const wrong = membershipArgsError(own.name, argv);
      if (wrong !== null) return formatReply(new RespError(wrong)) + `\n${usageOf(own)}`;
      const result = await runMembershipCommand(client, own.name, argv);
      return typeof result === "string" ? result : formatReply(result);
    }
    if (own.name === "help") {
      if (argv.length === 1) return clientHelp(REPL_COMMANDS, REPL_HELP_NOTES);
      return topicHelp(REPL_COMMANDS, argv[1]) ??
        formatReply(new RespError(`ERR no help for '${byteStringToUtf8(argv[1])}' (try "help")`));
    }
    return "";
  }
  const bad = session.inMulti ? null : arityError(argv);
  if (bad) return formatReply(bad);
  let reply: TaggedRespValue;
  try {
    reply = await client.command(argv, { tagStatus: true, session: session.active });
  } catch (err) {
    if (!session.active || !(err instanceof ClientError)) throw err;
    session.lost();
    throw new ClientError(
      err.code,
      `${err.message}; the transaction and watched keys are gone with the connection`,
      err.maybeApplied,
    );
  }
  session.update(argv, reply);
  return formatReply(reply);
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

/** `usage: ADD <id> ...`: the line shown after a client command's wrong arguments. */
export function usageOf(spec: ClientCommandSpec): string {
  return `usage: ${spec.name.toUpperCase()}${spec.syntax === "" ? "" : " " + spec.syntax}`;
}

/**
 * Runs the interactive loop until `quit`/`exit`, end of input (Ctrl-D) or Ctrl-C. Announces
 * replica switches while it runs. Resolves when the loop has ended; never rejects for command
 * errors (they are printed as `(error) ...`).
 */
export async function runRepl(options: ReplOptions): Promise<void> {
  const { client, input, output } = options;
  const terminal = options.terminal ?? false;
  const session = new ReplSession();
  const rl = readline.createInterface({
    input,
    output,
    terminal,
    historySize: options.historySize ?? 1000,
    prompt: promptFor(client, session),
    completer: (line: string) => completeLine(REPL_COMMANDS, line),
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
    rl.setPrompt(promptFor(client, session));
    rl.prompt();
  };
  let quit = false;
  try {
    prompt();
    for await (const line of rl) {
      if (stopped) break;
      let argv: ByteString[] = [];
      try {
        argv = splitLine(line);
      } catch (err) {
        print(`(error) ${formatError(err)}`);
      }
      if (isQuit(argv)) {
        quit = true;
        break;
      }
      if (argv.length > 0) {
        try {
          print(await runReplCommand(client, argv, session));
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
