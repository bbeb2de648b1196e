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
import type { ClusterConfig } from "../config/config.ts";
import { describeStatus, forEachLine, nodeCommandArgs } from "../cli/cluster.ts";
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
/** How long replicas get to stop after SIGTERM before SIGKILL. */
const STOP_DEADLINE_MS = 5000;

interface Child {
  id: number;
  process: Deno.ChildProcess;
  status: Promise<Deno.CommandStatus>;
  exited: Deno.CommandStatus | null;
  output: Promise<void>;
  tail: string[];
}

/** Replica processes this benchmark started and has not yet stopped (for the unload handler). */
const live = new Set<Deno.ChildProcess>();
let unloadInstalled = false;

function installUnloadHandler(): void {
  if (unloadInstalled) return;
  unloadInstalled = true;
  globalThis.addEventListener("unload", () => {
    for (const p of live) {
      try {
        p.kill("SIGKILL");
      } catch {
        // gone
      }
    }
  });
}

/** Options of {@link SpawnedCluster.start}. */
export interface SpawnOptions {
  /** fsync mode of every replica. */
  fsync: FsyncChoice;
  /** Progress messages. */
  log?: (line: string) => void;
}

/** Replicas started by the benchmark. */
export class SpawnedCluster {
  /** The config the replicas run. */
  readonly config: ClusterConfig;
  /** Temporary directory holding every replica's data directory. */
  readonly dir: string;
  readonly #children: Child[] = [];
  #stopping: Promise<void> | null = null;

  private constructor(config: ClusterConfig, dir: string) {
    this.config = config;
    this.dir = dir;
  }

  /**
   * Starts one replica per line of `config` (`deno run src/cli/node.ts <id> <config>
   * --data-dir <tmp>/<id> --fsync <mode>`). Returns at once; see {@link waitNormal}.
   */
  static async start(config: ClusterConfig, options: SpawnOptions): Promise<SpawnedCluster> {
    const dir = await Deno.makeTempDir({ prefix: "lamportkv-bench-" });
    const cluster = new SpawnedCluster(config, dir);
    const configPath = resolve(config.path);
    installUnloadHandler();
    try {
      for (const { id } of config.replicas) {
        const args = nodeCommandArgs(id, configPath, [
          "--data-dir",
          `${dir}/${id}`,
          "--fsync",
          options.fsync,
        ]);
        cluster.#spawn(id, args, dir);
      }
    } catch (err) {
      await cluster.stop();
      throw new ClusterError(`cannot start the replicas: ${describe(err)}`);
    }
    options.log?.(
      `started ${config.replicas.length} replicas (pids ${
        cluster.#children.map((c) => c.process.pid).join(", ")
      }), data in ${dir}`,
    );
    return cluster;
  }

  #spawn(id: number, args: string[], cwd: string): void {
    const process = new Deno.Command(Deno.execPath(), {
      args,
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    live.add(process);
    const child: Child = {
      id,
      process,
      status: process.status,
      exited: null,
      output: Promise.resolve(),
      tail: [],
    };
    child.status = process.status.then((s) => {
      child.exited = s;
      live.delete(process);
      return s;
    });
    child.output = Promise.all([
      keepTail(process.stdout, child.tail),
      keepTail(process.stderr, child.tail),
    ]).then(() => {});
    this.#children.push(child);
  }

  /** The process id of every replica, by replica id. */
  pids(): Map<number, number> {
    return new Map(this.#children.map((c) => [c.id, c.process.pid]));
  }

  /** One line per replica that has exited, with its status (empty when all run). */
  exited(): string[] {
    return this.#children.filter((c) => c.exited !== null).map((c) =>
      `replica ${c.id} ${describeStatus(c.exited!)}`
    );
  }

  /**
   * Waits until every replica answers INFO with `state:normal` in one view of all of them;
   * returns the view.
   *
   * @throws {ClusterError} when a replica exits (with its last output lines), on the deadline
   *   (with the last INFO of each), or when `signal` aborts.
   */
  async waitNormal(timeoutMs = 30_000, signal?: AbortSignal): Promise<string> {
    const targets = targetsOf(this.config);
    const ids = targets.map((t) => t.id);
    const deadline = performance.now() + timeoutMs;
    let last = "no INFO yet";
    for (let attempt = 0; attempt < 100_000; attempt++) {
      if (signal?.aborted) throw new ClusterError("interrupted while waiting for the replicas");
      const gone = this.#children.find((c) => c.exited !== null);
      if (gone !== undefined) {
        await withDeadline(gone.output, 1000);
        throw new ClusterError(
          `replica ${gone.id} ${describeStatus(gone.exited!)} before the cluster was ready; ` +
            `its last output:\n${gone.tail.map((l) => `  ${l}`).join("\n")}`,
        );
      }
      const results = await Promise.allSettled(targets.map((t) => fetchInfo(t, 1000)));
      const infos = results.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
      last = results.map((r, i) =>
        r.status === "fulfilled"
          ? `${ids[i]}: state=${r.value.state} view=${r.value.view} members=${r.value.members}`
          : `${ids[i]}: ${describe(r.reason)}`
      ).join("; ");
      if (infos.length === targets.length && allNormalInOneView(infos, ids)) return infos[0].view;
      if (performance.now() >= deadline) break;
      await delay(100);
    }
    throw new ClusterError(
      `the replicas were not all normal in one view within ${timeoutMs / 1000} s; last INFO: ` +
        last,
    );
  }

  /**
   * Stops every replica (SIGTERM, then SIGKILL after 5 s), waits for each to exit and removes
   * the temporary directory. Idempotent; never throws.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const running = this.#children.filter((c) => c.exited === null);
    for (const c of running) signal(c.process, "SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => (timer = setTimeout(r, STOP_DEADLINE_MS, "late")));
    const all = Promise.all(running.map((c) => c.status));
    if (await Promise.race([all, late]) === "late") {
      for (const c of running) if (c.exited === null) signal(c.process, "SIGKILL");
    }
    clearTimeout(timer);
    await all;
    await Promise.all(this.#children.map((c) => c.output));
    try {
      await Deno.remove(this.dir, { recursive: true });
    } catch {
      // already gone
    }
  }
}

function signal(p: Deno.ChildProcess, sig: Deno.Signal): void {
  try {
    p.kill(sig);
  } catch {
    // exited meanwhile
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

/** Reads `stream` to its end, keeping its last {@link TAIL_LINES} lines in `tail`. */
function keepTail(stream: ReadableStream<Uint8Array>, tail: string[]): Promise<void> {
  return forEachLine(stream, (line) => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
  });
}
