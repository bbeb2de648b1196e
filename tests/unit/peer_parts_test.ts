/**
 * Large peer messages as `part` frames: splitting at and around the part boundary, the part
 * frame's wire form and field checks, reassembly and everything it refuses (a part out of order,
 * a missing part, a changed total, a total above the bound), and a real {@link PeerLink} sending
 * a message many parts long to a real {@link PeerServer} over loopback TCP, with and without a
 * cluster key, with a queue bound far below the message's size; and a server closing a
 * connection whose parts break the rules.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  CodecError,
  decodePeerFrame,
  encodePeerFrame,
  PART_HEADER_BYTES,
  type PartFrame,
  type PeerFrame,
} from "../../src/net/peer_codec.ts";
import { PartAssembler, splitParts } from "../../src/net/peer_parts.ts";
import { encodeFrame } from "../../src/net/frame.ts";
import { PeerLink } from "../../src/net/peer_link.ts";
import { PeerServer, type PeerServerOptions } from "../../src/net/peer_server.ts";
import type { PeerMessage } from "../../src/core/types.ts";
import { SILENT } from "../../src/log/logger.ts";
import { waitFor } from "../support/cluster.ts";
import { MAX_FRAME_BYTES, MAX_PEER_MESSAGE_BYTES, PEER_PART_BYTES } from "../../src/limits.ts";

const te = new TextEncoder();

/** `n` bytes, each different from its neighbours (a misplaced slice shows). */
function bytes(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
}

function assertCodecError(f: () => unknown, message: RegExp): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof CodecError, `expected CodecError, got ${err}`);
    assert.match(err.message, message);
    return true;
  });
}

/** Splits, encodes, decodes and reassembles `payload`; returns the parts and the result. */
function throughParts(payload: Uint8Array, partBytes: number) {
  const parts = [...splitParts(payload, partBytes)];
  const assembler = new PartAssembler(payload.length);
  const results: (Uint8Array | null)[] = [];
  for (const part of parts) {
    const decoded = decodePeerFrame(encodePeerFrame(part));
    assert.equal(decoded.kind, "part");
    results.push(assembler.push(decoded as PartFrame));
  }
  return { parts, results, assembler };
}

Deno.test("parts: sizes around the part boundary split and reassemble exactly", () => {
  const P = 16;
  for (const n of [1, P - 1, P, P + 1, 2 * P - 1, 2 * P, 2 * P + 1, 5 * P + 3]) {
    const payload = bytes(n);
    const { parts, results, assembler } = throughParts(payload, P);
    assert.equal(parts.length, Math.ceil(n / P), `parts of ${n} bytes`);
    assert.deepEqual(parts.map((p) => p.seq), parts.map((_, i) => i));
    assert.deepEqual(parts.map((p) => p.final), parts.map((_, i) => i === parts.length - 1));
    assert.ok(parts.every((p) => p.total === n && p.data.length >= 1 && p.data.length <= P));
    assert.ok(results.slice(0, -1).every((r) => r === null), "nothing before the final part");
    assert.deepEqual(results.at(-1), payload, `${n} bytes reassembled`);
    assert.equal(assembler.inProgress, false);
    assert.equal(assembler.buffered, 0);
  }
  assert.throws(() => [...splitParts(new Uint8Array(0), P)], RangeError);
  assert.throws(() => [...splitParts(bytes(3), 0)], RangeError);
});

Deno.test("parts: the wire form of a part frame, and its header checked field by field", () => {
  const part: PeerFrame = { kind: "part", seq: 3, total: 300, final: false, data: bytes(5) };
  const wire = encodePeerFrame(part);
  assert.deepEqual(
    [...wire.subarray(0, PART_HEADER_BYTES)],
    [0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 1, 44],
  );
  assert.deepEqual(wire.subarray(PART_HEADER_BYTES), bytes(5));
  assert.deepEqual(decodePeerFrame(wire), part);
  const last = encodePeerFrame({ kind: "part", seq: 0, total: 5, final: true, data: bytes(5) });
  assert.equal(last[1], 1, "the final flag");
  assert.deepEqual(decodePeerFrame(last), {
    kind: "part",
    seq: 0,
    total: 5,
    final: true,
    data: bytes(5),
  });

  const edit = (at: number, value: number, from = wire) => {
    const copy = from.slice();
    copy[at] = value;
    return copy;
  };
  assertCodecError(() => decodePeerFrame(wire.subarray(0, PART_HEADER_BYTES)), /header/);
  assertCodecError(() => decodePeerFrame(new Uint8Array([0])), /header/);
  assertCodecError(() => decodePeerFrame(edit(1, 2)), /flags: unknown flag bits/);
  assertCodecError(() => decodePeerFrame(edit(1, 0x81)), /flags/);
  // total 0; total above 2^53 - 1; data longer than the total
  const zero = encodePeerFrame({ kind: "part", seq: 0, total: 1, final: true, data: bytes(1) });
  assertCodecError(() => decodePeerFrame(edit(13, 0, zero)), /total: expected an integer >= 1/);
  assertCodecError(() => decodePeerFrame(edit(6, 0xff)), /total/);
  const over = encodePeerFrame({ kind: "part", seq: 0, total: 4, final: true, data: bytes(5) });
  assertCodecError(() => decodePeerFrame(over), /data: 5 bytes, more than the total of 4/);
  // A JSON frame is still JSON (it starts with "{"), and leading whitespace is still JSON.
  assert.deepEqual(decodePeerFrame(te.encode(' {"kind":"msgs","msgs":[]}')), {
    kind: "msgs",
    msgs: [],
  });
});

Deno.test("parts: reassembly refuses parts out of order, missing, inconsistent or too large", () => {
  const payload = bytes(50);
  const parts = [...splitParts(payload, 10)]; // 5 parts
  const refuse = (seqs: PartFrame[], message: RegExp, max = 50) => {
    const a = new PartAssembler(max);
    assertCodecError(() => {
      for (const p of seqs) a.push(p);
    }, message);
    assert.equal(a.inProgress, false, "a refusal drops what was held");
    assert.equal(a.buffered, 0);
    if (max < payload.length) return;
    // It starts over at part 0.
    for (const p of parts.slice(0, -1)) assert.equal(a.push(p), null);
    assert.deepEqual(a.push(parts.at(-1)!), payload);
  };
  refuse([parts[1]], /part 1 without a part 0/);
  refuse([parts[0], parts[2]], /part 2 where part 1 was expected/);
  refuse([parts[0], parts[1], parts[1]], /part 1 where part 2 was expected/);
  refuse([parts[0], parts[0]], /part 0 where part 1 was expected/);
  // A missing part: the final one arrives early.
  refuse([parts[0], parts[1], { ...parts[4], seq: 2 }], /marked final after 30 of 50 bytes/);
  // The bytes add up to the total, but the part is not marked final.
  refuse(
    [...parts.slice(0, 4), { ...parts[4], final: false }],
    /completes the 50 bytes but is not marked final/,
  );
  refuse([parts[0], { ...parts[1], total: 60 }], /declares a total of 60, its first part 50/);
  refuse(
    [parts[0], { kind: "part", seq: 1, total: 50, final: false, data: bytes(41) }],
    /brings 51 bytes, more than the total/,
  );
  refuse([{ ...parts[0], data: new Uint8Array(0) }], /empty data/);
  // Over the bound: refused at the first part, before anything is held.
  refuse([parts[0]], /declares a message of 50 bytes, more than the limit of 49/, 49);
  const big = new PartAssembler();
  assertCodecError(
    () =>
      big.push({
        kind: "part",
        seq: 0,
        total: MAX_PEER_MESSAGE_BYTES + 1,
        final: false,
        data: bytes(1),
      }),
    /more than the limit/,
  );
  assert.equal(big.buffered, 0);
  // The default part size fits a frame with room to spare; the default bound exceeds a frame.
  assert.ok(PEER_PART_BYTES < MAX_FRAME_BYTES && MAX_PEER_MESSAGE_BYTES > MAX_FRAME_BYTES);
});

// ---------------------------------------------------------------------------------------------
// Over real TCP

const HOST = "127.0.0.1";
const CLUSTER = "9a9a9a9a9a9a9a9a";
const KEY = new Uint8Array(32).fill(7);

/** An update whose value has `n` bytes (every byte value, so JSON escapes some). */
function bigUpdate(seq: number, n: number): PeerMessage {
  let value = "";
  for (let i = 0; i < n; i++) value += String.fromCharCode((i * 31) & 0xff);
  return {
    type: "update",
    entry: {
      view: 1,
      ts: seq,
      origin: 1,
      seq,
      cmd: { op: { argv: ["SET", `k${seq}`, value], time: 1 } },
    },
  };
}

const probe = (round: number): PeerMessage => ({ type: "probe", view: 1, ts: 1, round });

/**
 * A listening {@link PeerServer} as replica 2 of {@link CLUSTER} on loopback (`options` added or
 * overriding), and the batches it delivers, in order.
 */
function listening(options: Partial<PeerServerOptions> = {}) {
  const got: PeerMessage[][] = [];
  const server = new PeerServer({
    hostname: HOST,
    port: 0,
    self: 2,
    cluster: CLUSTER,
    log: SILENT,
    onMessages: (_from, msgs) => got.push(msgs),
    ...options,
  });
  server.listen();
  return { server, got };
}

/** `f` as it goes on the wire: one frame. */
const frame = (f: PeerFrame) => encodeFrame(encodePeerFrame(f));

/** The hello frame of replica `from` of {@link CLUSTER}. */
const hello = (from: number) => frame({ kind: "hello", from, cluster: CLUSTER });

/** Writes all of `bytes` to `conn`. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

for (const keyed of [false, true]) {
  Deno.test(
    `parts: a link sends a message of many parts ${
      keyed ? "(cluster key: every part MAC'd)" : "(no key)"
    }, in order, past a queue bound far below its size`,
    async () => {
      const { server, got } = listening(keyed ? { clusterKey: KEY } : {});
      const link = new PeerLink({
        self: 1,
        peer: 2,
        hostname: HOST,
        port: server.addr.port,
        cluster: CLUSTER,
        log: SILENT,
        onUp: () => {},
        partBytes: 4096,
        maxQueuedBytes: 32 * 1024,
        ...(keyed ? { clusterKey: KEY } : {}),
      });
      try {
        link.start();
        await waitFor(() => link.up && server.connectedPeers.includes(1), {
          message: "the link to come up",
        });
        const big = bigUpdate(1, 300_000); // ~630 KB of JSON: ~150 parts, 20x the queue bound
        const bigger = bigUpdate(2, 5_000); // ~11 KB: 3 parts
        assert.ok(link.send([probe(1)]), "a small batch before");
        assert.ok(link.send([big]), "the large batch is not dropped by the queue bound");
        assert.ok(link.send([probe(2)]), "a small batch waits behind it");
        assert.ok(link.send([bigger, probe(3)]), "a second large batch, within the bound");
        await waitFor(() => got.length === 4, { message: "all four batches", timeoutMs: 20_000 });
        assert.deepEqual(got, [[probe(1)], [big], [probe(2)], [bigger, probe(3)]]);
        assert.ok(link.up, "the link stayed up");
        assert.deepEqual(server.connectedPeers, [1]);
        // A second large message queued behind one in progress that passes the bound drops the
        // connection (the core resends after the reconnect); the link comes back.
        const attempts = link.attempts;
        assert.ok(link.send([bigUpdate(3, 300_000)]));
        assert.equal(link.send([bigUpdate(4, 300_000)]), false, "past the queue bound");
        await waitFor(() => link.attempts > attempts && link.up, {
          message: "the link to reconnect",
        });
      } finally {
        await link.close();
        await server.close();
      }
    },
  );
}

/** Connects to `port`, writes `frames` after a hello, and waits until the server closes. */
async function sendRaw(
  port: number,
  frames: Uint8Array[],
  what: string,
  from = 5,
): Promise<void> {
  const conn = await Deno.connect({ hostname: HOST, port });
  try {
    for (const f of [hello(from), ...frames]) await writeAll(conn, f);
    const buf = new Uint8Array(64);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), 5000)));
    try {
      const n = await Promise.race([conn.read(buf).catch(() => null), late]);
      assert.equal(n, null, `${what}: the server closes the connection (and writes nothing)`);
    } finally {
      clearTimeout(timer);
    }
  } finally {
    conn.close();
  }
}

Deno.test("parts: a server closes a connection whose parts break the rules", async () => {
  const { server, got } = listening({ maxMessageBytes: 1000 });
  const msgs = encodePeerFrame({ kind: "msgs", msgs: [probe(1), probe(2)] });
  const parts = [...splitParts(msgs, 8)].map(frame);
  try {
    // Each connection is closed; only the whole message of the last one is delivered.
    const cases: [string, Uint8Array[]][] = [
      ["out of order", [parts[0], parts[2]]],
      ["a missing part 0", [parts[1]]],
      ["a msgs frame between parts", [parts[0], frame({ kind: "msgs", msgs: [probe(9)] })]],
      ["over the bound", [
        frame({ kind: "part", seq: 0, total: 1001, final: false, data: bytes(8) }),
      ]],
      [
        "parts of a hello",
        [...splitParts(
          encodePeerFrame({
            kind: "hello",
            from: 5,
            cluster: CLUSTER,
          }),
          8,
        )].map(frame),
      ],
      ["a good message, then a bad part", [...parts, parts[1]]],
    ];
    for (const [what, frames] of cases) await sendRaw(server.addr.port, frames, what);
    assert.deepEqual(got, [[probe(1), probe(2)]], "only the good message was delivered");
  } finally {
    await server.close();
  }
});

Deno.test("parts: a server bounds the unfinished parts of all connections together", async () => {
  const { server, got } = listening({ maxMessageBytes: 1000, maxPartsHeldBytes: 100 });
  // Replica 5 holds 60 bytes of an unfinished 200-byte message and keeps its connection open.
  const holder = await Deno.connect({ hostname: HOST, port: server.addr.port });
  try {
    await writeAll(holder, hello(5));
    await writeAll(
      holder,
      frame({ kind: "part", seq: 0, total: 200, final: false, data: bytes(60) }),
    );
    await waitFor(() => server.partsHeldBytes === 60, { message: "replica 5's part held" });
    // Replica 6's 60 bytes would make 120 held: refused, its connection closed.
    await sendRaw(
      server.addr.port,
      [frame({ kind: "part", seq: 0, total: 200, final: false, data: bytes(60) })],
      "past the bound of all connections",
      6,
    );
    assert.deepEqual(got, []);
  } finally {
    holder.close();
  }
  // Replica 5's bytes are released with its connection: a 90-byte message in parts now passes.
  await waitFor(() => !server.connectedPeers.includes(5), { message: "replica 5 to go" });
  assert.equal(server.partsHeldBytes, 0);
  const msgs = encodePeerFrame({ kind: "msgs", msgs: [probe(7)] });
  assert.ok(msgs.length > 40 && msgs.length <= 100, `${msgs.length} bytes`);
  const conn = await Deno.connect({ hostname: HOST, port: server.addr.port });
  try {
    await writeAll(conn, hello(6));
    for (const p of splitParts(msgs, 16)) await writeAll(conn, frame(p));
    await waitFor(() => got.length === 1, { message: "the message in parts to arrive" });
    assert.deepEqual(got, [[probe(7)]]);
    assert.equal(server.partsHeldBytes, 0);
  } finally {
    conn.close();
    await server.close();
  }
});
