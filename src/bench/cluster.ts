/**
 * The cluster under test: reaching a running one ({@link probeCluster}, which fails fast with a
 * clear message), or starting one ({@link SpawnedCluster}): one replica process per config line,
 * on the config's addresses, each with a fresh temporary data directory, stopped with SIGTERM
 * (SIGKILL after a deadline) and its directories removed at the end. A synchronous `unload`
 * handler SIGKILLs replicas a crashing benchmark would otherwise leave behind.
 *
 * @module
 */
import { resolve } from "node:path";
import { type ClusterConfig, groupConfig } from "../config/config.ts";
import { describeStatus, nodeCommandArgs, Supervisor } from "../supervisor/supervisor.ts";
import { allNormalInOneView, parseInfo } from "../net/info.ts";
import { RespError } from "../net/resp.ts";
import { RespConnection } from "../client/connection.ts";
import type { FsyncChoice } from "./args.ts";
import type { Target } from "./load.ts";

/** The cluster cannot be reached or started (exit status 1). */
export class ClusterError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "ClusterError";
  }
}

/** The client addresses of every replica of `config`, in id order. */
export function targetsOf(config: ClusterConfig): Target[] {
  return config.replicas.map((r) => ({ id: r.id, host: r.host, port: r.clientPort }));
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Sends `INFO` to `target` and returns its fields.
 *
 * @throws {Error} when it cannot connect, the reply is not an INFO body, or no reply arrives
 *   within `timeoutMs`.
 */
export async function fetchInfo(
  target: Target,
  timeoutMs: number,
): Promise<Record<string, string>> {
  const conn = await RespConnection.connect(target.host, target.port, {
    connectTimeoutMs: timeoutMs,
    requestTimeoutMs: timeoutMs,
  });
  try {
    const value = await conn.send(["INFO"]);
    if (value instanceof RespError) throw new Error(`INFO failed: -${value.message}`);
    if (typeof value !== "string") throw new Error("INFO: unexpected reply");
    return parseInfo(value);
  } finally {
    await conn.close();
  }
}

/**
 * INFO of every replica, by id; fails fast when any replica does not answer.
 *
 * @throws {ClusterError} naming every replica that could not be reached and why.
 */
export async function probeCluster(
  config: ClusterConfig,
  timeoutMs = 3000,
): Promise<Map<number, Record<string, string>>> {
  const targets = targetsOf(config);
  const results = await Promise.allSettled(targets.map((t) => fetchInfo(t, timeoutMs)));
  const problems: string[] = [];
  const infos = new Map<number, Record<string, string>>();
  results.forEach((r, i) => {
    const t = targets[i];
    if (r.status === "fulfilled") infos.set(t.id, r.value);
    else problems.push(`  replica ${t.id} at ${t.host}:${t.port}: ${describe(r.reason)}`);
  });
  if (problems.length > 0) {
    throw new ClusterError(
      `cannot reach the cluster of ${config.path}:\n${problems.join("\n")}\n` +
        `Start it first (deno task cluster ${config.path}), or let the benchmark start its own ` +
        `replicas with --spawn.`,
    );
  }
  return infos;
}

/** Most lines of output kept per replica (shown when it fails). */
const TAIL_LINES = 40;
/** Matching lines a {@link SpawnedCluster.watch} keeps. */
const WATCHED_LINES = 20;
/** How long replicas get to stop after SIGTERM before SIGKILL. */
const STOP_DEADLINE_MS = 5000;
/**
 * The same when they write CPU profiles: a replica writes its profile as it exits (tens of MB
 * after minutes of load), and one SIGKILLed first writes none.
 */
const PROFILED_STOP_DEADLINE_MS = 120_000;

/** Options of {@link SpawnedCluster.start}. */
export interface SpawnOptions {
  /** fsync mode of every replica. */
  fsync: FsyncChoice;
  /**
   * Write a V8 CPU profile of every replica into `<cpuProfDir>/replica-<id>/` (`deno run
   * --cpu-prof`), when it exits. Default: none.
   */
  cpuProfDir?: string;
  /** Every replica's `--failure-timeout` in ms (default: the node's). */
  failureTimeoutMs?: number;
  /** Progress messages. */
  log?: (line: string) => void;
}

/**
 * Replicas started by the benchmark. Replicas still running when the benchmark exits without
 * stopping them (e.g. it crashed) are SIGKILLed by the supervisor's unload handler.
 */
export class SpawnedCluster {
  /** The config the replicas run. */
  readonly config: ClusterConfig;
  /** Temporary directory holding every replica's data directory. */
  readonly dir: string;
  readonly #supervisor: Supervisor;
  /** The last {@link TAIL_LINES} output lines of each replica. */
  readonly #tails = new Map<number, string[]>();
  /** Output-line counters (see {@link watch}). */
  readonly #watches: {
    pattern: RegExp;
    id?: number;
    count: number;
    lines: string[];
    last: string | null;
  }[] = [];
  #stopping: Promise<void> | null = null;
  #options: SpawnOptions = { fsync: "batch" };
  /** The arguments each replica was started with. */
  readonly #args = new Map<number, readonly string[]>();

  private constructor(config: ClusterConfig, dir: string) {
    this.config = config;
    this.dir = dir;
    this.#supervisor = new Supervisor({
      cwd: dir,
      onLine: (id, line) => {
        for (const w of this.#watches) {
          if ((w.id === undefined || w.id === id) && w.pattern.test(line)) {
            w.count++;
            w.last = line;
            if (w.lines.length < WATCHED_LINES) w.lines.push(line);
          }
        }
        const tail = this.#tails.get(id) ?? [];
        this.#tails.set(id, tail);
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
      },
    });
  }

  /**
   * Starts one replica per line of `config` (`deno run src/cli/node.ts <id> <config>
   * --data-dir <tmp>/<id> --fsync <mode>`). Returns at once; see {@link waitNormal}.
   */
  static async start(config: ClusterConfig, options: SpawnOptions): Promise<SpawnedCluster> {
    const dir = await Deno.makeTempDir({ prefix: "lamportkv-bench-" });
    const cluster = new SpawnedCluster(config, dir);
    cluster.#options = options;
    const configPath = resolve(config.path);
    try {
      for (const { id } of config.replicas) cluster.#spawn(id, cluster.#nodeArgs(id, configPath));
    } catch (err) {
      await cluster.stop();
      throw new ClusterError(`cannot start the replicas: ${describe(err)}`);
    }
    options.log?.(
      `started ${config.replicas.length} replicas (pids ${
        [...cluster.pids().values()].join(", ")
      }), data in ${dir}`,
    );
    return cluster;
  }

  /**
   * Starts replica `id` of `configPath` (not of this cluster's config) with `--join`, a fresh data
   * directory and the cluster's fsync mode; it is stopped with the others.
   */
  spawnJoiner(id: number, configPath: string): void {
    this.#spawn(id, this.#nodeArgs(id, resolve(configPath), ["--join"]));
  }

  /**
   * The `deno` arguments of replica `id` of `configPath`: `extra` node options, its data
   * directory, and the spawn options (fsync mode, failure timeout, a CPU profile).
   */
  #nodeArgs(id: number, configPath: string, extra: readonly string[] = []): string[] {
    const { fsync, failureTimeoutMs, cpuProfDir } = this.#options;
    const failure = failureTimeoutMs === undefined
      ? []
      : ["--failure-timeout", String(failureTimeoutMs)];
    const profile = cpuProfDir === undefined
      ? []
      : ["--cpu-prof", `--cpu-prof-dir=${resolve(cpuProfDir, `replica-${id}`)}`];
    return nodeCommandArgs(
      id,
      configPath,
      [...extra, "--data-dir", `${this.dir}/${id}`, "--fsync", fsync, ...failure],
      profile,
    );
  }

  /**
   * Kills replica `id` with SIGKILL and starts it again with the same arguments (its data
   * directory as it was); resolves once it printed its ready line.
   */
  async killAndRestart(id: number, timeoutMs: number): Promise<void> {
    const old = this.#supervisor.get(id);
    const args = this.#args.get(id);
    if (old === undefined || args === undefined) {
      throw new ClusterError(`replica ${id} was not started here`);
    }
    await old.kill();
    try {
      await this.#supervisor.restart(id, args, timeoutMs);
    } catch (err) {
      throw new ClusterError(`replica ${id} restart: ${describe(err)}\n${this.tail()}`);
    }
  }

  #spawn(id: number, args: readonly string[]): void {
    this.#args.set(id, args);
    this.#supervisor.spawn(id, args);
  }

  /** Waits until replica `id` printed its ready line; throws if it exits first. */
  async waitReady(id: number, timeoutMs: number): Promise<void> {
    try {
      await this.#supervisor.waitReady(id, timeoutMs);
    } catch (err) {
      throw new ClusterError(`replica ${id}: ${describe(err)}\n${this.tail()}`);
    }
  }

  /**
   * From now on counts the output lines matching `pattern` (of replica `id`, or of all), keeping
   * the first {@link WATCHED_LINES} and the last; returns a function that reads them.
   */
  watch(
    pattern: RegExp,
    id?: number,
  ): () => { count: number; lines: string[]; last: string | null } {
    const w = { pattern, id, count: 0, lines: [] as string[], last: null as string | null };
    this.#watches.push(w);
    return () => ({ count: w.count, lines: [...w.lines], last: w.last });
  }

  /** The last output lines of every replica, for error messages. */
  tail(): string {
    return [...this.#tails.entries()].map(([id, lines]) =>
      `replica ${id}:\n${lines.map((l) => `  ${l}`).join("\n")}`
    ).join("\n");
  }

  /** The process id of every replica, by replica id. */
  pids(): Map<number, number> {
    return new Map(this.#supervisor.entries().map(([id, p]) => [id, p.pid]));
  }

  /** One line per replica that has exited, with its status (empty when all run). */
  exited(): string[] {
    return this.#supervisor.entries().flatMap(([id, p]) =>
      p.exited === null ? [] : [`replica ${id} ${describeStatus(p.exited)}`]
    );
  }

  /**
   * Waits until every replica answers INFO with `state:normal` in one view of all of them (of
   * all of its group's, in a sharded config: each group has views of its own); returns the view
   * (`<group>: <view>, ...` for a sharded config).
   *
   * @throws {ClusterError} when a replica exits (with its last output lines), on the deadline
   *   (with the last INFO of each), or when `signal` aborts.
   */
  async waitNormal(timeoutMs = 30_000, signal?: AbortSignal): Promise<string> {
    const targets = targetsOf(this.config);
    const ids = targets.map((t) => t.id);
    const groups = this.config.groups?.map((g) => ({
      group: g,
      ids: groupConfig(this.config, g).replicas.map((r) => r.id),
    }));
    const deadline = performance.now() + timeoutMs;
    let last = "no INFO yet";
    for (let attempt = 0; attempt < 100_000; attempt++) {
      if (signal?.aborted) throw new ClusterError("interrupted while waiting for the replicas");
      const gone = this.#supervisor.entries().find(([, p]) => p.exited !== null);
      if (gone !== undefined) {
        const [id, p] = gone;
        await withDeadline(p.output, 1000);
        const tail = this.#tails.get(id) ?? [];
        throw new ClusterError(
          `replica ${id} ${describeStatus(p.exited!)} before the cluster was ready; ` +
            `its last output:\n${tail.map((l) => `  ${l}`).join("\n")}`,
        );
      }
      const results = await Promise.allSettled(targets.map((t) => fetchInfo(t, 1000)));
      const infos = results.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
      last = results.map((r, i) =>
        r.status === "fulfilled"
          ? `${ids[i]}: state=${r.value.state} view=${r.value.view} members=${r.value.members}`
          : `${ids[i]}: ${describe(r.reason)}`
      ).join("; ");
      if (infos.length === targets.length) {
        if (groups === undefined) {
          if (allNormalInOneView(infos, ids)) return infos[0].view;
        } else {
          const byGroup = groups.map((g) => ({
            ...g,
            infos: g.ids.map((id) => infos[ids.indexOf(id)]),
          }));
          if (byGroup.every((g) => allNormalInOneView(g.infos, g.ids))) {
            return byGroup.map((g) => `${g.group}: ${g.infos[0].view}`).join(", ");
          }
        }
      }
      if (performance.now() >= deadline) break;
      await delay(100);
    }
    throw new ClusterError(
      `the replicas were not all normal in one view within ${timeoutMs / 1000} s; last INFO: ` +
        last,
    );
  }

  /**
   * Stops every replica (SIGTERM, then SIGKILL after 5 s, or 120 s when they write CPU profiles),
   * waits for each to exit and removes the temporary directory. Idempotent; never throws.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const deadlineMs = this.#options.cpuProfDir === undefined
      ? STOP_DEADLINE_MS
      : PROFILED_STOP_DEADLINE_MS;
    await this.#supervisor.stopAll({ signal: "SIGTERM", deadlineMs });
    try {
      await Deno.remove(this.dir, { recursive: true });
    } catch {
      // already gone
    }
  }
}

/** Waits for `p`, but at most `ms`. */
async function withDeadline(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
