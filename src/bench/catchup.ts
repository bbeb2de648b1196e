/**
 * `deno task bench --catchup <config>`: how long a joining replica takes to catch up from a large
 * state. The replicas of `<config>` but the last found a cluster (each with a fresh temporary
 * data directory); `--keys` keys of `--value-size` bytes are loaded into it (pipelined SETs
 * through the client ports); 64 clients then SET over those keys until a founder wrote a snapshot
 * of the whole state (their latency: what a snapshot costs the writes); a founder is
 * killed and restarted (time to a normal view); then the last replica starts with `--join` (its
 * config file lists every replica, so that it reaches every member) and is added with
 * `REPLICASET ADD`. Measured:
 * from the ADD to the moment the founders' first replica lists it as a voter in its view
 * (`REPLICASET MEMBERS`), and the peer bytes it received meanwhile (its HTTP `/metrics`, when
 * `<config>` gives it an HTTP port), as MB/s.
 *
 * @module
 */
import { join } from "node:path";
import { type ClusterConfig, parseConfig, type ReplicaAddress } from "../config/config.ts";
import { RespConnection } from "../client/connection.ts";
import { RespError, type RespValue } from "../net/resp.ts";
import type { FsyncChoice } from "./args.ts";
import { ClusterError, SpawnedCluster, targetsOf } from "./cluster.ts";
import { runPhase } from "./load.ts";
import { sampleProcesses } from "./proc.ts";
import { LATENCY_BOUNDS } from "../runtime/buckets.ts";
import { RequestEncoder } from "./requests.ts";

/** What {@link runCatchup} does. */
export interface CatchupSpec {
  /** The replicas: every one but the last founds the cluster, the last joins. */
  config: ClusterConfig;
  /** Keys loaded before the join. */
  keys: number;
  /** Value size of the loaded keys. */
  valueSize: number;
  /** fsync mode of every replica. */
  fsync: FsyncChoice;
  /** Loading connections. */
  connections: number;
  /** SETs in flight per loading connection. */
  pipeline: number;
  /** Longest wait for the joiner to be a voter, ms. */
  joinTimeoutMs: number;
  /** Write the replicas' CPU profiles under this directory (see `SpawnOptions.cpuProfDir`). */
  cpuProfDir?: string;
  /** Every replica's failure timeout in ms (default: the node's). */
  failureTimeoutMs?: number;
  /** Ends the run early. */
  signal: AbortSignal;
  /** Progress lines. */
  log: (line: string) => void;
}

/** The figures of a catch-up run. */
export interface CatchupResult {
  keys: number;
  valueSize: number;
  /** Loading time, seconds, and SETs that failed. */
  loadSeconds: number;
  loadErrors: number;
  /** Keys the founders hold after loading (INFO `keys`). */
  keysHeld: number;
  /** From the ADD's reply to the joiner listed as voter in-view, seconds. */
  catchupSeconds: number;
  /** Peer bytes the joiner received meanwhile (absent without an HTTP port). */
  peerBytes?: number;
  /** `peerBytes` per second, in MB (10^6 bytes). */
  mbPerSecond?: number;
  /**
   * The joiner's CPU time (user and system) meanwhile, seconds (absent without an HTTP port):
   * its own work, without the time it waited, for comparing that work between versions (on the
   * shared 2-CPU machine it varied almost as much as the elapsed time, 3.0-5.1 s at a million
   * keys).
   */
  joinerCpuSeconds?: number;
  /**
   * The joiner's longest event-loop stall since it started is at most this (seconds; a bucket
   * bound of its lag histogram, see {@link longestLoopLagBound}); absent without an HTTP port.
   * A replica whose loop is held sends no heartbeats: a learner silent for ten failure timeouts
   * is dropped from the view. Infinity (null in JSON) when past the histogram's last bound.
   */
  joinerLongestLagAtMost?: number;
  /**
   * RSS of each founder before and after loading, and its peak so far (MB, 10^6 bytes), in
   * founder order.
   */
  founderIdleRssMb: (number | null)[];
  founderRssMb: (number | null)[];
  founderPeakRssMb: (number | null)[];
  /** The last snapshot a founder wrote while loading: its size (bytes) and writing time (ms). */
  lastSnapshot?: { bytes: number; ms: number };
  /** SETs over the loaded keys at {@link SNAPSHOT_PHASE_CLIENTS} clients, snapshots meanwhile. */
  duringSnapshots: SnapshotPhase;
  /** From a founder's SIGKILL to every founder normal in one view again (restarted), seconds. */
  restartSeconds: number;
  /** Views the first founder installed meanwhile, and its log lines saying why (the first 20). */
  viewsInstalled: number;
  viewLines: string[];
  /** One client's SETs to the first founder meanwhile (one at a time): how many, failures. */
  writes: number;
  writeErrors: number;
  /** The longest of those SETs, ms: how long the catch-up held the cluster's writes at most. */
  longestWriteMs: number;
}

/** The figures of the SET phase after loading (see {@link runCatchup}). */
export interface SnapshotPhase {
  seconds: number;
  ops: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Snapshots the watched founder finished writing during the phase. */
  snapshots: number;
}

/**
 * Clients (one SET in flight each) of the SET phase after loading; it ends a second after the
 * watched founder finished a snapshot (with 100,000 keys or more, snapshots are keys/2 deliveries
 * apart), or at the cap.
 */
const SNAPSHOT_PHASE_CLIENTS = 64;
const SNAPSHOT_PHASE_CAP_SECONDS = 240;

/**
 * SETs at {@link SNAPSHOT_PHASE_CLIENTS} clients over the loaded keys until the founder watched by
 * `snapshots` has finished a snapshot of the whole state (and a second more), or the cap: what a
 * snapshot costs the writes.
 */
async function setsUntilSnapshot(
  targets: ReturnType<typeof targetsOf>,
  spec: CatchupSpec,
  snapshots: () => { count: number },
): Promise<SnapshotPhase> {
  const before = snapshots().count;
  const endPhase = new AbortController();
  const onAbort = () => endPhase.abort();
  spec.signal.addEventListener("abort", onAbort);
  let ending: ReturnType<typeof setTimeout> | undefined;
  const poll = setInterval(() => {
    if (ending !== undefined || snapshots().count === before) return;
    ending = setTimeout(() => endPhase.abort(), 1000);
  }, 100);
  const phase = await runPhase({
    targets,
    connections: SNAPSHOT_PHASE_CLIENTS,
    pipeline: 1,
    mix: { put: 1, get: 0 },
    encoder: new RequestEncoder(spec.keys, spec.valueSize),
    warmupMs: 0,
    stop: { kind: "seconds", seconds: SNAPSHOT_PHASE_CAP_SECONDS },
    signal: endPhase.signal,
  }).finally(() => {
    clearInterval(poll);
    clearTimeout(ending);
    spec.signal.removeEventListener("abort", onAbort);
  });
  if (spec.signal.aborted) throw new ClusterError("interrupted during the SET phase");
  return {
    seconds: phase.seconds,
    ops: phase.put.ops,
    errors: phase.put.errors,
    p50Ms: phase.put.latency.percentileMs(50),
    p99Ms: phase.put.latency.percentileMs(99),
    p999Ms: phase.put.latency.percentileMs(99.9),
    maxMs: phase.put.latency.maxMs,
    snapshots: snapshots().count - before,
  };
}

/**
 * One client writing to `r` one SET at a time until `stop` is aborted: what the cluster's writes
 * see while a replica catches up. Bounded by the signal and by a count.
 */
async function writeMeanwhile(
  r: ReplicaAddress,
  stop: AbortSignal,
): Promise<{ writes: number; errors: number; longestMs: number }> {
  const conn = await RespConnection.connect(r.host, r.clientPort, {
    connectTimeoutMs: 10_000,
    requestTimeoutMs: 120_000,
  });
  let writes = 0;
  let errors = 0;
  let longestMs = 0;
  try {
    for (let i = 0; i < 10_000_000 && !stop.aborted; i++) {
      const t = performance.now();
      try {
        const reply = await conn.send(["SET", `catchup:writer:${i % 1000}`, String(i)]);
        if (reply !== "OK") errors++;
      } catch {
        errors++;
        if (stop.aborted) break;
      }
      longestMs = Math.max(longestMs, performance.now() - t);
      writes++;
    }
  } finally {
    await conn.close();
  }
  return { writes, errors, longestMs };
}

/** Longest wait for the cluster to be normal again after a founder's restart, ms. */
const RESTART_CAP_MS = 300_000;

/** Longest loading time, ms. */
const LOAD_CAP_MS = 3600_000;

function line(r: ReplicaAddress): string {
  return `${r.id} ${r.host} ${r.clientPort} ${r.peerPort}` +
    (r.httpPort === undefined ? "" : ` ${r.httpPort}`) + "\n";
}

async function call(r: ReplicaAddress, argv: string[], timeoutMs = 10_000): Promise<RespValue> {
  const conn = await RespConnection.connect(r.host, r.clientPort, {
    connectTimeoutMs: timeoutMs,
    requestTimeoutMs: timeoutMs,
  });
  try {
    return await conn.send(argv);
  } finally {
    await conn.close();
  }
}

/** The joiner's row of `REPLICASET MEMBERS` as `role/state`, or null when it is not listed. */
async function joinerRow(asked: ReplicaAddress, id: number): Promise<string | null> {
  const reply = await call(asked, ["REPLICASET", "MEMBERS"], 5000);
  if (!Array.isArray(reply)) return null;
  for (const row of reply) {
    if (!Array.isArray(row)) continue;
    const o = new Map<string, RespValue>();
    for (let i = 0; i + 1 < row.length; i += 2) o.set(String(row[i]), row[i + 1]);
    if (o.get("id") === id) return `${o.get("role")}/${o.get("state")}`;
  }
  return null;
}

/** A replica's `/metrics` text, or undefined without an HTTP port. */
async function metricsOf(r: ReplicaAddress): Promise<string | undefined> {
  if (r.httpPort === undefined) return undefined;
  const host = r.host.includes(":") ? `[${r.host}]` : r.host;
  const res = await fetch(`http://${host}:${r.httpPort}/metrics`, {
    signal: AbortSignal.timeout(5000),
  });
  return await res.text();
}

/**
 * The value of the sample `series` (its name and labels as exposed, e.g. `up{job="x"}`) in a
 * `/metrics` text; undefined without the text or the sample.
 */
function sampleOf(metrics: string | undefined, series: string): number | undefined {
  const line = metrics?.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The peer bytes received, from a replica's `/metrics` text. */
export function peerBytesOf(metrics: string | undefined): number | undefined {
  return sampleOf(metrics, 'lamportkv_network_received_bytes_total{port="peer"}');
}

/** The CPU seconds (user and system) a replica's process used, from its `/metrics` text. */
export function processCpuOf(metrics: string | undefined): number | undefined {
  return sampleOf(metrics, "process_cpu_seconds_total");
}

/**
 * The upper bound of the longest event-loop lag a replica measured (`/metrics`,
 * `lamportkv_event_loop_lag_seconds`: how late a timer due every 100 ms fired): the smallest
 * bucket bound that holds every measurement; Infinity when one is past the last bound, undefined
 * without the histogram.
 */
export function longestLoopLagBound(metrics: string | undefined): number | undefined {
  const total = sampleOf(metrics, "lamportkv_event_loop_lag_seconds_count");
  if (metrics === undefined || total === undefined) return undefined;
  const bucket = /^lamportkv_event_loop_lag_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)$/gm;
  let bound = Infinity;
  for (const [, le, n] of metrics.matchAll(bucket)) {
    const at = le === "+Inf" ? Infinity : Number(le);
    if (Number(n) >= total && at < bound) bound = at;
  }
  return bound;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs the catch-up measurement (see the module doc); stops every replica it started.
 *
 * @throws {ClusterError} when the cluster cannot be started, the joiner exits, or it is not a
 *   voter within `joinTimeoutMs`.
 */
export async function runCatchup(spec: CatchupSpec): Promise<CatchupResult> {
  const all = spec.config.replicas;
  if (all.length < 2) {
    throw new ClusterError("--catchup needs at least two replicas in the config (the last joins)");
  }
  const founders = all.slice(0, -1);
  const joiner = all[all.length - 1];
  const dir = await Deno.makeTempDir({ prefix: "lamportkv-catchup-" });
  let cluster: SpawnedCluster | null = null;
  try {
    const foundersPath = join(dir, "founders.txt");
    const joinerPath = join(dir, "joiner.txt");
    const foundersText = founders.map(line).join("");
    await Deno.writeTextFile(foundersPath, foundersText);
    await Deno.writeTextFile(joinerPath, all.map(line).join(""));
    const foundersConfig = parseConfig(foundersText, foundersPath);
    cluster = await SpawnedCluster.start(foundersConfig, {
      fsync: spec.fsync,
      cpuProfDir: spec.cpuProfDir,
      failureTimeoutMs: spec.failureTimeoutMs,
      log: spec.log,
    });
    const view = await cluster.waitNormal(60_000, spec.signal);
    spec.log(`founders ${founders.map((r) => r.id).join(",")} normal in view ${view}`);

    const founderPids = () => founders.map((r) => cluster!.pids().get(r.id)!);
    const mb = (kib: number | null | undefined) => kib == null ? null : kib * 1024 / 1e6;
    const founderIdleRssMb = (await sampleProcesses(founderPids())).map((x) => mb(x?.rssKib));
    const watched = founders[founders.length - 1].id;
    const snapshots = cluster.watch(/ snapshot\.written: /, watched);
    spec.log(`loading ${spec.keys} keys of ${spec.valueSize} bytes...`);
    const load = await runPhase({
      targets: targetsOf(foundersConfig),
      connections: Math.min(spec.connections, spec.keys),
      pipeline: spec.pipeline,
      mix: { put: 1, get: 0 },
      encoder: new RequestEncoder(spec.keys, spec.valueSize),
      warmupMs: 0,
      stop: { kind: "ops", ops: spec.keys },
      sequentialKeys: true,
      hardCapMs: LOAD_CAP_MS,
      signal: spec.signal,
    });
    const loadErrors = load.put.errors + (spec.keys - load.put.ops - load.put.errors);
    spec.log(`loaded ${load.put.ops} keys in ${load.seconds.toFixed(1)} s (${loadErrors} failed)`);
    for (const e of load.errorMessages.slice(0, 3)) spec.log(`  ${e.count} x ${e.message}`);
    const info = await call(founders[0], ["INFO", "lamportkv"]);
    const keysHeld = typeof info === "string" ? Number(/^keys:([0-9]+)/m.exec(info)?.[1]) : NaN;
    const loaded = await sampleProcesses(founderPids());
    const founderRssMb = loaded.map((x) => mb(x?.rssKib));
    const founderPeakRssMb = loaded.map((x) => mb(x?.peakRssKib));
    const lastSnapshot = snapshotFigures(snapshots().last);

    const duringSnapshots = await setsUntilSnapshot(targetsOf(foundersConfig), spec, snapshots);
    spec.log(
      `SET phase: ${duringSnapshots.ops} SETs, ${duringSnapshots.snapshots} snapshots meanwhile`,
    );

    // A founder killed with SIGKILL and started again: from its snapshot and log tail to serving
    // in a view with the others.
    const restartT0 = performance.now();
    await cluster.killAndRestart(watched, 600_000);
    try {
      await cluster.waitNormal(RESTART_CAP_MS, spec.signal);
    } catch (err) {
      if (!(err instanceof ClusterError)) throw err;
      throw new ClusterError(
        `after replica ${watched} was killed and restarted: ${err.message}\n${cluster.tail()}`,
      );
    }
    const restartSeconds = (performance.now() - restartT0) / 1000;
    spec.log(
      `replica ${watched} killed and restarted: normal again in ${restartSeconds.toFixed(1)} s`,
    );

    cluster.spawnJoiner(joiner.id, joinerPath);
    await cluster.waitReady(joiner.id, 60_000);
    const before = await metricsOf(joiner);
    const bytesBefore = peerBytesOf(before);
    const cpuBefore = processCpuOf(before);
    const add = [
      "REPLICASET",
      "ADD",
      String(joiner.id),
      joiner.host,
      String(joiner.clientPort),
      String(joiner.peerPort),
      ...(joiner.httpPort === undefined ? [] : [String(joiner.httpPort)]),
    ];
    const views = cluster.watch(/ view\.installed: /, founders[0].id);
    const stopWriter = new AbortController();
    const writer = writeMeanwhile(founders[0], stopWriter.signal);
    const reply = await call(founders[0], add, 30_000);
    const t0 = performance.now();
    if (reply !== "OK") {
      const text = reply instanceof RespError ? `-${reply.message}` : JSON.stringify(reply);
      throw new ClusterError(`REPLICASET ADD ${joiner.id}: ${text}`);
    }
    spec.log(`added replica ${joiner.id}; waiting until it is a voter in the view...`);
    const deadline = t0 + spec.joinTimeoutMs;
    let last: string | null = null;
    for (let attempt = 0; attempt < 1_000_000; attempt++) {
      if (spec.signal.aborted) {
        throw new ClusterError(
          `interrupted while the joiner caught up (last: ${last ?? "not listed"}):\n` +
            cluster.tail(),
        );
      }
      const gone = cluster.exited();
      if (gone.length > 0) {
        throw new ClusterError(`${gone.join("; ")} while the joiner caught up:\n${cluster.tail()}`);
      }
      try {
        last = await joinerRow(founders[0], joiner.id);
      } catch {
        // the founder is busy sending the snapshot: ask again
      }
      if (last === "voter/in-view") break;
      if (attempt % 200 === 199) {
        const secs = Math.round((performance.now() - t0) / 1000);
        spec.log(`${secs} s: replica ${joiner.id} is ${last ?? "not listed"}`);
      }
      if (performance.now() >= deadline) {
        throw new ClusterError(
          `replica ${joiner.id} was not a voter in the view within ` +
            `${spec.joinTimeoutMs / 1000} s (last: ${last ?? "not listed"}):\n${cluster.tail()}`,
        );
      }
      await delay(50);
    }
    const catchupSeconds = (performance.now() - t0) / 1000;
    const { count: viewsInstalled, lines: viewLines } = views();
    stopWriter.abort();
    const wrote = await writer;
    const after = await metricsOf(joiner).catch(() => undefined);
    const bytesAfter = peerBytesOf(after);
    const cpuAfter = processCpuOf(after);
    const lagBound = longestLoopLagBound(after);
    const result: CatchupResult = {
      keys: spec.keys,
      valueSize: spec.valueSize,
      loadSeconds: load.seconds,
      loadErrors,
      keysHeld,
      founderIdleRssMb,
      founderRssMb,
      founderPeakRssMb,
      ...(lastSnapshot === null ? {} : { lastSnapshot }),
      duringSnapshots,
      restartSeconds,
      catchupSeconds,
      viewsInstalled,
      viewLines,
      writes: wrote.writes,
      writeErrors: wrote.errors,
      longestWriteMs: wrote.longestMs,
    };
    if (lagBound !== undefined) result.joinerLongestLagAtMost = lagBound;
    if (cpuBefore !== undefined && cpuAfter !== undefined) {
      result.joinerCpuSeconds = cpuAfter - cpuBefore;
    }
    if (bytesBefore !== undefined && bytesAfter !== undefined) {
      result.peerBytes = bytesAfter - bytesBefore;
      result.mbPerSecond = result.peerBytes / 1e6 / catchupSeconds;
    }
    return result;
  } finally {
    await cluster?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** `bytes=` and `ms=` of a `snapshot.written` log line, or null. */
export function snapshotFigures(line: string | null): { bytes: number; ms: number } | null {
  if (line === null) return null;
  const bytes = / bytes=([0-9]+)/.exec(line);
  const ms = / ms=([0-9]+)/.exec(line);
  return bytes === null || ms === null ? null : { bytes: Number(bytes[1]), ms: Number(ms[1]) };
}

function formatSnapshotPhase(p: SnapshotPhase): string {
  const rate = p.seconds > 0 ? p.ops / p.seconds : 0;
  return `  SETs at ${SNAPSHOT_PHASE_CLIENTS} clients over the loaded keys for ` +
    `${p.seconds.toFixed(1)} s: ${rate.toFixed(0)}/s (${p.errors} failed), p50 ` +
    `${p.p50Ms.toFixed(2)} ms, p99 ${p.p99Ms.toFixed(2)} ms, p99.9 ${p.p999Ms.toFixed(1)} ms, ` +
    `max ${p.maxMs.toFixed(0)} ms; snapshots written by the last founder meanwhile: ${p.snapshots}`;
}

/** The report of a catch-up run, for people. */
export function formatCatchup(r: CatchupResult): string {
  const lines = [
    `catch-up of a joining replica: ${r.keys} keys of ${r.valueSize} bytes ` +
    `(founders hold ${r.keysHeld} keys; loaded in ${r.loadSeconds.toFixed(1)} s, ` +
    `${r.loadErrors} SETs failed)`,
    `  founders' peak RSS: ${
      r.founderPeakRssMb.map((m) => m === null ? "?" : `${m.toFixed(0)} MB`).join(", ")
    }`,
    `  founders' RSS after loading: ${
      r.founderRssMb.map((m) => m === null ? "?" : `${m.toFixed(0)} MB`).join(", ")
    }` + (r.keysHeld > 0 && r.founderRssMb[0] !== null && r.founderIdleRssMb[0] !== null
      ? ` (${
        ((r.founderRssMb[0] - r.founderIdleRssMb[0]) * 1e6 / r.keysHeld).toFixed(0)
      } bytes per key at the first, above its ${r.founderIdleRssMb[0].toFixed(0)} MB before)`
      : ""),
    r.lastSnapshot === undefined
      ? "  last snapshot while loading: none written"
      : `  last snapshot while loading: ${(r.lastSnapshot.bytes / 1e6).toFixed(1)} MB written in ${
        (r.lastSnapshot.ms / 1000).toFixed(2)
      } s`,
    formatSnapshotPhase(r.duringSnapshots),
    `  a founder killed (SIGKILL) and restarted, to normal in a view: ${
      r.restartSeconds.toFixed(1)
    } s`,
    `  ADD to voter in the view: ${r.catchupSeconds.toFixed(2)} s`,
  ];
  if (r.peerBytes !== undefined && r.mbPerSecond !== undefined) {
    lines.push(
      `  peer bytes received by the joiner: ${(r.peerBytes / 1e6).toFixed(1)} MB ` +
        `(${r.mbPerSecond.toFixed(1)} MB/s)`,
    );
  }
  if (r.joinerCpuSeconds !== undefined) {
    lines.push(
      `  the joiner's CPU meanwhile: ${r.joinerCpuSeconds.toFixed(2)} s (${
        (100 * r.joinerCpuSeconds / r.catchupSeconds).toFixed(0)
      }% of one core)`,
    );
  }
  if (r.joinerLongestLagAtMost !== undefined) {
    const bound = r.joinerLongestLagAtMost;
    lines.push(
      "  the joiner's longest event-loop stall: " +
        (bound === Infinity ? `over ${LATENCY_BOUNDS.at(-1)} s` : `at most ${bound} s`) +
        " (its lag histogram)",
    );
  }
  lines.push(
    `  views installed by the first founder meanwhile: ${r.viewsInstalled}`,
    ...r.viewLines.map((l) => `    ${l}`),
    `  one client's SETs to it meanwhile: ${r.writes} (${r.writeErrors} failed), ` +
      `longest ${r.longestWriteMs.toFixed(0)} ms`,
  );
  return lines.join("\n");
}
