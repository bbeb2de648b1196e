/**
 * The live fuzzer: malformed input thrown at every port of a running 3-replica cluster while a
 * correct workload runs.
 *
 * - Client ports: mutated RESP requests (huge and negative lengths, deep `*1` nesting, broken
 *   CRLF, bad inline quoting), pipelined 1..8 per connection, and slowloris connections that
 *   trickle a request one byte at a time.
 * - Peer ports: garbage and mutated frames before the hello, forged hellos (wrong cluster, our
 *   own id, a stranger's id, oversized), valid hellos followed by malformed frames (bytes that
 *   are not a binary value, unknown fields, an oversized length prefix) and by
 *   hostile-but-well-formed messages that `Replica.check` must refuse in any state (a stranger's
 *   or a relayed update, numbers beyond 2^48, an ack for a stranger, a proposal or commit by a
 *   replica that cannot propose that view, a report holding back an entry of another view, probe
 *   round 0, an answer to a probe round never sent), and slowloris hellos. A valid hello takes
 *   over the link of the peer it names (as a reconnect would), so these are a small, rate-limited
 *   share.
 *
 * The workload (`tests/support/history.ts`) runs in rounds of a few seconds on keys no fuzz
 * input uses; each round's history must be linearizable. Afterwards every replica must still
 * run, answer PING, agree on the digest at the same delivered index, and have stayed under
 * 500 MB of RSS (VmHWM, the high-water mark, from /proc/<pid>/status).
 *
 * @module
 */
import { clusterId } from "../../src/config/config.ts";
import type { PeerMessage } from "../../src/core/types.ts";
import { encodeFrame } from "../../src/net/frame.ts";
import { encodePeerFrame, VALUE_TAG } from "../../src/net/peer_codec.ts";
import { RespError } from "../../src/net/resp.ts";
import { respCall, startCluster, type TestCluster } from "../support/cluster.ts";
import { runWorkload } from "../support/history.ts";
import { checkLinearizable } from "../support/linearizability.ts";
import { memoryOf } from "../support/memory.ts";
import { Prng } from "../support/prng.ts";
import { commandArgvs, join, pickMessage, recordedMessages } from "./corpus_gen.ts";
import { encodeMutated, mutateBytes, mutateJson } from "./mutate.ts";

/** Options of {@link runLive}. */
export interface LiveOptions {
  /** Malformed frames to throw at each port (at least). */
  framesPerPort: number;
  /** Keep going for at least this long (seconds). */
  seconds?: number;
  seed: number;
  log: (line: string) => void;
}

/** What {@link runLive} found. */
export interface LiveResult {
  ok: boolean;
  problems: string[];
  /** Frames written per port, by `client:<id>` / `peer:<id>`. */
  frames: Record<string, number>;
  connections: Record<string, number>;
  /** Peak RSS (VmHWM) per replica, bytes. */
  peakRss: Record<number, number>;
  /** Workload ops completed, and rounds checked. */
  opsDone: number;
  rounds: number;
  ms: number;
}

/** RSS limit of a replica under fuzz. */
export const MAX_RSS_BYTES = 500 * 1024 * 1024;

const LOOPBACK = "127.0.0.1";
const enc = new TextEncoder();

/** Commands that could touch the workload's keys: never in the fuzz corpus. */
const GLOBAL_COMMANDS = /^(flushall|flushdb|swapdb|select|move|debug|shutdown|config|client)$/i;

function requestCorpus(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < 64; i++) {
    const argvs = commandArgvs(new Prng(0xfeed + i), 4).filter((a) => !GLOBAL_COMMANDS.test(a[0]));
    out.push(join(argvs.map((a) => respCommand(a))));
  }
  return out;
}

function respCommand(argv: string[]): Uint8Array {
  const s = `*${argv.length}\r\n` + argv.map((a) => `$${a.length}\r\n${a}\r\n`).join("");
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** One malformed (or hostile) client-port frame. */
function clientFrame(rng: Prng, corpus: Uint8Array[]): Uint8Array {
  const base = rng.pick(corpus);
  const m = mutateBytes(rng, base, { corpus, tokens: "resp", maxBytes: 256 * 1024 });
  // Keep it away from commands that could reach the workload's keys.
  const text = new TextDecoder("latin1").decode(m.subarray(0, 4096));
  return /flushall|flushdb|swapdb|__lin/i.test(text) ? enc.encode("*1\r\n$-2\r\n") : m;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<boolean> {
  try {
    let off = 0;
    while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    return true;
  } catch {
    return false;
  }
}

/** Reads until EOF, an error, or `ms`; discards what it reads. */
async function drain(conn: Deno.Conn, ms: number): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)));
  try {
    for (;;) {
      const n = await Promise.race([conn.read(buf).catch(() => null), late]);
      if (n === null) return;
    }
  } finally {
    clearTimeout(timer);
  }
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // closed
  }
}

interface PortStats {
  frames: number;
  connections: number;
}

/** Throws frames at a client port until `done()`; `lanes` connections at a time. */
async function fuzzClientPort(
  port: number,
  rng: Prng,
  stats: PortStats,
  done: () => boolean,
  lanes: number,
): Promise<void> {
  const corpus = requestCorpus();
  const lane = async (r: Prng) => {
    while (!done()) {
      let conn: Deno.Conn;
      try {
        conn = await Deno.connect({ hostname: LOOPBACK, port });
      } catch {
        await new Promise((res) => setTimeout(res, 20));
        continue;
      }
      stats.connections++;
      try {
        const n = r.int(1, 8);
        for (let i = 0; i < n; i++) {
          if (!(await writeAll(conn, clientFrame(r, corpus)))) break;
          stats.frames++;
        }
        try {
          await conn.closeWrite();
        } catch {
          // closed
        }
        await drain(conn, 2000);
      } finally {
        close(conn);
      }
    }
  };
  const slowloris = async (r: Prng) => {
    while (!done()) {
      let conn: Deno.Conn;
      try {
        conn = await Deno.connect({ hostname: LOOPBACK, port });
      } catch {
        await new Promise((res) => setTimeout(res, 50));
        continue;
      }
      stats.connections++;
      stats.frames++;
      const bytes = r.chance(0.5)
        ? enc.encode("*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$100\r\n")
        : enc.encode("GET slowloris-key");
      try {
        for (const b of bytes) {
          if (done() || !(await writeAll(conn, new Uint8Array([b])))) break;
          await new Promise((res) => setTimeout(res, 200));
        }
      } finally {
        close(conn);
      }
    }
  };
  await Promise.all([
    ...Array.from({ length: lanes }, (_, i) => lane(new Prng(rng.int(0, 2 ** 32 - 1) + i))),
    slowloris(new Prng(rng.int(0, 2 ** 32 - 1))),
  ]);
}

/** A message every replica refuses whatever its state (see the module documentation). */
function refusedMessage(rng: Prng, from: number, view: number): PeerMessage {
  const big = 2 ** 48 + rng.int(1, 1000);
  const notProposedBy = (id: number) => {
    // replicas [1, 2, 3]: view v is proposed by replica (v % 3) + 1
    let v = view + rng.int(0, 5);
    while ((v % 3) + 1 === id) v++;
    return v;
  };
  const entry = (origin: number) => ({
    view,
    ts: rng.int(0, 1_000_000),
    origin,
    seq: rng.int(1, 10),
    cmd: { op: { argv: ["SET", "fz", "x"], time: 0 } },
  });
  switch (rng.int(0, 9)) {
    case 0:
      return { type: "update", entry: entry(9) };
    case 1:
      return { type: "update", entry: entry(from === 2 ? 3 : 2) };
    case 2:
      return { type: "ack", view, promised: view, ts: big, acks: {} };
    case 3:
      return { type: "ack", view, promised: view, ts: 1, acks: { 9: 1 } };
    case 4:
      return { type: "probe-ack", view, ts: 1, round: 2 ** 40 + rng.int(0, 100) };
    case 5:
      return {
        type: "propose",
        view: notProposedBy(from),
        ts: 1,
        members: [1, 2, 3],
        delivered: 0,
      };
    case 6:
      return { type: "commit", view: notProposedBy(from), ts: 1 };
    case 7:
      return {
        type: "flush",
        view,
        ts: 1,
        report: {
          normalView: view,
          delivered: 0,
          last: null,
          holdback: [{ ...entry(from), view: view + 1 }],
          log: { from: 1, entries: [] },
        },
      };
    case 8:
      return { type: "probe", view, ts: 1, round: 0 };
    default:
      return { type: "update", entry: { ...entry(from), seq: big } };
  }
}

/** Throws frames at a peer port until `done()`. */
async function fuzzPeerPort(
  cluster: TestCluster,
  target: number,
  rng: Prng,
  stats: PortStats,
  done: () => boolean,
  lanes: number,
): Promise<void> {
  const port = cluster.peerPort(target);
  const cluster_ = clusterId(cluster.config);
  const peers = cluster.ids.filter((id) => id !== target);
  const messages = recordedMessages();
  const hello = (from: number, cluster = cluster_) =>
    encodeFrame(encodePeerFrame({ kind: "hello", from, cluster }));
  let lastHello = 0;
  const garbage = (r: Prng): Uint8Array => {
    switch (r.int(0, 5)) {
      case 0: // forged hellos
        return hello(
          r.pick([target, 9, 0x7fffffff]),
          r.chance(0.5) ? cluster_ : "0000000000000000",
        );
      case 1: { // a hello-shaped frame, value-mutated
        const v = mutateJson(r, { kind: "hello", from: r.pick(peers), cluster: cluster_ });
        return encodeFrame(encodeMutated(r, v, VALUE_TAG).subarray(0, 4000));
      }
      case 2: // a frame too large before the hello
        return join([new Uint8Array([0, 0, 0x10, 0x01]), new Uint8Array(r.int(0, 100))]);
      case 3: // a message frame before the hello
        return encodeFrame(encodePeerFrame({ kind: "msgs", msgs: [pickMessage(r, messages).msg] }));
      default: // mutated bytes of a hello or a frame
        return mutateBytes(
          r,
          r.chance(0.5)
            ? hello(r.pick(peers))
            : encodeFrame(encodePeerFrame({ kind: "msgs", msgs: [pickMessage(r, messages).msg] })),
          { tokens: "length" },
        );
    }
  };
  const afterHello = (r: Prng, from: number, view: number): Uint8Array => {
    switch (r.int(0, 4)) {
      case 0: // not a binary value, or not a frame the codec accepts
        return encodeFrame(
          mutateBytes(r, encodePeerFrame({ kind: "msgs", msgs: [pickMessage(r, messages).msg] }), {
            tokens: "binary",
          }),
        );
      // A value-mutated message: mostly refused by the codec or by check, but a mutation can make
      // a valid message (an ack stamped near 2^48 once wedged a cluster: see MAX_CLOCK_LEAD).
      case 1: {
        const v = mutateJson(r, { kind: "msgs", msgs: [refusedMessage(r, from, view)] });
        return encodeFrame(encodeMutated(r, v, VALUE_TAG).subarray(0, 1_000_000));
      }
      case 2: // an oversized length prefix
        return new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
      case 3: // a second hello
        return hello(from);
      default:
        return encodeFrame(
          encodePeerFrame({ kind: "msgs", msgs: [refusedMessage(r, from, view)] }),
        );
    }
  };
  let view = 0;
  const lane = async (r: Prng) => {
    while (!done()) {
      let conn: Deno.Conn;
      try {
        conn = await Deno.connect({ hostname: LOOPBACK, port });
      } catch {
        await new Promise((res) => setTimeout(res, 20));
        continue;
      }
      stats.connections++;
      try {
        // At most ~20 valid hellos a second per port: each takes over a real link for a moment.
        const now = performance.now();
        if (now - lastHello > 50 && r.chance(0.2)) {
          lastHello = now;
          const from = r.pick(peers);
          const frames = [hello(from), afterHello(r, from, view)];
          if (await writeAll(conn, join(frames))) stats.frames += 1;
        } else {
          const n = r.int(1, 4);
          for (let i = 0; i < n; i++) {
            if (!(await writeAll(conn, garbage(r)))) break;
            stats.frames++;
          }
        }
        try {
          await conn.closeWrite();
        } catch {
          // closed
        }
        await drain(conn, 2000);
      } finally {
        close(conn);
      }
    }
  };
  const slowHello = async () => {
    while (!done()) {
      let conn: Deno.Conn;
      try {
        conn = await Deno.connect({ hostname: LOOPBACK, port });
      } catch {
        await new Promise((res) => setTimeout(res, 50));
        continue;
      }
      stats.connections++;
      stats.frames++;
      try {
        for (const b of hello(peers[0]).subarray(0, 20)) {
          if (done() || !(await writeAll(conn, new Uint8Array([b])))) break;
          await new Promise((res) => setTimeout(res, 300));
        }
      } finally {
        close(conn);
      }
    }
  };
  const viewPoll = async () => {
    while (!done()) {
      try {
        view = Math.max(0, Number((await cluster.info(target, 2000)).view) || 0);
      } catch {
        // busy: keep the last one
      }
      await new Promise((res) => setTimeout(res, 500));
    }
  };
  await Promise.all([
    ...Array.from({ length: lanes }, (_, i) => lane(new Prng(rng.int(0, 2 ** 32 - 1) + i))),
    slowHello(),
    viewPoll(),
  ]);
}

/** Longest time the fuzzers may take beyond `seconds` before the run counts as failed. */
const MAX_FUZZ_MS = 120_000;

/**
 * Starts a 3-replica cluster, fuzzes every port with at least `framesPerPort` frames (and for
 * at least `seconds`) while the workload runs, then checks the cluster.
 */
export async function runLive(options: LiveOptions): Promise<LiveResult> {
  const log = options.log;
  const t0 = performance.now();
  const rng = new Prng(options.seed ^ 0x5eed);
  const cluster = await startCluster({ replicas: 3 });
  const problems: string[] = [];
  const stats = new Map<string, PortStats>();
  let opsDone = 0;
  let rounds = 0;
  const peakRss: Record<number, number> = {};
  /** Set when the run ends early: every fuzzer loop stops at its next frame. */
  let stopping = false;
  let allFuzzed: Promise<void> = Promise.resolve();
  try {
    const minUntil = performance.now() + (options.seconds ?? 0) * 1000;
    // A port whose replica died would never reach its count: the run is bounded in time too.
    const hardUntil = minUntil + MAX_FUZZ_MS;
    const portDone = (s: PortStats) => () =>
      stopping || performance.now() >= hardUntil ||
      (s.frames >= options.framesPerPort && performance.now() >= minUntil);
    const fuzzers: Promise<void>[] = [];
    for (const id of cluster.ids) {
      const c: PortStats = { frames: 0, connections: 0 };
      const p: PortStats = { frames: 0, connections: 0 };
      stats.set(`client:${id}`, c);
      stats.set(`peer:${id}`, p);
      fuzzers.push(
        fuzzClientPort(
          cluster.clientPort(id),
          new Prng(rng.int(0, 2 ** 32 - 1)),
          c,
          portDone(c),
          3,
        ),
      );
      fuzzers.push(fuzzPeerPort(cluster, id, new Prng(rng.int(0, 2 ** 32 - 1)), p, portDone(p), 3));
    }
    let fuzzing = true;
    allFuzzed = Promise.all(fuzzers).then(() => void (fuzzing = false));
    const progress = setInterval(() => {
      const line = [...stats].map(([k, s]) => `${k}=${s.frames}`).join(" ");
      log(`live fuzz: ${line} (${Math.round((performance.now() - t0) / 1000)} s, ${opsDone} ops)`);
    }, 5000);
    try {
      // The workload, in rounds on fresh keys, each checked on its own.
      const replicas = cluster.ids.map((id) => ({ id, port: cluster.clientPort(id) }));
      while (fuzzing || rounds === 0) {
        const keys = [1, 2, 3, 4].map((k) => `__lin:${rounds}:k${k}`);
        const history = await runWorkload({
          replicas,
          clients: 6,
          keys,
          rng: new Prng(rng.int(0, 2 ** 32 - 1)),
          runMs: 3000,
          maxOpsPerClient: 600,
          stop: () => !fuzzing && rounds > 0,
          note: (line) => cluster.note(line),
        });
        rounds++;
        opsDone += history.counts().done;
        const verdict = checkLinearizable(history.ops());
        if (!verdict.ok) {
          problems.push(`round ${rounds}: not linearizable on ${verdict.key}: ${verdict.message}`);
        }
      }
      await allFuzzed;
      if (performance.now() >= hardUntil) {
        problems.push(`the fuzzers did not reach their counts within ${MAX_FUZZ_MS / 1000} s`);
      }
    } finally {
      clearInterval(progress);
    }
    if (opsDone === 0) problems.push("the workload completed no operation");
    // The hostile frames got where they were aimed (these lines are rate-limited per source).
    for (
      const [what, pattern] of [
        ["Replica.check refusals", /refused its message/],
        ["malformed frames", /malformed frame/],
        ["bad hellos", /bad hello/],
      ] as const
    ) {
      const n = cluster.logs.filter((l) => l.id > 0 && pattern.test(l.text)).length;
      log(`live fuzz: ${n} log lines about ${what}`);
      if (n === 0) problems.push(`no replica logged any ${what}: the fuzzer missed its aim`);
    }
    for (const id of cluster.ids) {
      if (!cluster.running(id)) {
        problems.push(`replica ${id} is not running: ${JSON.stringify(cluster.exitStatus(id))}`);
        continue;
      }
      try {
        const pong = await respCall(cluster.clientPort(id), ["PING"], 10_000);
        // LOADING: alive, between views (it serves again once the view is formed).
        const loading = pong instanceof RespError && pong.code === "LOADING";
        if (pong !== "PONG" && !loading) {
          problems.push(`replica ${id} answered PING with ${JSON.stringify(pong)}`);
        }
      } catch (err) {
        problems.push(`replica ${id} did not answer PING: ${err}`);
      }
      const mem = await memoryOf(cluster.pid(id));
      peakRss[id] = mem.peak;
      if (mem.peak > MAX_RSS_BYTES) {
        problems.push(
          `replica ${id} peaked at ${(mem.peak / 2 ** 20).toFixed(0)} MB RSS (limit 500 MB)`,
        );
      }
    }
    try {
      const agreed = await cluster.waitForAgreement({ timeoutMs: 20_000 });
      log(
        `live fuzz: replicas agree at delivered index ${agreed.delivered}, digest ${agreed.digest}`,
      );
    } catch (err) {
      problems.push(`replicas do not agree: ${(err as Error).message}`);
    }
  } catch (err) {
    problems.push(`live fuzz failed: ${(err as Error).stack ?? err}`);
  } finally {
    // No fuzzer outlives the cluster (they are stopped before it, and awaited).
    stopping = true;
    await allFuzzed.catch(() => {});
    if (problems.length > 0) cluster.dumpLogs();
    await cluster.stop();
  }
  const frames = Object.fromEntries([...stats].map(([k, s]) => [k, s.frames]));
  const connections = Object.fromEntries([...stats].map(([k, s]) => [k, s.connections]));
  const ms = performance.now() - t0;
  log(
    `live fuzz: ${(ms / 1000).toFixed(1)} s; frames ${JSON.stringify(frames)}; connections ` +
      `${JSON.stringify(connections)}; ${opsDone} ops in ${rounds} linearizable rounds; peak RSS ` +
      Object.entries(peakRss).map(([id, b]) => `${id}: ${(b / 2 ** 20).toFixed(0)} MB`).join(", "),
  );
  for (const p of problems) log(`LIVE FAIL: ${p}`);
  return { ok: problems.length === 0, problems, frames, connections, peakRss, opsDone, rounds, ms };
}
