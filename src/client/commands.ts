/**
 * What the clients know about commands, all of it from the command registry
 * (`src/kv/commands/index.ts`) plus the client's own few commands: arity checks worded as the
 * server words them ({@link arityError}), the help texts ({@link clientHelp},
 * {@link topicHelp}) and completion of command names ({@link completeLine}).
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";
import { arityOk, type CommandSpec } from "../kv/registry.ts";
import { COMMANDS } from "../kv/commands/index.ts";
import { E, isError } from "../kv/reply.ts";
import { RespError } from "../net/resp.ts";
import { RESHARD_COMMANDS } from "./reshard_cli.ts";

/** A command the client runs itself instead of sending it to the cluster. */
export interface ClientCommandSpec {
  /** Lowercase name. */
  name: string;
  /** Redis arity: `n` exactly n words (name included), `-n` at least n. */
  arity: number;
  /** Most words allowed (name included). */
  maxArgs: number;
  /** The arguments after the name. */
  syntax: string;
  /** One line: what it does. */
  summary: string;
  /** More lines for `help <command>` (details, examples). */
  details?: readonly string[];
}

const STATUS: ClientCommandSpec = {
  name: "status",
  arity: 1,
  maxArgs: 1,
  syntax: "",
  summary: "INFO of every replica as a table, with the configuration in force.",
};

/** The client's membership commands (they send `REPLICASET ...`). */
export const MEMBERSHIP_COMMANDS: readonly ClientCommandSpec[] = [
  {
    name: "members",
    arity: 1,
    maxArgs: 1,
    syntax: "",
    summary: "The configuration in force (REPLICASET MEMBERS) as a table.",
    details: [
      "One row per replica: id, host, client/peer/http ports, role (voter, learner,",
      "catching-up: a learner to become a voter, joining: not added yet) and state (in-view:",
      "serving in the answering replica's view, out: not).",
      "./lamportkv client <config> members",
    ],
  },
  {
    name: "add",
    arity: -5,
    maxArgs: 7,
    syntax: "<id> <host> <client_port> <peer_port> [<http_port>] [learner]",
    summary: "Adds a replica to the configuration (REPLICASET ADD).",
    details: [
      "Start the new replica first. It becomes a voter once it has caught up,",
      'unless "learner" is given: then it only receives the order and serves reads.',
      "./lamportkv client <config> add 4 127.0.0.1 7004 8004 9004",
    ],
  },
  {
    name: "remove",
    arity: 2,
    maxArgs: 2,
    syntax: "<id>",
    summary: "Removes a replica from the configuration (REPLICASET REMOVE).",
    details: [
      "Answers once a view without the replica serves; then stop that replica.",
      "./lamportkv client <config> remove 4",
    ],
  },
  {
    name: "promote",
    arity: 2,
    maxArgs: 2,
    syntax: "<id>",
    summary: "Makes a learner a voter (REPLICASET PROMOTE).",
    details: ["./lamportkv client <config> promote 4"],
  },
];
const HELP: ClientCommandSpec = {
  name: "help",
  arity: -1,
  maxArgs: 2,
  syntax: "[command | @group]",
  summary: "This list, or help on a command or a group.",
};

/** The commands the one-shot command line runs itself (all others go to the cluster). */
export const ONE_SHOT_COMMANDS: readonly ClientCommandSpec[] = [
  STATUS,
  ...MEMBERSHIP_COMMANDS,
  ...RESHARD_COMMANDS,
  HELP,
];

/** The commands the interactive client runs itself (all others go to the cluster). */
export const REPL_COMMANDS: readonly ClientCommandSpec[] = [
  STATUS,
  ...MEMBERSHIP_COMMANDS,
  HELP,
  { name: "quit", arity: 1, maxArgs: 1, syntax: "", summary: "Leaves (so do Ctrl-D and Ctrl-C)." },
  { name: "exit", arity: 1, maxArgs: 1, syntax: "", summary: "Same as QUIT." },
];

/** The client command among `own` named `name` (any case), or undefined. */
export function clientCommand(
  own: readonly ClientCommandSpec[],
  name: ByteString,
): ClientCommandSpec | undefined {
  const lower = name.toLowerCase();
  return own.find((c) => c.name === lower);
}

function arityReply(name: string): RespError {
  const reply = E.ARITY(name);
  if (!isError(reply)) throw new Error("E.ARITY is not an error reply");
  return new RespError(reply.err);
}

/**
 * The error the server would answer for a command line with a wrong number of words
 * (`ERR wrong number of arguments for 'get' command`), or null when the count is right or the
 * command is unknown (the server answers unknown commands itself).
 */
export function arityError(argv: readonly ByteString[]): RespError | null {
  if (argv.length === 0) return null;
  const spec = COMMANDS.get(argv[0]);
  if (spec === undefined || spec.internal || arityOk(spec, argv.length)) return null;
  return arityReply(spec.name);
}

/**
 * True for `<client command> --help` (`add --help`): help on that command instead of running
 * it.
 */
export function isHelpRequest(spec: ClientCommandSpec, argv: readonly ByteString[]): boolean {
  return argv.length === 2 && (argv[1] === "--help" || argv[1] === "-h") && spec.name !== "help";
}

/** {@link arityError} for a client command: the same wording, for `status x` and the like. */
export function clientArityError(spec: ClientCommandSpec, argc: number): RespError | null {
  return arityOk(spec, argc) && argc <= spec.maxArgs ? null : arityReply(spec.name);
}

/** The commands clients may send, by group in registry order, each group sorted by name. */
function commandsByGroup(): Map<string, CommandSpec[]> {
  const groups = new Map<string, CommandSpec[]>();
  for (const spec of COMMANDS.public()) {
    const group = groups.get(spec.group) ?? [];
    group.push(spec);
    groups.set(spec.group, group);
  }
  for (const specs of groups.values()) specs.sort((a, b) => a.name.localeCompare(b.name));
  return groups;
}

function usageLine(name: string, syntax: string): string {
  return syntax === "" ? name.toUpperCase() : `${name.toUpperCase()} ${syntax}`;
}

/** The lines the REPL's `help` ends with: how to type arguments and how values are shown. */
export const REPL_HELP_NOTES: readonly string[] = [
  `Arguments may be quoted: "a b\\n\\x00" understands \\n \\r \\t \\b \\a \\\\ \\" \\xHH; ` +
  `'a b' only \\'.`,
  "Bulk strings are shown as UTF-8 text in quotes, other bytes escaped as \\xHH.",
];

/**
 * The `help` text: the client's own commands (`own`), then every command of the registry by
 * group with its syntax, then `notes`.
 */
export function clientHelp(
  own: readonly ClientCommandSpec[],
  notes: readonly string[] = [],
): string {
  // Usage lines longer than this get their summary on the next line.
  const short = own.map((c) => usageLine(c.name, c.syntax).length).filter((n) => n <= 24);
  const width = Math.max(0, ...short) + 2;
  const lines = [
    "Commands go to the cluster (names are case-insensitive): a replica that fails is replaced by",
    "another, and data commands are applied exactly once even when resent. The client's own:",
    ...own.map((c) => {
      const usage = usageLine(c.name, c.syntax);
      return usage.length < width
        ? `  ${usage.padEnd(width)}${c.summary}`
        : `  ${usage}\n  ${" ".repeat(width)}${c.summary}`;
    }),
  ];
  for (const [group, specs] of commandsByGroup()) {
    lines.push("", `@${group}:`);
    for (const spec of specs) lines.push(`  ${usageLine(spec.name, spec.syntax)}`);
  }
  lines.push(
    "",
    `"help <command>" shows a command's syntax, summary, version and group; "help @<group>" those`,
    "of every command of the group.",
    ...notes,
  );
  return lines.join("\n");
}

function specHelp(spec: CommandSpec | ClientCommandSpec, group: string, since: string): string {
  const details = "details" in spec ? spec.details ?? [] : [];
  return [
    `  ${usageLine(spec.name, spec.syntax)}`,
    `  summary: ${spec.summary}`,
    ...(since === "" ? [] : [`  since: ${since}`]),
    `  group: ${group}`,
    ...details.map((line) => `  ${line}`),
  ].join("\n");
}

/**
 * `help <topic>` as `redis-cli` shows it: for a command its syntax, summary, version and group;
 * for `@group` that of each of its commands. Framed by empty lines. Null for an unknown topic.
 */
export function topicHelp(own: readonly ClientCommandSpec[], topic: ByteString): string | null {
  const name = topic.toLowerCase();
  const mine = own.find((c) => c.name === name);
  if (mine) return `\n${specHelp(mine, "client", "")}\n`;
  if (name.startsWith("@")) {
    const specs = commandsByGroup().get(name.slice(1));
    if (!specs) return null;
    return `\n${specs.map((s) => specHelp(s, s.group, s.since)).join("\n\n")}\n`;
  }
  const spec = COMMANDS.get(name);
  if (!spec || spec.internal) return null;
  return `\n${specHelp(spec, spec.group, spec.since)}\n`;
}

/** Every name completion offers: the client's own commands and the registry's, sorted. */
export function commandNames(own: readonly ClientCommandSpec[]): string[] {
  const names = new Set([...own.map((c) => c.name), ...COMMANDS.public().map((s) => s.name)]);
  return [...names].sort();
}

/**
 * A `node:readline` completer: completes the command name (the first word) and the topic of
 * `help` (a command or an `@group`), case-insensitively; the candidates are upper case when the
 * typed word is, else lower case. Returns the candidates and the word they replace.
 */
export function completeLine(
  own: readonly ClientCommandSpec[],
  line: string,
): [string[], string] {
  const first = /^\s*(\S*)$/.exec(line);
  const topic = /^\s*help\s+(\S*)$/i.exec(line);
  let word: string;
  let candidates: string[];
  if (first !== null) {
    word = first[1];
    candidates = commandNames(own);
  } else if (topic !== null) {
    word = topic[1];
    candidates = word.startsWith("@")
      ? [...commandsByGroup().keys()].map((g) => `@${g}`)
      : commandNames(own);
  } else {
    return [[], line];
  }
  const lower = word.toLowerCase();
  const upper = word !== lower && word === word.toUpperCase();
  const hits = candidates.filter((n) => n.startsWith(lower));
  return [upper ? hits.map((n) => n.toUpperCase()) : hits, word];
}
