/**
 * A harness for end-to-end tests: real replica processes (`src/cli/node.ts`) on free loopback
 * ports, talking over real TCP.
 *
 * ```ts
 * const cluster = await startCluster({ replicas: 3 });
 * try {
 *   const c = await RespTestClient.connect(cluster.clientPort(1));
 *   assert.equal(await c.call(["SET", "k", "v"]), "OK");
 *   await c.close();
 *   await cluster.waitForAgreement();
 * } catch (err) {
 *   cluster.dumpLogs();
 *   throw err;
 * } finally {
 *   await cluster.stop();
 * }
 * ```
 *
 * Or {@link withCluster}, which does the try/catch/finally for you (and prints the logs of
 * passing tests too when the environment variable `LAMPORTKV_E2E_LOGS=1` is set).
 *
 * Every replica's stdout and stderr lines are kept in memory ({@link TestCluster.logs}) and
 * printed by {@link TestCluster.dumpLogs}. {@link TestCluster.stop} SIGKILLs every child still
 * running, waits for it to exit and removes the temp dir; it is idempotent. As a last resort, a
 * synchronous `unload` handler SIGKILLs the children and removes the temp dirs of clusters a test
 * process forgot to stop (it cannot help when the test process itself is SIGKILLed).
 *
 * With `proxy: true`, every replica listens for peers on a private port (`--listen-peer-port`)
 * behind a {@link FaultProxy} on its config peer port, so a test can cut, delay or black-hole
 * single links (`cluster.network()`, `partition(cluster, [3])` from `./fault_proxy.ts`).
 *
 * Also home of {@link RespTestClient} (a minimal RESP connection for tests: one reply at a time,
 * raw writes, EOF detection), {@link freePorts}, {@link waitFor} and {@link runCommand}.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import type { ByteString } from "../../src/core/types.ts";
import { type ClusterConfig, parseConfig, type ReplicaAddress } from "../../src/config/config.ts";
import { allNormalInOneView, parseInfo } from "../../src/net/info.ts";
import {
  NODE_ENTRY,
  NODE_PERMISSIONS,
  nodeCommandArgs,
  removeAtUnload,
  Supervisor,
} from "../../src/supervisor/supervisor.ts";
import { FaultNetwork, FaultProxy } from "./fault_proxy.ts";
import type { TlsClientConfig } from "../../src/net/tls.ts";
import {
  encodeCommand,
  RespProtocolError,
  RespReplyParser,
  type RespValue,
} from "../../src/net/resp.ts";

/** Absolute path of the replica entry point. */
export const NODE_TS: string = NODE_ENTRY;
/** Absolute path of the cluster supervisor entry point. */
export const CLUSTER_TS: string = fileURLToPath(
  new URL("../../src/cli/cluster.ts", import.meta.url),
);
/** Absolute path of the command-line client entry point. */
export const CLIENT_TS: string = fileURLToPath(new URL("../../src/cli/client.ts", import.meta.url));
/** Absolute path of the project root. */
export const PROJECT_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Permissions replicas run with (those of the `node` task). */
export { NODE_PERMISSIONS };

const LOOPBACK = "127.0.0.1";

// ---------------------------------------------------------------------------------------------
// Small utilities

/** Options of {@link waitFor}. */
export interface WaitOptions {
  /** Give up after this many ms (default 10 000). */
  timeoutMs?: number;
  /** Poll period in ms (default 25). */
  intervalMs?: number;
  /** What is being waited for (for the timeout error). */
  message?: string;
  /**
   * Checked before every poll: a returned reason ends the wait at once with an error (e.g. "the
   * process being waited for has exited").
   */
  giveUpIf?: () => string | undefined;
}

/** Resolves after `ms`, via a timer that is always cleared. Internal to polling loops. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `condition` until it returns true; throws after the deadline. A condition that throws
 * counts as false; the last error is quoted in the timeout message.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  options: WaitOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 25;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const reason = options.giveUpIf?.();
    if (reason !== undefined) {
      throw new Error(`gave up waiting for ${options.message ?? "a condition"}: ${reason}`);
    }
    try {
      if (await condition()) return;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() >= deadline) {
      const why = lastError === undefined ? "" : ` (last error: ${describeError(lastError)})`;
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${options.message ?? "a condition"}${why}`,
      );
    }
    await delay(intervalMs);
  }
}

/** One line for an error of any type. */
export function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * `count` distinct free TCP ports on 127.0.0.1: binds that many listeners on port 0 at once (so
 * no port is handed out twice), reads their ports, then closes them all.
 */
export function freePorts(count: number): number[] {
  const listeners: Deno.TcpListener[] = [];
  try {
    for (let i = 0; i < count; i++) {
      listeners.push(Deno.listen({ hostname: LOOPBACK, port: 0 }));
    }
    return listeners.map((l) => l.addr.port);
  } finally {
    for (const l of listeners) l.close();
  }
}

/** True when `port` can be bound on 127.0.0.1 right now (nobody listens there). */
export function portIsFree(port: number): boolean {
  try {
    Deno.listen({ hostname: LOOPBACK, port }).close();
    return true;
  } catch {
    return false;
  }
}

/** Result of {@link runCommand}. */
export interface CommandResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** Bytes written to stdin, which is then closed (default: stdin is /dev/null). */
  stdin?: Uint8Array | string;
  /** SIGKILL the process after this many ms and throw (default 30 000). */
  timeoutMs?: number;
  /** Working directory (default: the project root). */
  cwd?: string;
}

/**
 * Runs a program to completion and returns its exit status and output. Never leaves the process
 * behind: on the deadline it is SIGKILLed, awaited, and an error with its output is thrown.
 */
export async function runCommand(
  program: string,
  args: string[],
  options: RunCommandOptions = {},
): Promise<CommandResult> {
  const child = new Deno.Command(program, {
    args,
    cwd: options.cwd ?? PROJECT_ROOT,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timeoutMs = options.timeoutMs ?? 30_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, timeoutMs);
  try {
    if (options.stdin !== undefined) {
      const bytes = typeof options.stdin === "string"
        ? new TextEncoder().encode(options.stdin)
        : options.stdin;
      const writer = child.stdin.getWriter();
      try {
        await writer.write(bytes);
        await writer.close();
      } catch {
        // the program exited without reading everything: its status tells the story
      }
    }
    const out = await child.output();
    const result: CommandResult = {
      code: out.code,
      signal: out.signal,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
    if (timedOut) {
      throw new Error(
        `${program} ${args.join(" ")} did not finish within ${timeoutMs} ms\n` +
          `--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
      );
    }
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs the command-line client (`src/cli/client.ts`, with the `client` task's permissions) with
 * `args` (the config file first) to completion, within 30 s; see {@link runCommand}.
 */
export function runClient(args: string[], stdin?: string): Promise<CommandResult> {
  return runCommand(
    Deno.execPath(),
    ["run", "--allow-net", "--allow-read", "--allow-env", CLIENT_TS, ...args],
    { stdin, timeoutMs: 30_000 },
  );
}

// ---------------------------------------------------------------------------------------------
// A minimal RESP client for tests

/** The connection was closed by the server (EOF or reset) before a reply arrived. */
export class ConnectionClosedError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "ConnectionClosedError";
  }
}

/** No reply arrived in time. */
export class ReplyTimeoutError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "ReplyTimeoutError";
  }
}

/**
 * A RESP connection for tests. A background loop reads and parses replies; {@link next} takes them
 * in order (one caller at a time). {@link call} is `write(command)` + `next()`. Raw writes ({@link write}) make it usable
 * for malformed input too. Always {@link close} it (resolves when the read loop has ended).
 */
export class RespTestClient {
  /** The port connected to. */
  readonly port: number;
  readonly #conn: Deno.TcpConn | Deno.TlsConn;
  readonly #parser = new RespReplyParser();
  readonly #replies: RespValue[] = [];
  #waiter: (() => void) | undefined;
  #eof = false;
  #protocolError: unknown;
  #closed = false;
  readonly #readLoop: Promise<void>;

  private constructor(conn: Deno.TcpConn | Deno.TlsConn, port: number) {
    this.#conn = conn;
    this.port = port;
    this.#readLoop = this.#read();
  }

  /** Connects to 127.0.0.1:`port` (over TLS with `tls`; the handshake is completed first). */
  static async connect(port: number, tls?: TlsClientConfig): Promise<RespTestClient> {
    if (tls !== undefined) {
      const conn = await Deno.connectTls(
        {
          hostname: LOOPBACK,
          port,
          ...(tls.caCerts === undefined ? {} : { caCerts: tls.caCerts }),
          ...(tls.cert === undefined || tls.key === undefined
            ? {}
            : { cert: tls.cert, key: tls.key }),
        } as Deno.ConnectTlsOptions & Deno.TlsCertifiedKeyPem,
      );
      try {
        await conn.handshake();
      } catch (err) {
        conn.close();
        throw err;
      }
      return new RespTestClient(conn, port);
    }
    const conn = await Deno.connect({ hostname: LOOPBACK, port });
    try {
      conn.setNoDelay(true);
    } catch {
      // latency only
    }
    return new RespTestClient(conn, port);
  }

  /** True once the server closed the connection (EOF or reset) or {@link close} was called. */
  get eof(): boolean {
    return this.#eof;
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.#parser.push(buf.subarray(0, n));
        for (;;) {
          const value = this.#parser.next();
          if (value === undefined) break;
          this.#replies.push(value);
        }
        this.#wake();
      }
    } catch (err) {
      // Reset by the peer or closed by us: that is an end of stream. A malformed reply stream is
      // remembered and reported by next().
      if (err instanceof RespProtocolError) this.#protocolError = err;
    }
    this.#eof = true;
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** Writes raw bytes (all of them). Throws if the connection is broken. */
  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** Writes raw bytes, ignoring a write failure (the server may already have closed). */
  async tryWrite(bytes: Uint8Array): Promise<boolean> {
    try {
      await this.write(bytes);
      return true;
    } catch {
      return false;
    }
  }

  /** Half-closes: the server sees EOF, we can still read. */
  async closeWrite(): Promise<void> {
    try {
      await this.#conn.closeWrite();
    } catch {
      // already closed
    }
  }

  /**
   * The next reply. Throws {@link ConnectionClosedError} when the connection ended first and
   * {@link ReplyTimeoutError} after `timeoutMs` (default 5000).
   */
  async next(timeoutMs = 5000): Promise<RespValue> {
    const deadline = performance.now() + timeoutMs;
    while (this.#replies.length === 0) {
      if (this.#protocolError !== undefined) {
        throw new Error(`malformed reply stream: ${describeError(this.#protocolError)}`);
      }
      if (this.#eof) throw new ConnectionClosedError(`connection to port ${this.port} closed`);
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new ReplyTimeoutError(`no reply from port ${this.port} within ${timeoutMs} ms`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#waiter = undefined;
    }
    return this.#replies.shift()!;
  }

  /**
   * Everything the server sends until it closes the connection: the replies, and whether it
   * closed within `timeoutMs` (default 5000).
   */
  async drain(timeoutMs = 5000): Promise<{ replies: RespValue[]; closed: boolean }> {
    const replies: RespValue[] = [];
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      try {
        replies.push(await this.next(Math.max(1, deadline - performance.now())));
      } catch (err) {
        if (err instanceof ConnectionClosedError) return { replies, closed: true };
        if (err instanceof ReplyTimeoutError) return { replies, closed: false };
        throw err;
      }
    }
  }

  /** Sends `commands` in one write and returns their replies, in order. */
  async pipeline(commands: ByteString[][], timeoutMs = 5000): Promise<RespValue[]> {
    const parts = commands.map((argv) => encodeCommand(argv));
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    await this.write(bytes);
    const replies: RespValue[] = [];
    for (let i = 0; i < commands.length; i++) replies.push(await this.next(timeoutMs));
    return replies;
  }

  /** Sends `argv` (byte strings) as a RESP array and returns the reply. */
  async call(argv: ByteString[], timeoutMs = 5000): Promise<RespValue> {
    await this.write(encodeCommand(argv));
    return await this.next(timeoutMs);
  }

  /** Closes the connection; resolves once the read loop has ended. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#conn.close();
      } catch {
        // already closed
      }
    }
    await this.#readLoop;
  }
}

/** Connects to `port`, sends one command, returns the reply, closes. */
export async function respCall(
  port: number,
  argv: ByteString[],
  timeoutMs = 5000,
  tls?: TlsClientConfig,
): Promise<RespValue> {
  const c = await RespTestClient.connect(port, tls);
  try {
    return await c.call(argv, timeoutMs);
  } finally {
    await c.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The cluster

/** One line of output of a child process. */
export interface LogLine {
  /** ms since the cluster started. */
  at: number;
  /** Which replica (0 for the harness itself). */
  id: number;
  stream: "out" | "err" | "harness";
  text: string;
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Number of replicas. */
  replicas: 3 | 5 | 6;
  /**
   * Shard the cluster: split the replicas into this many groups of consecutive ids, named
   * `g1`, `g2`, ... (`group=` on each config line), each a replica set of its own. Default: no
   * groups.
   */
  groups?: number;
  /** Extra arguments for every replica after `<id> <config>` (e.g. `["--verbose"]`). */
  extraArgs?: string[];
  /** Deadline for all replicas to be ready and answer INFO (default 30 000 ms). */
  startTimeoutMs?: number;
  /** Also wait until every replica is normal in one view of all replicas (default true). */
  waitForView?: boolean;
  /**
   * Put a {@link FaultProxy} on every replica's config peer port, forwarding to a private port
   * the replica listens on (`--listen-peer-port`); see {@link TestCluster.network} (default
   * false: replicas listen on their config peer ports and nothing is in between).
   */
  proxy?: boolean;
  /** Setting lines for the config file (e.g. `"maxclients 20"`), after the replica lines. */
  settings?: string[];
  /** Give every replica an HTTP port (the config line's fifth field; default false). */
  http?: boolean;
  /**
   * Files put into the cluster's temp dir before any replica starts: `text` written (mode
   * `mode`, default 0600; e.g. a key file) or `from` copied (e.g. TLS certificates that setting
   * lines name relative to the config file). `name` may contain directories.
   */
  files?: { name: string; text?: string; from?: string; mode?: number }[];
  /**
   * Extra arguments for single replicas, after `extraArgs`, on every start including restarts
   * (e.g. a skewed clock: `{3: ["--clock-offset-ms=300000"]}`; see {@link TestCluster.setArgs}).
   */
  replicaArgs?: Record<number, string[]>;
  /** How the harness reaches the client ports (INFO) when they speak TLS. */
  clientTls?: TlsClientConfig;
  /** `AUTH` arguments the harness logs in with (INFO) when the cluster requires a password. */
  auth?: ByteString[];
}

/** A running cluster of replica processes. Create with {@link startCluster}. */
export class TestCluster {
  /** The temp dir holding the config file (removed by {@link stop}). */
  readonly dir: string;
  /** The config file every replica reads. */
  readonly configPath: string;
  /** The parsed config (ids 1..N, loopback ports). */
  readonly config: ClusterConfig;
  /** Extra arguments every replica gets. */
  readonly extraArgs: readonly string[];
  /** Every output line of every replica, in arrival order. */
  readonly logs: LogLine[] = [];
  readonly #supervisor: Supervisor;
  /** Forgets the temp dir for the last-resort unload handler (once {@link stop} removed it). */
  #forgetDir: (() => void) | undefined;
  readonly #t0 = performance.now();
  #stopping: Promise<void> | undefined;
  /** Private peer port of each replica, in proxy mode. */
  readonly #listenPeerPorts: ReadonlyMap<number, number> | undefined;
  #network: FaultNetwork | undefined;
  /** Extra arguments of single replicas (after `extraArgs`). */
  readonly #replicaArgs = new Map<number, string[]>();
  /** Replicas not in the config file, known through {@link addReplica}. */
  readonly #added = new Map<number, ReplicaAddress>();
  /** Config files of single replicas other than {@link configPath} (see {@link setConfigPath}). */
  readonly #configPaths = new Map<number, string>();
  /** How the harness reaches the client ports (see {@link ClusterOptions.clientTls}). */
  clientTls: TlsClientConfig | undefined;

  /**
   * Use {@link startCluster}. `listenPeerPorts` (proxy mode): the private peer port of each
   * replica, passed as `--listen-peer-port`.
   */
  constructor(
    dir: string,
    configPath: string,
    config: ClusterConfig,
    extraArgs: string[],
    listenPeerPorts?: ReadonlyMap<number, number>,
  ) {
    this.dir = dir;
    this.configPath = configPath;
    this.config = config;
    this.extraArgs = extraArgs;
    this.#listenPeerPorts = listenPeerPorts;
    this.#supervisor = new Supervisor({
      // Anything a replica writes relative to its working directory lands in the temp dir.
      cwd: dir,
      onLine: (id, text, stream) => this.logs.push({ at: this.#elapsed(), id, stream, text }),
      onSpawn: (id, p) => this.note(`spawned replica ${id} (pid ${p.pid})`),
      onExit: (id, s, p) =>
        this.note(
          `replica ${id} (pid ${p.pid}) ${
            s.signal !== null ? `killed by ${s.signal}` : `exited with code ${s.code}`
          }`,
        ),
    });
  }

  /** Whether the replicas' peer ports are behind fault proxies (`proxy: true`). */
  get proxied(): boolean {
    return this.#listenPeerPorts !== undefined;
  }

  /**
   * The proxies in front of the replicas' peer ports (proxy mode only).
   *
   * @throws {Error} when the cluster was started without `proxy: true`.
   */
  network(): FaultNetwork {
    if (this.#network === undefined) {
      throw new Error("this cluster has no fault proxies (start it with proxy: true)");
    }
    return this.#network;
  }

  /**
   * Starts a {@link FaultProxy} on every replica's config peer port (proxy mode; called by
   * {@link startCluster} before any replica is spawned). Idempotent.
   */
  startProxies(): FaultNetwork {
    if (this.#network !== undefined) return this.#network;
    if (this.#listenPeerPorts === undefined) throw new Error("this cluster is not in proxy mode");
    if (this.#stopping) throw new Error("cluster is stopped");
    const proxies: FaultProxy[] = [];
    try {
      for (const r of this.config.replicas) {
        proxies.push(FaultProxy.start({
          listenPort: r.peerPort,
          targetPort: this.listenPeerPort(r.id),
          to: r.id,
          log: (line) => this.note(line),
        }));
      }
    } finally {
      // On failure too, so that stop() closes the proxies that did start.
      this.#network = new FaultNetwork(proxies);
    }
    return this.#network;
  }

  /** The replica ids of each group of a sharded cluster, in config order (empty: no groups). */
  get groups(): Map<string, number[]> {
    const groups = new Map<string, number[]>();
    for (const g of this.config.groups ?? []) {
      groups.set(g, this.config.replicas.filter((r) => r.group === g).map((r) => r.id));
    }
    return groups;
  }

  /** Replica ids, ascending. */
  get ids(): number[] {
    return this.config.replicas.map((r) => r.id);
  }

  /** Client (RESP) port of replica `id`. */
  clientPort(id: number): number {
    return this.#address(id).clientPort;
  }

  /** HTTP base URL of replica `id` (`http://127.0.0.1:<port>`; the cluster needs `http: true`). */
  httpUrl(id: number): string {
    const port = this.#address(id).httpPort;
    if (port === undefined) {
      throw new Error("this cluster has no HTTP ports (start it with http: true)");
    }
    return `http://${LOOPBACK}:${port}`;
  }

  /** Peer port of replica `id` (in its config line; in proxy mode, where its proxy listens). */
  peerPort(id: number): number {
    return this.#address(id).peerPort;
  }

  /**
   * The port replica `id` listens on for peers: its private port in proxy mode, else its config
   * peer port.
   */
  listenPeerPort(id: number): number {
    this.#address(id);
    return this.#listenPeerPorts?.get(id) ?? this.peerPort(id);
  }

  #address(id: number): ReplicaAddress {
    const r = this.config.replicas.find((r) => r.id === id) ?? this.#added.get(id);
    if (r === undefined) throw new Error(`no replica ${id} in this cluster`);
    return r;
  }

  /**
   * Makes replica `address.id` known to the harness though it is not in the config file (a
   * replica started with `--join` and its address flags, see {@link setArgs}), so that it can be
   * spawned, reached and stopped like the others. It is not in {@link ids}.
   */
  addReplica(address: ReplicaAddress): void {
    if (this.config.replicas.some((r) => r.id === address.id) || this.#added.has(address.id)) {
      throw new Error(`replica ${address.id} is already known`);
    }
    this.#added.set(address.id, { ...address });
  }

  /**
   * Makes replica `id` read `path` instead of {@link configPath} from its next (re)start on (e.g.
   * a joining replica's file, which lists the current members and itself). Its data directory
   * stays `data/<id>` next to the file, so `path` should be in {@link dir}.
   */
  setConfigPath(id: number, path: string): void {
    this.#address(id);
    this.#configPaths.set(id, path);
  }

  /** The deno arguments that start replica `id`. */
  nodeArgs(id: number): string[] {
    const args = nodeCommandArgs(id, this.#configPaths.get(id) ?? this.configPath, []);
    if (this.#listenPeerPorts !== undefined) {
      args.push("--listen-peer-port", String(this.listenPeerPort(id)));
    }
    return [...args, ...this.extraArgs, ...(this.#replicaArgs.get(id) ?? [])];
  }

  /** Sets the extra arguments of replica `id` from its next (re)start on. */
  setArgs(id: number, args: string[]): void {
    this.#address(id);
    this.#replicaArgs.set(id, [...args]);
  }

  /** True when replica `id` logged a line matching `pattern`. */
  logged(id: number, pattern: RegExp): boolean {
    return this.logs.some((l) => l.id === id && pattern.test(l.text));
  }

  /** Adds a harness line to the log. */
  note(text: string): void {
    this.logs.push({ at: this.#elapsed(), id: 0, stream: "harness", text });
  }

  #elapsed(): number {
    return Math.round(performance.now() - this.#t0);
  }

  /** Whether replica `id`'s process is running (spawned and not exited). */
  running(id: number): boolean {
    return this.#supervisor.running(id);
  }

  /** The exit status of replica `id`, or null while it runs (or if never started). */
  exitStatus(id: number): Deno.CommandStatus | null {
    return this.#supervisor.get(id)?.exited ?? null;
  }

  /** The pid of replica `id`'s current process. */
  pid(id: number): number {
    return this.#supervisor.process(id).pid;
  }

  /** Throws unless replica `id` may be spawned now (the cluster is not stopped, `id` exists). */
  #checkSpawn(id: number): void {
    if (this.#stopping) throw new Error("cluster is stopped");
    this.#address(id);
    this.#forgetDir ??= removeAtUnload(this.dir);
  }

  /** Spawns replica `id` (must not be running). Does not wait for it to be ready. */
  spawn(id: number): void {
    this.#checkSpawn(id);
    this.#supervisor.spawn(id, this.nodeArgs(id));
  }

  /**
   * Waits until replica `id` printed its ready line and answers INFO. Fails at once if it exits.
   */
  async waitReady(id: number, timeoutMs = 20_000): Promise<void> {
    await this.#supervisor.waitReady(id, timeoutMs);
    await this.#waitInfo(id, timeoutMs);
  }

  /** Waits until replica `id` answers INFO; fails at once if it exits. */
  async #waitInfo(id: number, timeoutMs: number): Promise<void> {
    const p = this.#supervisor.process(id);
    const giveUpIf = () =>
      p.exited === null
        ? undefined
        : `replica ${id} exited (code ${p.exited.code}, signal ${p.exited.signal})`;
    // While it loads its data directory, INFO answers with no lamportkv section (no state yet).
    await waitFor(async () => (await this.info(id, 1000)).delivered !== undefined, {
      timeoutMs,
      message: `replica ${id} to answer INFO`,
      giveUpIf,
    });
  }

  /** A reason to stop waiting when one of `ids` is not running, for {@link WaitOptions}. */
  #exitedAmong(ids: number[] | undefined): () => string | undefined {
    return () => {
      const gone = (ids ?? []).filter((id) => !this.running(id));
      return gone.length === 0 ? undefined : `replica ${gone.join(", ")} is not running`;
    };
  }

  /**
   * Sends `signal` to replica `id` and waits until the process has exited. A stopped (paused)
   * process is woken with SIGCONT so it can handle SIGTERM/SIGINT; if a gentle signal does not
   * stop it within 10 s it is SIGKILLed and this throws.
   */
  async kill(
    id: number,
    signal: "SIGKILL" | "SIGTERM" | "SIGINT" = "SIGKILL",
  ): Promise<Deno.CommandStatus> {
    const p = this.#supervisor.process(id);
    if (p.exited !== null) return p.exited;
    this.note(`sending ${signal} to replica ${id}`);
    if (signal === "SIGKILL") return await p.kill();
    const { status, killed } = await p.stop({ signal, deadlineMs: 10_000 });
    if (killed) throw new Error(`replica ${id} did not exit within 10 s of ${signal}`);
    return status;
  }

  #runningProcess(id: number) {
    const p = this.#supervisor.get(id);
    if (p === undefined || p.exited !== null) throw new Error(`replica ${id} is not running`);
    return p;
  }

  /** Freezes replica `id` (SIGSTOP): its sockets stay open but it answers nothing. */
  pause(id: number): void {
    const p = this.#runningProcess(id);
    this.note(`pausing replica ${id} (SIGSTOP)`);
    p.pause();
  }

  /** Thaws replica `id` (SIGCONT). */
  resume(id: number): void {
    const p = this.#runningProcess(id);
    this.note(`resuming replica ${id} (SIGCONT)`);
    p.resume();
  }

  /** Starts replica `id` again with the same arguments (after it exited) and waits until ready. */
  async restart(id: number, timeoutMs = 20_000): Promise<void> {
    this.#checkSpawn(id);
    await this.#supervisor.restart(id, this.nodeArgs(id), timeoutMs);
    await this.#waitInfo(id, timeoutMs);
  }

  /** `AUTH` arguments the harness logs in with before INFO (see {@link ClusterOptions.auth}). */
  auth: ByteString[] | undefined;

  /** Replica `id`'s INFO fields (via RESP `INFO` on its client port). */
  async info(id: number, timeoutMs = 3000): Promise<Record<string, string>> {
    let reply: RespValue;
    if (this.auth === undefined) {
      reply = await respCall(this.clientPort(id), ["INFO"], timeoutMs, this.clientTls);
    } else {
      const c = await RespTestClient.connect(this.clientPort(id), this.clientTls);
      try {
        await c.call(["AUTH", ...this.auth], timeoutMs);
        reply = await c.call(["INFO"], timeoutMs);
      } finally {
        await c.close();
      }
    }
    if (typeof reply !== "string") {
      throw new Error(`INFO of replica ${id}: unexpected reply ${JSON.stringify(reply)}`);
    }
    return parseInfo(reply);
  }

  /** INFO of every running replica, by id. */
  async infoAll(timeoutMs = 3000): Promise<Map<number, Record<string, string>>> {
    const ids = this.ids.filter((id) => this.running(id));
    const infos = await Promise.all(ids.map((id) => this.info(id, timeoutMs)));
    return new Map(ids.map((id, i) => [id, infos[i]]));
  }

  /** Polls `condition` with a deadline (see {@link waitFor}). */
  waitFor(condition: () => boolean | Promise<boolean>, options: WaitOptions = {}): Promise<void> {
    return waitFor(condition, options);
  }

  /**
   * Waits until every running replica (or those in `ids`) reports the same `delivered` and
   * `digest`, with `delivered >= minDelivered`; returns that INFO. The timeout error shows the
   * last INFO of each.
   */
  async waitForAgreement(
    options: { minDelivered?: number; timeoutMs?: number; ids?: number[] } = {},
  ): Promise<{ delivered: number; digest: string }> {
    const min = options.minDelivered ?? 0;
    let last = "";
    let agreed: { delivered: number; digest: string } | undefined;
    try {
      await waitFor(async () => {
        const ids = options.ids ?? this.ids.filter((id) => this.running(id));
        const infos = await Promise.all(ids.map((id) => this.info(id, 2000)));
        last = ids.map((id, i) =>
          `${id}: delivered=${infos[i].delivered} ` +
          `digest=${infos[i].digest} view=${infos[i].view} members=${infos[i].members} ` +
          `holdback=${infos[i].holdback} pending=${infos[i].pending}`
        ).join("; ");
        const delivered = new Set(infos.map((i) => i.delivered));
        const digests = new Set(infos.map((i) => i.digest));
        if (delivered.size !== 1 || digests.size !== 1) return false;
        const d = Number(infos[0].delivered);
        if (!(d >= min)) return false;
        agreed = { delivered: d, digest: infos[0].digest };
        return true;
      }, {
        timeoutMs: options.timeoutMs ?? 15_000,
        intervalMs: 50,
        message: `replicas to agree on delivered (>= ${min}) and digest`,
        giveUpIf: this.#exitedAmong(options.ids),
      });
    } catch (err) {
      throw new Error(`${(err as Error).message}; last INFO: ${last}`);
    }
    return agreed!;
  }

  /**
   * Waits until every replica in `ids` (default: every running one) is `normal` in the same view
   * whose members are exactly `ids`; returns that view number.
   */
  async waitForView(options: { ids?: number[]; timeoutMs?: number } = {}): Promise<number> {
    let last = "";
    let view = -1;
    try {
      await waitFor(async () => {
        const ids = options.ids ?? this.ids.filter((id) => this.running(id));
        const infos = await Promise.all(ids.map((id) => this.info(id, 2000)));
        last = ids.map((id, i) =>
          `${id}: state=${infos[i].state} view=${infos[i].view} members=${infos[i].members}`
        ).join("; ");
        const ok = allNormalInOneView(infos, ids);
        if (ok) view = Number(infos[0].view);
        return ok;
      }, {
        timeoutMs: options.timeoutMs ?? 15_000,
        intervalMs: 50,
        message: "replicas to be normal in one view of exactly the expected members",
        giveUpIf: this.#exitedAmong(options.ids),
      });
    } catch (err) {
      throw new Error(`${(err as Error).message}; last INFO: ${last}`);
    }
    return view;
  }

  /** The collected output as text, one `[t ms] [id] line` per line. */
  formatLogs(): string {
    return this.logs.map((l) => {
      const who = l.id === 0 ? "harness" : `${l.id}${l.stream === "err" ? "!" : ""}`;
      return `[${String(l.at).padStart(6)} ms] [${who}] ${l.text}`;
    }).join("\n");
  }

  /** Prints the collected output of every replica (call it when a test fails). */
  dumpLogs(): void {
    console.error(
      `----- cluster logs (${this.configPath}; "!" marks stderr) -----\n${this.formatLogs()}\n` +
        `----- end of cluster logs -----`,
    );
  }

  /**
   * SIGKILLs every child still running, waits for each to exit and its output to end, closes the
   * proxies (proxy mode), removes the temp dir. Idempotent; never throws.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    for (const [id, p] of this.#supervisor.entries()) {
      if (p.running) this.note(`stop: SIGKILL replica ${id}`);
    }
    await this.#supervisor.stopAll({ signal: "SIGKILL" });
    await this.#network?.close().catch(() => {});
    try {
      await Deno.remove(this.dir, { recursive: true });
    } catch {
      // already removed
    }
    this.#forgetDir?.();
  }
}

/** The config file text for `ids` at the given ports (with `group=` for those that have one). */
export function configText(replicas: Omit<ReplicaAddress, "host">[]): string {
  return "# lamportkv e2e test cluster\n" +
    replicas.map((r) =>
      `${r.id} ${LOOPBACK} ${r.clientPort} ${r.peerPort}` +
      (r.httpPort === undefined ? "" : ` ${r.httpPort}`) +
      (r.group === undefined ? "" : ` group=${r.group}`) + "\n"
    ).join("");
}

/**
 * Writes a config for `replicas` replicas on free loopback ports to a new temp dir, (with
 * `proxy: true`) starts a fault proxy on every peer port, spawns every replica, and waits
 * (deadline) until each printed its ready line and answers INFO, and (unless
 * `waitForView: false`) until all are normal in one view of every replica. On failure prints the
 * logs, stops everything and rethrows.
 */
export async function startCluster(options: ClusterOptions): Promise<TestCluster> {
  const n = options.replicas;
  const proxy = options.proxy ?? false;
  const http = options.http ?? false;
  const ports = freePorts((2 + (proxy ? 1 : 0) + (http ? 1 : 0)) * n);
  const groups = options.groups;
  const replicas = Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    clientPort: ports[2 * i],
    peerPort: ports[2 * i + 1],
    ...(http ? { httpPort: ports[(proxy ? 3 : 2) * n + i] } : {}),
    ...(groups === undefined ? {} : { group: `g${Math.floor(i / Math.ceil(n / groups)) + 1}` }),
  }));
  const listenPeerPorts = proxy
    ? new Map(replicas.map((r, i) => [r.id, ports[2 * n + i]]))
    : undefined;
  const dir = await Deno.makeTempDir({ prefix: "lamportkv-e2e-" });
  const configPath = `${dir}/cluster.txt`;
  const text = configText(replicas) +
    (options.settings ?? []).map((line) => `${line}\n`).join("");
  await Deno.writeTextFile(configPath, text);
  for (const f of options.files ?? []) {
    const target = `${dir}/${f.name}`;
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    if (f.from !== undefined) await Deno.copyFile(f.from, target);
    else await Deno.writeTextFile(target, f.text ?? "", { mode: f.mode ?? 0o600 });
  }
  const cluster = new TestCluster(
    dir,
    configPath,
    parseConfig(text, configPath),
    options.extraArgs ?? [],
    listenPeerPorts,
  );
  for (const [id, args] of Object.entries(options.replicaArgs ?? {})) {
    cluster.setArgs(Number(id), args);
  }
  cluster.clientTls = options.clientTls;
  cluster.auth = options.auth;
  try {
    if (proxy) cluster.startProxies();
    for (const { id } of replicas) cluster.spawn(id);
    const timeoutMs = options.startTimeoutMs ?? 30_000;
    await Promise.all(replicas.map(({ id }) => cluster.waitReady(id, timeoutMs)));
    if (!(options.waitForView ?? true)) {
      cluster.note("every replica is ready");
    } else if (groups === undefined) {
      const view = await cluster.waitForView({ timeoutMs });
      cluster.note(`every replica is ready and normal in view ${view}`);
    } else {
      // Each group is a replica set of its own, with its own views.
      for (const [group, ids] of cluster.groups) {
        const view = await cluster.waitForView({ ids, timeoutMs });
        cluster.note(`every replica of group ${group} is ready and normal in view ${view}`);
      }
    }
  } catch (err) {
    cluster.dumpLogs();
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/**
 * Runs `body` with a fresh cluster: prints the logs if it throws, always stops the cluster.
 */
export async function withCluster<T>(
  options: ClusterOptions,
  body: (cluster: TestCluster) => Promise<T>,
): Promise<T> {
  const cluster = await startCluster(options);
  try {
    return await body(cluster);
  } catch (err) {
    cluster.note(`test failed: ${describeError(err)}`);
    cluster.dumpLogs();
    throw err;
  } finally {
    await cluster.stop();
    if (Deno.env.get("LAMPORTKV_E2E_LOGS") === "1") cluster.dumpLogs();
  }
}
