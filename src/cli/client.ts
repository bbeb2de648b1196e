/**
 * `deno task client <config> [options] [<command> <args...>]`: the lamportkv command-line client.
 * With a command it runs it once and exits; without one it starts the interactive REPL. Run with
 * `--help` for the details.
 *
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { type ClusterConfig, ConfigError, findReplica, loadConfig } from "../config/config.ts";
import { integerInRange } from "../config/command_line.ts";
import type { ByteString, ReplicaId } from "../core/types.ts";
import { bytesToByteString, byteStringToBytes, byteStringToUtf8 } from "../kv/bytes.ts";
import { COMMANDS } from "../kv/commands/index.ts";
import { RespError, type TaggedRespValue } from "../net/resp.ts";
import { ClientError, DEFAULT_DEADLINE_MS, LamportClient } from "../client/client.ts";
import {
  argsToByteStrings,
  describeSwitch,
  formatError,
  formatStatusTable,
  replicaAddressText,
  runRepl,
  UsageError,
} from "../client/repl.ts";
import {
  arityError,
  clientArityError,
  clientCommand,
  clientHelp,
  isHelpRequest,
  ONE_SHOT_COMMANDS,
  topicHelp,
} from "../client/commands.ts";
import { MEMBERSHIP_NAMES, membershipArgsError, runMembershipCommand } from "../client/admin.ts";
import { formatReplyRaw } from "../client/display.ts";
import {
  ClientGroups,
  parseReshardArgs,
  RESHARD_NAMES,
  reshardConfigError,
  ReshardUsageError,
  runReshardCommand,
} from "../client/reshard_cli.ts";
import { ReshardError } from "../client/reshard.ts";
import type { TlsClientConfig } from "../net/tls.ts";
import { writeAll } from "../write_all.ts";

/** The `--help` text. */
export const USAGE = `Usage: deno task client <config> [options] [<command> [<args>...]]
       ./lamportkv client <config> [options] [<command> [<args>...]]

The lamportkv client. <config> is the cluster config file (the same one the replicas read). It
connects to the first reachable replica (or the one given with --replica) and fails over to the
next one when a replica stops answering, resending the request so it is applied exactly once.
With a sharded config (replica lines with group=<name>) it fails over within one group and
follows -MOVED to the group owning the key's slot, as redis-cli -c does.

Options (they go before the command):
  -r, --replica <id>   try this replica first
  -t, --timeout <ms>   deadline of each command, failover included (default ${DEFAULT_DEADLINE_MS})
  -x, --stdin          read the command's last argument from stdin (all of it, bytes as they are)
  --tls                connect over TLS (replicas with tls-cert-file); the replica's certificate
                       must be valid for its host in the config (e.g. SAN IP:127.0.0.1)
  --cacert <file>      CA certificate (PEM) to check the replicas' certificates against
                       (default: the system's roots)
  --cert <file>        client certificate (PEM), for replicas with tls-auth-clients
  --key <file>         the client certificate's private key (PEM)
  -u, --user <name>    log in as this user (AUTH <name> <password>) on every connection, failover
                       included; the password comes from the LAMPORTKV_PASSWORD environment
                       variable, or else is asked for without echo when stdin is a terminal.
                       With LAMPORTKV_PASSWORD and no --user, logs in as "default".
  -h, --help           show this help

With a command, run it once and print the reply for scripts, as redis-cli does when its output
is not a terminal. Any command of the cluster may be given (names are case-insensitive; "help"
lists them, "help <command>" shows one):
  bulk or simple string   its raw bytes and a newline (get k -> v)
  integer                 its digits (incr n -> 6; delete/has -> 1 or 0)
  nil                     (nil) (get of a missing key; inside an array: an empty line)
  array                   one element per line, nested arrays flattened, an empty one as
                          nothing
  error reply             (error) <message> on stderr, exit status 1
Besides the cluster's commands:
  status                  INFO of every replica as a table, with each one's role (voter,
                          learner, none) and the configuration in force (exit status 1 if
                          none is reachable)
  members                 the configuration in force (REPLICASET MEMBERS) as a table: id,
                          address, ports, role and state of each replica
  add <id> <host> <client_port> <peer_port> [<http_port>] [learner]
                          add a replica (start it first); it becomes a voter once it has
                          caught up, unless "learner"
  remove <id>             remove a replica; answers once a view without it serves
  promote <id>            make a learner a voter
  reshard --slots <start>-<end> --to <group> [--batch <n>]
                          a sharded cluster: move the slots of the range (and their keys)
                          to <group> online; run it again to resume after an interruption
  rebalance [--batch <n>] a sharded cluster: even out the groups' slot counts, moving the
                          fewest slots (online; run it again to resume)
  help [command|@group]   the commands, or one command's syntax, summary, group and version
                          (also "<command> --help" for the ones above)
Arguments are taken as UTF-8 text, literally: words after the command are never options
(\`put k -1\` stores "-1"). Use \`has\` to tell a missing key from the value "(nil)". A wrong
number of arguments is reported without contacting the cluster (exit status 2).
  deno task client config/cluster.txt set greeting hello
  deno task client config/cluster.txt -x put big < file       (the value is the file's bytes)
  ./lamportkv client config/cluster.txt add 4 127.0.0.1 7004 8004 9004
  ./lamportkv client config/cluster.txt remove 4
The client learns the configuration in force from the replica it connects to (and again after
each failover), so a config file listing only some replicas, even removed ones, still reaches
the current members.

Without a command, start the interactive shell (Ctrl-D, Ctrl-C or "quit" to leave, "help" for
its commands, Tab completes command names; arguments may be quoted as in redis-cli).

Exit status: 0 success, 1 the command failed or got an error reply (message on stderr), 2 bad
usage or config.`;

interface Invocation {
  help: boolean;
  configPath: string | undefined;
  replica: ReplicaId | undefined;
  timeoutMs: number;
  /** `-x`: the command's last argument is read from stdin. */
  lastFromStdin: boolean;
  command: string[];
  /** `--tls` and its files (absent: plain TCP). */
  tls?: { cacert?: string; cert?: string; key?: string };
  /** `--user`: the user to log in as. */
  user?: string;
}

const OPTIONS = {
  user: { type: "string", short: "u" },
  replica: { type: "string", short: "r" },
  timeout: { type: "string", short: "t" },
  stdin: { type: "boolean", short: "x" },
  help: { type: "boolean", short: "h" },
  tls: { type: "boolean" },
  cacert: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
} as const;

/** The spellings of the options that take a value (`-r`, `--replica`, ...). */
const VALUE_OPTIONS = new Set(
  Object.entries(OPTIONS).flatMap(([name, o]) =>
    o.type !== "string" ? [] : "short" in o ? [`--${name}`, `-${o.short}`] : [`--${name}`]
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
  const command = args.slice(split);
  const lastFromStdin = values.stdin === true;
  if (lastFromStdin && command.length === 0 && values.help !== true) {
    throw new UsageError("-x needs a command (its last argument is read from stdin)");
  }
  let tls: Invocation["tls"];
  const files = { cacert: values.cacert, cert: values.cert, key: values.key };
  if (values.tls === true) {
    if ((files.cert === undefined) !== (files.key === undefined)) {
      throw new UsageError("--cert and --key go together (a certificate and its key)");
    }
    tls = Object.fromEntries(Object.entries(files).filter(([, v]) => v !== undefined));
  } else {
    const given = Object.entries(files).find(([, v]) => v !== undefined);
    if (given !== undefined) throw new UsageError(`--${given[0]} needs --tls`);
  }
  const invocation: Invocation = {
    help: values.help === true,
    configPath: head[0],
    replica,
    timeoutMs,
    lastFromStdin,
    command,
    ...(tls === undefined ? {} : { tls }),
  };
  if (values.user !== undefined) invocation.user = values.user;
  return invocation;
}

/** The environment variable the password is read from. */
export const PASSWORD_ENV = "LAMPORTKV_PASSWORD";

/**
 * Asks for a password on the terminal without echoing it (stdin in raw mode); null when the
 * user interrupts (Ctrl-C, Ctrl-D) or stdin is not a terminal.
 */
export async function promptPassword(prompt: string): Promise<string | null> {
  if (!Deno.stdin.isTerminal()) return null;
  await Deno.stderr.write(encoder.encode(prompt));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  const buf = new Uint8Array(1);
  try {
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) return null;
      const c = buf[0];
      if (c === 0x0d || c === 0x0a) break;
      if (c === 0x03 || c === 0x04) return null;
      if (c === 0x7f || c === 0x08) bytes.pop();
      else bytes.push(c);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * The credentials of an invocation: none without `--user` and {@link PASSWORD_ENV}; the password
 * from the environment, or asked for on the terminal. A UsageError when a user is given but no
 * password can be had.
 */
export async function credentials(
  user: string | undefined,
  env: string | undefined = Deno.env.get(PASSWORD_ENV),
  ask: (prompt: string) => Promise<string | null> = promptPassword,
): Promise<{ user?: string; password?: string }> {
  if (env !== undefined) return { user: user ?? "default", password: env };
  if (user === undefined) return {};
  const password = await ask(`password for ${user}: `);
  if (password === null) {
    throw new UsageError(
      `--user ${user} needs a password: set ${PASSWORD_ENV}, or run it on a terminal to be asked`,
    );
  }
  return { user, password };
}

/**
 * The TLS options of the client from the `--tls` files.
 *
 * @throws {UsageError} when a file cannot be read.
 */
export async function readTlsFiles(
  files: { cacert?: string; cert?: string; key?: string },
): Promise<TlsClientConfig> {
  const read = async (option: string, path: string | undefined) => {
    if (path === undefined) return undefined;
    try {
      return await Deno.readTextFile(path);
    } catch (e) {
      throw new UsageError(`--${option} ${path}: cannot read: ${(e as Error).message}`);
    }
  };
  const config: TlsClientConfig = {};
  const ca = await read("cacert", files.cacert);
  if (ca !== undefined) config.caCerts = [ca];
  const cert = await read("cert", files.cert);
  const key = await read("key", files.key);
  if (cert !== undefined && key !== undefined) {
    config.cert = cert;
    config.key = key;
  }
  return config;
}

const encoder = new TextEncoder();

/** Prints one line of text on stdout. */
function out(text: string): Promise<void> {
  return writeAll(Deno.stdout, encoder.encode(text + "\n"));
}

/** Prints one line of text on stderr (synchronously, so nothing is lost at exit). */
function err(text: string): void {
  writeLineSync(Deno.stderr, text);
}

/** Writes one line of text to `to` synchronously (progress lines, in order). */
function writeLineSync(to: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text + "\n");
  let written = 0;
  while (written < bytes.length) written += to.writeSync(bytes.subarray(written));
}

/**
 * What a one-shot command prints on stdout for `reply` (not an error reply): redis-cli's output
 * when it is not a terminal ({@link formatReplyRaw}) and a newline, except that a nil reply on
 * its own prints `(nil)` (redis-cli prints an empty line, which looks like an empty value).
 */
export function oneShotOutput(reply: TaggedRespValue): ByteString {
  return (reply === null ? "(nil)" : formatReplyRaw(reply)) + "\n";
}

/**
 * Runs one command for scripts; returns the exit status. `connect(id)` makes another client
 * preferring replica `id` (resharding talks to each group).
 */
async function runOnce(
  client: LamportClient,
  argv: ByteString[],
  connect: (preferredReplica: number) => LamportClient,
): Promise<number> {
  const own = clientCommand(ONE_SHOT_COMMANDS, argv[0])?.name;
  if (own !== undefined && RESHARD_NAMES.has(own)) {
    return await runReshard(client.config, argv, connect);
  }
  if (own === "status") {
    const reports = await client.statusAll();
    await out(formatStatusTable(reports, client.group));
    return reports.some((r) => r.reachable) ? 0 : 1;
  }
  if (own !== undefined && MEMBERSHIP_NAMES.has(own)) {
    const result = await runMembershipCommand(client, own, argv);
    if (result instanceof RespError) {
      err(`(error) ${result.message}`);
      return 1;
    }
    await out(result);
    return 0;
  }
  const reply = await client.command(argv, { tagStatus: true });
  if (reply instanceof RespError) {
    err(`(error) ${reply.message}`);
    return 1;
  }
  await writeAll(Deno.stdout, byteStringToBytes(oneShotOutput(reply)));
  return 0;
}

/** Runs `reshard` or `rebalance` (see `src/client/reshard_cli.ts`); returns the exit status. */
async function runReshard(
  config: ClusterConfig,
  argv: ByteString[],
  connect: (preferredReplica: number) => LamportClient,
): Promise<number> {
  const args = parseReshardArgs(argv);
  const wrong = reshardConfigError(config, args);
  if (wrong !== null) {
    err(`lamportkv client: ${wrong}`);
    return 2;
  }
  const groups = new ClientGroups(config, connect);
  try {
    await runReshardCommand(groups, args, (line) => writeLineSync(Deno.stdout, line));
    return 0;
  } catch (e) {
    if (!(e instanceof ReshardError)) throw e;
    err(`lamportkv client: ${e.message}`);
    err(`(run the same command again to resume once the cause is fixed)`);
    return 1;
  } finally {
    await groups.close();
  }
}

/**
 * Checks a one-shot command line before anything is sent: the text to print on stdout for the
 * client's `help`, a usage error for a wrong number of arguments, or null to go on and run it.
 *
 * @throws {UsageError} for a wrong number of arguments (worded as the server words it, with the
 * command's syntax).
 */
export function checkOneShot(argv: ByteString[]): string | null {
  const own = clientCommand(ONE_SHOT_COMMANDS, argv[0]);
  if (own && isHelpRequest(own, argv)) return topicHelp(ONE_SHOT_COMMANDS, own.name);
  const bad = own ? clientArityError(own, argv.length) : arityError(argv);
  const name = own?.name ?? argv[0].toLowerCase();
  const syntax = own?.syntax ?? COMMANDS.get(name)?.syntax ?? "";
  const usage = `usage: ${name.toUpperCase()}${syntax ? " " + syntax : ""}`;
  if (bad) throw new UsageError(`(error) ${bad.message}\n${usage}`);
  const wrong = own && MEMBERSHIP_NAMES.has(own.name) ? membershipArgsError(own.name, argv) : null;
  if (wrong !== null) throw new UsageError(`(error) ${wrong}\n${usage}`);
  if (own && RESHARD_NAMES.has(own.name)) {
    try {
      parseReshardArgs(argv);
    } catch (e) {
      if (!(e instanceof ReshardUsageError)) throw e;
      throw new UsageError(`(error) ${e.message}\n${usage}`);
    }
  }
  if (own?.name !== "help") return null;
  if (argv.length === 1) return clientHelp(ONE_SHOT_COMMANDS);
  const text = topicHelp(ONE_SHOT_COMMANDS, argv[1]);
  if (text === null) {
    throw new UsageError(
      `lamportkv client: no help for '${byteStringToUtf8(argv[1])}' (try "help")`,
    );
  }
  return text;
}

/** Reads all of stdin as a byte string (for `-x`). */
async function readStdin(): Promise<ByteString> {
  const bytes = new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
  return bytesToByteString(bytes);
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

  let command: ByteString[] | null = null;
  if (invocation.command.length > 0) {
    command = argsToByteStrings(invocation.command);
    if (invocation.lastFromStdin) command.push(await readStdin());
    try {
      const help = checkOneShot(command);
      if (help !== null) {
        await out(help);
        return 0;
      }
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      err(e.message);
      return 2;
    }
  }

  let tls: TlsClientConfig | undefined;
  let login: { user?: string; password?: string };
  try {
    if (invocation.tls !== undefined) tls = await readTlsFiles(invocation.tls);
    login = await credentials(invocation.user);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`lamportkv client: ${e.message}`);
    return 2;
  }

  let client: LamportClient;
  let connect: (preferredReplica: number | undefined) => LamportClient;
  try {
    const config = await loadConfig(invocation.configPath);
    if (invocation.replica !== undefined) findReplica(config, invocation.replica);
    connect = (preferredReplica) =>
      new LamportClient(config, {
        preferredReplica,
        deadlineMs: invocation.timeoutMs,
        onSwitch: (event) => err(describeSwitch(event)),
        tls,
        ...login,
      });
    client = connect(invocation.replica);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err(`lamportkv client: ${e.message}`);
    return 2;
  }

  try {
    if (command !== null) return await runOnce(client, command, connect);
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
      `connected to replica ${replica.id} (${replicaAddressText(replica)}) as ${client.user}; ` +
        `type "help" for help`,
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
