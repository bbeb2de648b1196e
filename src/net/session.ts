/**
 * One client connection's session: its state (name, id, MULTI queue, watched keys) and the
 * dispatch of every command line through the command registry. Data commands become operations
 * submitted to the replica (writes are ordered by the multicast, reads answered at their place);
 * the commands the server answers itself (`src/kv/commands/server.ts`) are handled here.
 *
 * Replies are delivered through the callback given to {@link Session.run}, possibly later (an
 * operation completes when the core delivers it); the caller keeps replies in request order.
 *
 * @module
 */
import type { ByteString, Command, Outcome, ReplicaStatus, Reply } from "../core/types.ts";
import { COMMANDS, isBlockingCommand } from "../kv/commands/index.ts";
import { encodeExec, type WatchMark } from "../kv/commands/tx.ts";
import { argvError, arityOk, type CommandSpec } from "../kv/registry.ts";
import {
  ACL_CATEGORIES,
  AclRuleError,
  type AclTable,
  type AclUser,
  applyRule,
  badUserName,
  checkCommand,
  copyUser,
  type Denial,
  deniedText,
  describeTable,
  getUserReply,
  hashRule,
  newUser,
  passwordOpens,
  unitsInCategory,
} from "../kv/acl.ts";
import { E, err, isError, NIL_ARRAY, OK, status } from "../kv/reply.ts";
import { byteOrder, byteStringToUtf8, toHex } from "../kv/bytes.ts";
import { globMatch } from "../kv/glob.ts";
import { commandDocs, commandInfo } from "./command_docs.ts";
import { formatInfo, isLoading, type ServerStats } from "./info.ts";
import { MAX_OP_BYTES } from "../limits.ts";
import { type PubSubHub, Subscriptions } from "./pubsub.ts";
import { BAD_NOTIFY_FLAGS, formatNotifyFlags, parseNotifyFlags } from "../kv/notify.ts";
import { REDIS_VERSION } from "../version.ts";
import {
  addressRedirect,
  routeCommand,
  routeKeys,
  routingKeys,
  type SlotRouting,
} from "./slot_routing.ts";

/** Largest client id of a REQ command in bytes. */
const MAX_CLIENT_ID_BYTES = 128;

/** What sessions need from the server and replica they belong to. */
export interface SessionHost {
  /**
   * Submits an operation; `respond` is called once with its outcome. `gone` is aborted when the
   * client's connection closes (a blocked command is then cancelled).
   */
  submit(cmd: Command, respond: (outcome: Outcome) => void, gone?: AbortSignal): void;
  /** The replica's status (INFO). */
  status(): ReplicaStatus;
  /** Wall-clock time in ms (the time stamped on operations; tests may shift it). */
  now(): number;
  /** Every open session (CLIENT LIST, CLIENT KILL). */
  sessions(): Iterable<Session>;
  /** Server-wide counters for INFO. */
  stats(): ServerStats;
  /** CONFIG GET's parameters and their values. */
  config(): Record<string, string>;
  /** The users and their persistence. */
  acl(): AclHost;
  /**
   * Counts a refused login (`auth`), command (`cmd`), key (`key`) or channel for INFO; a refused
   * login is also logged with the client's address and the user name (never the password).
   */
  noteDenied(
    kind: "auth" | "cmd" | "key" | "channel",
    login?: { remote: string; user: string },
  ): void;
  /** This replica's subscriptions. */
  pubsub(): PubSubHub;
  /** `REPLICASET` (absent: a server without membership changes). */
  replicaSet?(): (argv: ByteString[], respond: Respond) => void;
  /** `CLUSTER` (absent: not served). */
  cluster?(): (argv: ByteString[], respond: Respond) => void;
  /**
   * The sharded cluster's routing (`slot_routing.ts`): absent without groups, then no command is
   * redirected. Read once per session.
   */
  routing?(): SlotRouting | undefined;
  /** When writes that may add data are refused (absent: never). */
  memory?: WriteMemory;
}

/** The replica's memory as sessions see it (`src/runtime/memory_guard.ts`). */
export interface WriteMemory {
  /** The `maxmemory` setting (0: none). */
  readonly maxmemory: number;
  /** Used memory above which writes are refused. */
  readonly limit: number;
  /** True while writes that may add data are refused. */
  outOfMemory(): boolean;
}

/** Redis's reply to a command refused for memory. */
const OOM_ERROR = "OOM command not allowed when used memory > 'maxmemory'.";

/** Inside MULTI, every command but these is refused for memory (as in Redis: queuing costs memory). */
const MULTI_UNDER_OOM = new Set(["exec", "discard", "quit", "reset"]);

/** The user table as sessions see it, and this replica's aclfile. */
export interface AclHost {
  /** The users enforced now: the replicated table, or this replica's own until it is set. */
  table(): AclTable;
  /** True once the replicated table has been initialised (by the order). */
  initialised(): boolean;
  /** The `__ACL INIT` operation of this replica's own users (requirepass / aclfile). */
  initArgv(): ByteString[];
  /** Writes the enforced table to this replica's aclfile; undefined without an aclfile. */
  save?: () => Promise<void>;
  /** Reads this replica's aclfile: its users as (hashed) user lines, or Redis's error text. */
  load?: () => Promise<{ lines: string[] } | { error: string }>;
}

/** Failed logins a connection may make; the one after them closes it. */
const MAX_AUTH_FAILURES = 10;
/** Failed logins answered at once (typos); later ones are delayed. */
const AUTH_FAILURES_UNDELAYED = 2;
/** Delay of the reply to the first delayed failed login; it doubles with each further one. */
const AUTH_FAILURE_DELAY_MS = 25;
/** Most delay of one failed login's reply. */
const MAX_AUTH_FAILURE_DELAY_MS = 1000;

const NOAUTH = "NOAUTH Authentication required.";
const WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled.";
const NO_ACLFILE =
  "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

/** Subcommands of ACL with their arity (Redis's). */
const ACL_ARITY: Record<string, number> = {
  cat: -2,
  deluser: -3,
  dryrun: -4,
  genpass: -2,
  getuser: 3,
  help: 2,
  list: 2,
  load: 2,
  log: -2,
  save: 2,
  setuser: -3,
  users: 2,
  whoami: 2,
};

/** What the caller must do after a command: nothing, or stop reading and close after replies. */
export type After = "close" | void;

/** Replies with a {@link Reply}, once. */
export type Respond = (reply: Reply) => void;

const ERR_NOT_SERVED = "ERR this command is not served by lamportkv";

/** The commands a connection in subscribed mode may run (Redis's RESP2 rule). */
const IN_SUBSCRIBED = new Set([
  "subscribe",
  "psubscribe",
  "unsubscribe",
  "punsubscribe",
  "ping",
  "quit",
  "reset",
]);

/** Server commands that may be queued in MULTI (answered when EXEC's reply arrives). */
const IN_MULTI = new Set(["ping", "echo", "time", "select", "info", "command", "config"]);

/**
 * Redis 7's unknown-command error: the name (up to 128 bytes) and the first arguments, each
 * quoted and followed by a space, until 128 bytes of arguments are shown.
 */
function unknownCommand(argv: readonly ByteString[]): Reply {
  const clip = (s: ByteString, max: number) => byteStringToUtf8(s.slice(0, max));
  let args = "";
  let shown = 0;
  for (let i = 1; i < argv.length && shown < 128; i++) {
    const arg = argv[i].slice(0, 128 - shown);
    shown += arg.length + 3;
    args += `'${clip(arg, arg.length)}' `;
  }
  return err(`ERR unknown command '${clip(argv[0], 128)}', with args beginning with: ${args}`);
}

function outcomeReply(outcome: Outcome): Reply {
  if (outcome.ok) return outcome.result;
  return err(outcome.message ? `${outcome.code} ${outcome.message}` : outcome.code);
}

/** The reply to a command of a user deleted meanwhile; the connection is closed after it. */
const GONE: Reply = Object.freeze({
  err: "ERR this connection's user was deleted or changed; the connection is closed",
}) as Reply;

/** The keys WATCHed for one transaction, with the versions their WATCH reads returned. */
class WatchSet {
  readonly keys = new Map<ByteString, WatchMark>();
  /** WATCH reads not answered yet. */
  pending = 0;
  /** A WATCH read failed (e.g. NOQUORUM): the transaction must not run. */
  failed = false;
  #waiting: (() => void)[] = [];

  /** Runs `fn` once every WATCH read of this set has answered. */
  whenAnswered(fn: () => void): void {
    if (this.pending === 0) fn();
    else this.#waiting.push(fn);
  }

  /** One WATCH read answered. */
  answered(): void {
    if (--this.pending > 0) return;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const fn of waiting) fn();
  }
}

/** A client's session on one connection. */
export class Session {
  /** Unique per server, as CLIENT ID reports. */
  readonly id: number;
  readonly remote: string;
  readonly local: string;
  readonly createdAt: number;
  name: ByteString = "";
  lastCommand = "NULL";
  lastActive: number;
  /** Commands queued since MULTI, or null outside a transaction. */
  #multi: ByteString[][] | null = null;
  /** A queue-time error happened in this MULTI: EXEC must abort. */
  #multiDirty = false;
  /** READONLY: reads are answered locally, without a probe round (possibly stale). */
  #readonly = false;
  /** Bytes of the commands queued since MULTI (the transaction is one operation). */
  #multiBytes = 0;
  /**
   * The WATCHes of the transaction being built: each key with the key space version its WATCH
   * read. EXEC, DISCARD, UNWATCH and RESET detach it (a pipelined WATCH after them belongs to the
   * next transaction); EXEC waits until the detached WATCH reads have all answered.
   */
  #watches = new WatchSet();
  /**
   * Commands that arrived while an EXEC waits for its WATCH reads, or while a blocking command
   * waits, in arrival order: they run after the EXEC is submitted (or the blocking command is
   * answered), so that nothing sent after it is ordered before it.
   */
  #held: [ByteString[], Respond][] | null = null;
  readonly #host: SessionHost;
  /** Sharded cluster: MOVED / CROSSSLOT for keys this group does not serve (absent: none). */
  readonly #routing: SlotRouting | undefined;
  /** ASKING was this connection's last command: its next one carries the flag into the order. */
  #asking = false;
  /** The user this connection runs as (`default` until an AUTH says otherwise). */
  #user = "default";
  /** An AUTH (or HELLO AUTH) succeeded on this connection. */
  #authenticated = false;
  /** Failed logins on this connection, and when the next failure may be answered. */
  #authFailures = 0;
  #authNotBefore = 0;
  /** Set by the server: closes this session's connection (CLIENT KILL). */
  kill: () => void = () => {};
  /**
   * Set by the server for a connection that can receive pushes (pub/sub messages): queues a
   * reply after everything queued before. Undefined: this session cannot subscribe.
   */
  push: ((reply: Reply) => void) | undefined;
  /** This connection's channels and patterns (created at its first SUBSCRIBE). */
  #subs: Subscriptions | undefined;
  /** Aborted when the connection closes or the client stops sending (its blocked commands end). */
  readonly #gone = new AbortController();

  /** A session for a new connection. */
  constructor(host: SessionHost, id: number, remote: string, local: string) {
    this.#host = host;
    this.#routing = host.routing?.();
    this.id = id;
    this.remote = remote;
    this.local = local;
    this.createdAt = host.now();
    this.lastActive = this.createdAt;
  }

  /** The user this connection runs as (CLIENT LIST, ACL WHOAMI). */
  get user(): string {
    return this.#user;
  }

  /** Called by the server when the client closed its side or the connection was closed. */
  closed(): void {
    this.#gone.abort();
  }

  /** True inside MULTI. */
  get inMulti(): boolean {
    return this.#multi !== null;
  }

  /** True in subscribed mode: subscribed to at least one channel or pattern. */
  get subscribed(): boolean {
    return (this.#subs?.count ?? 0) > 0;
  }

  /** Drops this connection's subscriptions (it closed). */
  close(): void {
    this.#subs?.clear();
  }

  /** Runs one command line; `respond` gets its reply (now or later). */
  run(argv: ByteString[], respond: Respond): After {
    this.lastActive = this.#host.now();
    if (this.#held !== null) {
      this.#held.push([argv, respond]);
      // Stop reading after QUIT; the held commands before it still run and answer.
      return argv.length > 0 && argv[0].toLowerCase() === "quit" ? "close" : undefined;
    }
    if (argv.length === 0) {
      respond(err("ERR empty command"));
      return;
    }
    const spec = COMMANDS.get(argv[0]);
    // As in Redis, ASKING flags the next command only (whatever it is), or a whole transaction
    // when it comes before MULTI: the flag then lasts until EXEC (or DISCARD).
    const asking = this.#asking;
    const name = spec?.name ?? "";
    const inMulti = this.#multi !== null
      ? !["exec", "discard", "reset"].includes(name)
      : name === "multi";
    if (!inMulti) this.#asking = false;
    if (spec === undefined || spec.internal) {
      if (this.#multi !== null) this.#multiDirty = true;
      respond(unknownCommand(argv));
      return;
    }
    this.lastCommand = spec.name;
    if (!arityOk(spec, argv.length)) {
      if (this.#multi !== null) this.#multiDirty = true;
      respond(E.ARITY(spec.name));
      return;
    }
    const refused = this.#refusal(spec, argv);
    if (refused !== null) {
      if (this.#multi !== null) this.#multiDirty = true;
      respond(refused);
      return refused === GONE ? "close" : undefined;
    }
    if (this.#routing !== undefined) {
      // Redis Cluster's redirection, after the ACL check as in Redis; inside MULTI it flags the
      // transaction, which EXEC then aborts.
      const elsewhere = routeCommand(spec, argv, this.#routing);
      if (elsewhere !== null) {
        if (this.#multi !== null) this.#multiDirty = true;
        respond(elsewhere);
        return;
      }
    }
    if (this.#overMemory(spec, argv)) {
      if (this.#multi !== null) this.#multiDirty = true;
      respond(err(OOM_ERROR));
      return;
    }
    if (this.subscribed && !IN_SUBSCRIBED.has(spec.name)) {
      return respond(
        err(
          `ERR Can't execute '${spec.name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`,
        ),
      );
    }
    if (
      this.#multi !== null &&
      !["exec", "discard", "multi", "watch", "quit", "reset"].includes(spec.name)
    ) {
      if (spec.name === "req") return this.#queue(argv.slice(3), respond);
      return this.#queue(argv, respond);
    }
    if (spec.apply !== undefined) {
      if (isBlockingCommand(argv)) return this.#blocking(argv, respond);
      const cmd: Command = { op: { argv: this.#flagged(argv, asking), time: this.#host.now() } };
      if (this.#readonly && spec.flags.includes("readonly")) cmd.local = true;
      this.#submit(cmd, respond);
      return;
    }
    if (spec.name === "exec") return this.#exec(respond, asking);
    if (spec.name === "req") return this.#req(argv, respond, asking);
    return this.#server(spec, argv, respond);
  }

  /**
   * True when `argv` must be refused for memory (Redis's `maxmemory` with `noeviction`): a
   * command that may add data (`denyoom`; a REQ by the command it wraps), or inside MULTI any
   * command but EXEC, DISCARD, QUIT and RESET, while used memory is over the limit.
   */
  #overMemory(spec: CommandSpec, argv: ByteString[]): boolean {
    const memory = this.#host.memory;
    if (memory === undefined) return false;
    let refusable: boolean;
    if (this.#multi !== null) refusable = !MULTI_UNDER_OOM.has(spec.name);
    else if (spec.name === "req") {
      refusable = COMMANDS.get(argv[3] ?? "")?.flags.includes("denyoom") ?? false;
    } else refusable = spec.flags.includes("denyoom");
    return refusable && memory.outOfMemory();
  }

  /**
   * `argv` as an operation: wrapped in `__ASKING <stamp>` when it came after ASKING (sharded
   * only), the stamp read now, when the command is read (see `SlotState.askingStamp`).
   */
  #flagged(argv: ByteString[], asking: boolean): ByteString[] {
    const routing = this.#routing;
    if (!asking || routing === undefined) return argv;
    return ["__ASKING", String(routing.askingStamp()), ...argv];
  }

  /**
   * A blocking command (BLPOP, ...): as in Redis, the client's next commands wait until it is
   * answered (they would otherwise be ordered before it is served, e.g. a pipelined push).
   */
  #blocking(argv: ByteString[], respond: Respond): void {
    this.#held = [];
    this.#submit({ op: { argv, time: this.#host.now() } }, (reply) => {
      respond(reply);
      this.#release();
    });
  }

  /** Runs the commands held meanwhile, in order (a later one that must wait holds the rest). */
  #release(): void {
    const held = this.#held ?? [];
    this.#held = null;
    for (const [argv, respond] of held) this.run(argv, respond);
  }

  /** The current user's record, or undefined when it was deleted meanwhile. */
  #currentUser(table: AclTable = this.#host.acl().table()): AclUser | undefined {
    return table.get(this.#user);
  }

  /**
   * Why this connection may not run `argv` now: NOAUTH before a required login, NOPERM when the
   * user lacks the right to the command or one of its keys (a REQ by the command it wraps, WATCH
   * by its keys), {@link GONE} when the user was deleted; null when it may.
   */
  #refusal(spec: CommandSpec, argv: ByteString[]): Reply | null {
    const table = this.#host.acl().table();
    if (!this.#authenticated) {
      const d = table.get("default");
      const open = d !== undefined && d.on && d.nopass;
      if (!open && !spec.flags.includes("no_auth")) return err(NOAUTH);
      if (!open) return null;
    }
    const user = this.#currentUser(table);
    if (user === undefined) return GONE;
    return this.#denial(user, spec, argv);
  }

  /** The NOPERM error for `argv` run by `user`, or null when allowed (counted in INFO). */
  #denial(user: AclUser, spec: CommandSpec, argv: ByteString[]): Reply | null {
    let d: Denial;
    if (spec.name === "req") {
      const inner = COMMANDS.get(argv[3]);
      if (inner === undefined || inner.internal) return null; // REQ answers the error
      d = checkCommand(user, inner, argv.slice(3));
    } else if (spec.name === "watch") {
      d = checkCommand(user, spec, argv, argv.slice(1));
    } else {
      d = checkCommand(user, spec, argv);
    }
    if (d === null) return null;
    this.#host.noteDenied(d.kind);
    return err(deniedText(d));
  }

  #queue(argv: ByteString[], respond: Respond): After {
    const spec = argv.length > 0 ? COMMANDS.get(argv[0]) : undefined;
    if (spec === undefined || spec.internal) {
      this.#multiDirty = true;
      respond(argv.length > 0 ? unknownCommand(argv) : err("ERR empty command"));
      return;
    }
    const bad = argvError(spec, argv);
    if (bad !== null) {
      this.#multiDirty = true;
      respond(bad);
      return;
    }
    const configSet = spec.name === "config" && argv[1]?.toLowerCase() === "set";
    if (spec.apply === undefined && (!IN_MULTI.has(spec.name) || configSet)) {
      // Connection-changing commands inside a transaction are not supported.
      this.#multiDirty = true;
      respond(err(`ERR '${spec.name}' cannot be used inside MULTI in lamportkv`));
      return;
    }
    let bytes = 0;
    for (const a of argv) bytes += a.length + 8;
    if (this.#multiBytes + bytes > MAX_OP_BYTES) {
      this.#multiDirty = true;
      respond(err(`ERR transaction too large: its commands exceed ${MAX_OP_BYTES} bytes`));
      return;
    }
    this.#multiBytes += bytes;
    this.#multi!.push(argv);
    respond(status("QUEUED"));
    return;
  }

  /**
   * True while the replica serves no data (not normal in a view: joining at start or after losing
   * its majority, or in a view change): INFO says `loading:1`, and PING and ECHO answer
   * `-LOADING` as Redis does while it loads its data set, so a health check does not take the
   * replica for serving. Data commands are not refused: they wait for a view (see README).
   */
  #loading(): boolean {
    return isLoading(this.#host.status());
  }

  #loadingError(): Reply {
    const state = this.#host.status().state;
    return err(`LOADING lamportkv replica is not serving yet (state ${state}, no view)`);
  }

  #submit(cmd: Command, respond: Respond): void {
    const routing = this.#routing;
    this.#host.submit(
      cmd,
      (outcome) => {
        const reply = outcomeReply(outcome);
        respond(routing === undefined ? reply : addressRedirect(reply, routing));
      },
      this.#gone.signal,
    );
  }

  #server(spec: CommandSpec, argv: ByteString[], respond: Respond): After {
    const sub = argv.length > 1 ? argv[1].toLowerCase() : "";
    switch (spec.name) {
      case "ping":
        if (argv.length > 2) return respond(E.ARITY("ping"));
        if (this.subscribed) return respond(["pong", argv.length === 2 ? argv[1] : ""]);
        if (this.#loading()) return respond(this.#loadingError());
        return respond(argv.length === 2 ? argv[1] : status("PONG"));
      case "echo":
        if (this.#loading()) return respond(this.#loadingError());
        return respond(argv[1]);
      case "quit":
        respond(OK);
        return "close";
      case "select":
        if (!/^-?[0-9]+$/.test(argv[1])) return respond(E.NOT_INT);
        return respond(Number(argv[1]) === 0 ? OK : err("ERR DB index is out of range"));
      case "hello":
        return this.#hello(argv, respond);
      case "auth":
        return this.#auth(argv, respond);
      case "acl":
        return this.#acl(sub, argv, respond);
      case "client":
        return this.#client(sub, argv, respond);
      case "reset":
        this.#subs?.clear();
        this.#multi = null;
        this.#multiDirty = false;
        this.#watches = new WatchSet();
        this.name = "";
        this.#user = "default";
        this.#authenticated = false;
        this.#readonly = false;
        return respond(status("RESET"));
      case "time": {
        const us = Math.floor(this.#host.now() * 1000);
        return respond([String(Math.floor(us / 1e6)), String(us % 1e6)]);
      }
      case "info":
        return respond(
          formatInfo(
            this.#host.status(),
            this.#host.stats(),
            argv.slice(1).map((s) => s.toLowerCase()),
          ),
        );
      case "command":
        return respond(this.#command(sub, argv));
      case "config":
        if (sub === "set") return this.#configSet(argv, respond);
        return respond(this.#config(sub, argv));
      case "subscribe":
      case "psubscribe":
      case "unsubscribe":
      case "punsubscribe":
        return this.#subscription(spec.name, argv.slice(1), respond);
      case "pubsub":
        return respond(this.#pubsubInfo(sub, argv));
      case "multi":
        if (this.#multi !== null) return respond(err("ERR MULTI calls can not be nested"));
        this.#multi = [];
        this.#multiDirty = false;
        this.#multiBytes = 0;
        return respond(OK);
      case "discard":
        if (this.#multi === null) return respond(err("ERR DISCARD without MULTI"));
        this.#multi = null;
        this.#watches = new WatchSet();
        return respond(OK);
      case "watch":
        if (this.#multi !== null) return respond(err("ERR WATCH inside MULTI is not allowed"));
        return this.#watch(argv.slice(1), respond);
      case "unwatch":
        this.#watches = new WatchSet();
        return respond(OK);
      case "exec":
        return this.#exec(respond);
      case "req":
        return this.#req(argv, respond);
      case "replicaset": {
        const replicaSet = this.#host.replicaSet?.();
        if (replicaSet === undefined) return respond(err(ERR_NOT_SERVED));
        return replicaSet(argv, respond);
      }
      case "cluster": {
        const cluster = this.#host.cluster?.();
        if (cluster === undefined) return respond(err(ERR_NOT_SERVED));
        return cluster(argv, respond);
      }
      case "readonly":
        this.#readonly = true;
        return respond(OK);
      case "asking":
        this.#asking = true;
        return respond(OK);
      case "readwrite":
        this.#readonly = false;
        return respond(OK);
      default:
        return respond(err(ERR_NOT_SERVED));
    }
  }

  #watch(keys: ByteString[], respond: Respond): void {
    const set = this.#watches;
    set.pending++;
    this.#submit({ op: { argv: ["__VERSION"], time: this.#host.now() } }, (reply) => {
      if (Array.isArray(reply) && typeof reply[0] === "number" && typeof reply[1] === "number") {
        const mark = { version: reply[0], time: reply[1] };
        for (const k of keys) if (!set.keys.has(k)) set.keys.set(k, mark);
        respond(OK);
      } else {
        set.failed = true; // EXEC will not run blind: it aborts like a changed key
        respond(isError(reply) ? reply : err("ERR WATCH failed"));
      }
      set.answered();
    });
  }

  #exec(respond: Respond, asking = false): void {
    if (this.#multi === null) return respond(err("ERR EXEC without MULTI"));
    const queued = this.#multi;
    const dirty = this.#multiDirty;
    this.#multi = null;
    this.#multiDirty = false;
    const watches = this.#watches;
    this.#watches = new WatchSet();
    if (dirty) return respond(err("EXECABORT Transaction discarded because of previous errors."));
    // Used memory passed the limit after the commands were queued: as in Redis, a transaction
    // that may add data is discarded.
    const grows = queued.some((argv) => COMMANDS.get(argv[0])?.flags.includes("denyoom"));
    if (grows && this.#host.memory?.outOfMemory()) {
      return respond(err(`EXECABORT Transaction discarded because of: ${OOM_ERROR}`));
    }
    if (this.#routing !== undefined) {
      // Each queued command was routed alone; together their keys must be in one slot too.
      const keys = queued.flatMap((argv) => routingKeys(COMMANDS.get(argv[0])!, argv));
      const elsewhere = routeKeys(keys, this.#routing);
      if (elsewhere !== null) return respond(elsewhere);
    }
    // Server commands in the queue (PING, ECHO, ...) are answered here, in their place among
    // the replies of the data commands, which run as one operation.
    // Rights are checked again now, in case they changed since the commands were queued.
    const refused = queued.map((argv) => {
      const r = this.#refusal(COMMANDS.get(argv[0])!, argv);
      return r === null ? null : err(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and its execution",
      );
    });
    const isData = queued.map((argv, i) =>
      refused[i] === null && COMMANDS.get(argv[0])?.apply !== undefined
    );
    const data = queued.filter((_, i) => isData[i]);
    const send = () => {
      if (watches.failed) return respond(NIL_ARRAY);
      const watched = [...watches.keys];
      const op = { argv: this.#flagged(encodeExec(watched, data), asking), time: this.#host.now() };
      this.#submit({ op }, (reply) => {
        if (!Array.isArray(reply) || data.length === queued.length) return respond(reply);
        let next = 0;
        respond(queued.map((argv, i) => {
          if (isData[i]) return reply[next++];
          if (refused[i] !== null) return refused[i];
          let local: Reply = null;
          this.#server(COMMANDS.get(argv[0])!, argv, (r) => (local = r));
          return local;
        }));
      });
    };
    if (watches.pending === 0) return send();
    this.#held = [];
    watches.whenAnswered(() => {
      send();
      this.#release();
    });
  }

  /** Submits an ACL change; an `__ACL INIT` of this replica's users goes first if needed. */
  #aclChange(argv: ByteString[], respond: Respond): void {
    const acl = this.#host.acl();
    if (!acl.initialised()) {
      this.#submit({ op: { argv: acl.initArgv(), time: this.#host.now() } }, () => {});
    }
    this.#submit({ op: { argv, time: this.#host.now() } }, respond);
  }

  #acl(sub: string, argv: ByteString[], respond: Respond): After {
    const arity = Object.hasOwn(ACL_ARITY, sub) ? ACL_ARITY[sub] : undefined;
    if (arity === undefined) {
      return respond(
        err(`ERR unknown subcommand '${byteStringToUtf8(argv[1].slice(0, 128))}'. Try ACL HELP.`),
      );
    }
    if (arity >= 0 ? argv.length !== arity : argv.length < -arity) {
      return respond(E.ARITY(`acl|${sub}`));
    }
    const host = this.#host.acl();
    const table = host.table();
    switch (sub) {
      case "whoami":
        return respond(this.#user);
      case "users":
        return respond([...table.keys()].sort(byteOrder));
      case "list":
        return respond(describeTable(table));
      case "getuser": {
        const u = table.get(argv[2]);
        return respond(u === undefined ? null : getUserReply(u));
      }
      case "cat": {
        if (argv.length > 3) {
          return respond(
            err("ERR unknown subcommand or wrong number of arguments for 'CAT'. Try ACL HELP."),
          );
        }
        if (argv.length === 2) return respond([...ACL_CATEGORIES]);
        const cat = argv[2].toLowerCase();
        if (!ACL_CATEGORIES.includes(cat)) {
          return respond(err(`ERR Unknown category '${byteStringToUtf8(argv[2])}'`));
        }
        return respond(unitsInCategory(cat));
      }
      case "setuser": {
        const name = argv[2];
        const bad = badUserName(name);
        if (bad !== null) return respond(err(`ERR ${bad}`));
        // A dry run on this replica's table, so errors quote the rule as the client wrote it.
        const existing = table.get(name);
        const trial = existing === undefined ? newUser(name) : copyUser(existing);
        for (const rule of argv.slice(3)) {
          try {
            applyRule(trial, rule);
          } catch (e) {
            if (!(e instanceof AclRuleError)) throw e;
            return respond(
              err(`ERR Error in ACL SETUSER modifier '${byteStringToUtf8(rule)}': ${e.message}`),
            );
          }
        }
        return this.#aclChange(["__ACL", "SETUSER", name, ...argv.slice(3).map(hashRule)], respond);
      }
      case "deluser":
        if (argv.slice(2).includes("default")) {
          return respond(err("ERR The 'default' user cannot be removed"));
        }
        return this.#aclChange(["__ACL", "DELUSER", ...argv.slice(2)], respond);
      case "save":
        if (host.save === undefined) return respond(err(NO_ACLFILE));
        host.save().then(
          () => respond(OK),
          () =>
            respond(
              err(
                "ERR There was an error trying to save the ACLs. Please check the server logs for more information",
              ),
            ),
        );
        return;
      case "load":
        if (host.load === undefined) return respond(err(NO_ACLFILE));
        host.load().then(
          (r) =>
            "error" in r
              ? respond(err(`ERR ${r.error}`))
              : this.#aclChange(["__ACL", "LOAD", ...r.lines], respond),
          (e) => respond(err(`ERR ${e instanceof Error ? e.message : String(e)}`)),
        );
        return;
      case "genpass": {
        const bits = argv.length > 2 ? (/^[0-9]+$/.test(argv[2]) ? Number(argv[2]) : -1) : 256;
        if (bits <= 0 || bits > 4096) {
          return respond(
            err(
              "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
            ),
          );
        }
        const chars = Math.ceil(bits / 4);
        const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(chars / 2)));
        return respond(toHex(bytes).slice(0, chars));
      }
      case "log":
        if (argv.length === 3 && argv[2].toLowerCase() === "reset") return respond(OK);
        if (argv.length > 3) return respond(E.SYNTAX);
        return respond([]);
      case "dryrun": {
        const u = table.get(argv[2]);
        if (u === undefined) {
          return respond(err(`ERR User '${byteStringToUtf8(argv[2])}' not found`));
        }
        const spec = COMMANDS.get(argv[3]);
        if (spec === undefined || spec.internal) {
          return respond(err(`ERR Command '${byteStringToUtf8(argv[3])}' not found`));
        }
        const cmd = argv.slice(3);
        if (!arityOk(spec, cmd.length)) return respond(E.ARITY(spec.name));
        const d = spec.name === "req"
          ? null
          : checkCommand(u, spec, cmd, spec.name === "watch" ? cmd.slice(1) : undefined);
        if (d === null) return respond(OK);
        if (d.kind === "channel") {
          return respond(
            `This user has no permissions to access the '${byteStringToUtf8(d.channel)}' channel`,
          );
        }
        return respond(deniedText(d).replace("NOPERM this user", "This user"));
      }
      case "help":
        return respond([
          "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
          "CAT [<category>]",
          "    List all commands that belong to <category>, or all command categories",
          "    when no category is specified.",
          "DELUSER <username> [<username> ...]",
          "    Delete a list of users.",
          "DRYRUN <username> <command> [<arg> ...]",
          "    Returns whether the user can execute the given command without executing the command.",
          "GETUSER <username>",
          "    Get the user's details.",
          "GENPASS [<bits>]",
          "    Generate a secure 256-bit user password. The optional `bits` argument can",
          "    be used to specify a different size.",
          "LIST",
          "    Show users details in config file format.",
          "LOAD",
          "    Reload users from the ACL file.",
          "LOG [<count> | RESET]",
          "    Show the ACL log entries.",
          "SAVE",
          "    Save the current config to the ACL file.",
          "SETUSER <username> <attribute> [<attribute> ...]",
          "    Create or modify a user with the specified attributes.",
          "USERS",
          "    List all the registered usernames.",
          "WHOAMI",
          "    Return the current connection username.",
          "HELP",
          "    Print this help.",
        ]);
      default:
        return respond(err(ERR_NOT_SERVED));
    }
  }

  #req(argv: ByteString[], respond: Respond, asking = false): void {
    const client = argv[1];
    if (client.length === 0 || client.length > MAX_CLIENT_ID_BYTES) {
      return respond(err(`ERR REQ client id must be 1 to ${MAX_CLIENT_ID_BYTES} bytes`));
    }
    const seq = /^[1-9][0-9]{0,15}$/.test(argv[2]) ? Number(argv[2]) : NaN;
    if (!Number.isSafeInteger(seq)) {
      return respond(err("ERR REQ sequence number must be a positive integer"));
    }
    const inner = argv.slice(3);
    const spec = COMMANDS.get(inner[0]);
    if (spec === undefined || spec.internal || spec.apply === undefined) {
      return respond(
        err(
          `ERR REQ can only wrap a data command, not '${byteStringToUtf8(inner[0].slice(0, 128))}'`,
        ),
      );
    }
    if (!arityOk(spec, inner.length)) return respond(E.ARITY(spec.name));
    const op = { argv: this.#flagged(inner, asking), time: this.#host.now() };
    this.#submit({ op, tag: { client, seq } }, respond);
  }

  /**
   * Logs in as `user` with `password`: OK, or WRONGPASS answered after a delay that doubles with
   * each failure on this connection; after {@link MAX_AUTH_FAILURES} failures the connection is
   * closed. Passwords are compared by their SHA-256 hashes and never logged.
   */
  #login(user: ByteString, password: ByteString, respond: Respond, ok: () => Reply): After {
    const u = this.#host.acl().table().get(user);
    if (passwordOpens(u, password)) {
      this.#user = user;
      this.#authenticated = true;
      respond(ok());
      return;
    }
    this.#host.noteDenied("auth", { remote: this.remote, user });
    this.#authFailures++;
    const now = Date.now();
    const delayed = this.#authFailures - AUTH_FAILURES_UNDELAYED;
    const delay = delayed <= 0
      ? 0
      : Math.min(AUTH_FAILURE_DELAY_MS * 2 ** (delayed - 1), MAX_AUTH_FAILURE_DELAY_MS);
    const at = Math.max(now, this.#authNotBefore) + delay;
    this.#authNotBefore = at;
    if (at <= now) respond(err(WRONGPASS));
    else setTimeout(() => respond(err(WRONGPASS)), at - now);
    return this.#authFailures >= MAX_AUTH_FAILURES ? "close" : undefined;
  }

  #auth(argv: ByteString[], respond: Respond): After {
    if (argv.length > 3) return respond(E.SYNTAX);
    if (argv.length === 2) {
      const d = this.#host.acl().table().get("default");
      if (d !== undefined && d.on && d.nopass) {
        return respond(
          err(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
          ),
        );
      }
      return this.#login("default", argv[1], respond, () => OK);
    }
    return this.#login(argv[1], argv[2], respond, () => OK);
  }

  #hello(argv: ByteString[], respond: Respond): After {
    let i = 1;
    if (argv.length > 1) {
      const v = argv[1];
      if (!/^-?[0-9]+$/.test(v)) {
        return respond(err("ERR Protocol version is not an integer or out of range"));
      }
      if (v !== "2") return respond(err("NOPROTO unsupported protocol version"));
      i = 2;
    }
    let auth: [ByteString, ByteString] | undefined;
    let name: ByteString | undefined;
    for (; i < argv.length; i++) {
      const opt = argv[i].toLowerCase();
      if (opt === "auth" && i + 2 < argv.length) {
        auth = [argv[i + 1], argv[i + 2]];
        i += 2;
      } else if (opt === "setname" && i + 1 < argv.length) {
        const bad = this.#badName(argv[i + 1]);
        if (bad) return respond(bad);
        name = argv[++i];
      } else {
        return respond(
          err(`ERR Syntax error in HELLO option '${byteStringToUtf8(argv[i])}'`),
        );
      }
    }
    const done = (): Reply => {
      if (name !== undefined) this.name = name;
      return this.#helloReply();
    };
    if (auth !== undefined) return this.#login(auth[0], auth[1], respond, done);
    if (!this.#authenticated) {
      const d = this.#host.acl().table().get("default");
      if (!(d !== undefined && d.on && d.nopass)) {
        return respond(
          err(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
          ),
        );
      }
    }
    return respond(done());
  }

  #helloReply(): Reply {
    return [
      "server",
      "redis",
      "version",
      REDIS_VERSION,
      "proto",
      2,
      "id",
      this.id,
      "mode",
      "standalone",
      "role",
      "master",
      "modules",
      [],
    ];
  }

  #badName(name: ByteString): Reply | null {
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c < 33 || c > 126) {
        return err("ERR Client names cannot contain spaces, newlines or special characters.");
      }
    }
    return null;
  }

  /** One line of CLIENT LIST / CLIENT INFO. */
  describe(now: number): ByteString {
    const age = Math.floor((now - this.createdAt) / 1000);
    const idle = Math.floor((now - this.lastActive) / 1000);
    return `id=${this.id} addr=${this.remote} laddr=${this.local} fd=0 name=${this.name} ` +
      `age=${age} idle=${idle} flags=${this.#multi ? "x" : this.subscribed ? "P" : "N"} db=0 ` +
      `sub=${this.#subs?.channels.size ?? 0} psub=${this.#subs?.patterns.size ?? 0} ssub=0 ` +
      `multi=${this.#multi ? this.#multi.length : -1} qbuf=0 qbuf-free=0 argv-mem=0 ` +
      `multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=${this.lastCommand} ` +
      `user=${this.#user} redir=-1 resp=2\n`;
  }

  #client(sub: string, argv: ByteString[], respond: Respond): After {
    const now = this.#host.now();
    switch (sub) {
      case "setname": {
        if (argv.length !== 3) return respond(E.ARITY("client|setname"));
        const bad = this.#badName(argv[2]);
        if (bad) return respond(bad);
        this.name = argv[2];
        return respond(OK);
      }
      case "getname":
        return respond(this.name === "" ? null : this.name);
      case "id":
        return respond(this.id);
      case "info":
        return respond(this.describe(now));
      case "list": {
        let ids: Set<number> | undefined;
        /** `TYPE normal` or `TYPE pubsub` (subscribed mode). */
        let type: string | undefined;
        if (argv.length > 2) {
          if (argv[2].toLowerCase() === "id" && argv.length > 3) {
            ids = new Set();
            for (const a of argv.slice(3)) {
              if (!/^[0-9]+$/.test(a)) return respond(err("ERR Invalid client ID"));
              ids.add(Number(a));
            }
          } else if (argv[2].toLowerCase() === "type" && argv.length === 4) {
            const t = argv[3].toLowerCase();
            if (!["normal", "master", "replica", "pubsub"].includes(t)) {
              return respond(err(`ERR Unknown client type '${byteStringToUtf8(argv[3])}'`));
            }
            if (t !== "normal" && t !== "pubsub") return respond("");
            type = t;
          } else return respond(E.SYNTAX);
        }
        let out = "";
        for (const s of this.#host.sessions()) {
          if (ids && !ids.has(s.id)) continue;
          if (type !== undefined && s.subscribed !== (type === "pubsub")) continue;
          out += s.describe(now);
        }
        return respond(out);
      }
      case "kill":
        return this.#clientKill(argv, respond);
      case "setinfo":
        if (argv.length !== 4) return respond(E.ARITY("client|setinfo"));
        if (!["lib-name", "lib-ver"].includes(argv[2].toLowerCase())) {
          return respond(err(`ERR Unrecognized option '${byteStringToUtf8(argv[2])}'`));
        }
        return respond(OK);
      case "no-evict":
      case "no-touch":
        if (argv.length !== 3 || !["on", "off"].includes(argv[2].toLowerCase())) {
          return respond(E.SYNTAX);
        }
        return respond(OK);
      case "reply":
        if (argv.length === 3 && argv[2].toLowerCase() === "on") return respond(OK);
        return respond(err("ERR CLIENT REPLY OFF|SKIP is not supported by lamportkv"));
      default:
        return respond(
          err(
            `ERR unknown subcommand '${byteStringToUtf8(argv[1].slice(0, 128))}'. Try CLIENT HELP.`,
          ),
        );
    }
  }

  #clientKill(argv: ByteString[], respond: Respond): After {
    const targets: Session[] = [];
    const all = [...this.#host.sessions()];
    if (argv.length === 3) {
      const s = all.find((x) => x.remote === argv[2]);
      if (!s) return respond(err("ERR No such client"));
      targets.push(s);
    } else {
      if ((argv.length - 2) % 2 !== 0) return respond(E.SYNTAX);
      let pick = all;
      let skipme = true;
      for (let i = 2; i < argv.length; i += 2) {
        const f = argv[i].toLowerCase();
        const v = argv[i + 1];
        if (f === "id") pick = pick.filter((s) => String(s.id) === v);
        else if (f === "addr") pick = pick.filter((s) => s.remote === v);
        else if (f === "laddr") pick = pick.filter((s) => s.local === v);
        else if (f === "skipme") skipme = v.toLowerCase() !== "no";
        else if (f === "type" || f === "user") continue;
        else return respond(E.SYNTAX);
      }
      targets.push(...pick.filter((s) => !(skipme && s === this)));
      for (const s of targets) if (s !== this) s.kill();
      if (targets.includes(this)) {
        respond(targets.length);
        return "close";
      }
      return respond(targets.length);
    }
    const [t] = targets;
    if (t === this) {
      respond(OK);
      return "close";
    }
    t.kill();
    return respond(OK);
  }

  #command(sub: string, argv: ByteString[]): Reply {
    const specs = COMMANDS.public();
    switch (sub) {
      case "":
        return specs.map(commandInfo);
      case "count":
        return specs.length;
      case "list":
        return specs.map((s) => s.name);
      case "info": {
        if (argv.length === 2) return specs.map(commandInfo);
        return argv.slice(2).map((n) => {
          const s = COMMANDS.get(n);
          return s && !s.internal ? commandInfo(s) : null;
        });
      }
      case "docs": {
        const chosen = argv.length === 2
          ? specs
          : argv.slice(2).map((n) => COMMANDS.get(n)).filter((s): s is CommandSpec =>
            s !== undefined && !s.internal
          );
        return chosen.flatMap((s) => [s.name, commandDocs(s)]);
      }
      default:
        return err(
          `ERR unknown subcommand '${byteStringToUtf8(argv[1].slice(0, 128))}'. Try COMMAND HELP.`,
        );
    }
  }

  /**
   * SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE: one confirmation per channel or pattern,
   * the first as the reply, the others pushed right behind it.
   */
  #subscription(name: string, names: ByteString[], respond: Respond): void {
    const push = this.push;
    if (push === undefined) {
      return respond(err(`ERR ${name.toUpperCase()} needs a RESP connection`));
    }
    this.#subs ??= new Subscriptions(this.#host.pubsub(), { push });
    const pattern = name.startsWith("p");
    const replies = name.endsWith("unsubscribe")
      ? this.#subs.unsubscribe(names, pattern)
      : this.#subs.subscribe(names, pattern);
    respond(replies[0]);
    for (const r of replies.slice(1)) push(r);
  }

  /** PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | HELP, from this replica. */
  #pubsubInfo(sub: string, argv: ByteString[]): Reply {
    const hub = this.#host.pubsub();
    if (sub === "channels" && argv.length <= 3) return hub.channels(argv[2]);
    if (sub === "numsub") return argv.slice(2).flatMap((ch) => [ch, hub.numsub(ch)]);
    if (sub === "numpat" && argv.length === 2) return hub.numpat();
    if (sub === "help" && argv.length === 2) {
      return [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "HELP",
        "    Print this help.",
      ];
    }
    if (["channels", "numpat", "help"].includes(sub)) return E.ARITY(`pubsub|${sub}`);
    return err(
      `ERR unknown subcommand '${byteStringToUtf8(argv[1].slice(0, 128))}'. Try PUBSUB HELP.`,
    );
  }

  /**
   * CONFIG SET: only `notify-keyspace-events`, which changes what every replica publishes, so it
   * is set in the total order (the internal `__config` operation).
   */
  #configSet(argv: ByteString[], respond: Respond): void {
    if (argv.length < 4 || argv.length % 2 !== 0) return respond(E.ARITY("config|set"));
    if (argv.length !== 4 || argv[2].toLowerCase() !== "notify-keyspace-events") {
      return respond(
        err(
          "ERR CONFIG SET is not supported by lamportkv except for notify-keyspace-events: settings are in the cluster config file",
        ),
      );
    }
    const flags = parseNotifyFlags(argv[3]);
    if (flags === null) return respond(err(BAD_NOTIFY_FLAGS));
    const op = ["__CONFIG", "SET", "notify-keyspace-events", formatNotifyFlags(flags)];
    this.#submit({ op: { argv: op, time: this.#host.now() } }, respond);
  }

  #config(sub: string, argv: ByteString[]): Reply {
    if (sub === "get") {
      if (argv.length < 3) return E.ARITY("config|get");
      const params = this.#host.config();
      const out: Reply[] = [];
      const seen = new Set<string>();
      for (const pattern of argv.slice(2)) {
        for (const [k, v] of Object.entries(params)) {
          if (!seen.has(k) && globMatch(pattern.toLowerCase(), k)) {
            seen.add(k);
            out.push(k, v);
          }
        }
      }
      return out;
    }
    if (sub === "rewrite" || sub === "resetstat") {
      return err(
        `ERR CONFIG ${sub.toUpperCase()} is not supported by lamportkv: settings are in the cluster config file`,
      );
    }
    return err(
      `ERR unknown subcommand '${byteStringToUtf8(argv[1].slice(0, 128))}'. Try CONFIG HELP.`,
    );
  }
}
