/**
 * The benchmark's results and how they are shown: {@link BenchReport} (also the JSON written by
 * `--json`), {@link formatHeader} (machine, cluster, load), {@link formatTable} (one row per
 * level, mix and operation) and {@link formatReport} (both, plus notes).
 *
 * @module
 */
import { type FsyncChoice, type Mix, mixOps, mixWeight, type StopRule } from "./args.ts";
import type { ErrorCount } from "./load.ts";
import { opCode, type OpName, OPS } from "./ops.ts";
import type { MachineInfo } from "./proc.ts";
import type { ScrapeFigures } from "./scraper.ts";

/** A figure per replica. */
export interface ReplicaFigure {
  /** Replica id. */
  id: number;
  /** The figure (CPU %, or MB). */
  value: number;
}

/** One level, mix and operation. */
export interface BenchRow {
  /** Connections of the level. */
  clients: number;
  /** The mix the level ran. */
  mix: Mix;
  /**
   * The operation these figures are about: a name of the operation table (`put`, `get`,
   * `incr`, `mset10`, `multi3`); the table shows its label (`PUT`, ..., `MULTI3`).
   */
  op: OpName;
  /** Successful measured operations (a MULTI3 transaction is one). */
  ops: number;
  /** Failed measured operations. */
  errors: number;
  /** Successful operations with a null reply (GETs that found no value). */
  nil: number;
  /** Measured seconds of the level (shared by the rows of one mix). */
  seconds: number;
  /** `ops / seconds`. */
  opsPerSec: number;
  /** Median latency in ms (null without successful requests). */
  p50Ms: number | null;
  /** 99th percentile latency in ms. */
  p99Ms: number | null;
  /** 99.9th percentile latency in ms. */
  p999Ms: number | null;
  /** Mean latency in ms. */
  meanMs: number | null;
  /** Largest latency in ms. */
  maxMs: number | null;
  /** CPU of each replica over the measured part, % of one core (null: not spawned). */
  replicaCpuPercent: ReplicaFigure[] | null;
  /** Peak RSS (VmHWM) of each replica at the end of the level, MB (null: not spawned). */
  replicaPeakRssMb: ReplicaFigure[] | null;
  /** The benchmark process's own CPU over the measured part, % of one core. */
  benchCpuPercent: number;
  /** Connections that opened (of `clients`). */
  connected: number;
  /** Most frequent errors of the level and mix. */
  errorMessages: ErrorCount[];
  /** The hard cap stopped the level before its `--ops` were sent. */
  cutOff: boolean;
}

/** Everything a run measured. Serialised as is by `--json`. */
export interface BenchReport {
  /** When the run started (ISO 8601). */
  startedAt: string;
  /** The machine the benchmark ran on. */
  machine: MachineInfo;
  /** The cluster under test. */
  cluster: {
    /** Config file. */
    config: string;
    /** Number of replicas. */
    replicas: number;
    /** Started by the benchmark (--spawn). */
    spawned: boolean;
    /** fsync mode when spawned, else null (unknown). */
    fsync: FsyncChoice | null;
    /** The view the replicas were in at the start, if known. */
    view: string | null;
  };
  /** The load settings. */
  settings: {
    /** Connections per level. */
    clients: number[];
    /** Mixes run at every level. */
    mixes: Mix[];
    /** When each level stops. */
    stop: StopRule;
    /** Value size, bytes. */
    valueSize: number;
    /** Key space. */
    keys: number;
    /** Requests in flight per connection. */
    pipeline: number;
    /** Unmeasured seconds before each level. */
    warmupSeconds: number;
  };
  /** The key preload (before the first mix with GETs), if one ran. */
  preload: { keys: number; seconds: number; errors: number } | null;
  /** One row per level, mix and operation with a non-zero weight. */
  rows: BenchRow[];
  /** Things worth knowing: errors, failed connections, replicas that exited, interruption. */
  notes: string[];
  /** True when Ctrl-C (or SIGTERM) ended the run early. */
  interrupted: boolean;
  /** With `--scrape`: what scraping the replicas' `/metrics` during the run did. */
  scrape?: ScrapeFigures;
}

/** Column headers of the table, in order. */
export const TABLE_COLUMNS: readonly string[] = [
  "clients",
  "op",
  "ops/s",
  "p50 ms",
  "p99 ms",
  "p99.9 ms",
  "errors",
  "replica cpu %",
  "replica max rss MB",
  "bench cpu %",
];

/** The table label of an operation: `PUT`, `GET`, `INCR`, `MSET10`, `MULTI3`. */
export function opName(op: OpName): string {
  return OPS[opCode(op)].label;
}

/** The weights of a mix with several operations, e.g. `1:1` (in table order). */
function mixWeights(mix: Mix): string {
  return mixOps(mix).map((op) => mixWeight(mix, op)).join(":");
}

/** `PUT`, `INCR`, ..., or for a mix of several operations `PUT 1:1` / `GET 1:1`. */
export function opLabel(op: OpName, mix: Mix): string {
  const name = opName(op);
  return mixOps(mix).length <= 1 ? name : `${name} ${mixWeights(mix)}`;
}

/** A mix in words: `PUT only`, `GET only`, `MSET10 only`, `PUT:GET 1:1`, `GET:INCR 3:1`. */
export function describeMix(mix: Mix): string {
  const ops = mixOps(mix);
  if (ops.length === 1) return `${opName(ops[0])} only`;
  return `${ops.map(opName).join(":")} ${mixWeights(mix)}`;
}

/** A latency cell: 2 decimals (none from 1000 ms on), `-` when there is none. */
export function formatMs(ms: number | null): string {
  if (ms === null) return "-";
  return ms >= 1000 ? ms.toFixed(0) : ms.toFixed(2);
}

/** The table cells of one row, in {@link TABLE_COLUMNS} order. */
export function rowCells(row: BenchRow): string[] {
  return [
    String(row.clients),
    opLabel(row.op, row.mix),
    row.ops === 0 ? "0" : String(Math.round(row.opsPerSec)),
    formatMs(row.p50Ms),
    formatMs(row.p99Ms),
    formatMs(row.p999Ms),
    String(row.errors),
    row.replicaCpuPercent === null || row.replicaCpuPercent.length === 0
      ? "-"
      : row.replicaCpuPercent.map((r) => Math.round(r.value)).join("/"),
    row.replicaPeakRssMb === null || row.replicaPeakRssMb.length === 0
      ? "-"
      : String(Math.round(Math.max(...row.replicaPeakRssMb.map((r) => r.value)))),
    String(Math.round(row.benchCpuPercent)),
  ];
}

/**
 * The table: a header line and one line per row; columns separated by two spaces, `op`
 * left-aligned, every other column right-aligned to the wider of its header and its cells.
 */
export function formatTable(rows: readonly BenchRow[]): string {
  const lines = [TABLE_COLUMNS as string[], ...rows.map(rowCells)];
  const widths = TABLE_COLUMNS.map((_, c) => Math.max(...lines.map((l) => l[c].length)));
  return lines.map((cells) =>
    cells.map((cell, c) => c === 1 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))
      .join("  ").trimEnd()
  ).join("\n");
}

/** The lines above the table: machine, cluster, load. */
export function formatHeader(report: BenchReport): string {
  const m = report.machine;
  const c = report.cluster;
  const s = report.settings;
  const stop = s.stop.kind === "ops"
    ? `${s.stop.ops} requests per level`
    : `${s.stop.seconds} s per level`;
  const cluster = c.spawned
    ? `spawned by the benchmark, fsync ${c.fsync}`
    : "already running, fsync as it was started";
  return [
    `machine: ${m.cpus} CPUs (nproc), ${m.cpuModel}; ${m.platform}; deno ${m.deno} (v8 ${m.v8})`,
    `cluster: ${c.replicas} replicas from ${c.config}, ${cluster}` +
    (c.view === null ? "" : `; view ${c.view}`),
    `load: value ${s.valueSize} B, ${s.keys} keys, pipeline ${s.pipeline}, warmup ` +
    `${s.warmupSeconds} s, ${stop}; mixes: ${s.mixes.map(describeMix).join(", ")}; ` +
    `clients spread round-robin over the replicas`,
  ].join("\n");
}

/** Header, blank line, table, and the notes (if any) after another blank line. */
export function formatReport(report: BenchReport): string {
  const parts = [formatHeader(report), "", formatTable(report.rows)];
  if (report.notes.length > 0) parts.push("", ...report.notes.map((n) => `note: ${n}`));
  return parts.join("\n");
}
