/**
 * Users and their rights, with Redis 7.0's ACL semantics: the user model, the rules of
 * `ACL SETUSER` and of ACL files, the permission checks, and the descriptions `ACL LIST` and
 * `ACL GETUSER` print.
 *
 * ## The model
 *
 * - **The user table is replicated state.** {@link AclState} lives inside the state machine
 *   (`KvStore`): it is part of its snapshots and is changed only by the internal operation
 *   `__ACL` (`src/kv/commands/acl.ts`), applied at its place in the total order on every replica
 *   alike, so it is persisted by the write-ahead log and snapshots like the data and survives
 *   restarts. `ACL SETUSER` on any replica becomes `__ACL SETUSER ...` and takes effect
 *   everywhere. Sessions only read the table.
 * - **Passwords are stored as SHA-256 hashes only.** The server turns `>password` into
 *   `#<sha256>` and `<password` into `!<sha256>` before a rule enters the order; the clear text
 *   never reaches the log, a snapshot or a log line.
 * - **Bootstrapping.** A replica's `requirepass` / `aclfile` settings define its *local* table.
 *   Until the replicated table has been initialised, each replica enforces its local table (so a
 *   protected replica is never open). A replica with a security setting submits
 *   `__ACL INIT <user line>...` once it serves; the first `INIT` in the order initialises the
 *   replicated table, later ones change nothing. From then on the replicated table is the one
 *   enforced everywhere, and the settings are only read again by `ACL LOAD` (the aclfile). A
 *   change (`SETUSER`, `DELUSER`, `LOAD`) made before any `INIT` is preceded by an `INIT` of the
 *   local table of the replica it was sent to. Give every replica the same security settings.
 * - Without any security setting the table is the single `default` user, `on nopass ~* &*
 *   +@all`: everything is allowed, as before users existed.
 *
 * A user line (`ACL LIST`, ACL files, `__ACL` arguments) is `user <name> <rule>...`; the rules are
 * Redis's: `on`, `off`, `nopass`, `resetpass`, `>pw`, `<pw`, `#hash`, `!hash`, `~pattern`,
 * `allkeys`, `resetkeys`, `&pattern`, `allchannels`, `resetchannels`, `+@all`/`allcommands`,
 * `-@all`/`nocommands`, `+@category`, `-@category`, `+command`, `-command`, `+command|sub`,
 * `-command|sub`, `reset`, `sanitize-payload`, `skip-sanitize-payload`, `clearselectors`.
 * Selectors (`(...)`) and read/write key patterns (`%R~`) are not supported.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { ByteString } from "../core/types.ts";
import { COMMANDS } from "./commands/index.ts";
import { categoriesOf, type CommandSpec, keysOf } from "./registry.ts";
import { globMatch } from "./glob.ts";
import { byteOrder } from "./bytes.ts";

/** Redis 7.0's ACL categories, in its order (`ACL CAT`). */
export const ACL_CATEGORIES: readonly string[] = [
  "keyspace",
  "read",
  "write",
  "set",
  "sortedset",
  "list",
  "hash",
  "string",
  "bitmap",
  "hyperloglog",
  "geo",
  "stream",
  "pubsub",
  "admin",
  "fast",
  "slow",
  "blocking",
  "dangerous",
  "connection",
  "transaction",
  "scripting",
];

const ADMIN = ["@admin", "@slow", "@dangerous"];

/**
 * Commands with subcommands: ACL rights are per subcommand (`client|list`), with Redis's
 * categories for each.
 */
const SUBCOMMANDS: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> = {
  acl: {
    cat: ["@slow"],
    deluser: ADMIN,
    dryrun: ADMIN,
    genpass: ["@slow"],
    getuser: ADMIN,
    help: ["@slow"],
    list: ADMIN,
    load: ADMIN,
    log: ADMIN,
    save: ADMIN,
    setuser: ADMIN,
    users: ADMIN,
    whoami: ["@slow"],
  },
  client: Object.fromEntries(
    [
      "caching",
      "getname",
      "getredir",
      "help",
      "id",
      "info",
      "no-touch",
      "reply",
      "setinfo",
      "setname",
      "tracking",
      "trackinginfo",
    ].map((s) => [s, ["@slow", "@connection"]]).concat(
      ["kill", "list", "no-evict", "pause", "unblock", "unpause"].map((s) => [
        s,
        [...ADMIN, "@connection"],
      ]),
    ),
  ),
  command: Object.fromEntries(
    ["count", "docs", "getkeys", "getkeysandflags", "help", "info", "list"].map((s) => [
      s,
      ["@slow", "@connection"],
    ]),
  ),
  config: { get: ADMIN, help: ["@slow"], resetstat: ADMIN, rewrite: ADMIN, set: ADMIN },
  xgroup: Object.fromEntries(
    ["create", "createconsumer", "delconsumer", "destroy", "setid"].map((s) => [
      s,
      ["@write", "@stream", "@slow"],
    ]).concat([["help", ["@stream", "@slow"]]]),
  ),
  xinfo: Object.fromEntries(
    ["consumers", "groups", "stream"].map((s) => [s, ["@read", "@stream", "@slow"]]).concat([
      ["help", ["@stream", "@slow"]],
    ]),
  ),
};

/** Commands that are not ACL units: REQ is checked by the command it wraps. */
const NOT_UNITS = new Set(["req"]);

interface Units {
  /** Every unit (a command, or `command|sub`), in table order. */
  list: string[];
  /** Categories of each unit (without the `@`). */
  cats: Map<string, Set<string>>;
  /** Units of each command name (a container: its subcommands). */
  byCommand: Map<string, string[]>;
}

let units: Units | undefined;

/** The ACL units of the command table (computed once). */
function aclUnits(): Units {
  if (units !== undefined) return units;
  const list: string[] = [];
  const cats = new Map<string, Set<string>>();
  const byCommand = new Map<string, string[]>();
  const strip = (c: readonly string[]) => new Set(c.map((x) => x.replace(/^@/, "")));
  for (const spec of COMMANDS.public()) {
    if (NOT_UNITS.has(spec.name)) continue;
    const subs = SUBCOMMANDS[spec.name];
    if (subs === undefined) {
      list.push(spec.name);
      cats.set(spec.name, strip(categoriesOf(spec)));
      byCommand.set(spec.name, [spec.name]);
      continue;
    }
    const mine: string[] = [];
    for (const [sub, c] of Object.entries(subs)) {
      const unit = `${spec.name}|${sub}`;
      list.push(unit);
      mine.push(unit);
      cats.set(unit, strip(c));
    }
    byCommand.set(spec.name, mine);
  }
  units = { list, cats, byCommand };
  return units;
}

/** The units in `category` (without `@`), for `ACL CAT <category>`. */
export function unitsInCategory(category: string): string[] {
  const u = aclUnits();
  return u.list.filter((x) => u.cats.get(x)!.has(category));
}

/** SHA-256 of a password's bytes, as 64 lowercase hex digits. */
export function hashPassword(password: ByteString): string {
  const bytes = new Uint8Array(password.length);
  for (let i = 0; i < password.length; i++) bytes[i] = password.charCodeAt(i) & 0xff;
  return createHash("sha256").update(bytes).digest("hex");
}

/** One user. */
export interface AclUser {
  name: string;
  on: boolean;
  nopass: boolean;
  sanitize: "" | "sanitize-payload" | "skip-sanitize-payload";
  /** SHA-256 hex of each password, in the order they were added. */
  passwords: string[];
  allKeys: boolean;
  keys: string[];
  allChannels: boolean;
  channels: string[];
  /** Set by `+@all`, cleared by `-@all`: the user may run commands added in later versions. */
  allCommands: boolean;
  /** The units (commands, `command|sub`) the user may run. */
  allowed: Set<string>;
}

/** A rule that cannot be applied; the message is Redis's. */
export class AclRuleError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "AclRuleError";
  }
}

/** A new user as `ACL SETUSER` creates it: off, no passwords, no keys, no commands. */
export function newUser(name: string): AclUser {
  return {
    name,
    on: false,
    nopass: false,
    sanitize: "",
    passwords: [],
    allKeys: false,
    keys: [],
    allChannels: false,
    channels: [],
    allCommands: false,
    allowed: new Set(),
  };
}

/** The `default` user of a server without security settings: `on nopass ~* &* +@all`. */
export function defaultUser(): AclUser {
  const u = newUser("default");
  for (const r of ["on", "nopass", "allkeys", "allchannels", "+@all"]) applyRule(u, r);
  return u;
}

/** A deep copy of `u`. */
export function copyUser(u: AclUser): AclUser {
  return {
    ...u,
    passwords: [...u.passwords],
    keys: [...u.keys],
    channels: [...u.channels],
    allowed: new Set(u.allowed),
  };
}

const HASH_RE = /^[0-9a-f]{64}$/;
const BAD_HASH =
  "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters";
const NO_SUCH_PASSWORD = "The password you are trying to remove from the user does not exist";
const UNKNOWN_NAME = "Unknown command or category name in ACL";

/** The units a `+name` / `-name` rule names, or null if unknown. */
function unitsNamed(name: string): string[] | null {
  const u = aclUnits();
  const bar = name.indexOf("|");
  if (bar === -1) return u.byCommand.get(name) ?? null;
  const unit = name;
  return u.cats.has(unit) ? [unit] : null;
}

/**
 * Applies one rule to `u` (in place).
 *
 * @throws {AclRuleError} with Redis's message when the rule is invalid.
 */
export function applyRule(u: AclUser, rule: ByteString): void {
  const lower = rule.toLowerCase();
  const all = aclUnits();
  switch (lower) {
    case "on":
      u.on = true;
      return;
    case "off":
      u.on = false;
      return;
    case "nopass":
      u.nopass = true;
      u.passwords = [];
      return;
    case "resetpass":
      u.nopass = false;
      u.passwords = [];
      return;
    case "allkeys":
    case "~*":
      u.allKeys = true;
      u.keys = [];
      return;
    case "resetkeys":
      u.allKeys = false;
      u.keys = [];
      return;
    case "allchannels":
    case "&*":
      u.allChannels = true;
      u.channels = [];
      return;
    case "resetchannels":
      u.allChannels = false;
      u.channels = [];
      return;
    case "allcommands":
    case "+@all":
      u.allCommands = true;
      u.allowed = new Set(all.list);
      return;
    case "nocommands":
    case "-@all":
      u.allCommands = false;
      u.allowed = new Set();
      return;
    case "sanitize-payload":
    case "skip-sanitize-payload":
      u.sanitize = lower;
      return;
    case "clearselectors":
      return;
    case "reset":
      for (const r of ["resetpass", "resetkeys", "resetchannels", "off", "-@all"]) {
        applyRule(u, r);
      }
      u.sanitize = "sanitize-payload";
      return;
  }
  const first = rule[0];
  const rest = rule.slice(1);
  if (first === ">" || first === "<") {
    const h = hashPassword(rest);
    if (first === ">") addPassword(u, h);
    else removePassword(u, h);
    return;
  }
  if (first === "#" || first === "!") {
    if (!HASH_RE.test(rest)) throw new AclRuleError(BAD_HASH);
    if (first === "#") addPassword(u, rest);
    else removePassword(u, rest);
    return;
  }
  if (first === "~") {
    if (u.allKeys) {
      throw new AclRuleError(
        "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
      );
    }
    if (!u.keys.includes(rest)) u.keys.push(rest);
    return;
  }
  if (first === "%") {
    throw new AclRuleError("read/write key patterns (%R~, %W~) are not supported by lamportkv");
  }
  if (first === "&") {
    if (u.allChannels) {
      throw new AclRuleError(
        "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
      );
    }
    if (!u.channels.includes(rest)) u.channels.push(rest);
    return;
  }
  if (first === "(") throw new AclRuleError("selectors are not supported by lamportkv");
  if (first === "+" || first === "-") {
    const allow = first === "+";
    let named: string[] | null;
    if (rest.startsWith("@")) {
      const cat = rest.slice(1).toLowerCase();
      named = ACL_CATEGORIES.includes(cat) ? unitsInCategory(cat) : null;
    } else {
      named = unitsNamed(rest.toLowerCase());
    }
    if (named === null) throw new AclRuleError(UNKNOWN_NAME);
    for (const x of named) {
      if (allow) u.allowed.add(x);
      else u.allowed.delete(x);
    }
    return;
  }
  throw new AclRuleError("Syntax error");
}

function addPassword(u: AclUser, h: string): void {
  u.nopass = false;
  if (!u.passwords.includes(h)) u.passwords.push(h);
}

function removePassword(u: AclUser, h: string): void {
  u.nopass = false;
  const i = u.passwords.indexOf(h);
  if (i === -1) throw new AclRuleError(NO_SUCH_PASSWORD);
  u.passwords.splice(i, 1);
}

/** A rule with a clear password (`>pw`, `<pw`) as its hashed form (`#h`, `!h`); others as is. */
export function hashRule(rule: ByteString): ByteString {
  if (rule[0] === ">") return `#${hashPassword(rule.slice(1))}`;
  if (rule[0] === "<") return `!${hashPassword(rule.slice(1))}`;
  return rule;
}

/** Redis's error for a user name it refuses, or null. */
export function badUserName(name: ByteString): string | null {
  return /[\s\0]/.test(name) ? "Usernames can't contain spaces or null characters" : null;
}

/**
 * The command rules of `u` as Redis 7.0 describes them: `+@all` or `-@all`, then the categories
 * that fit best (greedily), then the single units that still differ.
 */
function describeCommands(u: AclUser): string {
  const all = aclUnits();
  const additive = !u.allCommands;
  const out = [additive ? "-@all" : "+@all"];
  const fake = new Set<string>(additive ? [] : all.list);
  const temp = new Set(u.allowed);
  const applied = new Set<string>();
  for (;;) {
    let best: string | undefined;
    let minDiff = Infinity;
    let maxSame = 0;
    for (const cat of ACL_CATEGORIES) {
      if (applied.has(cat)) continue;
      let on = 0;
      let off = 0;
      for (const x of all.list) {
        if (!all.cats.get(x)!.has(cat)) continue;
        if (temp.has(x)) on++;
        else off++;
      }
      const diff = additive ? off : on;
      const same = additive ? on : off;
      if (same > diff && (diff < minDiff || (diff === minDiff && same > maxSame))) {
        best = cat;
        minDiff = diff;
        maxSame = same;
      }
    }
    if (best === undefined) break;
    applied.add(best);
    out.push(`${additive ? "+" : "-"}@${best}`);
    for (const x of unitsInCategory(best)) {
      if (additive) {
        fake.add(x);
        temp.delete(x);
      } else {
        fake.delete(x);
        temp.add(x);
      }
    }
  }
  for (const x of all.list) {
    const mine = u.allowed.has(x);
    if (mine !== fake.has(x)) out.push(`${mine ? "+" : "-"}${x}`);
  }
  return out.join(" ");
}

function flagsOf(u: AclUser): string[] {
  const flags = [u.on ? "on" : "off"];
  if (u.nopass) flags.push("nopass");
  if (u.sanitize !== "") flags.push(u.sanitize);
  return flags;
}

/** The `ACL LIST` line of `u` (also its form in ACL files and `__ACL` operations). */
export function describeUser(u: AclUser): string {
  const parts = ["user", u.name, ...flagsOf(u), ...u.passwords.map((h) => `#${h}`)];
  if (u.allKeys) parts.push("~*");
  else parts.push(...u.keys.map((k) => `~${k}`));
  if (u.allChannels) parts.push("&*");
  else parts.push("resetchannels", ...u.channels.map((c) => `&${c}`));
  parts.push(describeCommands(u));
  return parts.join(" ");
}

/** The `ACL GETUSER` reply for `u` (RESP2: a flat array of field names and values). */
export function getUserReply(u: AclUser): (string | string[] | never[])[] {
  return [
    "flags",
    flagsOf(u),
    "passwords",
    [...u.passwords],
    "commands",
    describeCommands(u),
    "keys",
    u.allKeys ? "~*" : u.keys.map((k) => `~${k}`).join(" "),
    "channels",
    u.allChannels ? "&*" : u.channels.map((c) => `&${c}`).join(" "),
    "selectors",
    [],
  ];
}

/** The unit a command line runs: its name, or `name|sub` for a known subcommand (else null). */
function unitOf(spec: CommandSpec, argv: readonly ByteString[]): string | null {
  const subs = SUBCOMMANDS[spec.name];
  if (subs === undefined) return NOT_UNITS.has(spec.name) ? null : spec.name;
  const sub = (argv[1] ?? "").toLowerCase();
  return Object.hasOwn(subs, sub) ? `${spec.name}|${sub}` : null;
}

/** Why `u` may not run a command line: the denied unit, a key, or null when it may. */
export type Denial =
  | { kind: "cmd"; unit: string }
  | { kind: "key" }
  | { kind: "channel"; channel: ByteString }
  | null;

/**
 * The pub/sub commands whose arguments are channels (`&pattern` rules): PUBLISH's first, every
 * one of SUBSCRIBE's (checked by glob match), every one of PSUBSCRIBE's (a pattern is allowed
 * only when it is one of the user's patterns, as in Redis).
 */
const CHANNEL_ARGS: Readonly<Record<string, { last: number; pattern: boolean }>> = {
  publish: { last: 1, pattern: false },
  subscribe: { last: -1, pattern: false },
  psubscribe: { last: -1, pattern: true },
};

/** The first channel (or pattern) argument of `argv` that `u` may not use, or null. */
function deniedChannel(u: AclUser, name: string, argv: readonly ByteString[]): ByteString | null {
  const spec = Object.hasOwn(CHANNEL_ARGS, name) ? CHANNEL_ARGS[name] : undefined;
  if (spec === undefined || u.allChannels) return null;
  const last = spec.last < 0 ? argv.length - 1 : spec.last;
  for (let i = 1; i <= last && i < argv.length; i++) {
    const ch = argv[i];
    const ok = spec.pattern ? u.channels.includes(ch) : u.channels.some((p) => globMatch(p, ch));
    if (!ok) return ch;
  }
  return null;
}

/**
 * Checks `u`'s rights for one command line: its command (or subcommand) and every key at the
 * registry's key positions (`keys` overrides them, e.g. WATCH's). Commands flagged `no_auth` are
 * always allowed, as in Redis; an unknown subcommand is left to the command's own error.
 */
export function checkCommand(
  u: AclUser,
  spec: CommandSpec,
  argv: readonly ByteString[],
  keys?: readonly ByteString[],
): Denial {
  if (spec.flags.includes("no_auth")) return null;
  const unit = unitOf(spec, argv);
  if (unit !== null && !u.allowed.has(unit)) return { kind: "cmd", unit };
  if (!u.allKeys) {
    for (const key of keys ?? keysOf(spec, argv)) {
      if (!u.keys.some((p) => globMatch(p, key))) return { kind: "key" };
    }
  }
  const channel = deniedChannel(u, spec.name, argv);
  return channel === null ? null : { kind: "channel", channel };
}

/** Redis 7.0's NOPERM error text for a denial. */
export function deniedText(d: Exclude<Denial, null>): string {
  if (d.kind === "cmd") return `NOPERM this user has no permissions to run the '${d.unit}' command`;
  return `NOPERM this user has no permissions to access one of the ${
    d.kind === "key" ? "keys" : "channels"
  } used as arguments`;
}

/** True when `password` opens `u` (an enabled user with nopass or that password's hash). */
export function passwordOpens(u: AclUser | undefined, password: ByteString): boolean {
  if (u === undefined || !u.on) return false;
  if (u.nopass) return true;
  return u.passwords.includes(hashPassword(password));
}

/** A user table: users by name. */
export type AclTable = Map<string, AclUser>;

/** The table of a server without security settings: only {@link defaultUser}. */
export function defaultTable(): AclTable {
  return new Map([["default", defaultUser()]]);
}

/** The table's `ACL LIST` lines, sorted by user name (Redis's order). */
export function describeTable(t: AclTable): string[] {
  return [...t.keys()].sort(byteOrder).map((n) => describeUser(t.get(n)!));
}

/** A problem in a user line: its message (Redis's) and the line's 1-based number. */
export interface AclLineProblem {
  line: number;
  message: string;
}

/**
 * Parses user lines (an ACL file's text, or the lines of an `__ACL LOAD`): empty lines and lines
 * starting with `#` are skipped. Returns the table (with the `default` user of
 * `defaultIfMissing` when the lines do not define one) or every problem found.
 */
export function parseUserLines(
  lines: readonly string[],
  defaultIfMissing: () => AclUser = defaultUser,
): { table: AclTable } | { problems: AclLineProblem[] } {
  const table: AclTable = new Map();
  const problems: AclLineProblem[] = [];
  const seen = new Map<string, number>();
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const text = lines[i].trim();
    if (text === "" || text.startsWith("#")) continue;
    const words = text.split(/[ \t]+/);
    if (words[0] !== "user" || words.length < 2) {
      problems.push({ line, message: "should start with user keyword followed by the username" });
      continue;
    }
    const name = words[1];
    const first = seen.get(name);
    if (first !== undefined) {
      problems.push({ line, message: `Duplicate user '${name}' found` });
      continue;
    }
    seen.set(name, line);
    const bad = badUserName(name);
    if (bad !== null) {
      problems.push({ line, message: bad });
      continue;
    }
    const u = newUser(name);
    try {
      for (const rule of words.slice(2)) applyRule(u, rule);
    } catch (e) {
      if (!(e instanceof AclRuleError)) throw e;
      problems.push({ line, message: e.message });
      continue;
    }
    table.set(name, u);
  }
  if (problems.length > 0) return { problems };
  if (!table.has("default")) table.set("default", defaultIfMissing());
  return { table };
}

/** Redis's text of ACL file problems (`ACL LOAD`'s error, and the start error). */
export function aclFileErrorText(path: string, problems: readonly AclLineProblem[]): string {
  return problems.map((p) =>
    p.message.startsWith("should start")
      ? `${path}:${p.line} ${p.message}. `
      : p.message.startsWith("Duplicate user")
      ? `WARNING: ${p.message} on line ${p.line}. `
      : `${path}:${p.line}: ${p.message}. `
  ).join("");
}

/**
 * The replicated user table: null until the first `__ACL INIT` (or change) of the order.
 */
export class AclState {
  #table: AclTable | null = null;

  /** The table, or null while it was never initialised. */
  get table(): AclTable | null {
    return this.#table;
  }

  /** Replaces the table (null: uninitialised). */
  set(table: AclTable | null): void {
    this.#table = table;
  }

  /** The snapshot form: the `ACL LIST` lines, or undefined while uninitialised. */
  snapshot(): string[] | undefined {
    return this.#table === null ? undefined : describeTable(this.#table);
  }

  /**
   * Restores a {@link snapshot}.
   *
   * @throws {TypeError} when it is malformed.
   */
  restore(lines: unknown): void {
    if (lines === undefined || lines === null) {
      this.#table = null;
      return;
    }
    if (!Array.isArray(lines) || !lines.every((l) => typeof l === "string")) {
      throw new TypeError("malformed ACL snapshot");
    }
    const parsed = parseUserLines(lines);
    if ("problems" in parsed) {
      throw new TypeError(`malformed ACL snapshot: ${parsed.problems[0].message}`);
    }
    this.#table = parsed.table;
  }
}
