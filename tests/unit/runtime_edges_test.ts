/**
 * The runtime's I/O edges over real loopback TCP (port 0) with fake handlers: the reconnecting
 * peer link, the peer server's hello checks, replacement and malformed frames, the client
 * server's pipelining, fatal errors, garbage and backpressure, and three real hosts replicating a
 * write. Every socket, listener and timer is closed at the end of each test (sanitizers are on).
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/config.ts";
import type {
  Command,
  Outcome,
  PeerMessage,
  PersistRecord,
  ReplicaStatus,
} from "../../src/core/types.ts";
import { ClientServer } from "../../src/net/client_server.ts";
import { encodeFrame, FrameDecoder } from "../../src/net/frame.ts";
import { decodePeerFrame, encodePeerFrame, type PeerFrame } from "../../src/net/peer_codec.ts";
import { PeerLink } from "../../src/net/peer_link.ts";
import { PeerServer } from "../../src/net/peer_server.ts";
import { encodeCommand, RespError, RespReplyParser, type RespValue } from "../../src/net/resp.ts";
import { ReplicaHost } from "../../src/runtime/replica_host.ts";
import type { ReplicaStorage } from "../../src/runtime/storage.ts";
import {
  NODE_ENTRY,
  NODE_PERMISSIONS,
  nodeCommandArgs,
} from "../../src/supervisor/node_command.ts";
import { parseNodeArgs, UsageError } from "../../src/cli/node.ts";
import { timingsForSuspicion } from "../../src/core/replica.ts";
import { Prng } from "../support/prng.ts";
import { freePorts, runCommand } from "../support/cluster.ts";
import { waitFor } from "../support/fake_resp_server.ts";
import { logTo } from "../support/log_capture.ts";
import { SILENT } from "../../src/log/logger.ts";

const HOST = "127.0.0.1";
const CLUSTER = "0123456789abcdef";
const enc = new TextEncoder();

/**
 * What the current test opened (sockets, listeners, links, servers): {@link test} closes all of
 * it when the test ends, however it ends, so a failed assertion leaves no reconnecting link or
 * open port behind.
 */
const opened: (() => unknown)[] = [];

/** Registers `resource` to be closed by `close` at the end of the current {@link test}. */
function track<T>(resource: T, close: (r: T) => unknown): T {
  opened.push(() => close(resource));
  return resource;
}

/** `Deno.test`, closing whatever the test opened through the helpers below when it ends. */
function test(name: string, fn: () => Promise<void>): void {
  Deno.test(name, async () => {
    try {
      await fn();
    } finally {
      for (const close of opened.splice(0).reverse()) {
        try {
          await close();
        } catch {
          // already closed by the test
        }
      }
    }
  });
}

/** A loopback listener on `port` (0: any free port), closed by {@link test}. */
function listen(port = 0): Deno.TcpListener {
  return track(Deno.listen({ hostname: HOST, port }), (l) => l.close());
}

type LinkOptions = ConstructorParameters<typeof PeerLink>[0];

/**
 * A link from replica 1 to peer 2 at `port` with quick back-off (`overrides` on top), closed by
 * {@link test}.
 */
function newLink(port: number, overrides: Partial<LinkOptions>): PeerLink {
  const options: LinkOptions = {
    self: 1,
    peer: 2,
    hostname: HOST,
    port,
    cluster: CLUSTER,
    minBackoffMs: 1,
    maxBackoffMs: 4,
    log: SILENT,
    onUp: () => {},
    ...overrides,
  };
  return track(new PeerLink(options), (l) => l.close());
}

/** A raw client socket that collects everything it receives in the background. */
class RawConn {
  readonly conn: Deno.TcpConn;
  bytes = new Uint8Array(0);
  eof = false;
  readonly #reading: Promise<void>;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.#reading = this.#read();
    track(this, (c) => c.close());
  }

  static async open(port: number): Promise<RawConn> {
    return new RawConn(await Deno.connect({ hostname: HOST, port }));
  }

  static wrap(conn: Deno.TcpConn): RawConn {
    return new RawConn(conn);
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        const grown = new Uint8Array(this.bytes.length + n);
        grown.set(this.bytes);
        grown.set(buf.subarray(0, n), this.bytes.length);
        this.bytes = grown;
      }
    } catch {
      // reset by the other side, or closed by us
    }
    this.eof = true;
  }

  /** Writes all of `data`; false if the connection is already broken. */
  async write(data: Uint8Array | string): Promise<boolean> {
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    try {
      let at = 0;
      while (at < bytes.length) at += await this.conn.write(bytes.subarray(at));
      return true;
    } catch {
      return false;
    }
  }

  /** The peer frames received so far. */
  frames(): PeerFrame[] {
    const decoder = new FrameDecoder();
    decoder.push(this.bytes);
    const out: PeerFrame[] = [];
    for (let p = decoder.next(); p !== null; p = decoder.next()) out.push(decodePeerFrame(p));
    return out;
  }

  /** The RESP replies received so far. */
  replies(): RespValue[] {
    const parser = new RespReplyParser();
    parser.push(this.bytes);
    const out: RespValue[] = [];
    for (let v = parser.next(); v !== undefined; v = parser.next()) out.push(v);
    return out;
  }

  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    await this.#reading;
  }
}

/** A small, valid peer message numbered `n` (n >= 0). */
function ack(n: number): PeerMessage {
  return {
    type: "update",
    entry: {
      view: 1,
      ts: n + 1,
      origin: 2,
      seq: n + 1,
      cmd: { op: { argv: ["GET", `k${n}`], time: 0 } },
    },
  };
}

function frameBytes(frame: PeerFrame): Uint8Array {
  return encodeFrame(encodePeerFrame(frame));
}

// ---------------------------------------------------------------------------------------------
// PeerLink

test("peer link: hello first, link-up sends next, reconnects after the remote closes", async () => {
  const listener = listen();
  const logs: string[] = [];
  let ups = 0;
  const link: PeerLink = newLink(listener.addr.port, {
    minBackoffMs: 5,
    maxBackoffMs: 20,
    log: logTo(logs),
    onUp: () => {
      ups++;
      assert.equal(link.up, true);
      assert.equal(link.send([ack(ups)]), true);
    },
  });
  assert.equal(link.send([ack(0)]), false, "a link that is not up drops sends");
  link.start();
  const first = RawConn.wrap(await listener.accept());
  const second = await (async () => {
    await waitFor(() => first.frames().length >= 2, "hello and the link-up frame");
    assert.deepEqual(first.frames(), [
      { kind: "hello", from: 1, cluster: CLUSTER },
      { kind: "msgs", msgs: [ack(1)] },
    ]);
    assert.equal(link.send([ack(10), ack(11)]), true);
    await waitFor(() => first.frames().length >= 3, "a later frame");
    assert.deepEqual(first.frames()[2], { kind: "msgs", msgs: [ack(10), ack(11)] });

    await first.close(); // the remote goes away
    const conn = RawConn.wrap(await listener.accept());
    await waitFor(() => conn.frames().length >= 2, "hello after reconnecting");
    return conn;
  })();
  assert.equal(ups, 2);
  assert.deepEqual(second.frames(), [
    { kind: "hello", from: 1, cluster: CLUSTER },
    { kind: "msgs", msgs: [ack(2)] },
  ]);
  assert.equal(logs.filter((l) => l.startsWith("lost link to peer 2")).length, 1, logs.join("\n"));
  await link.close();
  await waitFor(() => second.eof, "the link to close its socket");
  assert.equal(link.up, false);
  await second.close();
  listener.close();
});

test("peer link: retries an unreachable peer, logging it once", async () => {
  const probe = listen();
  const port = probe.addr.port;
  probe.close(); // nothing listens there now
  const logs: string[] = [];
  const link = newLink(port, {
    peer: 3,
    stableMs: 20,
    log: logTo(logs),
    onUp: () => {},
  });
  link.start();
  await waitFor(() => logs.length >= 1, "the unreachable log line");
  // Let it retry a few times, then bring the peer up at that port.
  await waitFor(() => link.attempts >= 4, "a few failed connection attempts");
  const listener = listen(port);
  const conn = RawConn.wrap(await listener.accept());
  await waitFor(() => conn.frames().length >= 1, "hello");
  await waitFor(() => logs.some((l) => l.startsWith("connected to peer 3")), "the connected line");
  assert.equal(logs.filter((l) => l.startsWith("cannot reach peer 3")).length, 1, logs.join("\n"));
  await link.close();
  await conn.close();
  listener.close();
});

test("peer link: a peer that drops every connection at once is logged once", async () => {
  const listener = listen();
  const logs: string[] = [];
  let ups = 0;
  const link = newLink(listener.addr.port, {
    stableMs: 50,
    log: logTo(logs),
    onUp: () => ups++,
  });
  link.start();
  for (let i = 0; i < 5; i++) {
    const c = RawConn.wrap(await listener.accept());
    await waitFor(() => c.frames().length >= 1, `hello ${i}`);
    await c.close(); // e.g. it refuses our hello
  }
  const kept = RawConn.wrap(await listener.accept());
  await waitFor(() => logs.filter((l) => l.startsWith("connected")).length === 2, "restored");
  assert.ok(ups >= 6);
  assert.equal(logs.filter((l) => l.startsWith("lost link")).length, 1, logs.join("\n"));
  assert.equal(logs.length, 3, logs.join("\n"));
  await link.close();
  await kept.close();
  listener.close();
});

test("peer link: more than the queue bound drops the connection and reconnects", async () => {
  const listener = listen();
  const logs: string[] = [];
  let ups = 0;
  const link = newLink(listener.addr.port, {
    maxQueuedBytes: 1000,
    log: logTo(logs),
    onUp: () => ups++,
  });
  link.start();
  const first = RawConn.wrap(await listener.accept());
  await waitFor(() => ups === 1, "the link to come up");
  // Frames queued in one turn are not written before the turn ends, so the queue grows.
  let refused = 0;
  for (let i = 0; i < 100; i++) if (!link.send([ack(i)])) refused++;
  assert.ok(refused > 0, "sends beyond the bound are refused");
  assert.ok(logs.some((l) => l.includes("bytes queued for peer 2, dropping the connection")));
  await waitFor(() => first.eof, "the dropped connection to close");
  const second = RawConn.wrap(await listener.accept());
  await waitFor(() => ups === 2 && second.frames().length >= 1, "a reconnect");
  await link.close();
  await Promise.all([first.close(), second.close()]);
  listener.close();
});

// ---------------------------------------------------------------------------------------------
// PeerServer

interface Received {
  from: number;
  msgs: PeerMessage[];
}

function peerServer(logs: string[], got: Received[], helloTimeoutMs?: number): PeerServer {
  const server = new PeerServer({
    hostname: HOST,
    port: 0,
    self: 1,
    cluster: CLUSTER,
    helloTimeoutMs,
    // Every refusal is logged (not rate-limited per source).
    log: logTo(logs, { rateLimit: { intervalMs: 0 } }),
    onMessages: (from, msgs) => {
      got.push({ from, msgs });
    },
  });
  server.listen();
  return track(server, (s) => s.close());
}

test("peer server: bad hellos are refused and logged, good ones deliver in order", async () => {
  const logs: string[] = [];
  const got: Received[] = [];
  const server = peerServer(logs, got);
  const port = server.addr.port;
  const bad: [PeerFrame, string][] = [
    [{ kind: "hello", from: 2, cluster: "ffffffffffffffff" }, "differs from ours"],
    [{ kind: "hello", from: 1, cluster: CLUSTER }, "our own id"],
    [{ kind: "msgs", msgs: [ack(1)] }, "expected a hello frame first"],
  ];
  for (const [frame, reason] of bad) {
    const c = await RawConn.open(port);
    await c.write(frameBytes(frame));
    await waitFor(() => c.eof, `the server to close after: ${reason}`);
    assert.ok(logs.some((l) => l.includes("bad hello") && l.includes(reason)), logs.join("\n"));
    await c.close();
  }
  assert.equal(got.length, 0);

  // Any replica id but ours is accepted (a joining replica is in no config file); the core
  // decides about its messages.
  const stranger = await RawConn.open(port);
  await stranger.write(frameBytes({ kind: "hello", from: 9, cluster: CLUSTER }));
  await stranger.write(frameBytes({ kind: "msgs", msgs: [ack(7)] }));
  await waitFor(() => got.length === 1, "the frame of replica 9");
  assert.deepEqual(got.splice(0), [{ from: 9, msgs: [ack(7)] }]);
  await stranger.close();
  await waitFor(() => server.connectedPeers.length === 0, "replica 9 to be gone");

  const good = await RawConn.open(port);
  await good.write(frameBytes({ kind: "hello", from: 3, cluster: CLUSTER }));
  // Two frames in one write, then a frame split across writes.
  await good.write(
    new Uint8Array([
      ...frameBytes({ kind: "msgs", msgs: [ack(1)] }),
      ...frameBytes({ kind: "msgs", msgs: [ack(2), ack(3)] }),
    ]),
  );
  const split = frameBytes({ kind: "msgs", msgs: [ack(4)] });
  await good.write(split.subarray(0, 5));
  await waitFor(() => got.length === 2, "two frames");
  await good.write(split.subarray(5));
  await waitFor(() => got.length === 3, "the split frame");
  assert.deepEqual(got, [
    { from: 3, msgs: [ack(1)] },
    { from: 3, msgs: [ack(2), ack(3)] },
    { from: 3, msgs: [ack(4)] },
  ]);
  assert.deepEqual(server.connectedPeers, [3]);
  await server.close();
  await waitFor(() => good.eof, "close to reach the client");
  await good.close();
});

test("peer server: a new connection from a peer replaces its older one", async () => {
  const logs: string[] = [];
  const got: Received[] = [];
  const server = peerServer(logs, got);
  const port = server.addr.port;
  const old = await RawConn.open(port);
  await old.write(frameBytes({ kind: "hello", from: 2, cluster: CLUSTER }));
  await old.write(frameBytes({ kind: "msgs", msgs: [ack(1)] }));
  await waitFor(() => got.length === 1, "the first frame");

  const fresh = await RawConn.open(port);
  await fresh.write(frameBytes({ kind: "hello", from: 2, cluster: CLUSTER }));
  await waitFor(() => logs.some((l) => l.includes("replacing its older connection")), "replace");
  await waitFor(() => old.eof, "the old connection to be closed by the server");
  await old.write(frameBytes({ kind: "msgs", msgs: [ack(99)] })); // ignored (or fails)
  await fresh.write(frameBytes({ kind: "msgs", msgs: [ack(2)] }));
  await waitFor(() => got.length >= 2, "the frame on the new connection");
  assert.deepEqual(got, [{ from: 2, msgs: [ack(1)] }, { from: 2, msgs: [ack(2)] }]);
  assert.deepEqual(server.connectedPeers, [2]);
  await Promise.all([old.close(), fresh.close()]);
  await waitFor(() => server.connectedPeers.length === 0, "the server to notice");
  await server.close();
});

test("peer server: malformed frames close that connection only, and it keeps accepting", async () => {
  const logs: string[] = [];
  const got: Received[] = [];
  const server = peerServer(logs, got, 100);
  const port = server.addr.port;
  const hello = frameBytes({ kind: "hello", from: 2, cluster: CLUSTER });
  const cases: Uint8Array[] = [
    encodeFrame(enc.encode("not json")),
    encodeFrame(enc.encode('{"kind":"msgs","msgs":[{"type":"ack"}]}')),
    new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]), // declares 4 GiB
    new Uint8Array([0x00]), // never a full frame: the hello timeout closes it
  ];
  for (const [i, bytes] of cases.entries()) {
    const c = await RawConn.open(port);
    if (i === 0 || i === 2) await c.write(hello); // cases 1 and 3 send no hello
    await c.write(bytes);
    await waitFor(() => c.eof, `the server to close case ${i}`);
    await c.close();
  }
  assert.equal(logs.filter((l) => l.includes("malformed frame")).length, 3, logs.join("\n"));
  assert.ok(logs.some((l) => l.includes("no hello within 100 ms")));

  const good = await RawConn.open(port);
  await good.write(new Uint8Array([...hello, ...frameBytes({ kind: "msgs", msgs: [ack(7)] })]));
  await waitFor(
    () => got.some((r) => JSON.stringify(r.msgs) === JSON.stringify([ack(7)])),
    "a frame after the bad ones",
  );
  await good.close();
  await server.close();
});

// ---------------------------------------------------------------------------------------------
// ClientServer

// Read by INFO, and by PING (LOADING unless normal); asserted to the type so that new status
// fields do not break this test.
const STATUS = {
  id: 1,
  view: 1,
  state: "normal",
  members: [1, 2, 3],
  learners: [],
  role: "voter",
  voters: [1, 2, 3],
  clock: 5,
  delivered: 0,
  holdback: 0,
  unacked: 0,
  pending: 0,
  keys: 0,
  digest: "0",
} as ReplicaStatus;

/** A fake replica: remembers every submitted command and its responder. */
class FakeReplica {
  submitted: { cmd: Command; respond: (o: Outcome) => void; gone?: AbortSignal }[] = [];
  submit(cmd: Command, respond: (o: Outcome) => void, gone?: AbortSignal): void {
    this.submitted.push({ cmd, respond, gone });
  }
  status(): ReplicaStatus {
    return STATUS;
  }
}

function clientServer(
  fake: FakeReplica,
  maxInFlight?: number,
  maxOutstandingOps?: number,
): ClientServer {
  const server = new ClientServer({
    hostname: HOST,
    port: 0,
    handler: fake,
    log: SILENT,
    maxInFlight,
    maxOutstandingOps,
  });
  server.listen();
  return track(server, (s) => s.close());
}

const OK: Outcome = { ok: true, result: { ok: "OK" } };
const value = (v: string | null): Outcome => ({ ok: true, result: v });

test("client server: pipelined replies go out in request order when they complete out of order", async () => {
  const fake = new FakeReplica();
  const server = clientServer(fake);
  const c = await RawConn.open(server.addr.port);
  await c.write(
    new Uint8Array([
      ...encodeCommand(["SET", "a", "1"]),
      ...encodeCommand(["GET", "a"]),
      ...enc.encode("PING\r\nGET b\r\nNOSUCH x\r\nPING hi\r\n"),
    ]),
  );
  await waitFor(() => fake.submitted.length === 3, "three submitted ops");
  assert.deepEqual(fake.submitted.map((s) => s.cmd.op.argv), [
    ["SET", "a", "1"],
    ["GET", "a"],
    ["GET", "b"],
  ]);
  fake.submitted[2].respond(value(null));
  fake.submitted[1].respond(value("1"));
  // PING's reply is ready too, but everything waits behind the unanswered SET.
  await c.write("PING\r\n");
  const probe = await RawConn.open(server.addr.port); // proves the server made progress meanwhile
  await probe.write("PING\r\n");
  await waitFor(() => probe.replies().length === 1, "the probe's PONG");
  assert.equal(c.bytes.length, 0, "nothing is sent before the first reply is ready");
  fake.submitted[0].respond(OK);
  fake.submitted[0].respond(value("twice")); // a second answer is ignored
  await waitFor(() => c.replies().length === 7, "all seven replies");
  const replies = c.replies();
  assert.deepEqual(replies.slice(0, 4), ["OK", "1", "PONG", null]);
  assert.ok(
    replies[4] instanceof RespError && replies[4].message.startsWith("ERR unknown command"),
  );
  assert.deepEqual(replies.slice(5), ["hi", "PONG"]);
  await Promise.all([c.close(), probe.close()]);
  await server.close();
});

test("client server: a closed connection aborts the signal of its blocked command", async () => {
  const fake = new FakeReplica();
  const server = clientServer(fake);
  const c = await RawConn.open(server.addr.port);
  await c.write(encodeCommand(["BLPOP", "q", "0"]));
  await waitFor(() => fake.submitted.length === 1, "the BLPOP");
  const gone = fake.submitted[0].gone;
  assert.ok(gone !== undefined && !gone.aborted);
  await c.close();
  await waitFor(() => gone.aborted, "the signal to abort");
  await server.close();
});

test("client server: a fatal protocol error is answered after earlier replies, then closes", async () => {
  const fake = new FakeReplica();
  const server = clientServer(fake);
  const c = await RawConn.open(server.addr.port);
  await c.write("GET x\r\n*1\r\n$abc\r\nPING\r\n");
  await waitFor(() => fake.submitted.length === 1, "the GET");
  fake.submitted[0].respond(value("v"));
  await waitFor(() => c.eof, "the server to close the connection");
  const replies = c.replies();
  assert.equal(replies.length, 2, "nothing after the fatal error is executed");
  assert.equal(replies[0], "v");
  assert.ok(replies[1] instanceof RespError && /Protocol error/i.test(replies[1].message));
  await c.close();

  const q = await RawConn.open(server.addr.port);
  await q.write("PING\r\nQUIT\r\nPING\r\n");
  await waitFor(() => q.eof, "QUIT to close the connection");
  assert.deepEqual(q.replies(), ["PONG", "OK"]);
  await q.close();
  await server.close();
});

test("client server: garbage input never crashes the server", async () => {
  const fake = new FakeReplica();
  const server = clientServer(fake);
  const port = server.addr.port;
  const rng = new Prng(20240601);
  const pieces = ["*", "$", "\r\n", "-1", "3", "99999999999", "GET", " ", "\n", "\0", "*-5", "$-7"];
  for (let round = 0; round < 30; round++) {
    const c = await RawConn.open(port);
    const parts: Uint8Array[] = [];
    for (let i = rng.int(1, 40); i > 0; i--) {
      if (rng.next() < 0.5) parts.push(enc.encode(pieces[rng.int(0, pieces.length - 1)]));
      else parts.push(Uint8Array.from({ length: rng.int(1, 64) }, () => rng.int(0, 255)));
    }
    for (const p of parts) await c.write(p);
    // Answer whatever got through as a command, so nothing stays in flight.
    for (const s of fake.submitted) s.respond(OK);
    fake.submitted = [];
    await c.close();
  }
  await waitFor(() => server.connections === 0, "every garbage connection to be gone");
  const c = await RawConn.open(port);
  await c.write("PING\r\n");
  await waitFor(() => c.replies().length === 1, "PONG after the garbage");
  assert.deepEqual(c.replies(), ["PONG"]);
  await c.close();
  await server.close();
});

test("client server: stops reading every connection at the global cap of outstanding ops", async () => {
  const fake = new FakeReplica();
  const server = clientServer(fake, 1024, 6);
  const conns = await Promise.all([1, 2, 3].map(() => RawConn.open(server.addr.port)));
  for (const [i, c] of conns.entries()) {
    await c.write(Array.from({ length: 5 }, (_, j) => `SET k${i}-${j} v\r\n`).join(""));
  }
  await waitFor(() => fake.submitted.length >= 6, "six ops");
  // A PING on a parked connection is not read either: the cap holds the whole port.
  const probe = await RawConn.open(server.addr.port);
  await probe.write("GET x\r\n");
  await waitFor(() => server.outstandingOps === 6 && fake.submitted.length === 6, "the cap");
  let answered = 0;
  while (answered < 16) {
    await waitFor(() => fake.submitted.length > answered, `op ${answered}`);
    assert.ok(
      server.outstandingOps <= 6,
      `outstanding ${server.outstandingOps} over the cap at ${answered}`,
    );
    fake.submitted[answered++].respond(OK);
  }
  await waitFor(() => conns.every((c) => c.replies().length === 5), "every SET answered");
  await waitFor(() => probe.replies().length === 1, "the late GET answered");
  await Promise.all([...conns, probe].map((c) => c.close()));
  await server.close();
});

test("client server: replies for a client that disconnected are dropped", async () => {
  const fake = new FakeReplica();
  const server = clientServer(fake);
  const c = await RawConn.open(server.addr.port);
  await c.write("GET a\r\nGET b\r\n");
  await waitFor(() => fake.submitted.length === 2, "two ops");
  await c.close();
  assert.equal(server.outstandingOps, 2);
  fake.submitted[1].respond(value("late"));
  fake.submitted[0].respond(value("late"));
  assert.equal(server.outstandingOps, 0, "the late answers still release their slots");
  await waitFor(() => server.connections === 0, "the connection to be closed");
  const next = await RawConn.open(server.addr.port);
  await next.write("PING\r\n");
  await waitFor(() => next.replies().length === 1, "a PONG on a new connection");
  assert.deepEqual(next.replies(), ["PONG"]);
  await next.close();
  await server.close();
});

test("client server: a second answer to one request is ignored and frees no second slot", async () => {
  const fake = new FakeReplica();
  const server = clientServer(fake, 1024, 1);
  const c = await RawConn.open(server.addr.port);
  await c.write("GET a\r\nGET b\r\n");
  await waitFor(() => fake.submitted.length === 1, "the first op (the cap is one)");
  fake.submitted[0].respond(value("first"));
  fake.submitted[0].respond(value("again"));
  assert.equal(server.outstandingOps, 0);
  await waitFor(() => fake.submitted.length === 2, "the second op");
  assert.equal(server.outstandingOps, 1, "the cap still counts the second op");
  fake.submitted[1].respond(value("second"));
  await waitFor(() => c.replies().length === 2, "two replies");
  assert.deepEqual(c.replies(), ["first", "second"]);
});

test("client server: stops reading a connection with too many requests in flight", async () => {
  const fake = new FakeReplica();
  const server = clientServer(fake, 4);
  const c = await RawConn.open(server.addr.port);
  await c.write(Array.from({ length: 20 }, (_, i) => `GET k${i}\r\n`).join(""));
  await waitFor(() => fake.submitted.length === 5, "five ops");
  const probe = await RawConn.open(server.addr.port);
  await probe.write("PING\r\n");
  await waitFor(() => probe.replies().length === 1, "the probe's PONG");
  assert.equal(fake.submitted.length, 5, "no more than maxInFlight + 1 are taken");
  for (let answered = 0; answered < 20; answered++) {
    await waitFor(() => fake.submitted.length > answered, `op ${answered}`);
    fake.submitted[answered].respond(value(`v${answered}`));
  }
  await waitFor(() => c.replies().length === 20, "twenty replies");
  assert.deepEqual(c.replies(), Array.from({ length: 20 }, (_, i) => `v${i}`));
  await Promise.all([c.close(), probe.close()]);
  await server.close();
});

// ---------------------------------------------------------------------------------------------
// ReplicaHost

test("replica host: three hosts replicate a write over loopback and stop cleanly", async () => {
  const ports = freePorts(6);
  const text = [1, 2, 3].map((id) => `${id} ${HOST} ${ports[id - 1]} ${ports[id + 2]}`).join("\n");
  const config = parseConfig(text, "test.txt");
  const logs: string[] = [];
  const hosts = [1, 2, 3].map((id) =>
    new ReplicaHost({
      config,
      id,
      verbose: id === 1,
      log: logTo(logs, { id, show: (r) => `replica ${r.id}: ${r.msg}` }),
      backoff: { minMs: 5, maxMs: 50 },
    })
  );
  try {
    for (const h of hosts) await h.start();
    await waitFor(
      () => hosts.every((h) => h.connectedPeers().outgoing.length === 2),
      "every link up",
    );
    assert.deepEqual(hosts[0].connectedPeers().outgoing, [2, 3]);
    await waitFor(() => hosts[1].connectedPeers().incoming.length === 2, "incoming links");
    const a = await RawConn.open(hosts[0].clientAddr.port);
    await a.write(encodeCommand(["SET", "k", "v\r\n\0\xff"]));
    await waitFor(() => a.replies().length === 1, "the SET reply");
    assert.deepEqual(a.replies(), ["OK"]);
    const b = await RawConn.open(hosts[2].clientAddr.port);
    await b.write(new Uint8Array([...encodeCommand(["GET", "k"]), ...encodeCommand(["INFO"])]));
    await waitFor(() => b.replies().length === 2, "the GET and INFO replies");
    assert.equal(b.replies()[0], "v\r\n\0\xff");
    assert.match(String(b.replies()[1]), /keys:1\r\n/);
    // A command that carries a password is logged by its name only.
    await a.write(encodeCommand(["ACL", "SETUSER", "u", "on", ">pw-in-the-log?"]));
    await waitFor(() => a.replies().length === 2, "the ACL SETUSER reply");
    assert.equal(a.replies()[1], "OK");
    await Promise.all([a.close(), b.close()]);
    assert.equal(hosts[2].status().delivered, hosts[0].status().delivered);
    assert.ok(logs.some((l) => /^replica 1: deliver #\d+ "SET" "k" /.test(l)), logs.join("\n"));
    assert.ok(logs.some((l) => /^replica 1: deliver #\d+ "__ACL" -> \(hidden\)/.test(l)));
    assert.ok(!logs.some((l) => l.includes("pw-in-the-log")), "no password in the log");
    assert.ok(!logs.some((l) => /^replica [23]: deliver/.test(l)), "deliveries only when verbose");
  } finally {
    await Promise.all(hosts.map((h) => h.stop()));
  }
});

test("replica host: a log that cannot be synced stops the replica before it acknowledges", async () => {
  const [clientPort, peerPort] = freePorts(2);
  const config = parseConfig(`1 ${HOST} ${clientPort} ${peerPort}`, "one.txt");
  const logs: string[] = [];
  let appended = 0;
  let entries = 0;
  // Storage that syncs view-change records but fails once a client write reaches it.
  const storage: ReplicaStorage = {
    takeRecovered: () => ({ records: [] }),
    get appended() {
      return appended;
    },
    append(record: PersistRecord) {
      if (record.r === "entry") entries++;
      return ++appended;
    },
    sync() {
      return entries > 0 ? Promise.reject(new Error("simulated EIO")) : Promise.resolve(appended);
    },
    writeSnapshot() {},
    close: () => Promise.resolve(),
  };
  let fatal: Error | undefined;
  const host = new ReplicaHost({
    config,
    id: 1,
    storage,
    log: logTo(logs),
    onFatal: (e) => fatal = e,
  });
  try {
    await host.start();
    await waitFor(() => host.status().state === "normal", "a view of one");
    const c = await RawConn.open(clientPort);
    await c.write(encodeCommand(["SET", "k", "v"]));
    await waitFor(() => fatal !== undefined, "onFatal");
    assert.match(fatal!.message, /simulated EIO/);
    assert.ok(logs.some((l) => /fatal: cannot write the write-ahead log: .*stopping/.test(l)));
    assert.deepEqual(c.replies(), [], "the write was not acknowledged");
    await assert.rejects(Deno.connect({ hostname: HOST, port: clientPort }), "still listening");
    await c.close();
  } finally {
    await host.stop();
  }
});

test("replica host: a port in use is a clear error and leaves nothing open", async () => {
  const blocker = listen();
  const [peerPort] = freePorts(1);
  const config = parseConfig(`1 ${HOST} ${blocker.addr.port} ${peerPort}`, "one.txt");
  const host = new ReplicaHost({ config, id: 1, log: SILENT });
  await assert.rejects(host.start(), /cannot listen for clients on .*address already in use/);
  await host.stop();
  blocker.close();
});

// ---------------------------------------------------------------------------------------------
// CLI

Deno.test("cluster CLI: children get the node task's permissions", async () => {
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  const flags = String(denoJson.tasks.node).split(/\s+/).filter((w) => w.startsWith("--"));
  assert.deepEqual([...NODE_PERMISSIONS].sort(), flags.sort());
  const args = nodeCommandArgs(2, "c.txt", ["--verbose"]);
  assert.equal(args[0], "run");
  assert.ok(args.includes(NODE_ENTRY) && NODE_ENTRY.endsWith("node.ts"));
  assert.deepEqual(args.slice(-3), ["2", "c.txt", "--verbose"]);
  // deno run's own flags go before the entry point.
  const profiled = nodeCommandArgs(2, "c.txt", [], ["--cpu-prof"]);
  assert.ok(profiled.indexOf("--cpu-prof") < profiled.indexOf(NODE_ENTRY));
});

Deno.test("node CLI: argument errors", () => {
  assert.equal(parseNodeArgs(["--help"]), "help");
  assert.deepEqual(parseNodeArgs(["3", "c.txt", "--verbose"]), {
    id: 3,
    configPath: "c.txt",
    verbose: true,
    failureTimeoutMs: 1000,
    listenPeerPort: undefined,
    dataDir: undefined,
    fsync: "batch",
    snapshotEvery: 10_000,
    snapshotLogPercent: 50,
    checkpointEvery: 1000,
    settings: [],
    clockOffsetMs: 0,
    join: false,
    address: { host: undefined, clientPort: undefined, peerPort: undefined, httpPort: undefined },
  });
  assert.equal(
    (parseNodeArgs(["3", "c.txt", "--clock-offset-ms=-300000"]) as {
      clockOffsetMs: number;
    }).clockOffsetMs,
    -300_000,
  );
  assert.throws(() => parseNodeArgs(["1", "c.txt", "--clock-offset-ms", "1.5"]), /clock-offset/);
  assert.throws(() => parseNodeArgs(["1", "c.txt", "--fsync", "sometimes"]), /always, batch/);
  const tuned = parseNodeArgs([
    "3",
    "c.txt",
    "--failure-timeout",
    "300",
    "--listen-peer-port",
    "9",
    "--snapshot-log-percent",
    "0",
  ]);
  assert.ok(tuned !== "help");
  assert.equal(tuned.failureTimeoutMs, 300);
  assert.equal(tuned.listenPeerPort, 9);
  assert.equal(tuned.snapshotLogPercent, 0);
  const never = parseNodeArgs(["1", "c.txt", "--snapshot-every", "0"]);
  assert.ok(never !== "help");
  assert.equal(never.snapshotEvery, 0);
  assert.throws(() => parseNodeArgs(["1", "c.txt", "--snapshot-every", "9"]), /10\.\.100000000/);
  assert.throws(() => parseNodeArgs(["1", "c.txt", "--snapshot-log-percent", "1001"]), /0\.\.1000/);
  assert.throws(() => parseNodeArgs(["1", "c.txt", "--snapshot-log-percent", "-1"]), UsageError);
  assert.throws(() => parseNodeArgs(["1", "c.txt", "--failure-timeout", "50"]), /100\.\.60000/);
  assert.throws(() => parseNodeArgs(["1", "c.txt", "--listen-peer-port", "x"]), /1\.\.65535/);
  // The default failure timeout (1000 ms) at the host's 10 ms tick.
  assert.deepEqual(timingsForSuspicion(1000 / 10), {
    suspectTicks: 100,
    noQuorumTicks: 200,
    viewChangeTimeoutTicks: 50,
  });
  assert.throws(() => parseNodeArgs(["1"]), UsageError);
  assert.throws(() => parseNodeArgs(["0", "c.txt"]), /positive integer/);
  assert.throws(() => parseNodeArgs(["1", "c.txt", "extra"]), /unexpected argument/);
  assert.throws(() => parseNodeArgs(["1", "c.txt", "--bogus"]), UsageError);
});

/** Runs node.ts with `args` to completion (SIGKILLed after 30 s). */
function runNode(args: string[]) {
  return runCommand(Deno.execPath(), ["run", ...NODE_PERMISSIONS, NODE_ENTRY, ...args], {
    timeoutMs: 30_000,
  });
}

/** Runs node.ts as a child with `args`; returns it with line-collecting stdout/stderr. */
function spawnNode(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...NODE_PERMISSIONS, NODE_ENTRY, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = { stdout: "", stderr: "" };
  const collect = async (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) out[key] += text;
  };
  const done = Promise.all([collect(child.stdout, "stdout"), collect(child.stderr, "stderr")]);
  return { child, out, done };
}

Deno.test("node CLI: config errors exit 2, ready line, SIGTERM stops with exit 0", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const [c1, p1, c2, p2] = freePorts(4);
    const path = `${dir}/cluster.txt`;
    await Deno.writeTextFile(path, `1 ${HOST} ${c1} ${p1}\n2 ${HOST} ${c2} ${p2}\n`);

    const bad = await runNode(["7", path]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no replica with id 7/);

    const good = spawnNode(["1", path]);
    try {
      await waitFor(() => good.out.stdout.includes("node.ready"), "the ready line", 20_000);
      assert.match(
        good.out.stdout,
        new RegExp(
          `^\\S+ INFO  replica 1 node\\.ready: ready: clients ${HOST}:${c1}, peers ${HOST}:${p1} `,
          "m",
        ),
      );
      // A second copy of the same replica finds its data directory locked...
      const twice = await runNode(["1", path]);
      assert.equal(twice.code, 2);
      assert.match(twice.stderr, /is in use by another process/);
      // ...and, given another data directory, its ports taken.
      const clash = await runNode(["1", path, "--data-dir", `${dir}/elsewhere`]);
      assert.equal(clash.code, 1);
      assert.match(clash.stderr, /address already in use/);
    } finally {
      const kill = (signal: Deno.Signal) => {
        try {
          good.child.kill(signal);
        } catch {
          // already exited
        }
      };
      kill("SIGTERM");
      // SIGKILL if it does not stop in time, so that nothing outlives the test.
      const late = setTimeout(() => kill("SIGKILL"), 20_000);
      await good.child.status.finally(() => clearTimeout(late));
    }
    const status = await good.child.status;
    await good.done;
    assert.equal(status.code, 0, good.out.stdout + good.out.stderr);
    assert.match(good.out.stdout, /replica 1 node\.stopped: stopped/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
