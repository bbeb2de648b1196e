/**
 * `GET /metrics`: one replica's metrics in the Prometheus text exposition format (0.0.4), built
 * with the npm `prom-client` library. Every value is read when scraped (the metrics' `collect()`
 * callbacks read the {@link MetricsSource}); nothing here runs per operation. The per-operation
 * and per-fsync counts are kept by the hot paths themselves in preallocated {@link BucketCounts}
 * (`src/runtime/buckets.ts`), which {@link BucketHistogram} exposes as Prometheus histograms.
 *
 * @module
 */
import client from "prom-client";
import process from "node:process";
import type { ReplicaStatus } from "../core/types.ts";
import type { BucketCounts } from "../runtime/buckets.ts";
import type { CommandStats } from "../runtime/command_stats.ts";
import type { StorageStats } from "../runtime/storage.ts";
import type { ByteTraffic } from "../net/traffic.ts";
import type { PeerReport } from "./health.ts";
import type { HttpRoute } from "./http_server.ts";

/** The content type of the exposition format served. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Every state of the core, each a series of `lamportkv_state`. */
const STATES: readonly ReplicaStatus["state"][] = ["normal", "changing", "installing", "joining"];

/** What the metrics read at scrape time. */
export interface MetricsSource {
  /** lamportkv's version. */
  version: string;
  /** Every replica id of the current configuration (read at each scrape: it may change). */
  replicas(): readonly number[];
  /** The core's status. */
  status(): Pick<
    ReplicaStatus,
    "state" | "view" | "members" | "delivered" | "holdback" | "pending" | "clock" | "keys"
  >;
  /** True when `/readyz` answers 200. */
  ready(): boolean;
  /** Views installed since start. */
  viewChanges(): number;
  /** Open client connections. */
  connectedClients(): number;
  /** The other replicas as this one sees them. */
  peers(): PeerReport[];
  /** Operations by command and errors by kind. */
  commands: CommandStats;
  /** The data directory's sizes and write durations; absent without one (no storage metrics). */
  storage?: () => StorageStats;
  /** Bytes in and out per port (`client`, `peer`). */
  traffic: Readonly<Record<string, ByteTraffic>>;
  /** Event-loop lag measurements. */
  loopLag: { lagSeconds: BucketCounts; last: number };
  /** Used memory and the limit above which writes are refused (absent: not exported). */
  memory?: { used(): number; readonly limit: number };
}

type Labels = Record<string, string | number>;
/** Gives the samples of a metric with labels `T`, one `set` call each. */
type Reader<T extends string> = (
  set: (labels: Partial<Record<T, string | number>>, value: number) => void,
) => void;

/** A `collect()` that clears the metric, then puts in what `read` gives, each with `put`. */
function collectInto<M extends { reset(): void }, T extends string>(
  read: Reader<T>,
  put: (metric: M, labels: Partial<Record<T, string | number>>, value: number) => void,
): (this: M) => void {
  return function (this: M) {
    this.reset();
    read((labels, value) => put(this, labels, value));
  };
}
/** One sample of the exposition, as prom-client formats it. */
type Sample = { value: number; labels: Labels; metricName?: string };

/**
 * A Prometheus histogram whose buckets are counted elsewhere ({@link BucketCounts}, incremented
 * on the hot path without labels or allocation) and read at scrape time: prom-client formats it
 * like one of its own histograms.
 */
class BucketHistogram<T extends string> extends client.Histogram<T> {
  readonly #name: string;
  readonly #help: string;
  readonly #read: () => Iterable<[Labels, BucketCounts]>;

  constructor(
    config: { name: string; help: string; labelNames?: T[]; registers: client.Registry[] },
    read: () => Iterable<[Labels, BucketCounts]>,
  ) {
    super(config);
    this.#name = config.name;
    this.#help = config.help;
    this.#read = read;
  }

  /** The samples of every label set: cumulative buckets, sum and count. */
  getForPromString(): Promise<
    { name: string; help: string; type: string; aggregator: string; values: Sample[] }
  > {
    const values: Sample[] = [];
    for (const [labels, counts] of this.#read()) {
      for (const { le, count } of counts.cumulative()) {
        values.push({
          metricName: `${this.#name}_bucket`,
          labels: { ...labels, le },
          value: count,
        });
      }
      values.push({ metricName: `${this.#name}_sum`, labels, value: counts.sum });
      values.push({ metricName: `${this.#name}_count`, labels, value: counts.count });
    }
    return Promise.resolve({
      name: this.#name,
      help: this.#help,
      type: "histogram",
      aggregator: "sum",
      values,
    });
  }

  /** As {@link getForPromString} (prom-client's `get`). */
  override get(): ReturnType<client.Histogram<T>["get"]> {
    return this.getForPromString() as unknown as ReturnType<client.Histogram<T>["get"]>;
  }
}

/** The metrics of one replica, in their own registry. */
export class ReplicaMetrics {
  /** The registry holding every metric (prom-client). */
  readonly registry: client.Registry = new client.Registry();

  /** Registers every metric, reading `source` when scraped. */
  constructor(source: MetricsSource) {
    const registers = [this.registry];
    /** A gauge or counter whose samples `read` gives at each scrape (counters: the totals). */
    const collected =
      (type: "gauge" | "counter") =>
      <T extends string>(name: string, help: string, labelNames: T[], read: Reader<T>) => {
        const config = { name, help, labelNames, registers };
        if (type === "gauge") {
          new client.Gauge<T>({ ...config, collect: collectInto(read, (g, l, v) => g.set(l, v)) });
        } else {
          new client.Counter<T>({
            ...config,
            collect: collectInto(read, (c, l, v) => c.inc(l, v)),
          });
        }
      };
    const gauge = collected("gauge");
    const counter = collected("counter");

    // ---- operations ----
    counter(
      "lamportkv_operations_total",
      "Client operations answered, by command and result (error: NOQUORUM, UNKNOWN, REFUSED, ...)",
      ["command", "result"],
      (set) => {
        for (const [command, c] of source.commands.commands()) {
          set({ command, result: "ok" }, c.ok);
          set({ command, result: "error" }, c.error);
        }
      },
    );
    new BucketHistogram(
      {
        name: "lamportkv_request_duration_seconds",
        help: "Client operation latency from submission to outcome, by command",
        labelNames: ["command"],
        registers,
      },
      function* () {
        for (const [command, c] of source.commands.commands()) yield [{ command }, c.latency];
      },
    );
    counter("lamportkv_errors_total", "Errors by kind", ["kind"], (set) => {
      for (const [kind, n] of source.commands.errors()) set({ kind }, n);
    });
    gauge("lamportkv_connected_clients", "Open client connections", [], (set) => {
      set({}, source.connectedClients());
    });

    // ---- the replica ----
    gauge("lamportkv_delivered_index", "Global index of the last delivered entry", [], (set) => {
      set({}, source.status().delivered);
    });
    gauge("lamportkv_view", "The installed view number (-1 before the first)", [], (set) => {
      set({}, source.status().view);
    });
    gauge("lamportkv_view_members", "Members of the installed view", [], (set) => {
      set({}, source.status().members.length);
    });
    gauge(
      "lamportkv_view_member",
      "1 if the configured replica is a member of the installed view, else 0",
      ["replica"],
      (set) => {
        const members = source.status().members;
        for (const id of source.replicas()) set({ replica: id }, members.includes(id) ? 1 : 0);
      },
    );
    gauge(
      "lamportkv_configured_replicas",
      "Replicas in the configuration",
      [],
      (set) => set({}, source.replicas().length),
    );
    counter("lamportkv_view_changes_total", "Views installed since start", [], (set) => {
      set({}, source.viewChanges());
    });
    gauge(
      "lamportkv_state",
      "1 for the replica's current state (normal, changing or installing: a view change, " +
        "joining: no view yet), else 0",
      ["state"],
      (set) => {
        const state = source.status().state;
        for (const s of STATES) set({ state: s }, s === state ? 1 : 0);
      },
    );
    gauge(
      "lamportkv_ready",
      "1 when normal in a view with a majority (GET /readyz answers 200), else 0",
      [],
      (set) => set({}, source.ready() ? 1 : 0),
    );
    gauge("lamportkv_holdback_entries", "Entries waiting in the holdback queue", [], (set) => {
      set({}, source.status().holdback);
    });
    gauge("lamportkv_pending_requests", "Client requests waiting for delivery", [], (set) => {
      set({}, source.status().pending);
    });
    gauge("lamportkv_lamport_clock", "The replica's Lamport clock", [], (set) => {
      set({}, source.status().clock);
    });
    gauge("lamportkv_keys", "Keys in the store", [], (set) => set({}, source.status().keys));

    // ---- peers ----
    gauge(
      "lamportkv_peer_link_up",
      "1 while this replica's outgoing link to the peer is connected, else 0",
      ["peer"],
      (set) => {
        for (const p of source.peers()) set({ peer: p.id }, p.linkUp ? 1 : 0);
      },
    );
    gauge(
      "lamportkv_peer_incoming_up",
      "1 while the peer's link to this replica is connected, else 0",
      ["peer"],
      (set) => {
        for (const p of source.peers()) set({ peer: p.id }, p.incoming ? 1 : 0);
      },
    );
    gauge(
      "lamportkv_peer_last_heard_seconds",
      "Seconds since anything was heard from the peer (absent if never)",
      ["peer"],
      (set) => {
        for (const p of source.peers()) {
          if (p.lastHeardMs !== null) set({ peer: p.id }, p.lastHeardMs / 1000);
        }
      },
    );
    gauge(
      "lamportkv_peer_acked_behind_entries",
      "This replica's entries of the current view the peer has not acknowledged " +
        "(absent when the peer is not a member)",
      ["peer"],
      (set) => {
        for (const p of source.peers()) {
          if (p.ackedBehind !== null) set({ peer: p.id }, p.ackedBehind);
        }
      },
    );

    // ---- storage ----
    if (source.storage !== undefined) storageMetrics(source.storage, registers, gauge);

    // ---- network ----
    counter(
      "lamportkv_network_received_bytes_total",
      "Bytes read from the connections of a port (client: clients, peer: replication)",
      ["port"],
      (set) => {
        for (const [port, t] of Object.entries(source.traffic)) set({ port }, t.bytesIn);
      },
    );
    counter(
      "lamportkv_network_sent_bytes_total",
      "Bytes written to the connections of a port (client: clients, peer: replication)",
      ["port"],
      (set) => {
        for (const [port, t] of Object.entries(source.traffic)) set({ port }, t.bytesOut);
      },
    );

    // ---- process ----
    new BucketHistogram(
      {
        name: "lamportkv_event_loop_lag_seconds",
        help: "How late a timer due every 100 ms fired (time the event loop was held)",
        registers,
      },
      function* () {
        yield [{}, source.loopLag.lagSeconds];
      },
    );
    gauge(
      "lamportkv_event_loop_lag_last_seconds",
      "The latest event-loop lag measured",
      [],
      (set) => set({}, source.loopLag.last),
    );
    gauge(
      "lamportkv_build_info",
      "Always 1; the version as a label",
      ["version"],
      (set) => set({ version: source.version }, 1),
    );
    const memory = source.memory;
    if (memory !== undefined) {
      gauge(
        "lamportkv_used_memory_bytes",
        "Used memory (V8 heap in use plus external), as INFO used_memory",
        [],
        (set) => set({}, memory.used()),
      );
      gauge(
        "lamportkv_write_memory_limit_bytes",
        "Used memory above which writes that add data are refused with OOM (maxmemory or the heap guard)",
        [],
        (set) => set({}, memory.limit),
      );
    }
    gauge("process_resident_memory_bytes", "Resident memory size", [], (set) => {
      set({}, Deno.memoryUsage().rss);
    });
    counter("process_cpu_seconds_total", "User and system CPU time spent", [], (set) => {
      const { user, system } = process.cpuUsage();
      set({}, (user + system) / 1e6);
    });
    const startSeconds = Math.round((Date.now() - performance.now()) / 1000);
    gauge("process_start_time_seconds", "Start time of the process (Unix seconds)", [], (set) => {
      set({}, startSeconds);
    });
  }

  /** The exposition text of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Registers a metric read by `read` (a gauge). */
type GaugeMaker = (
  name: string,
  help: string,
  labelNames: never[],
  read: (set: (labels: Labels, value: number) => void) => void,
) => unknown;

/** The data directory's metrics. */
function storageMetrics(
  storage: () => StorageStats,
  registers: client.Registry[],
  gauge: GaugeMaker,
): void {
  gauge("lamportkv_wal_bytes", "Bytes the write-ahead log's segment files take", [], (set) => {
    set({}, storage().walBytes);
  });
  gauge("lamportkv_wal_segments", "Write-ahead log segment files", [], (set) => {
    set({}, storage().walSegments);
  });
  gauge("lamportkv_snapshot_index", "Delivered index the latest snapshot covers", [], (set) => {
    set({}, storage().snapshotIndex);
  });
  gauge("lamportkv_snapshot_bytes", "Size of the latest snapshot file (0: none)", [], (set) => {
    set({}, storage().snapshotBytes);
  });
  new BucketHistogram(
    {
      name: "lamportkv_wal_fsync_duration_seconds",
      help: "Duration of the write-ahead log's fdatasync calls",
      registers,
    },
    () => [[{}, storage().fsyncSeconds]],
  );
  new BucketHistogram(
    {
      name: "lamportkv_snapshot_duration_seconds",
      help: "Duration of writing a snapshot (in the background)",
      registers,
    },
    () => [[{}, storage().snapshotSeconds]],
  );
}

/** `GET /metrics`. */
export function metricsRoutes(metrics: ReplicaMetrics): HttpRoute[] {
  return [{
    methods: ["GET"],
    path: "/metrics",
    handle: async () =>
      new Response(await metrics.text(), {
        headers: { "content-type": METRICS_CONTENT_TYPE, "cache-control": "no-store" },
      }),
  }];
}
