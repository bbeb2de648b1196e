/**
 * The lamportkv client library: talks RESP to one replica at a time and fails over to the others.
 *
 * Every operation is sent as `REQ <client-id> <seq> <COMMAND> <args...>`: the client id is random
 * per {@link LamportClient} instance and `seq` grows by one per operation. When the replica fails
 * (connection error, no reply in time, or a `-NOQUORUM` / `-UNKNOWN` / `-NOTMEMBER` reply, or
 * `-READONLY` from a learner), the client moves on to the next reachable replica of its failover
 * list (round-robin; after `-READONLY` the next voter) and resends the *same* request with the
 * *same* seq, until the operation's deadline. The replicas remember the last seq per client,
 * so a write that was already applied is not applied twice. For that guarantee the client runs
 * one operation at a time: concurrent calls queue up in call order. Use several clients for
 * concurrency.
 *
 * The failover list starts as the config file's replicas. On every new connection (the first,
 * and each after a failover) the client asks `REPLICASET MEMBERS` and makes the list the
 * configuration in force: its voters, then its learners, at their client ports. So a config
 * file that lists only replicas since removed still leads to the current ones. A replica that
 * cannot say (an older server, a user without the right) leaves the list as it was; a
 * `-NOTMEMBER` refusal puts the members it names first and drops the replica that refused.
 *
 * A sharded cluster (config lines with `group=`): the failover list is one group's (the preferred
 * replica's, else the first's). A `-MOVED <slot> <host>:<port>` reply naming a replica of the
 * config file moves the client to that replica's group, as `redis-cli -c` follows it, and the
 * request is resent there. An `-ASK <slot> <host>:<port>` reply (the slot is being migrated and
 * the key is not at the source) sends this one command to that replica's group after `ASKING`;
 * the next command goes to the group it was sent to before. Up to 5 redirections per command.
 * `-TRYAGAIN` (the keys are being migrated right now) is retried where the slot table says, after
 * a wait that doubles from 5 ms up to 250 ms, up to {@link MAX_TRYAGAIN_RETRIES} times within the
 * command's deadline; then returned. So is a MOVED back to a group that refused the command
 * already (two groups' copies of the map disagree while a slot changes owner). These replies say
 * the command was not applied: the retry goes with a new seq. A redirection or
 * TRYAGAIN after an attempt that may have been applied (a lost reply) ends a write with
 * `UNKNOWN`: sent elsewhere it could be applied twice. Inside a transaction (session commands)
 * MOVED, ASK and TRYAGAIN are returned as they are.
 *
 * Keys and values are {@link ByteString}s (binary-safe); convert text with `utf8ToByteString` /
 * `byteStringToUtf8` from `src/kv/bytes.ts`. The client does no conversion.
 *
 * @module
 */
import type { ByteString, ReplicaId } from "../core/types.ts";
import type { ClusterConfig, ReplicaAddress } from "../config/config.ts";
import { RespError, type RespValue, type TaggedRespValue } from "../net/resp.ts";
import { parseInfo } from "../net/info.ts";
import { COMMANDS, isBlockingCommand } from "../kv/commands/index.ts";
import { arityOk } from "../kv/registry.ts";
import { MAX_TIMER_MS } from "../limits.ts";
import { toHex } from "../kv/bytes.ts";
import { parseRedirect } from "../kv/slots.ts";
import {
  failoverList,
  type MemberInfo,
  parseMembersReply,
  parseNotMemberMessage,
} from "./members.ts";
import { ConnectionError, RespConnection } from "./connection.ts";
import { Sleep } from "../net/conn_writer.ts";
import type { TlsClientConfig } from "../net/tls.ts";
import { REMOVE_WAIT_MS } from "../runtime/replica_set_host.ts";

/** Commands that put a connection in subscribed mode: this client does not run them. */
const SUBSCRIBING = new Set(["subscribe", "psubscribe"]);

/** INFO fields of a replica by name (`id`, `view`, `members`, `clock`, `delivered`, ...). */
export type InfoFields = Record<string, string>;

/** How {@link LamportClient} runs one command. */
interface RunOptions {
  /** Send the command as it is (no REQ wrapper, no exactly-once tag). */
  plain?: boolean;
  /** Return error replies as values instead of throwing them. */
  errorsAsValues?: boolean;
  /** See {@link CommandOptions.tagStatus}. */
  tagStatus?: boolean;
  /** See {@link CommandOptions.session}. */
  session?: boolean;
  /** How long the command may take on the replica beyond an ordinary one (ms; default 0). */
  waitMs?: number;
}

/** Options of {@link LamportClient.command}. */
export interface CommandOptions {
  /**
   * Return simple-string replies (`+OK`, `+QUEUED`) as `RespStatus` values, apart from bulk
   * strings (for showing them as `redis-cli` does).
   */
  tagStatus?: boolean;
  /**
   * Send on the current connection only: no connecting, no failover, no resending. For commands
   * that belong to the connection's session (inside MULTI, after WATCH), which another replica
   * knows nothing about: there they would run outside the transaction. When the connection is
   * gone or fails, the session is gone with it and the command throws `UNAVAILABLE` or
   * `TIMEOUT` (no other replica is tried).
   */
  session?: boolean;
}

/** Default overall deadline of one operation, retries included. */
export const DEFAULT_DEADLINE_MS = 10_000;
/** Default time allowed for connecting to one replica. */
export const DEFAULT_CLIENT_CONNECT_TIMEOUT_MS = 1000;
/** Default time one attempt waits for a reply before the client tries another replica. */
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 3000;

/**
 * Why an operation failed:
 * - `UNAVAILABLE`: no replica could be reached (or the client is closed);
 * - `NOQUORUM`: every replica tried answered that it cannot reach a majority and did not order
 *   the command, or could not be reached, and no earlier attempt may have been applied: it was
 *   not applied;
 * - `UNKNOWN`: a replica answered that the outcome is unknown, or NOQUORUM came after an attempt
 *   that may have been applied;
 * - `TIMEOUT`: the deadline expired while waiting for a reply;
 * - `NOTMEMBER`: every replica tried is outside the configuration in force, or could not be
 *   reached (not applied);
 * - `READONLY`: a write found only learners, which refuse writes, or replicas that could not be
 *   reached (not applied);
 * - `REFUSED`: the replica refused the request before ordering it (not retried);
 * - `ERR`: the request was rejected as invalid, or the reply made no sense (not retried).
 */
export type ClientErrorCode =
  | "UNAVAILABLE"
  | "NOQUORUM"
  | "UNKNOWN"
  | "TIMEOUT"
  | "NOTMEMBER"
  | "READONLY"
  | "REFUSED"
  | "ERR";

/** A failed client operation. */
export class ClientError extends Error {
  /** What kind of failure. */
  readonly code: ClientErrorCode;
  /**
   * Whether the operation may have been applied anyway (a request was sent and no answer said
   * that nothing was applied). False means it certainly was not applied.
   */
  readonly maybeApplied: boolean;

  /** Builds the error. */
  constructor(code: ClientErrorCode, message: string, maybeApplied = false) {
    super(message);
    this.name = "ClientError";
    this.code = code;
    this.maybeApplied = maybeApplied;
  }
}

/** Why the client left a replica. */
export type SwitchReason =
  | "unreachable"
  | "timeout"
  | "noquorum"
  | "unknown"
  | "notmember"
  | "readonly"
  | "moved"
  | "ask";

/** Reported when the client starts talking to a different replica than before. */
export interface SwitchEvent {
  /** The replica it left, or null (none before). */
  from: ReplicaAddress | null;
  /** The replica it now talks to. */
  to: ReplicaAddress;
  /** Why it left `from` (`unreachable` also when `from` could not be connected to at all). */
  reason: SwitchReason;
  /** The error that made it leave, in words. */
  detail: string;
}

/** Options of {@link LamportClient}. */
export interface ClientOptions {
  /** Try this replica first (default: the first of the config). */
  preferredReplica?: ReplicaId;
  /** Overall deadline of one operation in ms, retries included (default 10 s). */
  deadlineMs?: number;
  /** Connect timeout per replica in ms (default 1 s). */
  connectTimeoutMs?: number;
  /** How long one attempt waits for its reply before failing over, in ms (default 3 s). */
  attemptTimeoutMs?: number;
  /** The client id sent in `REQ` (default: 16 random hex digits). */
  clientId?: string;
  /** Called whenever the client switches replica. */
  onSwitch?: (event: SwitchEvent) => void;
  /** Connect to the replicas over TLS (see `ConnectionOptions.tls`). Default: plain TCP. */
  tls?: TlsClientConfig;
  /** The user to log in as (default `default`); used only with a {@link password}. */
  user?: string;
  /**
   * The password: with it, every connection (each reconnection and failover included) starts
   * with `AUTH <user> <password>`. Never logged.
   */
  password?: string;
}

/** INFO of one replica, as reported by {@link LamportClient.statusAll}. */
export interface ReplicaReport {
  /** The replica (from the failover list, or the config file). */
  replica: ReplicaAddress;
  /** Whether it answered (INFO, or an error reply to it). */
  reachable: boolean;
  /** Its INFO fields, or null when INFO failed. */
  info: InfoFields | null;
  /** Why INFO failed (unreachable, timed out, error reply), or null. */
  error: string | null;
}

/** Most MOVED and ASK redirections followed for one command (a sharded cluster). */
const MAX_REDIRECTS = 5;
/** Most `-TRYAGAIN` replies retried for one command (within its deadline too). */
export const MAX_TRYAGAIN_RETRIES = 20;
/** The first wait before retrying after `-TRYAGAIN` (doubling each time, up to the next). */
const TRYAGAIN_FIRST_WAIT_MS = 5;
/** The longest wait before retrying after `-TRYAGAIN`. */
const TRYAGAIN_MAX_WAIT_MS = 250;

/** The group a command was sent to before an ASK redirection sent it elsewhere for once. */
interface Home {
  group: string | undefined;
  replicas: ReplicaAddress[];
  index: number;
}

/** Where one command is sent, as redirections change it. */
interface Route {
  /** Each attempt is preceded by `ASKING` (the command follows an ASK). */
  asking: boolean;
  /** Where the client was before an ASK, to go back to after the command; null: no ASK. */
  home: Home | null;
}

/** A MOVED or ASK reply naming a replica of the config file. */
interface Redirect {
  target: ReplicaAddress;
  slot: number;
  ask: boolean;
}

/** A client of a lamportkv cluster. See the module documentation. */
export class LamportClient {
  /** The random client id used in `REQ`. */
  readonly clientId: string;
  /** The cluster it talks to. */
  readonly config: ClusterConfig;
  /** Called whenever the client switches replica (may be replaced at any time). */
  onSwitch: ((event: SwitchEvent) => void) | undefined;

  readonly #deadlineMs: number;
  readonly #connectTimeoutMs: number;
  readonly #tls: TlsClientConfig | undefined;
  readonly #attemptTimeoutMs: number;
  readonly #user: string;
  readonly #password: string | undefined;
  /** The replicas to fail over between (see the module documentation). */
  #replicas: ReplicaAddress[];
  /** The group of a sharded cluster the failover list is of (undefined: no groups). */
  #group: string | undefined;
  /** The configuration in force as last learned (null: not learned yet). */
  #members: MemberInfo[] | null = null;
  /** The position in {@link #replicas} of the next replica to connect to. */
  #index: number;
  #conn: RespConnection | null = null;
  /** The replica {@link #conn} is connected to. */
  #connReplica: ReplicaAddress | null = null;
  /** The replica last talked to and why it was left, for the next switch event. */
  #left: { replica: ReplicaAddress; reason: SwitchReason; detail: string } | null = null;
  #seq = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  readonly #closing = new Set<Promise<void>>();
  /** The back-off wait between failover rounds (one at a time: operations run in turn). */
  readonly #backoff = new Sleep();

  /** Creates a client; no I/O happens until {@link connect} or the first operation. */
  constructor(config: ClusterConfig, options: ClientOptions = {}) {
    if (config.replicas.length === 0) throw new Error(`${config.path}: no replicas`);
    this.config = config;
    // Sharded (groups): fail over within one group, the preferred replica's (else the first's);
    // a MOVED reply moves the client to the group it names.
    const start = config.replicas.find((r) => r.id === options.preferredReplica) ??
      config.replicas[0];
    this.#group = start.group;
    this.#replicas = this.#groupLines(start.group);
    this.clientId = options.clientId ?? randomId();
    this.onSwitch = options.onSwitch;
    this.#deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CLIENT_CONNECT_TIMEOUT_MS;
    this.#tls = options.tls;
    this.#attemptTimeoutMs = options.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
    this.#user = options.user ?? "default";
    this.#password = options.password;
    const preferred = options.preferredReplica;
    this.#index = 0;
    if (preferred !== undefined) {
      const index = this.#position(preferred);
      if (index === -1) throw new Error(`${config.path}: no replica with id ${preferred}`);
      this.#index = index;
    }
  }

  /** Creates a client and connects it (see {@link connect}). */
  static async connect(config: ClusterConfig, options: ClientOptions = {}): Promise<LamportClient> {
    const client = new LamportClient(config, options);
    try {
      await client.connect();
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  /** The user this client logs in as (`default` without a password). */
  get user(): string {
    return this.#password === undefined ? "default" : this.#user;
  }

  /** Logs `conn` in when a password was given; throws a {@link ClientError} when refused. */
  async #authenticate(conn: RespConnection): Promise<void> {
    if (this.#password === undefined) return;
    const reply = await conn.send(["AUTH", this.#user, this.#password]);
    if (reply instanceof RespError) throw new ClientError(replyCode(reply), reply.message);
  }

  /** The id of the replica currently connected to, or null. */
  get replica(): ReplicaId | null {
    return this.replicaAddress?.id ?? null;
  }

  /** The address of the replica currently connected to, or null. */
  get replicaAddress(): ReplicaAddress | null {
    return this.#conn && !this.#conn.closed ? this.#connReplica : null;
  }

  /**
   * The replicas this client fails over between, in failover order: the config file's until it
   * learns the configuration in force, then that one's voters and learners.
   */
  get replicas(): readonly ReplicaAddress[] {
    return this.#replicas;
  }

  /**
   * The replica group talked to, of a sharded cluster (the config file's `group=`; undefined
   * without groups): the preferred replica's at first, then the one a MOVED named.
   */
  get group(): string | undefined {
    return this.#group;
  }

  /** The configuration in force as last learned from `REPLICASET MEMBERS`, or null. */
  get members(): readonly MemberInfo[] | null {
    return this.#members;
  }

  /** The seq of the last operation started (0 before the first). */
  get seq(): number {
    return this.#seq;
  }

  /**
   * Connects to the preferred replica, or else the first reachable one in config order after it,
   * trying each replica once.
   *
   * @throws {ClientError} `UNAVAILABLE` when none is reachable.
   */
  async connect(): Promise<void> {
    this.#checkOpen();
    if (this.#conn && !this.#conn.closed) return;
    const errors: string[] = [];
    for (let k = 0; k < this.#replicas.length && !this.#closed; k++) {
      const replica = this.#replicas[this.#index];
      const result = await this.#tryConnect(this.#index, this.#connectTimeoutMs);
      if (result === null) return;
      errors.push(result);
      this.#noteLeft(replica, "unreachable", result);
      this.#advance();
    }
    this.#checkOpen();
    throw new ClientError("UNAVAILABLE", `no replica is reachable: ${errors.join("; ")}`);
  }

  /** Stores `value` under `key`. */
  async put(key: ByteString, value: ByteString): Promise<void> {
    const reply = await this.#run(["PUT", key, value]);
    if (reply !== "OK") throw unexpected("PUT", reply);
  }

  /** The value of `key`, or null when it is absent. */
  async get(key: ByteString): Promise<ByteString | null> {
    const reply = await this.#run(["GET", key]);
    if (reply === null || typeof reply === "string") return reply;
    throw unexpected("GET", reply);
  }

  /** Deletes `key`; true when it existed. */
  async delete(key: ByteString): Promise<boolean> {
    return (await this.#int("DELETE", key)) === 1;
  }

  /** Whether `key` exists. */
  async has(key: ByteString): Promise<boolean> {
    return (await this.#int("HAS", key)) === 1;
  }

  /**
   * Runs any command line and returns its reply; an error reply (e.g. `WRONGTYPE ...`) is
   * returned as a {@link RespError} value, not thrown. Data commands (those the state machine
   * applies) are sent as `REQ` with this client's next seq, so a retry after failover is applied
   * exactly once; the server's own commands (PING, INFO, MULTI, EXEC, ...) are sent as they are.
   *
   * @throws {ClientError} when no replica could answer (UNAVAILABLE, TIMEOUT, NOQUORUM, UNKNOWN).
   */
  command(argv: ByteString[], options?: CommandOptions & { tagStatus?: false }): Promise<RespValue>;
  /** {@link command} with simple-string replies as `RespStatus` values. */
  command(argv: ByteString[], options: CommandOptions): Promise<TaggedRespValue>;
  command(argv: ByteString[], options: CommandOptions = {}): Promise<TaggedRespValue> {
    const spec = argv.length > 0 ? COMMANDS.get(argv[0]) : undefined;
    if (spec !== undefined && SUBSCRIBING.has(spec.name)) {
      // Its pushes would be taken for the replies of later commands.
      return Promise.resolve(
        new RespError(
          `ERR ${spec.name.toUpperCase()} is not supported by the lamportkv client: use redis-cli ` +
            "or a Redis client library to subscribe",
        ),
      );
    }
    // Unknown and internal names go as they are too: the server answers them as unknown.
    const data = spec !== undefined && !spec.internal && spec.apply !== undefined;
    return this.#run(argv, { ...options, plain: !data, errorsAsValues: true });
  }

  /**
   * The INFO fields of replica `replicaId`, over a connection of its own (no failover).
   *
   * @throws {ClientError} `UNAVAILABLE` when it cannot be reached or closes the connection,
   * `TIMEOUT` when it does not answer in time, `ERR` for an error reply or an unknown id.
   */
  async info(replicaId: ReplicaId): Promise<InfoFields> {
    this.#checkOpen();
    const replica = this.#replicas.find((r) => r.id === replicaId) ??
      this.config.replicas.find((r) => r.id === replicaId);
    if (!replica) {
      throw new ClientError("ERR", `no replica with id ${replicaId} in ${this.config.path}`);
    }
    let conn: RespConnection;
    try {
      conn = await RespConnection.connect(replica.host, replica.clientPort, {
        connectTimeoutMs: this.#connectTimeoutMs,
        requestTimeoutMs: this.#attemptTimeoutMs,
        tls: this.#tls,
      });
    } catch (err) {
      throw toClientError(err, false);
    }
    try {
      await this.#authenticate(conn);
      const reply = await conn.send(["INFO"]);
      if (reply instanceof RespError) throw new ClientError(replyCode(reply), reply.message);
      if (typeof reply !== "string") throw unexpected("INFO", reply);
      return parseInfo(reply);
    } catch (err) {
      throw toClientError(err, false);
    } finally {
      await conn.close();
    }
  }

  /**
   * INFO of every replica known, asked in parallel: those of the failover list (the
   * configuration in force, learned first by connecting when not known yet) and the config
   * file's (of a sharded cluster: its group's, see {@link group}), ascending by id.
   */
  async statusAll(): Promise<ReplicaReport[]> {
    this.#checkOpen();
    if (this.#members === null && !this.#conn) {
      try {
        await this.connect();
      } catch {
        // None reachable: INFO says so for each.
      }
    }
    const known = new Map<ReplicaId, ReplicaAddress>();
    // Sharded: the group talked to only (the others are replica sets of their own).
    for (const r of [...this.#groupLines(this.#group), ...this.#replicas]) known.set(r.id, r);
    const all = [...known.values()].sort((a, b) => a.id - b.id);
    return await Promise.all(all.map(async (replica): Promise<ReplicaReport> => {
      try {
        return { replica, reachable: true, info: await this.info(replica.id), error: null };
      } catch (err) {
        // A replica that answered at all (even with an error) is reachable.
        const reachable = err instanceof ClientError && err.code !== "UNAVAILABLE" &&
          err.code !== "TIMEOUT";
        return { replica, reachable, info: null, error: errorMessage(err) };
      }
    }));
  }

  /**
   * Asks `REPLICASET MEMBERS` (with failover, in turn with the operations) and, when the reply
   * is a member list, makes the failover list follow it. Returns the rows, or the error reply
   * (e.g. from a server without membership changes).
   *
   * @throws {ClientError} when no replica could answer.
   */
  async refreshMembers(): Promise<MemberInfo[] | RespError> {
    const reply = await this.#run(["REPLICASET", "MEMBERS"], { plain: true, errorsAsValues: true });
    if (reply instanceof RespError) return reply;
    const rows = parseMembersReply(reply);
    if (rows === null) throw unexpected("REPLICASET MEMBERS", reply);
    this.#adopt(rows);
    return rows;
  }

  /**
   * Sends `REPLICASET <args>` (`ADD ...`, `REMOVE <id>`, `PROMOTE <id>`) and returns its reply
   * (simple strings tagged, error replies as values). REMOVE may wait up to the server's
   * {@link REMOVE_WAIT_MS} for a view without the replica: its attempt may take that long.
   * After an OK the failover list is learned again. The change is not tagged: resent after a
   * failover it may answer that it was already made (`already a member`, `no such replica`).
   *
   * @throws {ClientError} when no replica could answer.
   */
  async changeMembers(args: ByteString[]): Promise<TaggedRespValue> {
    const remove = (args[0] ?? "").toUpperCase() === "REMOVE";
    const reply = await this.#run(["REPLICASET", ...args], {
      plain: true,
      errorsAsValues: true,
      tagStatus: true,
      waitMs: remove ? REMOVE_WAIT_MS : 0,
    });
    if (!(reply instanceof RespError)) {
      try {
        await this.refreshMembers();
      } catch {
        // The change is made; the list is learned again on the next connection.
      }
    }
    return reply;
  }

  /** Closes the connection; queued and later operations fail with `UNAVAILABLE`. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#backoff.cancel();
    const conn = this.#conn;
    this.#conn = null;
    if (conn) void this.#release(conn);
    await Promise.all(this.#closing);
  }

  /** Closes `conn`; {@link close} waits for every connection released this way. */
  #release(conn: RespConnection): Promise<void> {
    const closing = conn.close().finally(() => this.#closing.delete(closing));
    this.#closing.add(closing);
    return closing;
  }

  async #int(command: string, key: ByteString): Promise<number> {
    const reply = await this.#run([command, key]);
    if (reply === 0 || reply === 1) return reply;
    throw unexpected(command, reply);
  }

  /**
   * Queues one operation behind the previous ones and runs it with failover. The reply is a
   * `RespValue` unless `how.tagStatus` is set.
   */
  #run(command: ByteString[], how: RunOptions = {}): Promise<TaggedRespValue> {
    const run = this.#queue.then(() => this.#execute(command, how));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #execute(command: ByteString[], how: RunOptions): Promise<TaggedRespValue> {
    this.#checkOpen();
    if (how.session) return await this.#executeInSession(this.#tag(command, how), command[0], how);
    const route: Route = { asking: false, home: null };
    try {
      return await this.#executeRouted(command, how, route);
    } finally {
      // After an ASK redirection the next command goes where the slot table says again.
      if (route.home !== null) this.#goHome(route.home);
    }
  }

  /** `command` as sent: wrapped in `REQ` with the next seq (unless `how.plain`). */
  #tag(command: ByteString[], how: RunOptions): ByteString[] {
    return how.plain ? command : ["REQ", this.clientId, String(++this.#seq), ...command];
  }

  /**
   * Runs `command` with failover, following MOVED and ASK and retrying TRYAGAIN (see the module
   * documentation); `route` says where an ASK sent it.
   */
  async #executeRouted(
    command: ByteString[],
    how: RunOptions,
    route: Route,
  ): Promise<TaggedRespValue> {
    let argv = this.#tag(command, how);
    const name = command[0];
    const read = COMMANDS.get(name)?.flags.includes("readonly") ?? false;
    // A blocking command (BLPOP k 5) may wait its own timeout on top of the deadline.
    const blocking = blockingMs(command) + (how.waitMs ?? 0);
    const deadline = performance.now() + this.#deadlineMs + blocking;
    let maybeApplied = false;
    let last: ClientError | null = null;
    let failuresInRound = 0;
    let rounds = 0;
    /** Why each replica tried failed (its latest failure), in the order of those failures. */
    const why = new Map<ReplicaId, { replica: ReplicaAddress; reason: string }>();
    const failed = (replica: ReplicaAddress, reason: string) => {
      why.delete(replica.id);
      why.set(replica.id, { replica, reason });
      failuresInRound++;
      if (route.asking) {
        // An ASK is followed once: by a later retry the slot may be moving again (an ASKING
        // command read after a new import began would be served at the wrong group), so the
        // command goes back to the source, which answers ASK again while it still holds.
        route.asking = false;
        if (route.home !== null) this.#goHome(route.home);
        route.home = null;
        failuresInRound = 0;
      }
    };
    /**
     * Every failure of this round was a definite one: NOQUORUM, NOTMEMBER, READONLY, or no
     * connection at all.
     */
    let definite = true;
    let noQuorumSeen = false;
    /** A replica refused it as not a member, or as a learner (READONLY). */
    let refusedSeen = false;
    /** Every replica gave a definite failure in one round: waiting will not change it soon. */
    let gaveUp = false;
    /** MOVED and ASK redirections followed for this command. */
    let redirects = 0;
    /** TRYAGAIN replies (and MOVED bounces) retried for this command. */
    let tryAgains = 0;
    /** The groups that answered this command MOVED or ASK. */
    const refusedBy = new Set<string | undefined>();

    while (true) {
      this.#checkOpen();
      const remaining = deadline - performance.now();
      if (remaining <= 0) break;
      // The list may change as the client learns the configuration in force.
      if (failuresInRound >= this.#replicas.length) {
        // Every replica failed once. When each said NOQUORUM (or refused it before ordering it)
        // or could not be reached, the answer is not going to change within the deadline: fail
        // now, as redis-cli would.
        if (definite) {
          gaveUp = true;
          break;
        }
        // Otherwise (a timeout, a lost connection, UNKNOWN) wait a little before the next round.
        failuresInRound = 0;
        definite = true;
        noQuorumSeen = false;
        refusedSeen = false;
        await this.#backoff.wait(Math.min(50 * 2 ** rounds++, 1000, remaining));
        continue;
      }

      if (!this.#conn || this.#conn.closed) {
        const index = this.#index;
        const replica = this.#replicas[index];
        const error = await this.#tryConnect(index, Math.min(this.#connectTimeoutMs, remaining));
        if (error !== null) {
          this.#checkOpen();
          // A reply from a replica says more than a later failure to reach another one.
          if (last === null || last.code === "UNAVAILABLE") {
            last = new ClientError("UNAVAILABLE", error);
          }
          this.#noteLeft(replica, "unreachable", error);
          failed(replica, error.replace(/^replica \d+: /, ""));
          this.#advance();
          continue;
        }
      }
      const conn = this.#conn!;
      const replica = this.#connReplica!;
      const attemptMs = Math.max(
        1,
        Math.min(this.#attemptTimeoutMs + blocking, deadline - performance.now(), MAX_TIMER_MS),
      );
      let reply: TaggedRespValue;
      try {
        reply = await send(conn, argv, route.asking, {
          timeoutMs: attemptMs,
          tagStatus: how.tagStatus,
        });
      } catch (err) {
        this.#checkOpen();
        const failure = toClientError(err, false);
        maybeApplied ||= err instanceof ConnectionError ? err.sent : true;
        last = failure;
        definite = false;
        this.#leave(failure.code === "TIMEOUT" ? "timeout" : "unreachable", failure.message);
        failed(replica, failure.message);
        continue;
      }
      if (reply instanceof RespError) {
        const where = `replica ${replica.id} (${conn.address})`;
        const target = this.#redirectTarget(reply);
        const wait = Math.min(TRYAGAIN_FIRST_WAIT_MS * 2 ** tryAgains, TRYAGAIN_MAX_WAIT_MS);
        const canWait = tryAgains < MAX_TRYAGAIN_RETRIES && deadline - performance.now() > wait;
        // A MOVED back to a group that refused this command already: the groups' copies of the
        // map disagree (the reshard tool's hand-over prevents it, a move made by hand without
        // its last step does not), so it is retried as TRYAGAIN is.
        const bounce = target !== null && !target.ask && refusedBy.has(target.target.group);
        const redirect = target !== null && (bounce ? canWait : redirects < MAX_REDIRECTS)
          ? target
          : null;
        const retry = reply.code === "TRYAGAIN" && canWait;
        if ((redirect !== null || retry) && maybeApplied && !read) {
          // An earlier attempt may have been applied here before the slot left this group: sent
          // elsewhere (or again with a new seq), it could be applied twice.
          throw new ClientError(
            "UNKNOWN",
            `${name}: ${where}: ${reply.message}, after an attempt that may have been applied`,
            true,
          );
        }
        if (redirect !== null) {
          // Not applied here: sent where the reply says, with a new seq (a group forgets a
          // refused seq, but a new one is never mistaken for an older copy of the request).
          failuresInRound = 0;
          refusedBy.add(this.#group);
          if (bounce) {
            tryAgains++;
            await this.#backoff.wait(wait);
          } else redirects++;
          if (redirect.ask) route.home ??= this.#here();
          else route.home = null;
          route.asking = redirect.ask;
          this.#moveTo(redirect.target, redirect.ask ? "ask" : "moved", redirect.slot);
          argv = this.#tag(command, how);
          continue;
        }
        if (retry) {
          // Its keys are being migrated: not applied; again a little later, where the slot table
          // says (an ASK target's TRYAGAIN too), with a new seq.
          tryAgains++;
          if (route.home !== null) this.#goHome(route.home);
          route.home = null;
          route.asking = false;
          failuresInRound = 0;
          await this.#backoff.wait(wait);
          argv = this.#tag(command, how);
          continue;
        }
        const code = replyCode(reply);
        if (code === "NOQUORUM" || code === "UNKNOWN") {
          if (code === "UNKNOWN") {
            maybeApplied = true;
            definite = false;
          } else noQuorumSeen = true;
          last = new ClientError(code, `${where}: ${reply.message}`);
          this.#leave(code === "NOQUORUM" ? "noquorum" : "unknown", reply.message);
          failed(replica, reply.message);
          continue;
        }
        if (code === "NOTMEMBER" || code === "READONLY") {
          // Refused before it was ordered, like NOQUORUM: resent elsewhere, with the same seq.
          refusedSeen = true;
          last = new ClientError(code, `${where}: ${reply.message}`);
          if (code === "NOTMEMBER") this.#learnFromRefusal(reply.message, replica);
          this.#leave(code === "NOTMEMBER" ? "notmember" : "readonly", reply.message);
          failed(replica, reply.message);
          continue;
        }
        if (how.errorsAsValues) return reply;
        throw new ClientError(
          code,
          `${name}: ${reply.message}`,
          maybeApplied,
        );
      }
      return reply;
    }

    // Every replica tried, with why it failed last.
    const tried = [...why.values()].map(({ replica, reason }) =>
      `replica ${replica.id} (${replica.host}:${replica.clientPort}): ${reason}`
    ).join("; ");
    const within = `${this.#deadlineMs} ms`;
    if (last === null) {
      throw new ClientError("UNAVAILABLE", `${name}: no replica reachable within ${within}`);
    }
    // "Not applied" only when nothing sent could have been applied: after an attempt that may
    // have been, a refusal from a later one says nothing about the first, so it is UNKNOWN.
    const refusal = last.code === "NOQUORUM" || last.code === "NOTMEMBER" ||
      last.code === "READONLY";
    const code = maybeApplied && refusal ? "UNKNOWN" : last.code;
    const promise = maybeApplied ? "it may have been applied" : "it was not applied";
    const what = gaveUp
      ? (noQuorumSeen
        ? "no reachable replica can reach a majority"
        : refusedSeen
        ? "no reachable replica would take it (not a member, or a read-only learner)"
        : "no replica can be reached")
      : `failed within ${within}`;
    throw new ClientError(code, `${name}: ${what}: ${tried} (${promise})`, maybeApplied);
  }

  /**
   * Sends `argv` on the current connection only, within the whole deadline (see
   * {@link CommandOptions.session}). Any failure (no connection, connection error, timeout,
   * NOQUORUM or UNKNOWN) drops the connection, so that the replica forgets the session too, and
   * throws.
   */
  async #executeInSession(
    argv: ByteString[],
    name: ByteString,
    how: RunOptions,
  ): Promise<TaggedRespValue> {
    const conn = this.#conn;
    if (!conn || conn.closed) {
      throw new ClientError(
        "UNAVAILABLE",
        `${name}: the connection that held this session is gone (not sent to another replica)`,
      );
    }
    const where = `replica ${this.#connReplica!.id} (${conn.address})`;
    let failure: ClientError;
    try {
      const reply = await conn.send(argv, {
        timeoutMs: this.#deadlineMs,
        tagStatus: how.tagStatus,
      });
      if (!(reply instanceof RespError)) return reply;
      const code = replyCode(reply);
      if (code !== "NOQUORUM" && code !== "UNKNOWN") {
        if (how.errorsAsValues) return reply;
        throw new ClientError(code, `${name}: ${reply.message}`);
      }
      failure = new ClientError(code, `${name}: ${where}: ${reply.message}`, code === "UNKNOWN");
      this.#leave(code === "NOQUORUM" ? "noquorum" : "unknown", reply.message);
    } catch (err) {
      if (err instanceof ClientError) throw err;
      this.#checkOpen();
      const sent = err instanceof ConnectionError ? err.sent : true;
      const cause = toClientError(err, sent);
      failure = new ClientError(cause.code, `${name}: ${where}: ${cause.message}`, sent);
      this.#leave(cause.code === "TIMEOUT" ? "timeout" : "unreachable", cause.message);
    }
    throw failure;
  }

  /**
   * Tries to connect to replica `index` of the failover list, log in, and learn the
   * configuration in force from it; null on success, else why not.
   */
  async #tryConnect(index: number, timeoutMs: number): Promise<string | null> {
    const replica = this.#replicas[index];
    try {
      const conn = await RespConnection.connect(replica.host, replica.clientPort, {
        connectTimeoutMs: timeoutMs,
        requestTimeoutMs: this.#attemptTimeoutMs,
        tls: this.#tls,
      });
      if (this.#closed) {
        await conn.close();
        return "client closed";
      }
      let rows: MemberInfo[] | null;
      try {
        await this.#authenticate(conn);
        rows = await this.#learn(conn, timeoutMs);
      } catch (err) {
        await conn.close();
        throw err;
      }
      const old = this.#conn;
      const previous = this.#connReplica;
      this.#conn = conn;
      this.#connReplica = replica;
      if (old) await this.#release(old);
      if (rows !== null) this.#adopt(rows);
      this.#announce(replica, previous);
      return null;
    } catch (err) {
      return `replica ${replica.id}: ${errorMessage(err)}`;
    }
  }

  /**
   * The configuration in force as `conn`'s replica reports it, or null when it cannot say (an
   * error reply: an older server, or a user without the right). A lost connection, no answer in
   * time or `-LOADING` (a replica restoring its data directory) throws, as a failure to connect.
   */
  async #learn(conn: RespConnection, timeoutMs: number): Promise<MemberInfo[] | null> {
    const reply = await conn.send(["REPLICASET", "MEMBERS"], {
      timeoutMs: Math.max(timeoutMs, 1),
    });
    // A replica still loading its data directory answers everything so: it is not up yet.
    if (reply instanceof RespError && reply.code === "LOADING") {
      throw new Error(reply.message);
    }
    if (reply instanceof RespError) return null;
    const rows = parseMembersReply(reply);
    return rows !== null && failoverList(rows).length > 0 ? rows : null;
  }

  /** Makes the failover list the voters and learners of `rows` (unless there are none). */
  #adopt(rows: MemberInfo[]): void {
    const list = failoverList(rows);
    if (list.length === 0) return;
    this.#members = rows;
    this.#replicas = list;
    const at = this.#connReplica === null ? -1 : this.#position(this.#connReplica.id);
    // Go on after the replica connected to, or from the first member when it is none.
    this.#index = Math.max(at, 0);
  }

  /**
   * After `-NOTMEMBER` from `from`: the members its message names come first in the failover
   * list (addresses already known are kept), `from` leaves it, and the next try is the first.
   */
  #learnFromRefusal(message: string, from: ReplicaAddress): void {
    const named = parseNotMemberMessage(message);
    if (named.length === 0) return;
    const known = new Map(this.#replicas.map((r) => [r.id, r]));
    const first = named.map((r) => known.get(r.id) ?? r);
    const firstIds = new Set(first.map((r) => r.id));
    const rest = this.#replicas.filter((r) => !firstIds.has(r.id) && r.id !== from.id);
    this.#replicas = [...first, ...rest];
    this.#index = 0;
  }

  /**
   * The replica of the config file a `-MOVED <slot> <host>:<port>` or `-ASK <slot> <host>:<port>`
   * reply names (a sharded cluster), or null (another reply, or no replica of the file listens
   * there).
   */
  #redirectTarget(reply: RespError): Redirect | null {
    const redirect = parseRedirect(reply.message);
    if (redirect === null || this.config.groups === undefined) return null;
    const { slot, host, port, ask } = redirect;
    const target = this.config.replicas.find((r) =>
      r.clientPort === port && r.host.toLowerCase() === host.toLowerCase()
    );
    return target === undefined ? null : { target, slot, ask };
  }

  /**
   * Follows a redirection to `target`: the failover list becomes its group's replicas with it
   * first, and the current connection is dropped.
   */
  #moveTo(target: ReplicaAddress, reason: "moved" | "ask", slot: number): void {
    this.#leave(reason, `slot ${slot}`);
    this.#members = null;
    this.#group = target.group;
    this.#replicas = this.#groupLines(target.group);
    this.#index = this.#position(target.id);
  }

  /** Where the client is (its group and failover list), to come back to after an ASK. */
  #here(): Home {
    return { group: this.#group, replicas: this.#replicas, index: this.#index };
  }

  /**
   * Back to `home` after a command an ASK sent elsewhere: its group and failover list again
   * (the connection to the ASK's target is dropped; no switch is announced).
   */
  #goHome(home: Home): void {
    const conn = this.#conn;
    this.#conn = null;
    if (conn) void this.#release(conn);
    this.#left = null;
    this.#members = null;
    this.#group = home.group;
    this.#replicas = home.replicas;
    this.#index = home.index;
  }

  /** The config file's replicas of `group` (of a file without groups, `undefined`: every one). */
  #groupLines(group: string | undefined): ReplicaAddress[] {
    return this.config.replicas.filter((r) => r.group === group);
  }

  /** The position of replica `id` in the failover list, or -1. */
  #position(id: ReplicaId): number {
    return this.#replicas.findIndex((r) => r.id === id);
  }

  /** Reports a switch when the replica just connected to is not the one talked to before. */
  #announce(replica: ReplicaAddress, previous: ReplicaAddress | null): void {
    const left = this.#left;
    this.#left = null;
    if (previous !== null && previous.id === replica.id) return;
    // `left` is the replica whose failure started the search (the preferred one on the first
    // connect); without it there was nothing before.
    if (left === null || left.replica.id === replica.id) return;
    this.onSwitch?.({
      from: left.replica,
      to: replica,
      reason: left.reason,
      detail: left.detail,
    });
  }

  /** Remembers why `replica` was left, unless an earlier one is already remembered. */
  #noteLeft(replica: ReplicaAddress, reason: SwitchReason, detail: string): void {
    if (this.#left === null) this.#left = { replica, reason, detail };
  }

  /**
   * Drops the current connection and moves on to the next replica of the failover list; after
   * `readonly` (a learner refused a write), to the next voter when one is known.
   */
  #leave(reason: SwitchReason, detail: string): void {
    const conn = this.#conn;
    this.#conn = null;
    if (conn) void this.#release(conn);
    const replica = this.#connReplica;
    if (replica === null) return;
    this.#noteLeft(replica, reason, detail);
    const at = this.#position(replica.id);
    // A replica outside the list: #index already points at the next one to try.
    if (at < 0) {
      this.#index %= this.#replicas.length;
    } else {
      this.#index = at;
      this.#advance();
    }
    if (reason !== "readonly") return;
    const voters = new Set(
      (this.#members ?? []).filter((m) => m.role === "voter").map((m) => m.address.id),
    );
    if (voters.size === 0) return;
    for (let k = 0; k < this.#replicas.length; k++) {
      if (voters.has(this.#replicas[this.#index].id)) return;
      this.#advance();
    }
  }

  #advance(): void {
    this.#index = (this.#index + 1) % this.#replicas.length;
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClientError("UNAVAILABLE", "client is closed");
  }
}

/**
 * Sends `argv` on `conn`, right after `ASKING` when `asking` (pipelined: the server flags the
 * command that follows it). The reply is the command's (an error reply to ASKING aside: the
 * command went anyway).
 */
async function send(
  conn: RespConnection,
  argv: ByteString[],
  asking: boolean,
  options: { timeoutMs: number; tagStatus?: boolean },
): Promise<TaggedRespValue> {
  if (!asking) return await conn.send(argv, options);
  const [, reply] = await Promise.all([conn.send(["ASKING"], options), conn.send(argv, options)]);
  return reply;
}

function toClientError(err: unknown, maybeApplied: boolean): ClientError {
  if (err instanceof ClientError) return err;
  if (err instanceof ConnectionError) {
    const code = err.kind === "timeout"
      ? "TIMEOUT"
      : err.kind === "protocol"
      ? "ERR"
      : "UNAVAILABLE";
    return new ClientError(code, err.message, maybeApplied);
  }
  return new ClientError("ERR", errorMessage(err), maybeApplied);
}

/** The client error code of an error reply. */
function replyCode(reply: RespError): ClientErrorCode {
  const code = reply.code.toUpperCase();
  return code === "NOQUORUM" || code === "UNKNOWN" || code === "REFUSED" ||
      code === "NOTMEMBER" || code === "READONLY"
    ? code
    : "ERR";
}

function unexpected(command: string, reply: TaggedRespValue): ClientError {
  const shown = reply instanceof RespError ? `error ${reply.message}` : JSON.stringify(reply);
  return new ClientError("ERR", `${command}: unexpected reply ${shown}`);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return toHex(bytes);
}

/** How long a blocking command may wait (its timeout; 0, forever, as long as a timer can); else 0. */
function blockingMs(command: readonly ByteString[]): number {
  const spec = command.length > 0 ? COMMANDS.get(command[0]) : undefined;
  if (spec === undefined || !arityOk(spec, command.length)) return 0;
  if (!isBlockingCommand(command)) return 0;
  const parsed = spec.block?.parse(command);
  if (parsed === undefined || "err" in parsed) return 0;
  return parsed.timeoutMs === 0 ? MAX_TIMER_MS : parsed.timeoutMs;
}
