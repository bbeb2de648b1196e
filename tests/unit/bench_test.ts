/**
 * Tests of `deno task bench`: argument parsing (and its errors), mixes, the latency histogram
 * against exact percentiles of sorted samples, the reply counter at every split point, request
 * templates against the RESP encoder, `/proc` parsing on sample text, report formatting, the load
 * generator against tiny fake servers (all requests failing; pipelined successes), the CLI's
 * usage and unreachable-cluster exits, and one small real `--spawn` run. The operations beyond
 * SET/GET (INCR, a 10-key MSET, a MULTI/EXEC of 3 commands): their `--mix` names, their bytes,
 * counting of EXEC's array reply, a fake server that speaks MULTI/EXEC, and a real `--spawn` run
 * of each. Sharded clusters: groups and slot owners (CLUSTER SLOTS, the file), MOVED parsing, the
 * load generator against two fake groups (requests routed by slot, a stale map corrected by
 * MOVED, `--misroute`, a MOVED to an unknown address), the per-group table, and a real `--spawn`
 * run on 2 groups × 3 replicas (with and without `--misroute`).
 *
 * @module
 */
import type { PublishRow } from "../../src/bench/publish.ts";
import {
  longestLoopLagBound,
  peerBytesOf,
  processCpuOf,
  snapshotFigures,
} from "../../src/bench/catchup.ts";
import assert from "node:assert/strict";
import {
  BenchUsageError,
  HARD_CAP_SECONDS,
  type Mix,
  parseBenchArgs,
  parseClientLevels,
  parseMixes,
} from "../../src/bench/args.ts";
import { LatencyHistogram, percentileOfSorted } from "../../src/bench/histogram.ts";
import { runPhase, type Target } from "../../src/bench/load.ts";
import {
  cpuPercent,
  parseCpuModel,
  parseProcStat,
  parseStatusKib,
  sampleProcesses,
} from "../../src/bench/proc.ts";
import { OP_NAMES, opCode, OPS } from "../../src/bench/ops.ts";
import { ReplyCounter, type ReplyKind, ReplyStreamError } from "../../src/bench/reply_counter.ts";
import {
  type BenchReport,
  type BenchRow,
  formatGroupTable,
  formatHeader,
  formatMs,
  formatReport,
  formatTable,
  type GroupFigure,
  opLabel,
} from "../../src/bench/report.ts";
import { describeMix } from "../../src/bench/report.ts";
import { benchValue, RequestEncoder } from "../../src/bench/requests.ts";
import { allNormalInOneView } from "../../src/net/info.ts";
import { main } from "../../src/cli/bench.ts";
import { cpuUsPerOp } from "../../src/bench/runner.ts";
import {
  type BenchShard,
  configSlotOwners,
  keySlotTable,
  parseClusterSlots,
  shardOfAddress,
  shardsOf,
} from "../../src/bench/shards.ts";
import { parseConfig } from "../../src/config/config.ts";
import { initialSlotMap } from "../../src/kv/slot_map.ts";
import { keySlot, parseRedirect } from "../../src/kv/slots.ts";
import { encodeCommand, RespRequestParser } from "../../src/net/resp.ts";
import { type CommandResult, freePorts, runCommand } from "../support/cluster.ts";
import { Prng } from "../support/prng.ts";

const BENCH_TS = new URL("../../src/cli/bench.ts", import.meta.url).pathname;
const BENCH_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
];

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

function bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

// ---------------------------------------------------------------------------------------------
// Arguments

Deno.test("bench args: defaults", () => {
  const o = parseBenchArgs(["cfg.txt"]);
  assert.notEqual(o, "help");
  if (o === "help") return;
  assert.deepEqual(o, {
    configPath: "cfg.txt",
    spawn: false,
    fsync: "batch",
    clients: [1, 16, 64, 256],
    stop: { kind: "seconds", seconds: 5 },
    mixes: [{ put: 1, get: 0 }, { put: 0, get: 1 }],
    valueSize: 100,
    keys: 10000,
    pipeline: 1,
    warmupSeconds: 1,
    jsonPath: undefined,
    publish: false,
    catchup: false,
    misroute: false,
  });
});

Deno.test("bench args: every option", () => {
  const o = parseBenchArgs([
    "--spawn",
    "--fsync",
    "never",
    "--clients",
    "2, 8",
    "--ops",
    "200",
    "--mix",
    "1:1,3:1",
    "--value-size",
    "0",
    "--keys",
    "7",
    "--pipeline",
    "16",
    "--warmup",
    "0.5",
    "--json",
    "out.json",
    "c.txt",
  ]);
  assert.deepEqual(o, {
    configPath: "c.txt",
    spawn: true,
    fsync: "never",
    clients: [2, 8],
    stop: { kind: "ops", ops: 200 },
    mixes: [{ put: 1, get: 1 }, { put: 3, get: 1 }],
    valueSize: 0,
    keys: 7,
    pipeline: 16,
    warmupSeconds: 0.5,
    jsonPath: "out.json",
    publish: false,
    catchup: false,
    misroute: false,
  });
  assert.deepEqual(
    parseBenchArgs(["--seconds", "2.5", "c"]) !== "help" &&
      (parseBenchArgs(["--seconds", "2.5", "c"]) as { stop: unknown }).stop,
    {
      kind: "seconds",
      seconds: 2.5,
    },
  );
  assert.equal((parseBenchArgs(["--misroute", "c"]) as { misroute: boolean }).misroute, true);
  assert.equal(parseBenchArgs(["--help"]), "help");
  assert.equal(parseBenchArgs(["-h", "--clients", "zzz"]), "help");
});

Deno.test("bench args: --catchup loads with 16 connections, 32 in flight; --fsync allowed", () => {
  const o = parseBenchArgs(["--catchup", "--keys", "1000000", "--fsync", "never", "c.txt"]);
  assert.notEqual(o, "help");
  if (o === "help") return;
  assert.equal(o.catchup, true);
  assert.deepEqual(o.clients, [16]);
  assert.equal(o.pipeline, 32);
  assert.equal(o.keys, 1_000_000);
  assert.equal(o.fsync, "never");
  assert.equal(o.cpuProfDir, undefined);
  const prof = parseBenchArgs(["--catchup", "--cpu-prof", "/tmp/p", "c.txt"]);
  assert.ok(prof !== "help" && prof.cpuProfDir === "/tmp/p");
  const spawned = parseBenchArgs(["--spawn", "--cpu-prof", "p", "c.txt"]);
  assert.ok(spawned !== "help" && spawned.cpuProfDir === "p");
  const patient = parseBenchArgs(["--catchup", "--failure-timeout", "5000", "c.txt"]);
  assert.ok(patient !== "help" && patient.failureTimeoutMs === 5000);
});

Deno.test("bench args: errors", () => {
  const bad: [string[], RegExp][] = [
    [[], /expected a config file/],
    [["a", "b"], /unexpected argument "b"/],
    [["--bogus", "c"], /bogus/],
    [["--clients", "0", "c"], /--clients/],
    [["--clients", "1,x", "c"], /"x"/],
    [["--clients", "", "c"], /--clients/],
    [["--clients", "5000", "c"], /1\.\.4096/],
    [["--ops", "10", "--seconds", "1", "c"], /not both/],
    [["--ops", "0", "c"], /--ops/],
    [["--ops", "1e3", "c"], /--ops/],
    [["--seconds", "0", "c"], /--seconds/],
    [["--seconds", String(HARD_CAP_SECONDS + 1), "c"], /at most 300/],
    [["--seconds", "-1", "c"], /--seconds/],
    [["--warmup", "61", "c"], /--warmup/],
    [["--mix", "1-1", "c"], /put:get/],
    [["--mix", "0:0", "c"], /both 0/],
    [["--value-size", "99999999", "c"], /--value-size/],
    [["--keys", "0", "c"], /--keys/],
    [["--catchup", "--mix", "1:0", "c"], /--catchup takes no/],
    [["--catchup", "--publish", "c"], /--catchup takes no/],
    [["--catchup", "--spawn", "c"], /drop --spawn/],
    [["--misroute", "--publish", "c"], /--misroute takes no/],
    [["--pipeline", "0", "c"], /--pipeline/],
    [["--fsync", "batch", "c"], /needs --spawn/],
    [["--spawn", "--fsync", "sometimes", "c"], /always, batch or never/],
    [["--json", "", "c"], /--json/],
    [["--cpu-prof", "p", "c"], /needs --spawn or --catchup/],
    [["--spawn", "--cpu-prof", "", "c"], /needs a directory/],
    [["--failure-timeout", "5000", "c"], /needs --spawn or --catchup/],
    [["--spawn", "--failure-timeout", "50", "c"], /--failure-timeout/],
    [["--ops", "c"], /expected a config file|--ops/],
  ];
  for (const [args, message] of bad) {
    assert.throws(() => parseBenchArgs(args), (err: unknown) => {
      assert.ok(err instanceof BenchUsageError, `${args.join(" ")}: ${err}`);
      assert.match(err.message, message, args.join(" "));
      return true;
    });
  }
});

Deno.test("bench args: client levels and mixes", () => {
  assert.deepEqual(parseClientLevels("1,16,64,256"), [1, 16, 64, 256]);
  assert.deepEqual(parseClientLevels("3"), [3]);
  assert.throws(() => parseClientLevels("1,,2"), BenchUsageError);
  assert.throws(() => parseClientLevels("01x"), BenchUsageError);
  assert.deepEqual(parseMixes("1:0"), [{ put: 1, get: 0 }]);
  assert.deepEqual(parseMixes("1:1, 0:1"), [{ put: 1, get: 1 }, { put: 0, get: 1 }]);
  assert.deepEqual(parseMixes("9:1"), [{ put: 9, get: 1 }]);
  for (const bad of ["", "1", "1:2:3", "a:b", "-1:1", "1:", ":1", "1001:1", "0:0", "1.5:1"]) {
    assert.throws(() => parseMixes(bad), BenchUsageError, bad);
  }
});

// ---------------------------------------------------------------------------------------------
// Histogram

Deno.test("bench histogram: percentiles match sorted samples within 0.5%", () => {
  const prng = new Prng(42);
  const samplesMs: number[] = [];
  const h = new LatencyHistogram();
  for (let i = 0; i < 50_000; i++) {
    // Log-uniform from 10 µs to 10 s, with whole-µs values (what the histogram keeps).
    const us = Math.round(10 * 10 ** (prng.next() * 6));
    samplesMs.push(us / 1000);
    h.recordMs(us / 1000);
  }
  const sorted = [...samplesMs].sort((a, b) => a - b);
  assert.equal(h.count, sorted.length);
  for (const p of [1, 10, 50, 90, 99, 99.9, 99.99, 100]) {
    const exact = percentileOfSorted(sorted, p);
    const approx = h.percentileMs(p);
    const tolerance = Math.max(exact / 200, 0.0005);
    assert.ok(
      Math.abs(approx - exact) <= tolerance,
      `p${p}: histogram ${approx} vs exact ${exact}`,
    );
  }
  assert.equal(h.minMs, sorted[0]);
  assert.equal(h.maxMs, sorted[sorted.length - 1]);
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  assert.ok(Math.abs(h.meanMs - mean) < 1e-6 * mean + 1e-9);
});

Deno.test("bench histogram: small values are exact; empty, clamping and merge", () => {
  const h = new LatencyHistogram();
  assert.equal(h.percentileMs(50), 0);
  assert.equal(h.meanMs, 0);
  for (const us of [5, 1, 3, 2, 4]) h.recordUs(us);
  assert.equal(h.percentileMs(20), 0.001);
  assert.equal(h.percentileMs(50), 0.003);
  assert.equal(h.percentileMs(100), 0.005);
  h.recordUs(-7); // counts as 0
  assert.equal(h.minMs, 0);
  assert.throws(() => h.percentileMs(0), RangeError);
  assert.throws(() => h.percentileMs(101), RangeError);
  const other = new LatencyHistogram();
  other.recordMs(12_345.678);
  h.merge(other);
  assert.equal(h.count, 7);
  assert.equal(h.maxMs, 12_345.678);
  assert.equal(h.percentileMs(100), 12_345.678);
  // A single big value: every percentile is that value (clamped to the exact min and max).
  const one = new LatencyHistogram();
  one.recordMs(777.777);
  assert.equal(one.percentileMs(50), 777.777);
  assert.deepEqual(percentileOfSorted([], 50), 0);
  assert.equal(percentileOfSorted([1, 2, 3, 4], 50), 2);
  assert.equal(percentileOfSorted([1, 2, 3, 4], 51), 3);
});

// ---------------------------------------------------------------------------------------------
// Reply counter

const REPLIES: [string, ReplyKind, string?][] = [
  ["+OK\r\n", "ok"],
  ["$5\r\nhello\r\n", "ok"],
  ["$-1\r\n", "nil"],
  ["-NOQUORUM no majority reachable\r\n", "error", "NOQUORUM no majority reachable"],
  ["$0\r\n\r\n", "ok"],
  [":1\r\n", "ok"],
  ["$12\r\n\r\n$3\r\n-ERR\r\n\r\n", "ok"], // a payload that looks like replies
  ["-UNKNOWN maybe applied\r\n", "error", "UNKNOWN maybe applied"],
  ["-ERR wrong number of arguments for 'get' command\r\n", "error"],
];

function scan(chunks: Uint8Array[], maxDepth = 0): { kind: ReplyKind; error?: string }[] {
  const counter = new ReplyCounter({ maxDepth });
  const seen: { kind: ReplyKind; error?: string }[] = [];
  let completed = 0;
  for (const c of chunks) {
    completed += counter.feed(c, (kind, error) => seen.push(error ? { kind, error } : { kind }));
  }
  assert.equal(completed, seen.length);
  return seen;
}

Deno.test("bench reply counter: every reply kind, at every split point", () => {
  const stream = bytes(REPLIES.map((r) => r[0]).join(""));
  const expected = REPLIES.map(([text, kind, error]) =>
    kind === "error" ? { kind, error: error ?? text.slice(1, -2) } : { kind }
  );
  assert.deepEqual(scan([stream]), expected);
  // Byte by byte.
  assert.deepEqual(scan(Array.from(stream, (b) => Uint8Array.of(b))), expected);
  // Every split into two and three chunks.
  for (let i = 0; i <= stream.length; i++) {
    assert.deepEqual(scan([stream.subarray(0, i), stream.subarray(i)]), expected, `split ${i}`);
    const j = Math.min(stream.length, i + 7);
    assert.deepEqual(
      scan([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]),
      expected,
      `split ${i}/${j}`,
    );
  }
  // An incomplete tail is not counted.
  assert.equal(scan([bytes("+OK\r\n$10\r\nabc")]).length, 1);
});

Deno.test("bench reply counter: unexpected replies are errors of the stream", () => {
  for (const bad of ["*1\r\n+OK\r\n", "$x\r\n", "$-2\r\n", "+OK\n", "\r\n", "?\r\n"]) {
    const counter = new ReplyCounter();
    assert.throws(() => counter.feed(bytes(bad), () => {}), ReplyStreamError, bad);
    assert.throws(() => counter.feed(bytes("+OK\r\n"), () => {}), ReplyStreamError);
  }
  const long = new ReplyCounter();
  assert.throws(() => long.feed(new Uint8Array(70_000).fill(0x2b), () => {}), /longer than/);
});

// ---------------------------------------------------------------------------------------------
// Requests

Deno.test("bench requests: templates are exactly encodeCommand's bytes", () => {
  const enc = new RequestEncoder(10_000, 37);
  assert.equal(enc.keyWidth, 4);
  assert.equal(enc.keyName(42), "key:0042");
  const value = benchValue(37);
  assert.equal(value.length, 37);
  assert.match(value, /^[a-z]+$/);
  const out = new Uint8Array(enc.putBytes + enc.getBytes + enc.putBytes);
  let off = enc.writePut(out, 0, 42);
  off = enc.writeGet(out, off, 9999);
  off = enc.writePut(out, off, 0);
  assert.equal(off, out.length);
  const expected = [
    ...encodeCommand(["SET", "key:0042", value]),
    ...encodeCommand(["GET", "key:9999"]),
    ...encodeCommand(["SET", "key:0000", value]),
  ];
  assert.deepEqual([...out], expected);
  const parser = new RespRequestParser();
  parser.push(out);
  assert.deepEqual(parser.next(), { argv: ["SET", "key:0042", value] });
  assert.deepEqual(parser.next(), { argv: ["GET", "key:9999"] });
  assert.throws(() => enc.writeGet(out, 0, 10_000), RangeError);
  assert.throws(() => enc.writeGet(out, 0, -1), RangeError);
  const one = new RequestEncoder(1, 0);
  assert.equal(one.keyName(0), "key:0");
  assert.equal(
    latin1(encodeCommand(["GET", "key:0"])),
    latin1((() => {
      const b = new Uint8Array(one.getBytes);
      one.writeGet(b, 0, 0);
      return b;
    })()),
  );
});

// ---------------------------------------------------------------------------------------------
// /proc

Deno.test("bench proc: stat, status and cpuinfo parsing", () => {
  const stat = "4242 (deno (worker) 1) S 1 4242 4242 0 -1 4194560 1234 0 5 0 " +
    "731 269 0 0 20 0 9 0 123456 1048576000 30000 18446744073709551615 1 1 0 0 0 0 0 4096 " +
    "1088 0 0 0 17 1 0 0 0 0 0\n";
  assert.deepEqual(parseProcStat(stat), { user: 731, system: 269 });
  assert.throws(() => parseProcStat("garbage"), /malformed/);
  assert.throws(() => parseProcStat("1 (x) S 1 2"), /malformed/);

  const status = "Name:\tdeno\nVmPeak:\t 2000000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t   99999 kB\n";
  assert.equal(parseStatusKib(status, "VmHWM"), 123456);
  assert.equal(parseStatusKib(status, "VmRSS"), 99999);
  assert.equal(parseStatusKib(status, "VmSwap"), null);
  assert.equal(parseStatusKib("Name:\tkthreadd\n", "VmHWM"), null);

  const cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 2\n" +
    "model name\t: AMD EPYC   7B13 64-Core Processor\nstepping\t: 1\n\nprocessor\t: 1\n" +
    "model name\t: AMD EPYC 7B13 64-Core Processor\n";
  assert.equal(parseCpuModel(cpuinfo), "AMD EPYC 7B13 64-Core Processor");
  assert.equal(parseCpuModel("processor : 0\nHardware : BCM2835\n"), "BCM2835");
  assert.equal(parseCpuModel("nothing here\n"), null);

  // 150 ticks (1.5 s of CPU) over 3 s of wall time: 50% of one core.
  assert.equal(cpuPercent({ user: 100, system: 50 }, { user: 200, system: 100 }, 3), 50);
  assert.equal(cpuPercent({ user: 0, system: 0 }, { user: 10, system: 0 }, 0), 0);
});

Deno.test("bench proc: samples this process and reports a missing one as null", async () => {
  const [self, gone] = await sampleProcesses([Deno.pid, 0x7fff_fff0]);
  assert.ok(self !== null, "own /proc entry readable");
  assert.ok(self.cpu.user + self.cpu.system > 0, "this process has used some CPU by now");
  assert.ok(self.peakRssKib !== null && self.peakRssKib > 0);
  assert.equal(gone, null);
  assert.deepEqual(await sampleProcesses([]), []);
});

// ---------------------------------------------------------------------------------------------
// Report

function row(over: Partial<BenchRow>): BenchRow {
  return {
    clients: 16,
    mix: { put: 1, get: 0 },
    op: "put",
    ops: 5000,
    errors: 0,
    nil: 0,
    seconds: 2,
    opsPerSec: 2500.4,
    p50Ms: 1.234,
    p99Ms: 9.87,
    p999Ms: 1500.2,
    meanMs: 2,
    maxMs: 1600,
    replicaCpuPercent: [{ id: 1, value: 95.4 }, { id: 2, value: 60 }, { id: 3, value: 59.6 }],
    replicaPeakRssMb: [{ id: 1, value: 80.2 }, { id: 2, value: 101.6 }, { id: 3, value: 90 }],
    benchCpuPercent: 12.6,
    replicaCpuUsPerOp: 1720.4,
    groups: null,
    moved: 0,
    connected: 16,
    errorMessages: [],
    cutOff: false,
    ...over,
  };
}

Deno.test("bench report: table layout", () => {
  const table = formatTable([
    row({}),
    row({
      clients: 256,
      op: "get",
      mix: { put: 1, get: 1 },
      ops: 0,
      errors: 77,
      opsPerSec: 0,
      p50Ms: null,
      p99Ms: null,
      p999Ms: null,
      replicaCpuPercent: null,
      replicaPeakRssMb: null,
      benchCpuPercent: 3,
    }),
  ]);
  assert.equal(
    table,
    [
      "clients  op       ops/s  p50 ms  p99 ms  p99.9 ms  errors  replica cpu %  replica max rss MB  bench cpu %",
      "     16  PUT       2500    1.23    9.87      1500       0       95/60/60                 102           13",
      "    256  GET 1:1      0       -       -         -      77              -                   -            3",
    ].join("\n"),
  );
  assert.equal(opLabel("put", { put: 1, get: 0 }), "PUT");
  assert.equal(opLabel("get", { put: 0, get: 1 }), "GET");
  assert.equal(opLabel("put", { put: 3, get: 1 }), "PUT 3:1");
  assert.equal(formatMs(0.0049), "0.00");
  assert.equal(formatMs(999.994), "999.99");
  assert.equal(formatMs(null), "-");
});

Deno.test("bench report: header describes machine, cluster and load; notes follow the table", () => {
  const report: BenchReport = {
    startedAt: "2024-01-01T00:00:00.000Z",
    machine: { cpus: 8, cpuModel: "Test CPU", deno: "2.9.9", v8: "1.2", platform: "linux x86_64" },
    cluster: {
      config: "c.txt",
      replicas: 3,
      groups: null,
      slotMap: null,
      misroute: false,
      spawned: true,
      fsync: "batch",
      view: "4",
    },
    settings: {
      clients: [1],
      mixes: [{ put: 1, get: 0 }, { put: 0, get: 1 }],
      stop: { kind: "ops", ops: 200 },
      valueSize: 100,
      keys: 500,
      pipeline: 1,
      warmupSeconds: 1,
    },
    preload: null,
    rows: [row({})],
    notes: ["something happened"],
    interrupted: false,
  };
  const header = formatHeader(report);
  for (
    const part of [
      "8 CPUs (nproc)",
      "Test CPU",
      "deno 2.9.9",
      "3 replicas from c.txt",
      "fsync batch",
      "value 100 B",
      "500 keys",
      "200 requests per level",
      "PUT only, GET only",
    ]
  ) assert.ok(header.includes(part), `header lacks "${part}":\n${header}`);
  const running = formatHeader({
    ...report,
    cluster: { ...report.cluster, spawned: false, fsync: null, view: null },
    settings: { ...report.settings, stop: { kind: "seconds", seconds: 5 } },
  });
  assert.match(running, /already running/);
  assert.match(running, /5 s per level/);
  const text = formatReport(report);
  assert.ok(text.startsWith(header + "\n\nclients  op"));
  assert.ok(text.endsWith("\n\nnote: something happened"));
});

Deno.test("bench cluster: normal in one view of exactly every replica", () => {
  const info = (view: string, state: string, members: string) => ({ view, state, members });
  assert.ok(allNormalInOneView([info("4", "normal", "1,2,3"), info("4", "normal", "1,2,3")], [
    3,
    1,
    2,
  ]));
  assert.ok(
    !allNormalInOneView([info("4", "normal", "1,2,3"), info("5", "normal", "1,2,3")], [
      1,
      2,
      3,
    ]),
  );
  assert.ok(!allNormalInOneView([info("4", "changing", "1,2,3")], [1, 2, 3]));
  assert.ok(!allNormalInOneView([info("4", "normal", "1,2")], [1, 2, 3]));
  assert.ok(!allNormalInOneView([], [1]));
});

// ---------------------------------------------------------------------------------------------
// Load generator against fake servers

/** Per-connection state of a fake server: the commands of an open MULTI. */
interface FakeSession {
  queued: string[][] | null;
}

/**
 * A RESP server on a free loopback port that answers every request with `answer(argv)`. Returns
 * its port, the number of requests it saw, and a stop function that closes everything.
 */
function fakeServer(answer: (argv: string[], session: FakeSession) => string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const state = { requests: 0 };
  const serving: Promise<void>[] = [];
  const serve = async (conn: Deno.Conn) => {
    const parser = new RespRequestParser();
    const session: FakeSession = { queued: null };
    const buf = new Uint8Array(64 * 1024);
    try {
      for (let i = 0; i < 1_000_000; i++) {
        const n = await conn.read(buf);
        if (n === null) break;
        parser.push(buf.subarray(0, n));
        let out = "";
        for (let k = 0; k < 100_000; k++) {
          const item = parser.next();
          if (item === null) break;
          if ("argv" in item) {
            state.requests++;
            out += answer(item.argv, session);
          }
        }
        if (out !== "") await conn.write(bytes(out));
      }
    } catch {
      // closed
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // closed
      }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        serving.push(serve(conn));
      }
    } catch {
      // listener closed
    }
  })();
  return {
    port: listener.addr.port,
    state,
    async stop() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      await accepting;
      await Promise.all(serving);
    },
  };
}

Deno.test("bench load: a level where every request fails counts every request as an error", async () => {
  const server = fakeServer(() => "-NOQUORUM cannot reach a majority\r\n");
  try {
    const targets: Target[] = [{ id: 1, host: "127.0.0.1", port: server.port }];
    const result = await runPhase({
      targets,
      connections: 3,
      pipeline: 2,
      mix: { put: 1, get: 1 },
      encoder: new RequestEncoder(50, 10),
      warmupMs: 0,
      stop: { kind: "ops", ops: 101 },
    });
    assert.equal(result.put.ops + result.get.ops, 0);
    assert.equal(result.put.errors + result.get.errors, 101);
    assert.ok(result.put.errors > 0 && result.get.errors > 0);
    assert.equal(server.state.requests, 101);
    assert.deepEqual(result.errorMessages, [{
      message: "NOQUORUM cannot reach a majority",
      count: 101,
    }]);
    assert.equal(result.connected, 3);
    assert.equal(result.aborted, false);
  } finally {
    await server.stop();
  }
});

Deno.test("bench load: pipelined requests, exact op count after an unmeasured warmup", async () => {
  const stored = new Set<string>();
  const server = fakeServer((argv) => {
    if (argv[0] === "SET") {
      stored.add(argv[1]);
      return "+OK\r\n";
    }
    return stored.has(argv[1]) ? "$3\r\nabc\r\n" : "$-1\r\n";
  });
  const targets: Target[] = [
    { id: 1, host: "127.0.0.1", port: server.port },
    { id: 2, host: "127.0.0.1", port: server.port },
  ];
  try {
    const encoder = new RequestEncoder(20, 3);
    const preload = await runPhase({
      targets,
      connections: 4,
      pipeline: 8,
      mix: { put: 1, get: 0 },
      encoder,
      warmupMs: 0,
      stop: { kind: "ops", ops: 20 },
      sequentialKeys: true,
    });
    assert.equal(preload.put.ops, 20);
    assert.equal(stored.size, 20, "every key written once");
    let measureStarts = 0;
    const before = server.state.requests;
    const result = await runPhase({
      targets,
      connections: 2,
      pipeline: 4,
      mix: { put: 0, get: 1 },
      encoder,
      warmupMs: 50,
      stop: { kind: "ops", ops: 333 },
      onMeasureStart: () => measureStarts++,
    });
    assert.equal(measureStarts, 1);
    assert.equal(result.get.ops, 333);
    assert.equal(result.get.errors, 0);
    assert.equal(result.get.nil, 0);
    assert.equal(result.put.ops, 0);
    assert.equal(result.get.latency.count, 333);
    assert.ok(server.state.requests - before > 333, "warmup requests come on top");
  } finally {
    await server.stop();
  }
});

Deno.test("bench load: big pipelined writes and replies lose no request", async () => {
  const value = benchValue(100_000);
  const server = fakeServer((argv) =>
    argv[0] === "SET" ? "+OK\r\n" : `$${value.length}\r\n${value}\r\n`
  );
  try {
    const result = await runPhase({
      targets: [{ id: 1, host: "127.0.0.1", port: server.port }],
      connections: 3,
      pipeline: 8,
      mix: { put: 1, get: 1 },
      encoder: new RequestEncoder(100, value.length),
      warmupMs: 0,
      stop: { kind: "ops", ops: 400 },
      drainMs: 20_000,
    });
    assert.deepEqual(result.errorMessages, []);
    assert.equal(result.put.ops + result.get.ops, 400);
    assert.equal(result.put.errors + result.get.errors, 0);
    assert.equal(server.state.requests, 400);
  } finally {
    await server.stop();
  }
});

Deno.test("bench load: requests without a reply become errors after the drain", async () => {
  const server = fakeServer(() => ""); // reads requests, never answers
  try {
    const base = {
      targets: [{ id: 3, host: "127.0.0.1", port: server.port }],
      connections: 2,
      pipeline: 3,
      mix: { put: 1, get: 0 },
      encoder: new RequestEncoder(10, 1),
      warmupMs: 0,
      drainMs: 200,
    };
    const timed = await runPhase({ ...base, stop: { kind: "seconds", seconds: 0.2 } });
    assert.equal(timed.put.ops, 0);
    assert.equal(timed.put.errors, 6);
    assert.equal(timed.cutOff, false);
    assert.match(timed.errorMessages[0].message, /replica 3: no reply within 0\.2 s/);
    // --ops that cannot all be sent: the hard cap stops sending, then the drain gives up.
    const capped = await runPhase({ ...base, stop: { kind: "ops", ops: 100 }, hardCapMs: 200 });
    assert.equal(capped.put.errors, 6);
    assert.equal(capped.cutOff, true);
  } finally {
    await server.stop();
  }
});

Deno.test("bench load: an abort ends a level early, and unreachable targets are reported", async () => {
  const abort = new AbortController();
  let answered = 0;
  // Abort from inside the load, once the level is well under way.
  const server = fakeServer(() => {
    if (++answered === 50) abort.abort();
    return "+OK\r\n";
  });
  try {
    const started = performance.now();
    const phase = runPhase({
      targets: [{ id: 1, host: "127.0.0.1", port: server.port }],
      connections: 2,
      pipeline: 1,
      mix: { put: 1, get: 0 },
      encoder: new RequestEncoder(10, 1),
      warmupMs: 0,
      stop: { kind: "seconds", seconds: 60 },
      signal: abort.signal,
    });
    const result = await phase;
    assert.equal(result.aborted, true);
    assert.ok(result.put.ops >= 40, `${result.put.ops} measured before the abort`);
    assert.ok(performance.now() - started < 30_000, "the 60 s level ended at the abort");
    assert.equal(result.put.errors, 0, "aborted requests are not errors");
  } finally {
    await server.stop();
  }
  const [port] = freePorts(1);
  const result = await runPhase({
    targets: [{ id: 7, host: "127.0.0.1", port }],
    connections: 2,
    pipeline: 1,
    mix: { put: 1, get: 0 },
    encoder: new RequestEncoder(10, 1),
    warmupMs: 0,
    stop: { kind: "ops", ops: 10 },
  });
  assert.equal(result.connected, 0);
  assert.equal(result.put.ops, 0);
  assert.equal(result.errorMessages.length, 1);
  assert.match(result.errorMessages[0].message, /cannot connect to replica 7/);
  assert.equal(result.errorMessages[0].count, 2);
});

// ---------------------------------------------------------------------------------------------
// CLI

function captureIo() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t) }, out, err };
}

Deno.test("bench cli: --help, bad usage (2), bad config (2), unreachable cluster (1)", async () => {
  const help = captureIo();
  assert.equal(await main(["--help"], help.io), 0);
  assert.match(help.out.join("\n"), /Usage: deno task bench/);

  const usage = captureIo();
  assert.equal(await main(["--clients", "x", "c.txt"], usage.io), 2);
  assert.match(usage.err.join("\n"), /--clients/);

  const dir = await Deno.makeTempDir({ prefix: "lamportkv-bench-test-" });
  try {
    const missing = captureIo();
    assert.equal(await main([`${dir}/none.txt`], missing.io), 2);
    assert.match(missing.err.join("\n"), /none\.txt.*cannot read/);

    const shardedConfig = `${dir}/sharded.txt`;
    await Deno.writeTextFile(shardedConfig, "1 127.0.0.1 1 2 group=a\n2 127.0.0.1 3 4 group=b\n");
    // A sharded config: one-key mixes only, no publish or catch-up mode; --misroute needs one.
    for (
      const [args, why] of [
        [["--mix", "put+mset10"], /one-key operations .*: mset10 would send keys of several/],
        [["--mix", "multi3"], /multi3 would send keys of several slots \(CROSSSLOT\)/],
        [["--publish"], /--publish and --catchup take one replica set/],
      ] as const
    ) {
      const sharded = captureIo();
      assert.equal(await main([...args, shardedConfig], sharded.io), 2, args.join(" "));
      assert.match(sharded.err.join("\n"), why);
    }
    const shardedDown = captureIo();
    assert.equal(await main(["--ops", "10", shardedConfig], shardedDown.io), 1);
    assert.match(shardedDown.err.join("\n"), /cannot reach the cluster/);
    const misroute = captureIo();
    await Deno.writeTextFile(`${dir}/plain.txt`, "1 127.0.0.1 1 2\n");
    assert.equal(await main(["--misroute", `${dir}/plain.txt`], misroute.io), 2);
    assert.match(misroute.err.join("\n"), /--misroute needs a sharded config/);

    const ports = freePorts(6);
    const config = `${dir}/cluster.txt`;
    await Deno.writeTextFile(
      config,
      [1, 2, 3].map((id) => `${id} 127.0.0.1 ${ports[id - 1]} ${ports[id + 2]}`).join("\n"),
    );
    const unreachable = captureIo();
    const started = performance.now();
    assert.equal(await main(["--ops", "10", config], unreachable.io), 1);
    const message = unreachable.err.join("\n");
    assert.match(message, /cannot reach the cluster/);
    assert.match(message, new RegExp(`replica 1 at 127\\.0\\.0\\.1:${ports[0]}`));
    assert.match(message, /--spawn/);
    assert.equal(unreachable.out.length, 0);
    assert.ok(performance.now() - started < 30_000, "fails fast rather than hanging");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Runs `deno task bench --spawn <args> --json <dir>/out.json` on a 3-replica config on free ports
 * written to `dir` (with `groups`: 2 groups, a and b, of 3 replicas each); returns the config
 * path, the JSON path and the result.
 */
async function spawnBench(
  dir: string,
  args: string[],
  groups = false,
): Promise<{ config: string; json: string; r: CommandResult }> {
  const n = groups ? 6 : 3;
  const ports = freePorts(2 * n);
  const config = `${dir}/cluster.txt`;
  await Deno.writeTextFile(
    config,
    Array.from({ length: n }, (_, i) =>
      `${i + 1} 127.0.0.1 ${ports[i]} ${ports[n + i]}` +
      (groups ? ` group=${i < 3 ? "a" : "b"}` : "") + "\n").join(""),
  );
  const json = `${dir}/out.json`;
  const r = await runCommand(
    Deno.execPath(),
    ["run", ...BENCH_PERMISSIONS, BENCH_TS, "--spawn", config, ...args, "--json", json],
    { timeoutMs: 120_000 },
  );
  return { config, json, r };
}

Deno.test("bench catchup: the figures of a snapshot.written log line", () => {
  const line = "2026-12-06T03:00:00.000Z INFO replica 3 snapshot.written: snapshot at index 120 " +
    "written index=120 bytes=123456 ms=78";
  assert.deepEqual(snapshotFigures(line), { bytes: 123456, ms: 78 });
  assert.equal(snapshotFigures("2026 INFO replica 3 snapshot.written: x index=1"), null);
  assert.equal(snapshotFigures(null), null);
});

Deno.test("bench catchup: peer bytes, CPU seconds and the longest loop lag from a /metrics text", () => {
  const text = [
    "# HELP lamportkv_event_loop_lag_seconds How late a timer due every 100 ms fired",
    "# TYPE lamportkv_event_loop_lag_seconds histogram",
    'lamportkv_event_loop_lag_seconds_bucket{le="0.001"} 50',
    'lamportkv_event_loop_lag_seconds_bucket{le="0.25"} 60',
    'lamportkv_event_loop_lag_seconds_bucket{le="0.5"} 61',
    'lamportkv_event_loop_lag_seconds_bucket{le="1"} 62',
    'lamportkv_event_loop_lag_seconds_bucket{le="+Inf"} 62',
    "lamportkv_event_loop_lag_seconds_sum 1.3",
    "lamportkv_event_loop_lag_seconds_count 62",
    'lamportkv_network_received_bytes_total{port="client"} 5',
    'lamportkv_network_received_bytes_total{port="peer"} 123456789',
    "# TYPE process_cpu_seconds_total counter",
    "process_cpu_seconds_total 12.375",
  ].join("\n");
  assert.equal(longestLoopLagBound(text), 1);
  assert.equal(peerBytesOf(text), 123456789);
  assert.equal(processCpuOf(text), 12.375);
  assert.equal(processCpuOf("lamportkv_up 1"), undefined);
  assert.equal(processCpuOf(undefined), undefined);
  // One measurement past the last bound; no histogram; no metrics at all.
  const over = text.replace('le="1"} 62', 'le="1"} 61');
  assert.equal(longestLoopLagBound(over), Infinity);
  assert.equal(longestLoopLagBound("lamportkv_up 1"), undefined);
  assert.equal(longestLoopLagBound(undefined), undefined);
  assert.equal(peerBytesOf("lamportkv_up 1"), undefined);
});

Deno.test("bench cli: a small real --catchup run: the joiner becomes a voter", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lamportkv-bench-test-" });
  try {
    const ports = freePorts(12);
    const config = `${dir}/cluster.txt`;
    await Deno.writeTextFile(
      config,
      [0, 1, 2, 3].map((i) =>
        `${i + 1} 127.0.0.1 ${ports[3 * i]} ${ports[3 * i + 1]} ${ports[3 * i + 2]}\n`
      ).join(""),
    );
    const json = `${dir}/out.json`;
    const r = await runCommand(
      Deno.execPath(),
      [
        "run",
        ...BENCH_PERMISSIONS,
        BENCH_TS,
        "--catchup",
        "--keys",
        "2000",
        config,
        "--json",
        json,
      ],
      { timeoutMs: 120_000 },
    );
    const context = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    assert.equal(r.code, 0, context);
    assert.match(r.stdout, /^catch-up of a joining replica: 2000 keys of 100 bytes/m, context);
    assert.match(r.stdout, /ADD to voter in the view: [0-9.]+ s/, context);
    const { catchup } = JSON.parse(await Deno.readTextFile(json));
    assert.equal(catchup.keysHeld, 2000, context);
    assert.equal(catchup.loadErrors, 0, context);
    assert.ok(catchup.catchupSeconds > 0);
    // The joiner received at least the loaded values over its peer port.
    assert.ok(catchup.peerBytes >= 2000 * 100, `peer bytes ${catchup.peerBytes}`);
    // And used CPU meanwhile (from its /metrics).
    assert.ok(catchup.joinerCpuSeconds > 0, `joiner CPU ${catchup.joinerCpuSeconds}`);
    assert.match(
      r.stdout,
      /the joiner's CPU meanwhile: [0-9.]+ s \([0-9]+% of one core\)/,
      context,
    );
    // Its event-loop lag histogram was read (a bound of it; null past the last one).
    assert.ok(
      catchup.joinerLongestLagAtMost === null || catchup.joinerLongestLagAtMost > 0,
      `${catchup.joinerLongestLagAtMost}`,
    );
    assert.match(
      r.stdout,
      /the joiner's longest event-loop stall: (at most [0-9.e-]+ s|over 10 s) \(its lag histogram\)/,
      context,
    );
    // A client wrote meanwhile (at least once: it starts before the ADD and stops after).
    assert.ok(catchup.writes >= 1, context);
    assert.match(r.stdout, /one client's SETs to it meanwhile: [0-9]+ \([0-9]+ failed\)/, context);
    assert.ok(catchup.viewsInstalled >= 1, "the view that takes the joiner in was counted");
    // The growth figures: each founder's RSS, and a founder killed and restarted.
    assert.equal(catchup.founderRssMb.length, 3, context);
    for (const mb of catchup.founderRssMb) assert.ok(mb > 10 && mb < 2000, `RSS ${mb} MB`);
    assert.ok(catchup.restartSeconds > 0, context);
    assert.match(r.stdout, /founders' RSS after loading: [0-9]+ MB, [0-9]+ MB, [0-9]+ MB/);
    assert.match(r.stdout, /founders' peak RSS: [0-9]+ MB, [0-9]+ MB, [0-9]+ MB/);
    assert.match(
      r.stdout,
      /a founder killed \(SIGKILL\) and restarted, to normal in a view: [0-9.]+ s/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench cli: a small real --spawn run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lamportkv-bench-test-" });
  try {
    const { config, json, r } = await spawnBench(dir, [
      "--clients",
      "2",
      "--ops",
      "200",
      "--keys",
      "300",
    ]);
    const context = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    assert.equal(r.code, 0, context);
    assert.match(r.stdout, /^clients +op +ops\/s +p50 ms +p99 ms +p99\.9 ms +errors/m, context);
    assert.match(r.stdout, /3 replicas from .*spawned by the benchmark, fsync batch/, context);

    const report = JSON.parse(await Deno.readTextFile(json)) as BenchReport;
    assert.equal(report.interrupted, false);
    assert.equal(report.cluster.replicas, 3);
    assert.deepEqual(report.rows.map((row) => [row.clients, row.op]), [[2, "put"], [2, "get"]]);
    for (const row of report.rows) {
      assert.equal(row.ops, 200, `${row.op}: ${context}`);
      assert.equal(row.errors, 0, `${row.op}: ${context}`);
      assert.equal(row.nil, 0, "GETs hit preloaded keys");
      assert.equal(row.connected, 2);
      assert.ok(row.p50Ms !== null && row.p99Ms !== null && row.p999Ms !== null);
      assert.ok(row.p50Ms <= row.p99Ms && row.p99Ms <= row.p999Ms);
      assert.equal(row.replicaCpuPercent?.length, 3, "CPU of each replica");
      assert.equal(row.replicaPeakRssMb?.length, 3, "peak RSS of each replica");
    }
    assert.deepEqual(report.preload, { keys: 300, seconds: report.preload!.seconds, errors: 0 });

    // Everything it started is gone: the replica processes and their data directory.
    const pids = /pids ([0-9, ]+)\)/.exec(r.stderr)?.[1].split(", ").map(Number) ?? [];
    assert.equal(pids.length, 3, context);
    for (const pid of pids) {
      const alive = await Deno.stat(`/proc/${pid}`).then(() => true, () => false);
      if (alive) {
        // The pid may have been reused by now; it must at least not be one of our replicas.
        const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
        assert.ok(!cmd.includes(config), `replica ${pid} still running`);
      }
    }
    const dataDir = /data in (\S+)/.exec(r.stderr)?.[1];
    assert.ok(dataDir !== undefined, context);
    await assert.rejects(Deno.stat(dataDir), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench cli: a small real --spawn --publish run: every subscriber gets every message", async () => {
  assert.throws(() => parseBenchArgs(["--publish", "--mix", "1:0", "c"]), /--publish or --mix/);
  assert.equal((parseBenchArgs(["--publish", "c"]) as { publish: boolean }).publish, true);
  const dir = await Deno.makeTempDir({ prefix: "lamportkv-bench-test-" });
  try {
    const { json, r } = await spawnBench(dir, [
      "--publish",
      "--clients",
      "3",
      "--ops",
      "300",
      "--pipeline",
      "4",
      "--warmup",
      "0",
    ]);
    const context = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    assert.equal(r.code, 0, context);
    assert.match(
      r.stdout,
      /clients +subs +publish\/s +pub p50 ms +pub p99 ms +recv p50 ms/,
      context,
    );
    const { publish } = JSON.parse(await Deno.readTextFile(json)) as { publish: PublishRow[] };
    assert.equal(publish.length, 1);
    const row = publish[0];
    assert.equal(row.subscribers, 3);
    assert.equal(row.published, 300, context);
    assert.equal(row.errors, 0, context);
    assert.equal(row.missing, 0, "every subscriber received every acknowledged message");
    assert.equal(row.received, 900, "300 messages on each of 3 subscribers");
    assert.ok(row.receiveP50Ms !== null && row.receiveP99Ms !== null);
    assert.ok(row.receiveP50Ms <= row.receiveP99Ms);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Operations beyond SET/GET: INCR, MSET10, MULTI3

Deno.test("bench ops: --mix names operations, with weights, next to put:get", () => {
  assert.deepEqual(OP_NAMES, ["put", "get", "incr", "mset10", "multi3"]);
  assert.deepEqual(parseMixes("incr"), [{ incr: 1 }]);
  assert.deepEqual(parseMixes("mset10, MULTI3"), [{ mset10: 1 }, { multi3: 1 }]);
  assert.deepEqual(parseMixes("set,get"), [{ put: 1 }, { get: 1 }]);
  assert.deepEqual(parseMixes("incr=2+get=3+multi3"), [{ incr: 2, get: 3, multi3: 1 }]);
  assert.deepEqual(parseMixes("1:0,incr,0:1"), [{ put: 1, get: 0 }, { incr: 1 }, {
    put: 0,
    get: 1,
  }]);
  const o = parseBenchArgs(["--mix", "incr,mset10,multi3", "c"]);
  assert.ok(o !== "help");
  assert.deepEqual(o.mixes, [{ incr: 1 }, { mset10: 1 }, { multi3: 1 }]);
  const bad: [string, RegExp][] = [
    ["bogus", /unknown operation "bogus".*incr, mset10, multi3/],
    ["incr+incr", /incr given twice/],
    ["set+put", /put given twice/],
    ["incr=0", /all 0/],
    ["incr=0+get=0", /all 0/],
    ["incr=1001", /put:get/],
    ["incr=", /put:get/],
    ["incr=-1", /put:get/],
    ["+", /put:get/],
    ["incr+", /put:get/],
    ["multi3=x", /put:get/],
    ["mset", /unknown operation "mset"/],
  ];
  for (const [text, message] of bad) {
    assert.throws(() => parseMixes(text), (err: unknown) => {
      assert.ok(err instanceof BenchUsageError, `${text}: ${err}`);
      assert.match(err.message, message, text);
      return true;
    });
  }
  // Labels and descriptions come from the table; put:get ones are as before.
  assert.equal(opLabel("incr", { incr: 1 }), "INCR");
  assert.equal(opLabel("mset10", { mset10: 5 }), "MSET10");
  assert.equal(opLabel("multi3", { get: 3, multi3: 1 }), "MULTI3 3:1");
  assert.equal(describeMix({ multi3: 1 }), "MULTI3 only");
  assert.equal(describeMix({ put: 1, get: 0 }), "PUT only");
  assert.equal(describeMix({ put: 0, get: 1 }), "GET only");
  assert.equal(describeMix({ put: 1, get: 1 }), "PUT:GET 1:1");
  assert.equal(describeMix({ incr: 1, get: 3 }), "GET:INCR 3:1");
});

Deno.test("bench ops: the table's replies and keys match its commands", () => {
  for (const [code, kind] of OPS.entries()) {
    assert.equal(opCode(kind.name), code);
    assert.equal(kind.replies, kind.commands.length, kind.name);
  }
  assert.deepEqual(OPS.map((k) => [k.name, k.replies, k.keySlots, k.replyDepth]), [
    ["put", 1, 1, 0],
    ["get", 1, 1, 0],
    ["incr", 1, 1, 0],
    ["mset10", 1, 10, 0],
    ["multi3", 5, 3, 1],
  ]);
});

Deno.test("bench ops: INCR, MSET10 and MULTI3 requests are exactly encodeCommand's bytes", () => {
  const enc = new RequestEncoder(10_000, 23);
  const value = benchValue(23);
  const concat = (commands: string[][]) => commands.flatMap((c) => [...encodeCommand(c)]);
  const msetKeys = [7, 9999, 0, 42, 42, 1234, 5, 6, 8000, 1];
  const cases: [string, number[], string[][]][] = [
    ["incr", [31], [["INCR", "ctr:0031"]]],
    ["mset10", msetKeys, [["MSET", ...msetKeys.flatMap((k) => [enc.keyName(k), value])]]],
    ["multi3", [12, 345, 6789], [
      ["MULTI"],
      ["INCR", "ctr:0012"],
      ["SET", "key:0345", value],
      ["GET", "key:6789"],
      ["EXEC"],
    ]],
    ["put", [3], [["SET", "key:0003", value]]],
    ["get", [3], [["GET", "key:0003"]]],
  ];
  // All in one buffer, back to back, to catch a write past a request's end.
  const total = cases.reduce((n, [name]) => n + enc.opBytes[opCode(name as "put")], 0);
  const out = new Uint8Array(total + 5).fill(0xee);
  let offset = 0;
  const expected: number[] = [];
  for (const [name, keys, commands] of cases) {
    const code = opCode(name as "put");
    assert.deepEqual(enc.commandsOf(code, keys), commands, name);
    const end = enc.writeOp(out, offset, code, keys);
    assert.equal(end - offset, enc.opBytes[code], name);
    assert.deepEqual(latin1(out.subarray(offset, end)), latin1(Uint8Array.from(concat(commands))));
    expected.push(...concat(commands));
    offset = end;
  }
  assert.deepEqual([...out.subarray(0, offset)], expected);
  assert.deepEqual([...out.subarray(offset)], [0xee, 0xee, 0xee, 0xee, 0xee]);
  // The server-side parser reads them back as the intended commands.
  const parser = new RespRequestParser();
  parser.push(out.subarray(0, offset));
  for (const [, , commands] of cases) {
    for (const argv of commands) assert.deepEqual(parser.next(), { argv });
  }
  // Patching again in place leaves no digits of the previous keys.
  const again = new Uint8Array(enc.opBytes[opCode("multi3")]);
  enc.writeOp(again, 0, opCode("multi3"), [9999, 9999, 9999]);
  enc.writeOp(again, 0, opCode("multi3"), [1, 2, 3]);
  assert.equal(latin1(again), latin1(Uint8Array.from(concat(enc.commandsOf(4, [1, 2, 3])))));
  assert.throws(() => enc.writeOp(again, 0, opCode("multi3"), [1, 10_000, 3]), RangeError);
  // A one-key space: keys of width 1.
  const one = new RequestEncoder(1, 0);
  const b = new Uint8Array(one.opBytes[opCode("incr")]);
  one.writeOp(b, 0, opCode("incr"), [0]);
  assert.equal(latin1(b), latin1(encodeCommand(["INCR", "ctr:0"])));
});

/** A MULTI/EXEC of INCR, SET and GET, and its replies, as a server sends them. */
const MULTI_REPLIES =
  "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n:17\r\n+OK\r\n$5\r\nhe\r\nl\r\n";

Deno.test("bench reply counter: MULTI/EXEC replies, at every split point", () => {
  const stream = bytes(
    MULTI_REPLIES +
      "*3\r\n:18\r\n-WRONGTYPE Operation against a key\r\n$-1\r\n" + // an error inside EXEC
      "*0\r\n" + "*-1\r\n" + "-EXECABORT Transaction discarded\r\n" +
      "*2\r\n$0\r\n\r\n*-1\r\n" + // a null array inside an array
      ":5\r\n",
  );
  const expected = [
    { kind: "ok" },
    { kind: "ok" },
    { kind: "ok" },
    { kind: "ok" },
    { kind: "ok" }, // the EXEC array is one reply
    { kind: "error", error: "WRONGTYPE Operation against a key" },
    { kind: "ok" },
    { kind: "nil" },
    { kind: "error", error: "EXECABORT Transaction discarded" },
    { kind: "ok" },
    { kind: "ok" },
  ];
  assert.deepEqual(scan([stream], 1), expected);
  assert.deepEqual(scan(Array.from(stream, (b) => Uint8Array.of(b)), 1), expected);
  for (let i = 0; i <= stream.length; i++) {
    assert.deepEqual(scan([stream.subarray(0, i), stream.subarray(i)], 1), expected, `split ${i}`);
    for (const step of [1, 5, 13]) {
      const j = Math.min(stream.length, i + step);
      assert.deepEqual(
        scan([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)], 1),
        expected,
        `split ${i}/${j}`,
      );
    }
  }
  // Only the complete replies are counted; the array completes with its last element.
  assert.equal(scan([bytes("+OK\r\n*3\r\n:1\r\n+OK\r\n")], 1).length, 1);
  // Depth 2 accepts an array in an array; depth 1 does not, nor does the default (depth 0).
  assert.deepEqual(scan([bytes("*2\r\n*1\r\n:1\r\n-ERR in\r\n")], 2), [{
    kind: "error",
    error: "ERR in",
  }]);
  assert.throws(() => scan([bytes("*1\r\n*1\r\n:1\r\n")], 1), /nested deeper/);
  assert.throws(() => scan([bytes(MULTI_REPLIES)]), /unexpected array/);
  for (const bad of ["*x\r\n", "*-2\r\n", "*\r\n", "*1234567890\r\n"]) {
    assert.throws(() => scan([bytes(bad)], 1), ReplyStreamError, bad);
  }
  assert.throws(() => new ReplyCounter({ maxDepth: -1 }), RangeError);
});

/** A fake server that speaks just enough Redis for every benchmark operation. */
function fakeRedis(options: { incrError?: string } = {}) {
  const values = new Map<string, string>();
  const counters = new Map<string, number>();
  const stats = { multi: 0, exec: 0, commands: new Map<string, number>() };
  const run = (argv: string[]): string => {
    const [cmd, ...args] = argv;
    stats.commands.set(cmd, (stats.commands.get(cmd) ?? 0) + 1);
    switch (cmd) {
      case "SET":
        values.set(args[0], args[1]);
        return "+OK\r\n";
      case "MSET":
        if (args.length !== 20) return "-ERR expected 10 pairs\r\n";
        for (let i = 0; i < args.length; i += 2) values.set(args[i], args[i + 1]);
        return "+OK\r\n";
      case "GET": {
        const v = values.get(args[0]);
        return v === undefined ? "$-1\r\n" : `$${v.length}\r\n${v}\r\n`;
      }
      case "INCR": {
        if (options.incrError) return `-${options.incrError}\r\n`;
        const n = (counters.get(args[0]) ?? 0) + 1;
        counters.set(args[0], n);
        return `:${n}\r\n`;
      }
      default:
        return `-ERR unknown command '${cmd}'\r\n`;
    }
  };
  const server = fakeServer((argv, session) => {
    if (argv[0] === "MULTI") {
      stats.multi++;
      session.queued = [];
      return "+OK\r\n";
    }
    if (argv[0] === "EXEC") {
      stats.exec++;
      const queued = session.queued ?? [];
      session.queued = null;
      return `*${queued.length}\r\n` + queued.map(run).join("");
    }
    if (session.queued !== null) {
      session.queued.push(argv);
      return "+QUEUED\r\n";
    }
    return run(argv);
  });
  return { ...server, values, counters, stats };
}

Deno.test("bench load: INCR, MSET10 and MULTI3 against a fake server, one op each", async () => {
  const server = fakeRedis();
  const targets: Target[] = [{ id: 1, host: "127.0.0.1", port: server.port }];
  const encoder = new RequestEncoder(30, 8);
  try {
    for (const op of ["incr", "mset10", "multi3"] as const) {
      const before = server.state.requests;
      const result = await runPhase({
        targets,
        connections: 3,
        pipeline: 4,
        mix: { [op]: 1 },
        encoder,
        warmupMs: 0,
        stop: { kind: "ops", ops: 150 },
      });
      assert.deepEqual(result.errorMessages, [], op);
      assert.equal(result.stats[op].ops, 150, op);
      assert.equal(result.stats[op].errors, 0, op);
      assert.equal(result.stats[op].latency.count, 150, op);
      for (const other of OP_NAMES) if (other !== op) assert.equal(result.stats[other].ops, 0);
      const replies = OPS[opCode(op)].replies;
      assert.equal(server.state.requests - before, 150 * replies, `${op}: requests sent`);
    }
    assert.equal(server.stats.multi, 150);
    assert.equal(server.stats.exec, 150);
    // 150 INCRs + 150 in MULTI3s, over 30 counters.
    assert.equal([...server.counters.values()].reduce((a, b) => a + b, 0), 300);
    assert.ok([...server.counters.keys()].every((k) => /^ctr:[0-9]{2}$/.test(k)));
    assert.equal(server.stats.commands.get("MSET"), 150);

    // A mix of everything: every operation gets its share, and the counts add up.
    const mixed = await runPhase({
      targets,
      connections: 2,
      pipeline: 8,
      mix: { put: 1, get: 1, incr: 1, mset10: 1, multi3: 1 },
      encoder,
      warmupMs: 0,
      stop: { kind: "ops", ops: 500 },
    });
    assert.deepEqual(mixed.errorMessages, []);
    const counts = OP_NAMES.map((op) => mixed.stats[op].ops);
    assert.equal(counts.reduce((a, b) => a + b, 0), 500);
    assert.ok(counts.every((n) => n > 30), `every operation drawn: ${counts}`);
    assert.equal(mixed.put, mixed.stats.put);
  } finally {
    await server.stop();
  }
});

Deno.test("bench load: an error inside EXEC fails the MULTI3 operation once", async () => {
  const server = fakeRedis({ incrError: "ERR value is not an integer or out of range" });
  try {
    const result = await runPhase({
      targets: [{ id: 1, host: "127.0.0.1", port: server.port }],
      connections: 2,
      pipeline: 3,
      mix: { multi3: 1 },
      encoder: new RequestEncoder(10, 4),
      warmupMs: 0,
      stop: { kind: "ops", ops: 40 },
    });
    assert.equal(result.stats.multi3.ops, 0);
    assert.equal(result.stats.multi3.errors, 40);
    assert.deepEqual(result.errorMessages, [{
      message: "ERR value is not an integer or out of range",
      count: 40,
    }]);
    assert.equal(server.state.requests, 40 * 5);
  } finally {
    await server.stop();
  }
});

Deno.test("bench cli: a small real --spawn run of INCR, MSET10 and MULTI3", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lamportkv-bench-test-" });
  try {
    const { json, r } = await spawnBench(dir, [
      "--clients",
      "3",
      "--ops",
      "150",
      "--keys",
      "200",
      "--warmup",
      "0.2",
      "--mix",
      "incr,mset10,multi3",
    ]);
    const context = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    assert.equal(r.code, 0, context);
    assert.match(r.stdout, /mixes: INCR only, MSET10 only, MULTI3 only/, context);
    for (const label of ["INCR", "MSET10", "MULTI3"]) {
      assert.match(r.stdout, new RegExp(`^ +3  ${label} +[0-9]+ `, "m"), context);
    }
    const report = JSON.parse(await Deno.readTextFile(json)) as BenchReport;
    assert.deepEqual(report.settings.mixes, [{ incr: 1 }, { mset10: 1 }, { multi3: 1 }]);
    assert.deepEqual(report.rows.map((row) => row.op), ["incr", "mset10", "multi3"]);
    for (const row of report.rows) {
      assert.equal(row.ops, 150, `${row.op}: ${context}`);
      assert.equal(row.errors, 0, `${row.op}: ${context}`);
      assert.ok(row.opsPerSec > 0 && row.p50Ms !== null && row.p99Ms !== null, row.op);
      assert.ok(row.p50Ms <= row.p99Ms, row.op);
    }
    // MULTI3 reads keys: they were written first.
    assert.deepEqual(report.preload, { keys: 200, seconds: report.preload!.seconds, errors: 0 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Sharded clusters: routing by hash slot

/** Two shards, a (replicas 1-2) and b (replica 3), on made-up ports. */
const TWO_SHARDS: BenchShard[] = [
  {
    group: "a",
    targets: [{ id: 1, host: "127.0.0.1", port: 7001 }, { id: 2, host: "127.0.0.1", port: 7002 }],
  },
  { group: "b", targets: [{ id: 3, host: "127.0.0.1", port: 7003 }] },
];

Deno.test("bench shards: groups of a config, slot owners from CLUSTER SLOTS or the file", () => {
  const config = parseConfig(
    "1 127.0.0.1 7001 7101 group=a\n2 127.0.0.1 7002 7102 group=a\n3 127.0.0.1 7003 7103 group=b\n",
    "c.txt",
  );
  assert.deepEqual(shardsOf(config), TWO_SHARDS);
  const plain = parseConfig("1 127.0.0.1 7001 7101\n2 127.0.0.1 7002 7102\n", "p.txt");
  assert.deepEqual(shardsOf(plain), [{ group: "", targets: TWO_SHARDS[0].targets }]);
  assert.equal(shardOfAddress(TWO_SHARDS, "127.0.0.1", 7002), 0);
  assert.equal(shardOfAddress(TWO_SHARDS, "127.0.0.1", 7003), 1);
  assert.equal(shardOfAddress(TWO_SHARDS, "127.0.0.2", 7003), -1);

  // The file's map is the replicas' epoch-0 map.
  const fromFile = configSlotOwners(TWO_SHARDS);
  assert.equal(fromFile.source, "config");
  const map = initialSlotMap(["a", "b"]);
  for (const slot of [0, 1, 8191, 8192, 12_000, 16_383]) {
    assert.equal(TWO_SHARDS[fromFile.owner[slot]].group, map.owner(slot), `slot ${slot}`);
  }
  assert.ok(configSlotOwners([TWO_SHARDS[0]]).owner.every((o) => o === 0));

  // CLUSTER SLOTS: each range goes to the group of its master's address (any replica of it).
  const reply = [
    [0, 99, ["127.0.0.1", 7003, "id3"]],
    [100, 16_383, ["127.0.0.1", 7002, "id2"], ["127.0.0.1", 7001, "id1"]],
  ];
  const owner = parseClusterSlots(reply, TWO_SHARDS);
  assert.deepEqual([owner[0], owner[99], owner[100], owner[16_383]], [1, 1, 0, 0]);
  assert.throws(() => parseClusterSlots([reply[1]], TWO_SHARDS), /slot 0 has no owner/);
  assert.throws(
    () => parseClusterSlots([[0, 16_383, ["127.0.0.1", 9999, "x"]]], TWO_SHARDS),
    /127\.0\.0\.1:9999 is no replica of the config file/,
  );
  assert.throws(() => parseClusterSlots("OK", TWO_SHARDS), /not an array/);
  assert.throws(
    () => parseClusterSlots([[5, 2, ["127.0.0.1", 7001]]], TWO_SHARDS),
    /bad range 5-2/,
  );
});

Deno.test("bench shards: MOVED replies and the slot of every key", () => {
  assert.deepEqual(parseRedirect("MOVED 3999 127.0.0.1:6381"), {
    ask: false,
    slot: 3999,
    host: "127.0.0.1",
    port: 6381,
  });
  assert.deepEqual(parseRedirect("MOVED 1 [::1]:7000"), {
    ask: false,
    slot: 1,
    host: "::1",
    port: 7000,
  });
  assert.deepEqual(parseRedirect("ASK 1 127.0.0.1:7000"), {
    ask: true,
    slot: 1,
    host: "127.0.0.1",
    port: 7000,
  });
  assert.equal(parseRedirect("MOVED 16384 127.0.0.1:7000"), null);
  assert.equal(parseRedirect("ERR MOVED"), null);
  assert.equal(parseRedirect("TRYAGAIN Multiple keys request during rehashing of slot"), null);
  const encoder = new RequestEncoder(1000, 10);
  const keys = keySlotTable(encoder, "key");
  const counters = keySlotTable(encoder, "ctr");
  assert.equal(keys.length, 1000);
  for (const i of [0, 1, 500, 999]) {
    assert.equal(keys[i], keySlot(encoder.keyName(i)));
    assert.equal(counters[i], keySlot(encoder.keyName(i, "ctr:")));
  }
});

/**
 * Two fake groups on free ports: a owns slots 0-8191, b the rest; each serves SET/GET/INCR of its
 * slots and answers `-MOVED <slot> 127.0.0.1:<owner's port>` for the others (counted).
 */
function fakeShards() {
  const stored = new Set<string>();
  const ports: number[] = [];
  const moved = [0, 0];
  const served = [0, 0];
  const servers = [0, 1].map((me) =>
    fakeServer((argv) => {
      const slot = keySlot(argv[1]);
      const owner = slot < 8192 ? 0 : 1;
      if (owner !== me) {
        moved[me]++;
        return `-MOVED ${slot} 127.0.0.1:${ports[owner]}\r\n`;
      }
      served[me]++;
      if (argv[0] === "SET") {
        stored.add(argv[1]);
        return "+OK\r\n";
      }
      if (argv[0] === "INCR") return ":1\r\n";
      return stored.has(argv[1]) ? "$3\r\nabc\r\n" : "$-1\r\n";
    })
  );
  ports.push(...servers.map((s) => s.port));
  const shards: BenchShard[] = servers.map((s, i) => ({
    group: i === 0 ? "a" : "b",
    targets: [{ id: i + 1, host: "127.0.0.1", port: s.port }],
  }));
  return {
    shards,
    moved,
    served,
    stop: () => Promise.all(servers.map((s) => s.stop())),
  };
}

/** A sharded phase of `ops` operations of `mix` with `owner` as the client's slot map. */
function shardedPhase(
  shards: BenchShard[],
  owner: Uint16Array,
  misroute: boolean,
  mix: Mix,
  ops: number,
) {
  const encoder = new RequestEncoder(500, 3);
  return runPhase({
    targets: [],
    routing: {
      shards,
      owner,
      keySlots: { key: keySlotTable(encoder, "key"), ctr: keySlotTable(encoder, "ctr") },
      misroute,
    },
    connections: 3,
    pipeline: 4,
    mix,
    encoder,
    warmupMs: 0,
    stop: { kind: "ops", ops },
  });
}

Deno.test("bench load sharded: every request goes to its slot's group; none is MOVED", async () => {
  const fake = fakeShards();
  try {
    const result = await shardedPhase(
      fake.shards,
      configSlotOwners(fake.shards).owner,
      false,
      { put: 1, get: 1, incr: 1 },
      600,
    );
    assert.deepEqual(result.errorMessages, []);
    assert.equal(result.put.ops + result.get.ops + result.stats.incr.ops, 600);
    assert.equal(result.connected, 3, "3 clients, each with a connection to both groups");
    assert.deepEqual(fake.moved, [0, 0]);
    assert.equal(result.moved, 0);
    // Both groups answered, each exactly the operations it served.
    assert.deepEqual(result.shardOps, fake.served);
    assert.ok(fake.served[0] > 100 && fake.served[1] > 100, `${fake.served}`);
  } finally {
    await fake.stop();
  }
});

Deno.test("bench load sharded: ASK during a migration is followed with ASKING", async () => {
  // Group a owns every slot and is migrating b's half to b: it answers ASK for those keys; b
  // serves them only right after ASKING on the same connection (else MOVED back to a).
  const ports: number[] = [];
  const asked = [0, 0];
  const served = [0, 0];
  const askingNext = new WeakSet<object>();
  const servers = [0, 1].map((me) =>
    fakeServer((argv, session) => {
      const slot = keySlot(argv[1] ?? "");
      if (argv[0] === "ASKING") {
        askingNext.add(session);
        return "+OK\r\n";
      }
      const flagged = askingNext.delete(session);
      if (me === 0 && slot >= 8192) {
        asked[0]++;
        return `-ASK ${slot} 127.0.0.1:${ports[1]}\r\n`;
      }
      if (me === 1 && !flagged) return `-MOVED ${slot} 127.0.0.1:${ports[0]}\r\n`;
      served[me]++;
      return argv[0] === "SET" ? "+OK\r\n" : "$-1\r\n";
    })
  );
  ports.push(...servers.map((srv) => srv.port));
  const shards: BenchShard[] = servers.map((srv, i) => ({
    group: i === 0 ? "a" : "b",
    targets: [{ id: i + 1, host: "127.0.0.1", port: srv.port }],
  }));
  try {
    const owner = new Uint16Array(16_384); // a owns every slot, as its CLUSTER SLOTS says
    const result = await shardedPhase(shards, owner, false, { put: 1, get: 1 }, 400);
    assert.deepEqual(result.errorMessages, []);
    assert.equal(result.put.ops + result.get.ops, 400);
    assert.equal(result.put.errors + result.get.errors, 0);
    assert.ok(asked[0] > 50, `b's keys were asked for (${asked[0]})`);
    assert.equal(result.moved, asked[0], "every ASK was followed and counted");
    assert.equal(served[1], asked[0], "b served each after ASKING");
    assert.equal(served[0] + served[1], 400);
    assert.ok(owner.every((g) => g === 0), "an ASK does not change the slot map");
  } finally {
    await Promise.all(servers.map((srv) => srv.stop()));
  }
});

Deno.test("bench load sharded: a stale slot map is corrected by following MOVED", async () => {
  const fake = fakeShards();
  try {
    // The client believes group a owns every slot.
    const owner = new Uint16Array(16_384);
    const result = await shardedPhase(fake.shards, owner, false, { put: 1, get: 0 }, 400);
    assert.deepEqual(result.errorMessages, []);
    assert.equal(result.put.ops, 400);
    assert.equal(result.put.errors, 0);
    assert.equal(fake.moved[1], 0, "b never gets a's keys");
    assert.ok(result.moved > 0, "some of b's keys were sent to a first");
    assert.equal(result.moved, fake.moved[0], "every MOVED was followed and counted");
    assert.deepEqual(result.shardMoved, [fake.moved[0], 0]);
    // Each MOVED fixed its slot: at most a few of them per slot (those sent before it came).
    const encoder = new RequestEncoder(500, 3);
    const learned = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const slot = keySlot(encoder.keyName(i));
      if (owner[slot] === 1) learned.add(slot);
      if (owner[slot] === 1) assert.ok(slot >= 8192, `slot ${slot} is a's`);
    }
    assert.ok(learned.size > 0 && result.moved <= learned.size * 4, `${result.moved} MOVED`);
  } finally {
    await fake.stop();
  }
});

Deno.test("bench load sharded: --misroute sends every request to the wrong group first", async () => {
  const fake = fakeShards();
  try {
    const owner = configSlotOwners(fake.shards).owner;
    const result = await shardedPhase(fake.shards, owner, true, { put: 1, get: 1 }, 300);
    assert.deepEqual(result.errorMessages, []);
    assert.equal(result.put.ops + result.get.ops, 300);
    assert.equal(result.moved, 300, "one redirection per operation");
    // Each group redirected exactly the operations the other one answered.
    assert.deepEqual(result.shardMoved, [result.shardOps[1], result.shardOps[0]]);
    assert.deepEqual(fake.moved, result.shardMoved);
    assert.deepEqual(owner, configSlotOwners(fake.shards).owner, "the map is left as it was");
  } finally {
    await fake.stop();
  }
});

Deno.test("bench load sharded: a MOVED to an address of no group is an error", async () => {
  const server = fakeServer((argv) => `-MOVED ${keySlot(argv[1])} 10.9.9.9:1\r\n`);
  try {
    const shards: BenchShard[] = [
      { group: "a", targets: [{ id: 1, host: "127.0.0.1", port: server.port }] },
      { group: "b", targets: [{ id: 2, host: "127.0.0.1", port: server.port }] },
    ];
    const result = await shardedPhase(
      shards,
      configSlotOwners(shards).owner,
      false,
      { put: 1 },
      50,
    );
    assert.equal(result.put.ops, 0);
    assert.equal(result.put.errors, 50);
    assert.equal(result.moved, 0);
    assert.match(result.errorMessages[0].message, /^MOVED \d+ 10\.9\.9\.9:1$/);
  } finally {
    await server.stop();
  }
});

Deno.test("bench report: the per-group table and header of a sharded run", () => {
  const groups: GroupFigure[] = [
    {
      group: "a",
      ops: 3000,
      opsPerSec: 1500.2,
      replicaCpuPercent: [{ id: 1, value: 50 }, { id: 2, value: 20.4 }],
      replicaCpuUsPerOp: 469.3,
      moved: 0,
    },
    {
      group: "bb",
      ops: 2000,
      opsPerSec: 1000,
      replicaCpuPercent: null,
      replicaCpuUsPerOp: null,
      moved: 12,
    },
  ];
  const rows = [
    row({ mix: { put: 1, get: 1 }, groups }),
    row({ op: "get", mix: { put: 1, get: 1 }, groups }),
  ];
  assert.equal(
    formatGroupTable(rows),
    [
      "clients  mix          group  ops/s  replica cpu %  cpu us/op  moved",
      "     16  PUT:GET 1:1  a       1500          50/20        469      0",
      "     16  PUT:GET 1:1  bb      1000              -          -     12",
    ].join("\n"),
  );
  assert.equal(formatGroupTable([row({})]), "", "no groups, no table");
  const header = formatHeader({
    startedAt: "2024-01-01T00:00:00.000Z",
    machine: { cpus: 2, cpuModel: "Test CPU", deno: "2.9.9", v8: "1.2", platform: "linux" },
    cluster: {
      config: "s.txt",
      replicas: 3,
      groups: [{ group: "a", ids: [1, 2] }, { group: "bb", ids: [3] }],
      slotMap: "CLUSTER SLOTS of replica 2",
      misroute: true,
      spawned: false,
      fsync: null,
      view: null,
    },
    settings: {
      clients: [16],
      mixes: [{ put: 1, get: 1 }],
      stop: { kind: "ops", ops: 5000 },
      valueSize: 100,
      keys: 500,
      pipeline: 1,
      warmupSeconds: 1,
    },
    preload: null,
    rows,
    notes: [],
    interrupted: false,
  });
  assert.match(
    header,
    /cluster: 3 replicas in 2 groups \(a: 1,2; bb: 3; slot map from CLUSTER SLOTS of replica 2\)/,
  );
  assert.match(header, /sends each request to the group owning its key's slot, after a wrong/);
  assert.equal(cpuUsPerOp([{ id: 1, value: 50 }, { id: 2, value: 150 }], 2, 8000), 500);
  assert.equal(cpuUsPerOp(null, 2, 8000), null);
  assert.equal(cpuUsPerOp([{ id: 1, value: 50 }], 2, 0), null);
});

Deno.test("bench cli: a small real --spawn run on 2 groups × 3 replicas", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lamportkv-bench-test-" });
  try {
    const { json, r } = await spawnBench(
      dir,
      ["--clients", "2", "--ops", "200", "--keys", "300", "--mix", "1:0,0:1"],
      true,
    );
    const context = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    assert.equal(r.code, 0, context);
    assert.match(r.stdout, /6 replicas in 2 groups \(a: 1,2,3; b: 4,5,6; slot map from CLUSTER/);
    assert.match(r.stdout, /^clients +mix +group +ops\/s +replica cpu % +cpu us\/op +moved$/m);
    const report = JSON.parse(await Deno.readTextFile(json)) as BenchReport;
    assert.deepEqual(report.cluster.groups, [
      { group: "a", ids: [1, 2, 3] },
      { group: "b", ids: [4, 5, 6] },
    ]);
    assert.match(report.cluster.slotMap ?? "", /^CLUSTER SLOTS of replica \d$/);
    assert.deepEqual(report.rows.map((row) => row.op), ["put", "get"]);
    for (const row of report.rows) {
      assert.equal(row.ops, 200, `${row.op}: ${context}`);
      assert.equal(row.errors, 0, `${row.op}: ${context}`);
      assert.equal(row.nil, 0, "GETs find the preloaded keys in their groups");
      assert.equal(row.moved, 0, "the map of CLUSTER SLOTS is right: no redirection");
      assert.equal(row.replicaCpuPercent?.length, 6);
      const groups = row.groups ?? [];
      assert.deepEqual(groups.map((g) => g.group), ["a", "b"]);
      // Spread over both groups, each with its own replicas' CPU.
      assert.equal(groups[0].ops + groups[1].ops, 200);
      for (const g of groups) {
        assert.ok(g.ops > 20, `group ${g.group}: ${g.ops} ops`);
        assert.deepEqual(
          g.replicaCpuPercent?.map((c) => c.id),
          g.group === "a" ? [1, 2, 3] : [
            4,
            5,
            6,
          ],
        );
        assert.ok(g.replicaCpuUsPerOp !== null && g.replicaCpuUsPerOp > 0);
      }
    }

    // With --misroute every operation is redirected once, by a real replica's MOVED.
    const wrong = await spawnBench(
      dir,
      ["--clients", "2", "--ops", "100", "--keys", "100", "--mix", "0:1", "--misroute"],
      true,
    );
    const wrongContext = `stdout:\n${wrong.r.stdout}\nstderr:\n${wrong.r.stderr}`;
    assert.equal(wrong.r.code, 0, wrongContext);
    const misrouted = JSON.parse(await Deno.readTextFile(wrong.json)) as BenchReport;
    const [get] = misrouted.rows;
    assert.equal(get.ops, 100, wrongContext);
    assert.equal(get.nil, 0, "the preload reached the right groups too");
    assert.equal(get.moved, 100, wrongContext);
    assert.match(wrong.r.stdout, /note: 2 clients, GET only: 100 MOVED\/ASK redirections followed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
