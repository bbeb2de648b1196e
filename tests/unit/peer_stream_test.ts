/**
 * Streamed peer messages as `piece` frames (`src/net/peer_stream.ts`): documents at and around the
 * piece boundary (split across frames and not, a frame boundary inside a UTF-8 character), the
 * piece frame's wire form and header checked field by field, the assembler and everything it
 * refuses (a piece out of order, a missing piece 0, a document or message over its bound, a
 * document that is not UTF-8, not JSON or not a valid next piece, documents after the value is
 * complete), a real {@link PeerServer} closing a connection whose pieces break the rules and
 * bounding the undecoded documents of all connections together, and a real {@link PeerLink}
 * streaming a NEWVIEW whose snapshot holds 200,000 records to a real server over loopback TCP
 * (with and without a cluster key), with the messages sent after it arriving after it.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  CodecError,
  decodePeerFrame,
  encodePeerFrame,
  msgsToWire,
  type PeerFrame,
  PIECE_HEADER_BYTES,
  type PieceFrame,
} from "../../src/net/peer_codec.ts";
import { PieceAssembler, streamFrames } from "../../src/net/peer_stream.ts";
import { JsonJoiner, splitJson } from "../../src/codec/json_split.ts";
import { encodeFrame } from "../../src/net/frame.ts";
import { PeerLink, type PeerLinkOptions } from "../../src/net/peer_link.ts";
import { PeerServer, type PeerServerOptions } from "../../src/net/peer_server.ts";
import type { PeerMessage } from "../../src/core/types.ts";
import { SILENT } from "../../src/log/logger.ts";
import { waitFor } from "../support/cluster.ts";
import {
  MAX_FRAME_BYTES,
  MAX_PEER_DOC_BYTES,
  MAX_PEER_PIECES_HELD_BYTES,
  MAX_PEER_STREAM_BYTES,
  PEER_PIECE_BYTES,
} from "../../src/limits.ts";

const te = new TextEncoder();

function assertCodecError(f: () => unknown, message: RegExp): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof CodecError, `expected CodecError, got ${err}`);
    assert.match(err.message, message);
    return true;
  });
}

/** A piece frame (`final` implies `docEnd`, as on the wire). */
function piece(
  seq: number,
  data: Uint8Array | string,
  end: "doc" | "final" | "none" = "none",
): PieceFrame {
  return {
    kind: "piece",
    seq,
    docEnd: end !== "none",
    final: end === "final",
    data: typeof data === "string" ? te.encode(data) : data,
  };
}

/** The documents `frames` carry, as the receiver sees them (bytes joined up to each doc end). */
function documents(frames: readonly PieceFrame[]): string[] {
  const docs: string[] = [];
  let bytes: number[] = [];
  for (const f of frames) {
    bytes.push(...f.data);
    if (f.docEnd) {
      docs.push(new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes)));
      bytes = [];
    }
  }
  assert.deepEqual(bytes, [], "bytes after the last document end");
  return docs;
}

/** Streams `wire`, encodes and decodes every frame, and joins them; returns frames and value. */
function throughPieces(wire: unknown, pieceBytes: number, assembler = new PieceAssembler()) {
  const frames = [...streamFrames(wire, pieceBytes)];
  const results: unknown[] = [];
  for (const f of frames) {
    const decoded = decodePeerFrame(encodePeerFrame(f));
    assert.deepEqual(decoded, f, "a piece frame round-trips");
    results.push(assembler.push(decoded as PieceFrame));
    if (!f.final) assert.equal(assembler.takeDocuments(), undefined, "no documents mid-message");
  }
  assert.ok(results.slice(0, -1).every((r) => r === undefined), "nothing before the final frame");
  // Kept for a frame holding one NEWVIEW message only (the documents a replica logs).
  const w = wire as { kind?: unknown; msgs?: { type?: unknown }[] } | null;
  const newview = w?.kind === "msgs" && w.msgs?.length === 1 && w.msgs[0].type === "newview";
  const docs = assembler.takeDocuments()?.map((d) => new TextDecoder().decode(d));
  assert.deepEqual(docs, newview ? documents(frames) : undefined, "the documents it came in");
  assert.equal(assembler.takeDocuments(), undefined, "the documents are taken once");
  assert.equal(assembler.inProgress, false);
  assert.equal(assembler.buffered, 0);
  return { frames, value: results.at(-1) };
}

/** The value that the documents `docs` (UTF-8 bytes) join to. */
function joined(docs: readonly Uint8Array[]): unknown {
  const joiner = new JsonJoiner();
  for (const doc of docs) joiner.push(new TextDecoder("utf-8", { fatal: true }).decode(doc));
  return joiner.value();
}

/** Checks the frames of one streamed value: numbering, flags, sizes, and the documents. */
function checkFrames(frames: readonly PieceFrame[], wire: unknown, pieceBytes: number): void {
  assert.deepEqual(frames.map((f) => f.seq), frames.map((_, i) => i), "seq 0, 1, 2, ...");
  assert.deepEqual(frames.map((f) => f.final), frames.map((_, i) => i === frames.length - 1));
  assert.ok(frames.at(-1)!.docEnd, "the final frame ends its document");
  assert.ok(frames.every((f) => f.data.length >= 1 && f.data.length <= pieceBytes));
  const docs = [...splitJson(wire, { pieceChars: Math.max(1, pieceBytes >> 2) })];
  assert.deepEqual(documents(frames), docs, "the frames carry the documents of splitJson");
  // A document is cut into full pieces and one rest: ceil(bytes / pieceBytes) frames each.
  const perDoc = docs.map((d) => Math.ceil(te.encode(d).length / pieceBytes));
  assert.equal(frames.length, perDoc.reduce((a, b) => a + b, 0));
}

Deno.test("pieces: documents around the piece boundary are split and joined exactly", () => {
  const P = 32;
  // One document `{"v":"<s>","h":[]}` is s.length + 15 bytes: sizes around 1, 2 and 3 pieces.
  for (const n of [16, P - 1, P, P + 1, 2 * P - 1, 2 * P, 2 * P + 1, 3 * P + 5]) {
    const wire = "x".repeat(n - 15);
    const { frames, value } = throughPieces(wire, P);
    assert.equal(te.encode(JSON.stringify({ v: wire, h: [] })).length, n);
    checkFrames(frames, wire, P);
    assert.equal(frames.length, Math.ceil(n / P), `frames of a ${n}-byte document`);
    assert.equal(value, wire);
  }
  // Multi-byte characters: frame boundaries fall inside them; the bytes are joined before decoding.
  for (const P of [1, 2, 3, 5, 7]) {
    const wire = { s: "é😀\u2028x".repeat(5) };
    const { frames, value } = throughPieces(wire, P);
    checkFrames(frames, wire, P);
    assert.deepEqual(value, wire);
  }
  // Several documents (large arrays in batches), some split across frames, some not.
  const wire = msgsToWire([{
    type: "newview",
    view: 2,
    ts: 9,
    members: [1, 2, 3],
    install: {
      from: 1,
      entries: [],
      snapshot: {
        index: 4,
        last: null,
        state: { keys: Array.from({ length: 300 }, (_, i) => [`k${i}`, "v".repeat(i % 50)]) },
      },
    },
  }]);
  for (const P of [8, 64, 200, 4096]) {
    const { frames, value } = throughPieces(wire, P);
    checkFrames(frames, wire, P);
    assert.deepEqual(value, wire);
    const docEnds = frames.filter((f) => f.docEnd).length;
    assert.ok(docEnds > 1, `${docEnds} documents with ${P}-byte pieces`);
    if (P < 4096) assert.ok(frames.length > docEnds, "some documents span frames");
  }
  // A value of one small document is one frame.
  const one = [...streamFrames({ kind: "msgs", msgs: [] })];
  assert.equal(one.length, 1);
  assert.ok(one[0].final && one[0].docEnd);
  assert.throws(() => [...streamFrames(1, 0)], RangeError);
  assert.throws(() => [...streamFrames(1, 1.5)], RangeError);
});

Deno.test("pieces: the wire form of a piece frame, and its header checked field by field", () => {
  const data = te.encode("abc");
  const wire = encodePeerFrame(piece(0x01020304, data, "doc"));
  assert.equal(PIECE_HEADER_BYTES, 6);
  assert.deepEqual([...wire], [0, 2, 1, 2, 3, 4, 97, 98, 99]);
  assert.deepEqual(decodePeerFrame(wire), piece(0x01020304, data, "doc"));
  // Flags: 0 for a frame inside a document, 3 for the final one (it ends its document too).
  assert.equal(encodePeerFrame(piece(7, data))[1], 0);
  assert.equal(encodePeerFrame(piece(7, data, "final"))[1], 3);
  for (const end of ["none", "doc", "final"] as const) {
    assert.deepEqual(decodePeerFrame(encodePeerFrame(piece(7, data, end))), piece(7, data, end));
  }
  const top = encodePeerFrame(piece(0xffffffff, data));
  assert.deepEqual([...top.subarray(2, 6)], [0xff, 0xff, 0xff, 0xff]);
  assert.equal((decodePeerFrame(top) as PieceFrame).seq, 0xffffffff);

  const withFlags = (flags: number) => {
    const copy = wire.slice();
    copy[1] = flags;
    return copy;
  };
  for (const flags of [0x04, 0x08, 0x80, 0xff, 0x06]) {
    assertCodecError(() => decodePeerFrame(withFlags(flags)), /flags: unknown flag bits/);
  }
  assertCodecError(() => decodePeerFrame(withFlags(0x01)), /final frame must end its document/);
  // Short payloads: a header without data (what an empty piece encodes to), or less.
  assertCodecError(
    () => decodePeerFrame(encodePeerFrame(piece(0, new Uint8Array(0), "final"))),
    /6 bytes, expected a 6-byte header and at least 1 data byte/,
  );
  for (let n = 1; n <= PIECE_HEADER_BYTES; n++) {
    assertCodecError(() => decodePeerFrame(wire.subarray(0, n)), /piece frame: \d bytes/);
  }
  // Any other frame is a value frame: its tag, then one binary value; a JSON frame of an earlier
  // release (it starts with "{" or whitespace) is refused.
  assert.deepEqual(decodePeerFrame(encodePeerFrame({ kind: "msgs", msgs: [] })), {
    kind: "msgs",
    msgs: [],
  });
  assert.equal(encodePeerFrame({ kind: "msgs", msgs: [] })[0], 0x01);
  assertCodecError(
    () => decodePeerFrame(te.encode(' {"kind":"msgs","msgs":[]}')),
    /peer frame has the unknown tag 32/,
  );
});

Deno.test("pieces: the assembler refuses pieces out of order, missing or past a bound", () => {
  const wire = { a: Array.from({ length: 100 }, (_, i) => i) };
  const frames = [...streamFrames(wire, 16)];
  assert.ok(frames.length > 10 && frames.filter((f) => f.docEnd).length > 3);
  const refuse = (seq: PieceFrame[], message: RegExp, a = new PieceAssembler(), again = true) => {
    assertCodecError(() => {
      for (const f of seq) a.push(f);
    }, message);
    assert.equal(a.inProgress, false, "a refusal drops what was held");
    assert.equal(a.buffered, 0);
    // It starts over at piece 0.
    if (again) assert.deepEqual(throughPieces(wire, 16, a).value, wire);
  };
  refuse([frames[1]], /piece 1 without a piece 0 before it/);
  refuse([frames[0], frames[2]], /piece 2 where piece 1 was expected/);
  refuse([frames[0], frames[1], frames[1]], /piece 1 where piece 2 was expected/);
  refuse([frames[0], frames[0]], /piece 0 where piece 1 was expected/);
  refuse([...frames, frames[0], frames[3]], /piece 3 where piece 1 was expected/);
  refuse([{ ...frames[0], data: new Uint8Array(0) }], /empty data/);
  refuse([frames[0], { ...frames[1], data: new Uint8Array(0) }], /empty data/);
  // A document over the bound is refused at the piece that passes it, before it is held; many
  // documents each within it make a message larger than it.
  const docBytes = Math.max(...documents(frames).map((d) => te.encode(d).length));
  const total = frames.reduce((n, f) => n + f.data.length, 0);
  assert.ok(total > 2 * docBytes, `${total} bytes in documents of at most ${docBytes}`);
  assert.deepEqual(throughPieces(wire, 16, new PieceAssembler(docBytes)).value, wire);
  const small = new PieceAssembler(docBytes - 1);
  refuse(frames, new RegExp(`document exceeds ${docBytes - 1} bytes`), small, false);
  // The message bound counts every document.
  assert.deepEqual(throughPieces(wire, 16, new PieceAssembler(docBytes, total)).value, wire);
  refuse(
    frames,
    new RegExp(`message exceeds ${total - 1} bytes`),
    new PieceAssembler(1e6, total - 1),
    false,
  );
  const a = new PieceAssembler(100, 1000);
  a.push(piece(0, new Uint8Array(100)));
  assert.equal(a.buffered, 100);
  assertCodecError(() => a.push(piece(1, new Uint8Array(1))), /document exceeds 100 bytes/);
  assert.throws(() => new PieceAssembler(0), RangeError);
  assert.throws(() => new PieceAssembler(10, 1.5), RangeError);
  // The defaults: a piece fits a frame; a document is far larger; a message larger still.
  assert.ok(PEER_PIECE_BYTES < MAX_FRAME_BYTES && MAX_PEER_DOC_BYTES > MAX_FRAME_BYTES);
  assert.ok(MAX_PEER_STREAM_BYTES >= MAX_PEER_DOC_BYTES);
  assert.ok(MAX_PEER_PIECES_HELD_BYTES >= MAX_PEER_DOC_BYTES);
});

Deno.test("pieces: the assembler refuses documents that are not a valid next piece", () => {
  const refuse = (seq: PieceFrame[], message: RegExp) => {
    const a = new PieceAssembler();
    assertCodecError(() => {
      for (const f of seq) a.push(f);
    }, message);
    assert.equal(a.inProgress, false);
    assert.equal(a.buffered, 0);
  };
  const first = '{"v":{"a":[]},"h":[[["a"],2]]}';
  refuse([piece(0, new Uint8Array([0x7b, 0xff, 0x7d]), "final")], /not valid UTF-8/);
  refuse([piece(0, "{"), piece(1, new Uint8Array([0xc3]), "final")], /not valid UTF-8/);
  refuse([piece(0, "{", "final")], /streamed message: piece is not valid JSON/);
  refuse([piece(0, "[1]", "final")], /streamed message: piece is not an object/);
  refuse([piece(0, '{"v":1}', "final")], /streamed message: piece: missing "h"/);
  refuse([piece(0, first, "doc"), piece(1, '{"p":1,"a":[1]}', "final")], /not announced/);
  refuse([piece(0, first, "doc"), piece(1, '{"p":0,"a":[1,2,3]}', "final")], /more than/);
  // The final frame before every hole is full; a document after the value is complete.
  refuse([piece(0, first, "final")], /1 holes are not filled/);
  refuse([piece(0, first, "doc"), piece(1, '{"p":0,"a":[1]}', "final")], /not filled/);
  refuse([piece(0, '{"v":1,"h":[]}', "doc")], /more documents after the value was complete/);
  refuse(
    [piece(0, first, "doc"), piece(1, '{"p":0,"a":[1,2]}', "doc")],
    /more documents after the value was complete/,
  );
  // The same documents, correctly flagged, pass.
  const a = new PieceAssembler();
  assert.equal(a.push(piece(0, first.slice(0, 5))), undefined);
  assert.equal(a.buffered, 5);
  assert.equal(a.push(piece(1, first.slice(5), "doc")), undefined);
  assert.equal(a.buffered, 0, "a decoded document is not held as bytes");
  assert.ok(a.inProgress);
  assert.deepEqual(a.push(piece(2, '{"p":0,"a":[1,2]}', "final")), { a: [1, 2] });
  assert.equal(a.inProgress, false);
});

// ---------------------------------------------------------------------------------------------
// Over real TCP

const HOST = "127.0.0.1";
const CLUSTER = "9a9a9a9a9a9a9a9a";
const KEY = new Uint8Array(32).fill(7);

const probe = (round: number): PeerMessage => ({ type: "probe", view: 1, ts: 1, round });
const frame = (f: PeerFrame) => encodeFrame(encodePeerFrame(f));
const hello = (from: number) => frame({ kind: "hello", from, cluster: CLUSTER });

/** A peer server on a free port (replica 2), what it delivered, and pieces seen in progress. */
interface Fixture {
  server: PeerServer;
  port: number;
  got: PeerMessage[][];
  progress: number;
  /** What `prepare` was given as each frame's documents, in order (unless `options` set one). */
  documents: (readonly Uint8Array[] | undefined)[];
}

/** Runs `fn` with a listening {@link PeerServer}, then closes it. */
async function withServer(
  options: Partial<PeerServerOptions>,
  fn: (f: Fixture) => Promise<void>,
): Promise<void> {
  const got: PeerMessage[][] = [];
  const f = { got, progress: 0, documents: [] } as unknown as Fixture;
  f.server = new PeerServer({
    hostname: HOST,
    port: 0,
    self: 2,
    cluster: CLUSTER,
    log: SILENT,
    onMessages: (_from, msgs) => {
      got.push(msgs);
    },
    onProgress: () => f.progress++,
    prepare: (_from, _msgs, documents) => {
      f.documents.push(documents);
      return undefined;
    },
    ...options,
  });
  f.server.listen();
  f.port = f.server.addr.port;
  try {
    await fn(f);
  } finally {
    await f.server.close();
  }
}

/** Runs `fn` with a server and an up {@link PeerLink} from replica 1 to it, then closes both. */
async function withLink(
  keyed: boolean,
  options: Partial<PeerLinkOptions>,
  fn: (f: Fixture, link: PeerLink) => Promise<void>,
): Promise<void> {
  await withServer(keyed ? { clusterKey: KEY } : {}, async (f) => {
    const link = new PeerLink({
      self: 1,
      peer: 2,
      hostname: HOST,
      port: f.port,
      cluster: CLUSTER,
      log: SILENT,
      onUp: () => {},
      ...(keyed ? { clusterKey: KEY } : {}),
      ...options,
    });
    try {
      link.start();
      await waitFor(() => link.up && f.server.connectedPeers.includes(1), {
        message: "the link to come up",
      });
      await fn(f, link);
    } finally {
      await link.close();
    }
  });
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Connects to `port`, writes `frames` after a hello, and waits until the server closes. */
async function sendRaw(port: number, frames: Uint8Array[], what: string, from = 5): Promise<void> {
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

/**
 * A snapshot state shaped like the store's: `records` keys, every 1,000th a hash whose field
 * list is longer than a batch threshold (a large array inside an element of a large array).
 */
function bigState(records: number): unknown {
  const keys: unknown[] = [];
  for (let i = 0; i < records; i++) {
    keys.push(
      i % 1000 === 0
        ? [`h${i}`, "hash", null, i, Array.from({ length: 200 }, (_, j) => `f${j}\u00ff${i}`)]
        : [`key:${i}`, "string", i % 7 === 0 ? 1_700_000_000_000 + i : null, i, `value\x00${i}`],
    );
  }
  return { format: 2, time: 1, keyspace: { keys, version: records }, clients: [] };
}

function newview(records: number): PeerMessage {
  return {
    type: "newview",
    view: 3,
    ts: 40,
    members: [1, 2, 3],
    install: {
      from: 1,
      entries: [],
      snapshot: { index: 17, last: { view: 2, ts: 39, origin: 1 }, state: bigState(records) },
    },
  };
}

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

for (const keyed of [false, true]) {
  Deno.test(
    `pieces: a link streams a NEWVIEW carrying 200,000 records ${
      keyed ? "(cluster key: every piece MAC'd)" : "(no key)"
    }; what is sent after it arrives after it`,
    async () => {
      // Pieces of 64 KiB (the snapshot takes hundreds), a queue bound far below the message.
      await withLink(
        keyed,
        { pieceBytes: 64 * 1024, maxQueuedBytes: 256 * 1024 },
        async (f, link) => {
          const view = newview(200_000);
          const big = bigUpdate(1, 300_000); // a batch over a piece without a snapshot: streamed too
          assert.ok(link.send([probe(1)]), "a small batch before");
          assert.ok(
            link.send([probe(2), view, probe(3)]),
            "the snapshot is not dropped by the bound",
          );
          assert.ok(link.send([probe(4)]), "a small batch waits behind it");
          assert.ok(link.send([big, probe(5)]), "a large batch, streamed behind it");
          assert.ok(link.send([probe(6)]));
          await waitFor(() => f.got.length === 7, {
            message: "all seven frames",
            timeoutMs: 60_000,
          });
          assert.deepEqual(f.got.map((m) => m.map((x) => x.type)), [
            ["probe"],
            ["probe"],
            ["newview"],
            ["probe"],
            ["probe"],
            ["update", "probe"],
            ["probe"],
          ]);
          assert.deepEqual(f.got, [
            [probe(1)],
            [probe(2)],
            [view],
            [probe(3)],
            [probe(4)],
            [big, probe(5)],
            [probe(6)],
          ]);
          assert.ok(f.progress > 100, `onProgress called for the pieces (${f.progress} times)`);
          // The NEWVIEW's frame comes with the documents it came in, which join to its value; the
          // other streamed frame (an update and a probe) and the frames sent whole come without.
          assert.deepEqual(
            f.documents.map((docs) => docs === undefined ? undefined : joined(docs)),
            f.got.map((msgs, i) => i === 2 ? msgsToWire(msgs) : undefined),
          );
          assert.ok(link.up, "the link stayed up");
          assert.deepEqual(f.server.connectedPeers, [1]);
          assert.equal(f.server.piecesHeldBytes, 0);
        },
      );
    },
  );
}

Deno.test("pieces: a link drops the connection when too many streams wait, then reconnects", async () => {
  await withLink(false, { pieceBytes: 1024 }, async (f, link) => {
    const attempts = link.attempts;
    // The first stream is being written; four may wait behind it; a fifth drops the connection
    // (the core resends what is unacknowledged after the reconnect).
    for (let i = 0; i < 5; i++) assert.ok(link.send([bigUpdate(i + 1, 100_000)]), `stream ${i}`);
    assert.equal(link.send([bigUpdate(9, 100_000)]), false, "past the bound of waiting streams");
    await waitFor(() => link.attempts > attempts && link.up, { message: "the link to reconnect" });
    assert.ok(link.send([probe(1)]));
    await waitFor(() => f.got.some((m) => m.length === 1 && m[0].type === "probe"), {
      message: "a message on the new connection",
    });
  });
});

Deno.test("pieces: a server closes a connection whose pieces break the rules", async () => {
  await withServer({ maxDocBytes: 200 }, async (f) => {
    const good = [...streamFrames(msgsToWire([probe(1), probe(2)]), 8)];
    assert.ok(documents(good).every((d) => d.length < 200));
    const pieces = good.map(frame);
    assert.ok(pieces.length > 3);
    const doc = (text: string) => frame(piece(0, text, "final"));
    // Each connection is closed; only the whole message of the last one is delivered.
    const cases: [string, Uint8Array[]][] = [
      ["out of order", [pieces[0], pieces[2]]],
      ["a missing piece 0", [pieces[1]]],
      ["a msgs frame between pieces", [pieces[0], frame({ kind: "msgs", msgs: [probe(9)] })]],
      ["a hello between pieces", [pieces[0], hello(5)]],
      ["a document over the bound", [frame(piece(0, new Uint8Array(201)))]],
      ["a document that is not JSON", [doc("{")]],
      ["a document that is not a piece", [doc('{"kind":"msgs","msgs":[]}')]],
      ["unknown flags", [
        new Uint8Array([0, 0, 0, 7, 0, 0x80, 0, 0, 0, 0, 0x7b]),
      ]],
      ["pieces carrying a hello", [
        doc(`{"v":{"kind":"hello","from":5,"cluster":"${CLUSTER}"},"h":[]}`),
      ]],
      ["pieces carrying a bad message", [
        doc('{"v":{"kind":"msgs","msgs":[{"type":"bogus"}]},"h":[]}'),
      ]],
      ["a good message, then a bad piece", [...pieces, pieces[1]]],
    ];
    for (const [what, frames] of cases) await sendRaw(f.port, frames, what);
    assert.deepEqual(f.got, [[probe(1), probe(2)]], "only the good message was delivered");
    // The good message's pieces but its last, and the first piece of three bad connections.
    assert.equal(f.progress, good.length - 1 + 3, "onProgress for every accepted non-final piece");
    assert.equal(f.server.piecesHeldBytes, 0);
  });
});

Deno.test("pieces: a server bounds the undecoded documents of all connections together", async () => {
  await withServer({ maxDocBytes: 1000, maxPiecesHeldBytes: 100 }, async (f) => {
    // Replica 5 holds 60 bytes of an unfinished document and keeps its connection open.
    const holder = await Deno.connect({ hostname: HOST, port: f.port });
    try {
      await writeAll(holder, hello(5));
      await writeAll(holder, frame(piece(0, '{"v":{"a":[]},"h":[[["a"],3]]}')));
      await writeAll(holder, frame(piece(1, " ".repeat(30))));
      await waitFor(() => f.server.piecesHeldBytes === 60, { message: "replica 5's piece held" });
      // Replica 6's 60 bytes would make 120 held: refused, its connection closed.
      await sendRaw(f.port, [frame(piece(0, " ".repeat(60)))], "past the bound of all", 6);
      // Once replica 5's document ends it is decoded, and its bytes are no longer held, though
      // its message goes on.
      await writeAll(holder, frame(piece(2, " ", "doc")));
      await waitFor(() => f.server.piecesHeldBytes === 0, { message: "the document decoded" });
      assert.ok(f.server.connectedPeers.includes(5));
      await writeAll(holder, frame(piece(3, " ".repeat(70))));
      await waitFor(() => f.server.piecesHeldBytes === 70, { message: "the next document held" });
      assert.deepEqual(f.got, []);
    } finally {
      holder.close();
    }
    // Replica 5's bytes are released with its connection: a message in pieces now passes.
    await waitFor(() => !f.server.connectedPeers.includes(5), { message: "replica 5 to go" });
    assert.equal(f.server.piecesHeldBytes, 0);
    const conn = await Deno.connect({ hostname: HOST, port: f.port });
    try {
      await writeAll(conn, hello(6));
      const frames = [...streamFrames(msgsToWire([probe(7)]), 30)];
      assert.ok(frames.length >= 3 && documents(frames)[0].length <= 100);
      for (const p of frames) await writeAll(conn, frame(p));
      await waitFor(() => f.got.length === 1, { message: "the message in pieces to arrive" });
      assert.deepEqual(f.got, [[probe(7)]]);
      assert.equal(f.server.piecesHeldBytes, 0);
    } finally {
      conn.close();
    }
  });
});

/**
 * Options for a server whose `prepare` holds the frame of probe round 1 until `release()` (a
 * large state restored in slices); the rounds delivered to `onMessages` go to `got`, in order.
 */
function holdingRoundOne() {
  const got: number[] = [];
  let release = () => {};
  const busy = new Promise<void>((resolve) => release = resolve);
  const roundOf = (msgs: PeerMessage[]) => (msgs[0] as { round: number }).round;
  let prepared = 0;
  const options: Partial<PeerServerOptions> = {
    onMessages: (_from, msgs) => {
      got.push(roundOf(msgs));
    },
    prepare: (_from, msgs) => {
      if (roundOf(msgs) !== 1) return undefined;
      prepared++;
      return busy;
    },
  };
  return { got, options, release: () => release(), prepared: () => prepared };
}

Deno.test("peer server: frames after one still being prepared wait for it, in order", async () => {
  const { got, options, release } = holdingRoundOne();
  await withServer(options, async (f) => {
    const conn = await Deno.connect({ hostname: HOST, port: f.port });
    try {
      await writeAll(conn, hello(1));
      for (const round of [1, 2, 3]) {
        await writeAll(conn, frame({ kind: "msgs", msgs: [probe(round)] }));
      }
      // Frames 2 and 3 have arrived but wait; so does one sent afterwards.
      await writeAll(conn, frame({ kind: "msgs", msgs: [probe(4)] }));
      await waitFor(() => f.server.connectedPeers.includes(1), { message: "the hello" });
      assert.deepEqual(got, []);
      release();
      await waitFor(() => got.length === 4, { message: "the waiting frames" });
      assert.deepEqual(got, [1, 2, 3, 4]);
    } finally {
      conn.close();
    }
  });
});

Deno.test("peer server: messages prepared on a connection replaced meanwhile are dropped", async () => {
  const { got, options, release, prepared } = holdingRoundOne();
  await withServer(options, async (f) => {
    const old = await Deno.connect({ hostname: HOST, port: f.port });
    const fresh = await Deno.connect({ hostname: HOST, port: f.port });
    try {
      await writeAll(old, hello(1));
      await writeAll(old, frame({ kind: "msgs", msgs: [probe(1)] }));
      await waitFor(() => prepared() === 1, { message: "the first frame being prepared" });
      // Replica 1 reconnects: the new connection replaces the old one, whose frame is still
      // being prepared, and what comes on the new one is delivered.
      await writeAll(fresh, hello(1));
      await writeAll(fresh, frame({ kind: "msgs", msgs: [probe(2)] }));
      await waitFor(() => got.length === 1, { message: "the new connection's frame" });
      release();
      // Delivering round 1 now would put it after round 2, which the peer sent later: dropped,
      // as an unread frame of a replaced connection is. A frame after the release still comes.
      await writeAll(fresh, frame({ kind: "msgs", msgs: [probe(3)] }));
      await waitFor(() => got.length === 2, { message: "the next frame" });
      assert.deepEqual(got, [2, 3]);
    } finally {
      old.close();
      fresh.close();
    }
  });
});
