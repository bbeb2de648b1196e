/**
 * `/metrics` from fake sources: every metric the issue lists is in the exposition with the
 * values its source holds, histograms are cumulative, storage metrics only with a data directory,
 * and `promtool check metrics` accepts it. Also the pieces the hot paths count with.
 */
import assert from "node:assert/strict";
import {
  METRICS_CONTENT_TYPE,
  metricsRoutes,
  type MetricsSource,
  ReplicaMetrics,
} from "../../src/http/metrics.ts";
import { BucketCounts, SLOW_BOUNDS } from "../../src/runtime/buckets.ts";
import { CommandStats, MAX_COMMANDS, OTHER_COMMAND } from "../../src/runtime/command_stats.ts";
import { OpStats } from "../../src/runtime/op_stats.ts";
import { VIEW_HISTORY_LENGTH, ViewHistory } from "../../src/runtime/view_history.ts";
import { viewCause } from "../../src/runtime/view_cause.ts";
import { ByteTraffic } from "../../src/net/traffic.ts";
import { ConnWriter } from "../../src/net/conn_writer.ts";
import type { StorageStats } from "../../src/runtime/storage.ts";
import { parseMetrics, promtoolCheck, promtoolSkipReason, sample } from "../support/prom_text.ts";
import { announceSkip } from "../support/redis_server.ts";

function fakeSource(storage?: StorageStats): MetricsSource {
  const traffic = { client: new ByteTraffic(), peer: new ByteTraffic() };
  traffic.client.bytesIn = 1000;
  traffic.client.bytesOut = 2000;
  traffic.peer.bytesIn = 30;
  traffic.peer.bytesOut = 40;
  const lag = new BucketCounts();
  lag.observe(0.002);
  lag.observe(0.3);
  return {
    version: "1.2.3",
    replicas: () => [1, 2, 3],
    status: () => ({
      state: "changing",
      view: 4,
      members: [1, 3],
      delivered: 17,
      holdback: 2,
      pending: 1,
      clock: 99,
      keys: 5,
    }),
    ready: () => false,
    viewChanges: () => 3,
    connectedClients: () => 7,
    peers: () => [
      { id: 2, linkUp: false, incoming: false, lastHeardMs: 2500, ackedBehind: null },
      { id: 3, linkUp: true, incoming: true, lastHeardMs: 10, ackedBehind: 4 },
    ],
    commands: new CommandStats(),
    ...(storage === undefined ? {} : { storage: () => storage }),
    traffic,
    loopLag: { lagSeconds: lag, last: 0.3 },
    memory: { used: () => 5_000_000, limit: 64 * 1024 * 1024 },
  };
}

function fakeStorage(): StorageStats {
  const fsync = new BucketCounts();
  fsync.observe(0.0004);
  fsync.observe(0.0004);
  fsync.observe(0.2);
  const snapshot = new BucketCounts(SLOW_BOUNDS);
  snapshot.observe(0.8);
  return {
    dir: "/data/1",
    walBytes: 16 * 1024 * 1024,
    walSegments: 2,
    snapshotBytes: 4096,
    snapshotIndex: 12,
    fsyncSeconds: fsync,
    snapshotSeconds: snapshot,
  };
}

const promtoolSkip = await promtoolSkipReason();
announceSkip("metrics unit: promtool check metrics", promtoolSkip);

Deno.test("metrics: the exposition holds every metric with its source's values", async () => {
  const source = fakeSource(fakeStorage());
  const ops = new OpStats();
  ops.observe(source.commands.observer);
  for (let i = 0; i < 5; i++) ops.record("get", true, ops.now());
  ops.record("set", true, ops.now() - 30);
  ops.record("set", false, ops.now(), "NOQUORUM");
  source.commands.countError("peer_rejected");
  const metrics = new ReplicaMetrics(source);
  const text = await metrics.text();
  const s = parseMetrics(text);

  // [metric, labels, value]: the source's values; the buckets are cumulative (the 30 ms SET is
  // above 25 ms, both SETs are within 50 ms and +Inf).
  const expected: [string, Record<string, string>, number | undefined][] = [
    ["lamportkv_operations_total", { command: "get", result: "ok" }, 5],
    ["lamportkv_operations_total", { command: "get", result: "error" }, 0],
    ["lamportkv_operations_total", { command: "set", result: "ok" }, 1],
    ["lamportkv_operations_total", { command: "set", result: "error" }, 1],
    ["lamportkv_request_duration_seconds_count", { command: "get" }, 5],
    ["lamportkv_request_duration_seconds_count", { command: "set" }, 2],
    ["lamportkv_request_duration_seconds_bucket", { command: "set", le: "0.025" }, 1],
    ["lamportkv_request_duration_seconds_bucket", { command: "set", le: "0.05" }, 2],
    ["lamportkv_request_duration_seconds_bucket", { command: "set", le: "+Inf" }, 2],
    ["lamportkv_errors_total", { kind: "noquorum" }, 1],
    ["lamportkv_errors_total", { kind: "peer_rejected" }, 1],
    ["lamportkv_delivered_index", {}, 17],
    ["lamportkv_view", {}, 4],
    ["lamportkv_view_members", {}, 2],
    ["lamportkv_view_member", { replica: "1" }, 1],
    ["lamportkv_view_member", { replica: "2" }, 0],
    ["lamportkv_view_member", { replica: "3" }, 1],
    ["lamportkv_view_changes_total", {}, 3],
    ["lamportkv_state", { state: "changing" }, 1],
    ["lamportkv_state", { state: "normal" }, 0],
    ["lamportkv_ready", {}, 0],
    ["lamportkv_holdback_entries", {}, 2],
    ["lamportkv_pending_requests", {}, 1],
    ["lamportkv_lamport_clock", {}, 99],
    ["lamportkv_keys", {}, 5],
    ["lamportkv_connected_clients", {}, 7],
    ["lamportkv_peer_link_up", { peer: "2" }, 0],
    ["lamportkv_peer_link_up", { peer: "3" }, 1],
    ["lamportkv_peer_incoming_up", { peer: "3" }, 1],
    ["lamportkv_peer_last_heard_seconds", { peer: "2" }, 2.5],
    ["lamportkv_peer_acked_behind_entries", { peer: "3" }, 4],
    ["lamportkv_peer_acked_behind_entries", { peer: "2" }, undefined],
    ["lamportkv_wal_bytes", {}, 16 * 1024 * 1024],
    ["lamportkv_wal_segments", {}, 2],
    ["lamportkv_snapshot_index", {}, 12],
    ["lamportkv_snapshot_bytes", {}, 4096],
    ["lamportkv_wal_fsync_duration_seconds_bucket", { le: "0.0005" }, 2],
    ["lamportkv_wal_fsync_duration_seconds_bucket", { le: "0.1" }, 2],
    ["lamportkv_wal_fsync_duration_seconds_bucket", { le: "0.25" }, 3],
    ["lamportkv_wal_fsync_duration_seconds_count", {}, 3],
    ["lamportkv_snapshot_duration_seconds_count", {}, 1],
    ["lamportkv_snapshot_duration_seconds_bucket", { le: "0.5" }, 0],
    ["lamportkv_snapshot_duration_seconds_bucket", { le: "1" }, 1],
    ["lamportkv_network_received_bytes_total", { port: "client" }, 1000],
    ["lamportkv_network_sent_bytes_total", { port: "client" }, 2000],
    ["lamportkv_network_received_bytes_total", { port: "peer" }, 30],
    ["lamportkv_network_sent_bytes_total", { port: "peer" }, 40],
    ["lamportkv_event_loop_lag_seconds_count", {}, 2],
    ["lamportkv_event_loop_lag_seconds_bucket", { le: "0.25" }, 1],
    ["lamportkv_event_loop_lag_last_seconds", {}, 0.3],
    ["lamportkv_build_info", { version: "1.2.3" }, 1],
    ["lamportkv_used_memory_bytes", {}, 5_000_000],
    ["lamportkv_write_memory_limit_bytes", {}, 64 * 1024 * 1024],
  ];
  for (const [name, labels, value] of expected) {
    assert.equal(sample(s, name, labels), value, `${name} ${JSON.stringify(labels)}`);
  }
  assert.ok(sample(s, "lamportkv_request_duration_seconds_sum", { command: "set" })! >= 0.03);
  assert.ok(sample(s, "process_resident_memory_bytes")! > 1024 * 1024);
  assert.ok(sample(s, "process_cpu_seconds_total")! > 0);
  assert.ok(sample(s, "process_start_time_seconds")! > 1_600_000_000);

  if (promtoolSkip === undefined) {
    const check = await promtoolCheck(text);
    assert.ok(check.ok, check.output);
    assert.equal(check.output.trim(), "", "promtool has no lint remarks");
  }
});

Deno.test("metrics: values are read when scraped; no storage metrics without a data dir", async () => {
  const source = fakeSource();
  const metrics = new ReplicaMetrics(source);
  const first = parseMetrics(await metrics.text());
  assert.equal(sample(first, "lamportkv_wal_bytes"), undefined);
  assert.equal(sample(first, "lamportkv_wal_fsync_duration_seconds_count"), undefined);
  assert.equal(sample(first, "lamportkv_operations_total", { command: "get" }), undefined);
  source.traffic.client.bytesIn += 5;
  source.commands.observer("get", true, 0.001);
  const second = parseMetrics(await metrics.text());
  assert.equal(sample(second, "lamportkv_network_received_bytes_total", { port: "client" }), 1005);
  assert.equal(sample(second, "lamportkv_operations_total", { command: "get", result: "ok" }), 1);
  assert.equal(sample(second, "lamportkv_request_duration_seconds_bucket", { le: "0.001" }), 1);
});

Deno.test("metrics: GET /metrics answers with the exposition's content type", async () => {
  const [route] = metricsRoutes(new ReplicaMetrics(fakeSource()));
  assert.equal(route.path, "/metrics");
  assert.deepEqual(route.methods, ["GET"]);
  const url = new URL("http://127.0.0.1/metrics");
  const remote: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };
  const res = await route.handle(new Request(url), url, remote);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), METRICS_CONTENT_TYPE);
  assert.match(await res.text(), /^lamportkv_delivered_index 17$/m);
});

Deno.test("bucket counts: bucket per bound, cumulative with +Inf", () => {
  const b = new BucketCounts([1, 2]);
  for (const v of [0.5, 1, 1.5, 3, 3]) b.observe(v);
  assert.deepEqual([...b.counts], [2, 1, 2]);
  assert.deepEqual(b.cumulative(), [{ le: 1, count: 2 }, { le: 2, count: 3 }, {
    le: "+Inf",
    count: 5,
  }]);
  assert.equal(b.count, 5);
  assert.equal(b.sum, 9);
});

Deno.test("command stats: distinct command names are capped", () => {
  const stats = new CommandStats();
  for (let i = 0; i < MAX_COMMANDS + 10; i++) stats.observer(`cmd${i}`, true, 0.001);
  stats.observer("cmd0", false, 0.001, "UNKNOWN");
  const commands = new Map(stats.commands());
  assert.equal(commands.size, MAX_COMMANDS + 1);
  assert.equal(commands.get(OTHER_COMMAND)?.ok, 10);
  assert.equal(commands.get("cmd0")?.error, 1);
  assert.deepEqual([...stats.errors()], [["unknown", 1]]);
});

Deno.test("view history: causes from the members, the last views kept", () => {
  const h = new ViewHistory();
  let last: number[] | undefined;
  let lastLearners: number[] = [];
  const install = (view: number, members: number[], at: number, learners: number[] = []) => {
    const previous = last === undefined ? undefined : { members: last, learners: lastLearners };
    const cause = viewCause(previous, { members, learners }, view === 6).text;
    last = members;
    lastLearners = learners;
    h.installed(view, members, at, cause);
  };
  install(0, [1, 2, 3], 100);
  install(0, [1, 2, 3], 101); // the same view again: not a change
  install(1, [1, 2], 200);
  install(2, [1, 2, 3], 300);
  install(3, [1, 2, 3], 400);
  install(4, [1, 2, 3], 500, [4]);
  install(5, [1, 2, 3, 4], 600);
  install(6, [1, 2, 3, 4], 700);
  assert.deepEqual(h.list().map((v) => [v.view, v.at, v.cause]), [
    [0, 100, "first view since start"],
    [1, 200, "replica 3 left (stopped, unreachable or removed)"],
    [2, 300, "replica 3 joined"],
    [3, 400, "view change with the same members"],
    [4, 500, "learner 4 joined"],
    [5, 600, "learner 4 became a member"],
    [6, 700, "this replica rejoined"],
  ]);
  for (let v = 7; v < 40; v++) install(v, [1, 2, 3], v);
  assert.equal(h.list().length, VIEW_HISTORY_LENGTH);
  assert.equal(h.list().at(-1)?.view, 39);
  assert.equal(h.count, 40);
});

Deno.test("traffic: a ConnWriter adds every byte it writes, partial writes included", async () => {
  const written: number[] = [];
  const conn = {
    write: (p: Uint8Array) => {
      const n = Math.min(3, p.length); // the socket takes 3 bytes at a time
      written.push(n);
      return Promise.resolve(n);
    },
  };
  const traffic = new ByteTraffic();
  const writer = new ConnWriter(conn, (err) => {
    throw err;
  }, traffic);
  writer.write(new Uint8Array(7));
  writer.write(new Uint8Array(2));
  await writer.idle();
  assert.equal(written.reduce((a, b) => a + b, 0), 9);
  assert.deepEqual({ ...traffic }, { bytesIn: 0, bytesOut: 9 });
  // Without a counter nothing is counted and nothing breaks.
  const plain = new ConnWriter(conn, () => {});
  plain.write(new Uint8Array(4));
  await plain.idle();
  assert.equal(traffic.bytesOut, 9);
});
