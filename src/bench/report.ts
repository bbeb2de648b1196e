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

/** The figures of one replica group (shard) of a sharded cluster in one level and mix. */
export interface GroupFigure {
  /** The group name. */
  group: string;
  /** Successful measured operations it answered (every operation of the mix). */
  ops: number;
  /** `ops / seconds` of the level. */
  opsPerSec: number;
  /** CPU of each of its replicas, % of one core (null: not spawned). */
  replicaCpuPercent: ReplicaFigure[] | null;
  /** Its replicas' CPU time per operation it answered, microseconds (null: not spawned). */
  replicaCpuUsPerOp: number | null;
  /** MOVED replies it sent that measured operations followed. */
  moved: number;
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
  /**
   * Every replica's CPU time over the measured part divided by the mix's successful operations
   * (of every kind), microseconds (null: not spawned); shared by the rows of one mix.
   */
  replicaCpuUsPerOp: number | null;
  /** A sharded cluster: the figures of each group for the whole mix (null: no groups). */
  groups: GroupFigure[] | null;
  /** MOVED redirections the mix's measured operations followed (shared by its rows). */
  moved: number;
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
    /** A sharded cluster: its groups and their replica ids, in file order (null: no groups). */
    groups: { group: string; ids: number[] }[] | null;
    /** Sharded: where the slot map came from (`CLUSTER SLOTS of replica <id>` or `config`). */
    slotMap: string | null;
    /** Sharded: every operation was sent to a wrong group first (`--misroute`). */
    misroute: boolean;
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
  return alignColumns([TABLE_COLUMNS as string[], ...rows.map(rowCells)], 1);
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
  const groups = c.groups === null
    ? ""
    : ` in ${c.groups.length} groups (${
      c.groups.map((g) => `${g.group}: ${g.ids.join(",")}`).join("; ")
    }; slot map from ${c.slotMap})`;
  const spread = c.groups === null
    ? "clients spread round-robin over the replicas"
    : "each client has a connection to a replica of every group (round-robin within the " +
      "group) and sends each request to the group owning its key's slot" +
      (c.misroute ? ", after a wrong group's MOVED (--misroute)" : "");
  return [
    `machine: ${m.cpus} CPUs (nproc), ${m.cpuModel}; ${m.platform}; deno ${m.deno} (v8 ${m.v8})`,
    `cluster: ${c.replicas} replicas${groups} from ${c.config}, ${cluster}` +
    (c.view === null ? "" : `; view ${c.view}`),
    `load: value ${s.valueSize} B, ${s.keys} keys, pipeline ${s.pipeline}, warmup ` +
    `${s.warmupSeconds} s, ${stop}; mixes: ${s.mixes.map(describeMix).join(", ")}; ${spread}`,
  ].join("\n");
}

/** Column headers of the per-group table ({@link formatGroupTable}), in order. */
export const GROUP_TABLE_COLUMNS: readonly string[] = [
  "clients",
  "mix",
  "group",
  "ops/s",
  "replica cpu %",
  "cpu us/op",
  "moved",
];

/**
 * The per-group table of a sharded run: one line per level, mix and group (ops/s of the
 * operations that group answered, its replicas' CPU, their CPU microseconds per operation, and
 * the MOVED replies it sent); empty for a run without groups.
 */
export function formatGroupTable(rows: readonly BenchRow[]): string {
  const lines: string[][] = [];
  for (const row of rows) {
    // The rows of one mix share its group figures: shown with its first operation's.
    if (row.groups === null || mixOps(row.mix)[0] !== row.op) continue;
    for (const g of row.groups) {
      lines.push([
        String(row.clients),
        describeMix(row.mix),
        g.group,
        String(Math.round(g.opsPerSec)),
        g.replicaCpuPercent === null || g.replicaCpuPercent.length === 0
          ? "-"
          : g.replicaCpuPercent.map((r) => Math.round(r.value)).join("/"),
        g.replicaCpuUsPerOp === null ? "-" : String(Math.round(g.replicaCpuUsPerOp)),
        String(g.moved),
      ]);
    }
  }
  if (lines.length === 0) return "";
  return alignColumns([GROUP_TABLE_COLUMNS as string[], ...lines], 1, 2);
}

/**
 * Lines of cells as a table: columns separated by two spaces, each padded to its widest cell,
 * right-aligned but for the columns whose indexes are in `left`.
 */
function alignColumns(lines: readonly string[][], ...left: number[]): string {
  const widths = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
  return lines.map((cells) =>
    cells.map((cell, c) => left.includes(c) ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))
      .join("  ").trimEnd()
  ).join("\n");
}

/**
 * Header, blank line, table, the per-group table of a sharded run after another, and the notes
 * (if any) after another blank line.
 */
export function formatReport(report: BenchReport): string {
  const parts = [formatHeader(report), "", formatTable(report.rows)];
  const groups = formatGroupTable(report.rows);
  if (groups !== "") parts.push("", groups);
  if (report.notes.length > 0) parts.push("", ...report.notes.map((n) => `note: ${n}`));
  return parts.join("\n");
}
