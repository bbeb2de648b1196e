/**
 * Runs a whole benchmark against a reachable cluster: for every level of `--clients` and every
 * mix, one {@link runPhase}, with CPU and RSS samples of the replicas (when their pids are known)
 * and of the benchmark itself around the measured part. Before the first mix that reads keys
 * (GET, MULTI3), every key is written once so reads hit. A level where requests fail is reported and the run goes on;
 * the abort signal ends it early with the rows measured so far.
 *
 * @module
 */
import { type BenchOptions, type FsyncChoice, type Mix, mixOps } from "./args.ts";
import { type PhaseRouting, runPhase, type Target } from "./load.ts";
import { type BenchShard, keySlotTable, type SlotOwners } from "./shards.ts";
import { opCode, OPS } from "./ops.ts";
import {
  cpuPercent,
  type MachineInfo,
  ownCpuSeconds,
  type ProcessSample,
  sampleProcesses,
} from "./proc.ts";
import {
  type BenchReport,
  type BenchRow,
  describeMix,
  type GroupFigure,
  opName,
  type ReplicaFigure,
} from "./report.ts";
import { RequestEncoder } from "./requests.ts";

/** What {@link runBench} needs besides the options. */
export interface RunContext {
  /** Config file path (for the report). */
  configPath: string;
  /** Client addresses of the replicas; connection `i` goes to `targets[i % n]`. */
  targets: readonly Target[];
  /** Process ids of the replicas, by replica id, when the benchmark started them. */
  pids: ReadonlyMap<number, number> | null;
  /** fsync mode of spawned replicas (null: unknown). */
  fsync: FsyncChoice | null;
  /** The view the replicas were in, if known. */
  view: string | null;
  /** The machine description for the report. */
  machine: MachineInfo;
  /** Ends the run early (Ctrl-C). */
  signal?: AbortSignal;
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
  /** One line per replica that has exited (checked after every level), when spawned. */
  exitedReplicas?: () => string[];
  /**
   * A sharded cluster: its shards and slot owners; every client then has a connection to each
   * shard and sends each operation to the shard owning its key (see `PhaseSpec.routing`).
   */
  sharded?: {
    shards: readonly BenchShard[];
    owners: SlotOwners;
    /** Send every operation to a wrong shard first (`--misroute`). */
    misroute: boolean;
  };
}

/** Connections and pipeline depth of the key preload. */
const PRELOAD_CONNECTIONS = 16;
const PRELOAD_PIPELINE = 32;

/** CPU and RSS counters at one moment. */
interface Sample {
  at: number;
  ownCpu: number;
  replicas: Map<number, ProcessSample | null>;
}

/** Samples the clock and own CPU at once, then the replicas (a few ms later, when spawned). */
async function takeSample(pids: ReadonlyMap<number, number> | null): Promise<Sample> {
  const at = performance.now();
  const ownCpu = ownCpuSeconds();
  const entries = [...(pids ?? [])];
  const samples = await sampleProcesses(entries.map(([, pid]) => pid));
  return { at, ownCpu, replicas: new Map(entries.map(([id], i) => [id, samples[i]])) };
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Runs every level and mix of `options`; never throws for failed requests. */
export async function runBench(options: BenchOptions, ctx: RunContext): Promise<BenchReport> {
  const say = ctx.progress ?? (() => {});
  const encoder = new RequestEncoder(options.keys, options.valueSize);
  const sharded = ctx.sharded;
  const routing: PhaseRouting | undefined = sharded === undefined ? undefined : {
    shards: sharded.shards,
    owner: sharded.owners.owner,
    keySlots: { key: keySlotTable(encoder, "key"), ctr: keySlotTable(encoder, "ctr") },
    misroute: sharded.misroute,
  };
  const report: BenchReport = {
    startedAt: new Date().toISOString(),
    machine: ctx.machine,
    cluster: {
      config: ctx.configPath,
      replicas: ctx.targets.length,
      groups: sharded === undefined
        ? null
        : sharded.shards.map((s) => ({ group: s.group, ids: s.targets.map((t) => t.id) })),
      slotMap: sharded?.owners.source ?? null,
      misroute: sharded?.misroute ?? false,
      spawned: ctx.pids !== null,
      fsync: ctx.fsync,
      view: ctx.view,
    },
    settings: {
      clients: options.clients,
      mixes: options.mixes,
      stop: options.stop,
      valueSize: options.valueSize,
      keys: options.keys,
      pipeline: options.pipeline,
      warmupSeconds: options.warmupSeconds,
    },
    preload: null,
    rows: [],
    notes: [],
    interrupted: false,
  };
  const exitedSeen = new Set<string>();
  const checkExited = () => {
    for (const line of ctx.exitedReplicas?.() ?? []) {
      if (exitedSeen.has(line)) continue;
      exitedSeen.add(line);
      report.notes.push(`${line} during the run`);
    }
  };

  levels: for (const clients of options.clients) {
    for (const mix of options.mixes) {
      if (ctx.signal?.aborted) break levels;
      if (mixOps(mix).some((op) => OPS[opCode(op)].reads) && report.preload === null) {
        report.preload = await preload(encoder, ctx, routing, say);
        if (report.preload.errors > 0) {
          report.notes.push(
            `preload: ${report.preload.errors} of ${options.keys} PUTs failed; some GETs miss`,
          );
        }
        if (ctx.signal?.aborted) break levels;
      }
      say(`${clients} clients, ${describeMix(mix)}: running...`);
      let before: Promise<Sample> | null = null;
      const result = await runPhase({
        targets: ctx.targets,
        ...(routing === undefined ? {} : { routing }),
        connections: clients,
        pipeline: options.pipeline,
        mix,
        encoder,
        warmupMs: options.warmupSeconds * 1000,
        stop: options.stop,
        signal: ctx.signal,
        onMeasureStart: () => (before = takeSample(ctx.pids)),
      });
      const after = await takeSample(ctx.pids);
      const start: Sample = (await (before as Promise<Sample> | null)) ?? after;
      const wall = (after.at - start.at) / 1000;
      let cpu: ReplicaFigure[] | null = null;
      let rss: ReplicaFigure[] | null = null;
      if (ctx.pids !== null) {
        cpu = [];
        rss = [];
        for (const [id, a] of after.replicas) {
          const b = start.replicas.get(id);
          if (a !== null && b != null) {
            cpu.push({ id, value: round(cpuPercent(b.cpu, a.cpu, wall), 1) });
          }
          if (a?.peakRssKib != null) rss.push({ id, value: round(a.peakRssKib / 1024, 1) });
        }
      }
      const benchCpu = wall > 0 ? ((after.ownCpu - start.ownCpu) / wall) * 100 : 0;
      const mixOpsDone = result.shardOps.reduce((a, b) => a + b, 0);
      const groups = sharded === undefined ? null : sharded.shards.map((shard, i): GroupFigure => {
        const ids = new Set(shard.targets.map((t) => t.id));
        const mine = cpu?.filter((c) => ids.has(c.id)) ?? null;
        return {
          group: shard.group,
          ops: result.shardOps[i],
          opsPerSec: result.seconds > 0 ? round(result.shardOps[i] / result.seconds, 1) : 0,
          replicaCpuPercent: mine,
          replicaCpuUsPerOp: cpuUsPerOp(mine, wall, result.shardOps[i]),
          moved: result.shardMoved[i],
        };
      });
      for (const op of mixOps(mix)) {
        const s = result.stats[op];
        const has = s.ops > 0;
        const row: BenchRow = {
          clients,
          mix,
          op,
          ops: s.ops,
          errors: s.errors,
          nil: s.nil,
          seconds: round(result.seconds, 3),
          opsPerSec: result.seconds > 0 ? round(s.ops / result.seconds, 1) : 0,
          p50Ms: has ? round(s.latency.percentileMs(50), 3) : null,
          p99Ms: has ? round(s.latency.percentileMs(99), 3) : null,
          p999Ms: has ? round(s.latency.percentileMs(99.9), 3) : null,
          meanMs: has ? round(s.latency.meanMs, 3) : null,
          maxMs: has ? round(s.latency.maxMs, 3) : null,
          replicaCpuPercent: cpu,
          replicaPeakRssMb: rss,
          benchCpuPercent: round(benchCpu, 1),
          replicaCpuUsPerOp: cpuUsPerOp(cpu, wall, mixOpsDone),
          groups,
          moved: result.moved,
          connected: result.connected,
          errorMessages: result.errorMessages,
          cutOff: result.cutOff,
        };
        report.rows.push(row);
        say(
          `${clients} clients, ${describeMix(mix)}: ${opName(op)} ${row.ops} ops ` +
            `(${Math.round(row.opsPerSec)}/s), ${row.errors} errors`,
        );
        if (s.nil > 0) report.notes.push(`${clients} clients ${opName(op)}: ${s.nil} misses`);
      }
      noteProblems(report, clients, mix, result);
      checkExited();
      if (result.aborted) break levels;
    }
  }
  report.interrupted = ctx.signal?.aborted ?? false;
  if (report.interrupted) report.notes.push("interrupted: the figures end where the run stopped");
  return report;
}

/**
 * Replica CPU microseconds per operation: the CPU `cpu` (% of one core over `wall` seconds)
 * summed over the replicas, divided by `ops` (null without CPU figures or operations).
 */
export function cpuUsPerOp(
  cpu: readonly ReplicaFigure[] | null,
  wall: number,
  ops: number,
): number | null {
  if (cpu === null || cpu.length === 0 || ops === 0) return null;
  const seconds = cpu.reduce((sum, c) => sum + c.value, 0) / 100 * wall;
  return round(seconds / ops * 1e6, 1);
}

/** Adds notes about failed connections, errors and a cut-off level. */
function noteProblems(
  report: BenchReport,
  clients: number,
  mix: Mix,
  result: Awaited<ReturnType<typeof runPhase>>,
): void {
  const where = `${clients} clients, ${describeMix(mix)}`;
  if (result.connected < result.connections) {
    report.notes.push(
      `${where}: only ${result.connected} of ${result.connections} connections opened`,
    );
  }
  if (result.connected === 0) {
    report.notes.push(`${where}: every connection failed; no request was sent`);
  } else {
    const all = Object.values(result.stats);
    const ops = all.reduce((n, s) => n + s.ops, 0);
    const errors = all.reduce((n, s) => n + s.errors, 0);
    if (ops === 0 && errors > 0) report.notes.push(`${where}: every operation failed`);
  }
  if (result.cutOff) {
    report.notes.push(`${where}: stopped by the hard cap before every request was sent`);
  }
  if (result.moved > 0) {
    report.notes.push(`${where}: ${result.moved} MOVED/ASK redirections followed`);
  }
  for (const e of result.errorMessages.slice(0, 5)) {
    report.notes.push(`${where}: ${e.count} x ${e.message}`);
  }
}

/** Writes every key once (PUT, sequential keys); returns its figures. */
async function preload(
  encoder: RequestEncoder,
  ctx: RunContext,
  routing: PhaseRouting | undefined,
  say: (line: string) => void,
): Promise<{ keys: number; seconds: number; errors: number }> {
  say(`preloading ${encoder.keys} keys...`);
  const result = await runPhase({
    targets: ctx.targets,
    ...(routing === undefined ? {} : { routing }),
    connections: Math.min(PRELOAD_CONNECTIONS, encoder.keys),
    pipeline: PRELOAD_PIPELINE,
    mix: { put: 1, get: 0 },
    encoder,
    warmupMs: 0,
    stop: { kind: "ops", ops: encoder.keys },
    sequentialKeys: true,
    signal: ctx.signal,
  });
  const errors = result.put.errors + (encoder.keys - result.put.ops - result.put.errors);
  say(`preloaded ${result.put.ops} keys in ${result.seconds.toFixed(2)} s`);
  return { keys: encoder.keys, seconds: round(result.seconds, 3), errors };
}
