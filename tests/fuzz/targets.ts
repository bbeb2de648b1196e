/**
 * The in-process fuzz targets: one per decoder a hostile client, peer or disk can reach.
 *
 * A target makes input `i` of a run from a seeded {@link Prng} (a valid input from its generator,
 * usually mutated by `mutate.ts`) and runs the decoder on it. The input must either parse or be
 * refused with the decoder's documented error; anything else (another exception, a broken
 * oracle such as "parsing in one chunk and in random chunks gives the same result") is a
 * {@link FuzzFailure}. The runner (`runner.ts`) adds the time and memory guards.
 *
 * | target           | what it feeds                                                         |
 * | ---------------- | --------------------------------------------------------------------- |
 * | `resp-request`   | `RespRequestParser` (server side), one chunk vs random chunks         |
 * | `resp-reply`     | `RespReplyParser` (client side), one chunk vs random chunks            |
 * | `binary-value`   | `decodeValue` (peer frames, WAL records): refused, or re-encodes exactly |
 * | `peer-frame`     | `FrameDecoder` + `decodePeerFrame` + `PieceAssembler`; frames round-trip |
 * | `json-split`     | `JsonJoiner` on split documents; joined values re-split and round-trip  |
 * | `peer-handshake` | a real `PeerServer` on 127.0.0.1 (hello, then frames), vs a model      |
 * | `replica`        | decoded-but-hostile messages into a real `Replica` (`check` + `step`)  |
 * | `kv-apply`       | random argv into two `KvStore`s: replies and digests stay equal         |
 * | `kv-restore`     | `KvStore.restore` with fuzzed snapshot JSON (refusal: TypeError only)   |
 * | `record-scan`    | `scanRecords` of the WAL/snapshot record framing                        |
 * | `snapshot-file`  | `decodeSnapshotFile` (the decoder of `readSnapshotFile`)                |
 * | `wal-open`       | `WriteAheadLog.open` on fuzzed segments (binary and JSON records), twice |
 * | `config`         | `parseConfig` + `resolveSettings`                                       |
 * | `settings`       | `parseSetting` / `resolveSettings` lines                                 |
 *
 * Adding a target (e.g. the ACL file parser, once `src/config/acl.ts` exists): write a
 * {@link Target} below, list it in {@link TARGETS}, and give it a corpus folder
 * `tests/fuzz/corpus/<name>/` (created on its first failure). See the `acl` hook at the end.
 *
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import { join as joinPath } from "node:path";
import { clusterId, ConfigError, parseConfig } from "../../src/config/config.ts";
import {
  parseSetting,
  resolveSettings,
  SETTING_NAMES,
  SettingError,
} from "../../src/config/settings.ts";
import { Replica } from "../../src/core/replica.ts";
import type { PeerMessage, ReplicaId } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { encodeFrame, FrameDecoder, FrameError } from "../../src/net/frame.ts";
import {
  CodecError,
  decodePeerFrame,
  encodePeerFrame,
  frameFromWire,
  msgsToWire,
  type PeerFrame,
  VALUE_TAG,
} from "../../src/net/peer_codec.ts";
import { PeerServer } from "../../src/net/peer_server.ts";
import { PieceAssembler, streamFrames } from "../../src/net/peer_stream.ts";
import { JsonJoiner, SplitError, splitJson } from "../../src/codec/json_split.ts";
import { BinaryValueError, decodeValue, encodeValue } from "../../src/codec/binary_value.ts";
import {
  RespProtocolError,
  RespReplyParser,
  RespRequestParser,
  type RespValue,
} from "../../src/net/resp.ts";
import { CorruptionError, encodeRecord, scanRecords } from "../../src/storage/record_codec.ts";
import { decodeSnapshotFile } from "../../src/storage/snapshot_file.ts";
import { groupRecords } from "../../src/storage/record_groups.ts";
import { BINARY_RECORD_TAG, WriteAheadLog } from "../../src/storage/wal.ts";
import { segmentFileName } from "../../src/storage/wal_segments.ts";
import { checkLogRecord } from "../../src/runtime/disk_storage.ts";
import { PEER_HELLO_MAX_FRAME_BYTES } from "../../src/limits.ts";
import { Prng } from "../support/prng.ts";
import { SyncCluster } from "../support/sync_cluster.ts";
import {
  binaryShapedValue,
  commandArgvs,
  configText,
  join,
  kvSnapshot,
  pickMessage,
  piecePayloads,
  recordedMessages,
  respReplies,
  respRequests,
  splitDocuments,
} from "./corpus_gen.ts";
import { encodeMutated, jsonText, mutateBytes, mutateJson, type TokenKind } from "./mutate.ts";
import { SILENT } from "../../src/log/logger.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** An input broke a target's contract: a crash, a wrong error type, or a broken oracle. */
export class FuzzFailure extends Error {
  /** Builds the failure. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FuzzFailure";
  }
}

/** One decoder under fuzz. */
export interface Target {
  /** Its name (`--target`, and the corpus folder). */
  name: string;
  /** One line: what it feeds and what must hold. */
  covers: string;
  /** Inputs per CI run (100,000 unless the target is too slow; see {@link ciNote}). */
  ciCount: number;
  /** Why {@link ciCount} is below 100,000, if it is. */
  ciNote?: string;
  /** Input `i` of a run, from its own seeded generator. */
  input(rng: Prng): Uint8Array;
  /** Runs the decoder on one input; throws {@link FuzzFailure} when the contract breaks. */
  run(input: Uint8Array): void | Promise<void>;
  /** Called once before the first input / after the last (servers, temp dirs). */
  setup?(): void | Promise<void>;
  teardown?(): void | Promise<void>;
}

type ErrorClass = abstract new (...args: never[]) => Error;

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}\n${err.stack ?? ""}`;
  return String(err);
}

/** Runs `fn`; true if it returned, false if it threw one of `allowed`; a FuzzFailure otherwise. */
function refusedOnly(fn: () => void, allowed: readonly ErrorClass[], what: string): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (err instanceof FuzzFailure) throw err;
    if (allowed.some((c) => err instanceof c)) return false;
    throw new FuzzFailure(`${what} threw instead of refusing: ${describe(err)}`, { cause: err });
  }
}

async function refusedOnlyAsync(
  fn: () => Promise<void>,
  allowed: readonly ErrorClass[],
  what: string,
): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (err) {
    if (err instanceof FuzzFailure) throw err;
    if (allowed.some((c) => err instanceof c)) return false;
    throw new FuzzFailure(`${what} threw instead of refusing: ${describe(err)}`, { cause: err });
  }
}

/** A fixed pool of valid inputs to start from and splice with (independent of the run seed). */
function pool(make: (rng: Prng) => Uint8Array, n = 48): () => Uint8Array[] {
  let items: Uint8Array[] | undefined;
  return () => (items ??= Array.from({ length: n }, (_, i) => make(new Prng(0xc0ffee + i))));
}

/**
 * The usual input shape: a valid input (fresh or from the pool), kept as is 8% of the time,
 * else byte-mutated (with `tokens`), or JSON-mutated when `json` can rebuild it from a value.
 */
function mutatedInput(
  rng: Prng,
  valid: (rng: Prng) => Uint8Array,
  items: () => Uint8Array[],
  tokens: TokenKind,
): Uint8Array {
  const base = rng.chance(0.5) ? valid(rng) : rng.pick(items());
  if (rng.chance(0.08)) return base;
  return mutateBytes(rng, base, { corpus: items(), tokens });
}

/** Deterministic chunk boundaries for `input` (from its bytes, so a saved input replays). */
function splits(input: Uint8Array): number[] {
  let h = 0x811c9dc5;
  for (let i = 0; i < input.length; i += 1 + (input.length >> 8)) {
    h = Math.imul(h ^ input[i], 16777619);
  }
  const rng = new Prng(h >>> 0);
  const cuts: number[] = [];
  let at = 0;
  while (at < input.length) {
    at += rng.chance(0.3) ? 1 : rng.int(1, 64);
    cuts.push(Math.min(at, input.length));
  }
  return cuts;
}

function chunks(input: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let from = 0;
  for (const to of splits(input)) {
    out.push(input.subarray(from, to));
    from = to;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// RESP

function parseRequests(parts: readonly Uint8Array[]): string[] {
  const p = new RespRequestParser();
  const items: string[] = [];
  for (const part of parts) {
    p.push(part);
    for (;;) {
      const item = p.next();
      if (item === null) break;
      if ("argv" in item) {
        for (const a of item.argv) {
          for (let i = 0; i < a.length; i++) {
            if (a.charCodeAt(i) > 0xff) {
              throw new FuzzFailure(`argument is not a ByteString: ${JSON.stringify(a)}`);
            }
          }
        }
        if (item.argv.length === 0) throw new FuzzFailure("empty argv returned");
        items.push(JSON.stringify(item.argv));
      } else {
        if (!item.fatal || !item.error.startsWith("ERR ")) {
          throw new FuzzFailure(`odd error item ${JSON.stringify(item)}`);
        }
        if (!p.failed) throw new FuzzFailure("a fatal error left the parser usable");
        items.push(`error`);
      }
    }
  }
  return items;
}

const respRequestItems = pool(respRequests);

const respRequest: Target = {
  name: "resp-request",
  covers: "RespRequestParser: arrays and inline commands; one chunk and random chunks agree",
  ciCount: 100_000,
  input: (rng) => mutatedInput(rng, respRequests, respRequestItems, "resp"),
  run(input) {
    let whole: string[] = [];
    let split: string[] = [];
    refusedOnly(() => void (whole = parseRequests([input])), [], "RespRequestParser (one chunk)");
    refusedOnly(
      () => void (split = parseRequests(chunks(input))),
      [],
      "RespRequestParser (chunks)",
    );
    if (!isDeepStrictEqual(whole, split)) {
      throw new FuzzFailure(
        `one chunk and random chunks disagree:\n  whole: ${whole.join(" ")}\n  split: ${
          split.join(" ")
        }`,
      );
    }
  },
};

function showReply(v: RespValue): string {
  return JSON.stringify(
    v,
    (_k, x) => (x && typeof x === "object" && "message" in x ? { err: x.message } : x),
  );
}

function parseReplies(parts: readonly Uint8Array[]): string[] {
  const p = new RespReplyParser();
  const out: string[] = [];
  for (const part of parts) {
    p.push(part);
    for (;;) {
      let v: RespValue | undefined;
      try {
        v = p.next();
      } catch (err) {
        if (err instanceof RespProtocolError) {
          out.push("error");
          // Every later call must throw the same error.
          try {
            p.next();
          } catch (again) {
            if (again !== err) throw new FuzzFailure("a later next() threw another error");
            return out;
          }
          throw new FuzzFailure("next() returned after a protocol error");
        }
        throw err;
      }
      if (v === undefined) break;
      out.push(showReply(v));
    }
  }
  return out;
}

const respReplyItems = pool(respReplies);

const respReply: Target = {
  name: "resp-reply",
  covers: "RespReplyParser: every reply type, nesting; one chunk and random chunks agree",
  ciCount: 100_000,
  input: (rng) => mutatedInput(rng, respReplies, respReplyItems, "resp"),
  run(input) {
    let whole: string[] = [];
    let split: string[] = [];
    refusedOnly(() => void (whole = parseReplies([input])), [], "RespReplyParser (one chunk)");
    refusedOnly(() => void (split = parseReplies(chunks(input))), [], "RespReplyParser (chunks)");
    if (!isDeepStrictEqual(whole, split)) {
      throw new FuzzFailure(
        `one chunk and random chunks disagree:\n  whole: ${whole.join(" ")}\n  split: ${
          split.join(" ")
        }`,
      );
    }
  },
};

// ---------------------------------------------------------------------------------------------
// Binary values (`src/codec/binary_value.ts`: the codec of peer frames and WAL records)

function hex(b: Uint8Array, max = 64): string {
  const shown = [...b.subarray(0, max)].map((x) => x.toString(16).padStart(2, "0")).join(" ");
  return b.length > max ? `${shown} ... (${b.length} bytes)` : shown;
}

/** Byte mutations of a binary value, splicing from `corpus`, with {@link binaryToken}s. */
function mutateBinary(rng: Prng, b: Uint8Array, corpus: readonly Uint8Array[]): Uint8Array {
  return mutateBytes(rng, b, { corpus, tokens: "binary" });
}

/** A value the codec carries: a peer frame's wire value, a WAL record, or a generated one. */
function binaryBase(rng: Prng): unknown {
  const r = rng.next();
  if (r < 0.35) return decodeValue(encodePeerFrame(validFrameValue(rng)), 1);
  if (r < 0.55) return persistRecord(rng);
  if (r < 0.6) return kvSnapshot(rng);
  return binaryShapedValue(rng);
}

const binaryItems = pool((rng) => encodeValue(binaryBase(rng)));

/** An encoding: valid, byte-mutated, or of a value-mutated value (bytes even if unencodable). */
function binaryInput(rng: Prng): Uint8Array {
  const r = rng.next();
  if (r < 0.45) {
    const base = rng.chance(0.5) ? encodeValue(binaryBase(rng)) : rng.pick(binaryItems());
    return r < 0.05 ? base : mutateBinary(rng, base, binaryItems());
  }
  const v = binaryBase(rng);
  if (r < 0.5) return encodeValue(v);
  return encodeMutated(rng, mutateJson(rng, v, [binaryBase(rng), binaryBase(rng)]));
}

type Decoded = { value: unknown } | { refused: string };

function decodeOrRefuse(input: Uint8Array, start: number, what: string): Decoded {
  let value: unknown;
  try {
    value = decodeValue(input, start);
  } catch (err) {
    if (err instanceof BinaryValueError) return { refused: err.message };
    throw new FuzzFailure(`${what} threw instead of refusing: ${describe(err)}`, { cause: err });
  }
  return { value };
}

const binaryValue: Target = {
  name: "binary-value",
  covers: "decodeValue: BinaryValueError, or a value encodeValue turns back into the same bytes; " +
    "the same after a lead byte",
  ciCount: 100_000,
  input: binaryInput,
  run(input) {
    const got = decodeOrRefuse(input, 0, "decodeValue");
    // After a lead byte (as in a frame or a record), in a buffer it does not start: the same.
    const led = new Uint8Array(input.length + 1);
    led[0] = VALUE_TAG;
    led.set(input, 1);
    const gotLed = decodeOrRefuse(led, 1, "decodeValue after a lead byte");
    if (("refused" in got) !== ("refused" in gotLed)) {
      throw new FuzzFailure(
        `decodeValue after a lead byte disagrees: ${jsonText(got).slice(0, 300)} vs ${
          jsonText(gotLed).slice(0, 300)
        }`,
      );
    }
    if ("refused" in got) {
      if (!/^at byte \d+: /.test(got.refused)) {
        throw new FuzzFailure(`a refusal does not say where: ${got.refused}`);
      }
      return;
    }
    if (!isDeepStrictEqual((gotLed as { value: unknown }).value, got.value)) {
      throw new FuzzFailure("decodeValue after a lead byte decodes another value");
    }
    let again: Uint8Array = new Uint8Array();
    refusedOnly(() => void (again = encodeValue(got.value)), [], "encodeValue of a decoded value");
    if (!isDeepStrictEqual(again, input)) {
      throw new FuzzFailure(
        `a decoded value re-encodes to other bytes (not canonical):\n  in:  ${hex(input)}\n  out: ${
          hex(again)
        }\n  value: ${jsonText(got.value).slice(0, 300)}`,
      );
    }
  },
};

// ---------------------------------------------------------------------------------------------
// Peer frames

const FUZZ_CLUSTER = "f0f0f0f0f0f0f0f0";

function validFrameValue(rng: Prng): PeerFrame {
  const all = recordedMessages();
  if (rng.chance(0.25)) {
    return {
      kind: "hello",
      from: rng.pick([2, 3, 2, 3, 1, 7]),
      cluster: rng.chance(0.9) ? FUZZ_CLUSTER : "0123456789abcdef",
    };
  }
  const n = rng.int(0, 3);
  return { kind: "msgs", msgs: Array.from({ length: n }, () => pickMessage(rng, all).msg) };
}

/** A frame's value (what its binary value holds): a valid frame, value-mutated 60% of the time. */
function frameWire(rng: Prng): unknown {
  const v = decodeValue(encodePeerFrame(validFrameValue(rng)), 1);
  if (rng.chance(0.4)) return v;
  const donors = [validFrameValue(rng), validFrameValue(rng)];
  return mutateJson(rng, v, donors);
}

/**
 * A value frame's payload (`VALUE_TAG`, then the binary value): of a frame value as
 * {@link frameWire} makes it (valid 40% of the time, else value-mutated: its bytes even when the
 * encoder has none for it), or 25% of the time a valid frame's payload byte-mutated.
 */
function framePayload(rng: Prng): Uint8Array {
  if (rng.chance(0.25)) {
    return mutateBinary(rng, encodePeerFrame(validFrameValue(rng)), binaryItems());
  }
  return encodeMutated(rng, frameWire(rng), VALUE_TAG);
}

/**
 * The piece frames of a streamed message (a frame value, or a batch of more messages than a
 * batch of elements holds, so that it has holes), as a sender writes them; 30% of the time one
 * frame is then dropped, repeated, swapped, renumbered or reflagged.
 */
function pieceFrames(rng: Prng): Uint8Array[] {
  // A batch of more than 64 small messages has a hole (its msgs array), in larger pieces.
  const batch = rng.chance(0.15);
  const wire = batch
    ? {
      kind: "msgs",
      msgs: Array.from({ length: rng.int(60, 80) }, (_, i) => ({
        type: "probe",
        view: 1,
        ts: i,
        round: rng.int(0, 3),
      })),
    }
    : frameWire(rng);
  const payloads = piecePayloads(rng, wire, batch ? 1024 : 64);
  if (payloads.length === 0 || rng.chance(0.7)) return payloads;
  const i = rng.int(0, payloads.length - 1);
  const j = rng.int(0, payloads.length - 1);
  const edited = payloads[i].slice();
  switch (rng.int(0, 4)) {
    case 0:
      payloads.splice(i, 1);
      break;
    case 1:
      payloads.splice(i, 0, payloads[i]);
      break;
    case 2:
      [payloads[i], payloads[j]] = [payloads[j], payloads[i]];
      break;
    case 3:
      edited[5] = rng.int(0, 255); // the low byte of seq
      payloads[i] = edited;
      break;
    default:
      edited[1] = rng.int(0, 3); // flags
      payloads[i] = edited;
  }
  return payloads;
}

/** A stream of frames: a hello first most of the time. */
function frameStream(rng: Prng): Uint8Array {
  const frames: Uint8Array[] = [];
  if (rng.chance(0.8)) {
    frames.push(
      encodeFrame(
        encodePeerFrame({ kind: "hello", from: rng.pick([2, 3]), cluster: FUZZ_CLUSTER }),
      ),
    );
  }
  const n = rng.int(0, 3);
  for (let i = 0; i < n; i++) {
    // A message in piece frames (what a large message becomes), or one frame.
    if (rng.chance(0.25)) {
      for (const piece of pieceFrames(rng)) frames.push(encodeFrame(piece));
    } else {
      frames.push(encodeFrame(framePayload(rng)));
    }
  }
  return join(frames);
}

/** The largest document the fuzzed decoders join from pieces (the server's setting too). */
const FUZZ_MAX_DOC_BYTES = 64 * 1024;

const frameItems = pool(frameStream);

function frameInput(rng: Prng): Uint8Array {
  const base = rng.chance(0.5) ? frameStream(rng) : rng.pick(frameItems());
  if (rng.chance(0.5)) return base; // value-level and payload mutations happened inside
  return mutateBytes(rng, base, {
    corpus: frameItems(),
    tokens: rng.chance(0.6) ? "length" : "json",
  });
}

/** Streams `value` again (pieces of `pieceBytes`) and joins it: it must come back the same. */
function restream(value: unknown, pieceBytes: number): void {
  const again = new PieceAssembler();
  let joined: unknown;
  refusedOnly(
    () => {
      for (const f of streamFrames(value, pieceBytes)) joined = again.push(f);
    },
    [],
    "streaming a joined value again",
  );
  if (jsonText(joined) !== jsonText(value)) {
    throw new FuzzFailure(
      `a joined value does not round-trip: ${jsonText(value).slice(0, 300)} vs ${
        jsonText(joined).slice(0, 300)
      }`,
    );
  }
}

/** A frame as text for a failure message (a piece's bytes as hex, not as an object of indexes). */
function frameText(f: PeerFrame): string {
  if (f.kind !== "piece") return jsonText(f).slice(0, 2000);
  const hex = [...f.data.subarray(0, 64)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return jsonText({ ...f, data: `${f.data.length} bytes: ${hex}` });
}

/**
 * True when two decoded frames are equal. A piece's bytes are compared as bytes: as JSON a
 * Uint8Array is an object of indexes, and writing that for every piece of a 1 MiB input took the
 * fuzzer most of a second (near the guard's limit on a busy machine).
 */
function sameFrame(a: PeerFrame, b: PeerFrame): boolean {
  if (a.kind !== "piece" || b.kind !== "piece") return jsonText(a) === jsonText(b);
  return a.seq === b.seq && a.docEnd === b.docEnd && a.final === b.final &&
    a.data.length === b.data.length && a.data.every((x, i) => x === b.data[i]);
}

const peerFrame: Target = {
  name: "peer-frame",
  covers: "FrameDecoder (hello limit, then raised) + decodePeerFrame + PieceAssembler; " +
    "decoded frames and joined messages round-trip",
  ciCount: 100_000,
  input: frameInput,
  run(input) {
    const d = new FrameDecoder(PEER_HELLO_MAX_FRAME_BYTES);
    const pieces = new PieceAssembler(FUZZ_MAX_DOC_BYTES);
    let first = true;
    for (const part of chunks(input)) {
      d.push(part);
      for (;;) {
        let payload: Uint8Array | null = null;
        if (!refusedOnly(() => void (payload = d.next()), [FrameError], "FrameDecoder.next")) {
          return;
        }
        if (payload === null) break;
        if (first) {
          d.maxFrameBytes = 1024 * 1024;
          first = false;
        }
        let frame: PeerFrame | undefined;
        const ok = refusedOnly(
          () => void (frame = decodePeerFrame(payload!)),
          [CodecError],
          "decodePeerFrame",
        );
        if (!ok) return;
        const again = decodePeerFrame(encodePeerFrame(frame!));
        if (!sameFrame(again, frame!)) {
          throw new FuzzFailure(
            `frame does not round-trip: ${frameText(frame!)} vs ${frameText(again)}`,
          );
        }
        const f = frame as PeerFrame;
        if (f.kind !== "piece") continue;
        // Pieces are joined (the server does so after the hello); a refusal ends the
        // connection, and a whole message is checked (or refused) like a frame's value.
        let whole: unknown;
        if (!refusedOnly(() => void (whole = pieces.push(f)), [CodecError], "PieceAssembler")) {
          return;
        }
        if (whole === undefined) continue;
        if (pieces.inProgress || pieces.buffered !== 0) {
          throw new FuzzFailure("the assembler holds something after a whole message");
        }
        restream(whole, 1 + (input.length % 97));
        if (!refusedOnly(() => void frameFromWire(whole), [CodecError], "frameFromWire")) {
          return;
        }
      }
    }
  },
};

// ---------------------------------------------------------------------------------------------
// Split JSON documents

/** Documents of a split value, one a line (JSON text has no raw line breaks). */
function splitText(rng: Prng): Uint8Array {
  return enc.encode(splitDocuments(rng, recordedMessages()).join("\n"));
}

const splitItems = pool(splitText, 24);

/** Valid documents, or mutated: bytes, one document's JSON, or the order of the documents. */
function splitInput(rng: Prng): Uint8Array {
  const base = rng.chance(0.5) ? splitText(rng) : rng.pick(splitItems());
  const r = rng.next();
  if (r < 0.1) return base;
  if (r < 0.5) return mutateBytes(rng, base, { corpus: splitItems(), tokens: "json" });
  const docs = dec.decode(base).split("\n");
  const i = rng.int(0, docs.length - 1);
  if (r < 0.85) {
    const donors = [JSON.parse(rng.pick(docs)), JSON.parse(rng.pick(docs))];
    docs[i] = jsonText(mutateJson(rng, JSON.parse(docs[i]), donors));
  } else if (r < 0.9) {
    docs.splice(i, 1);
  } else if (r < 0.95) {
    docs.splice(i, 0, docs[rng.int(0, docs.length - 1)]);
  } else {
    const j = rng.int(0, docs.length - 1);
    [docs[i], docs[j]] = [docs[j], docs[i]];
  }
  return enc.encode(docs.join("\n"));
}

const jsonSplit: Target = {
  name: "json-split",
  covers: "JsonJoiner: documents join or SplitError; a complete value re-splits and round-trips",
  ciCount: 100_000,
  input: splitInput,
  run(input) {
    const joiner = new JsonJoiner();
    for (const doc of dec.decode(input).split("\n")) {
      if (!refusedOnly(() => joiner.push(doc), [SplitError], "JsonJoiner.push")) return;
    }
    if (!joiner.complete) {
      if (refusedOnly(() => void joiner.value(), [SplitError], "JsonJoiner.value")) {
        throw new FuzzFailure("value() of an incomplete value did not refuse");
      }
      return;
    }
    let value: unknown;
    refusedOnly(() => void (value = joiner.value()), [], "JsonJoiner.value");
    // What the joiner made is JSON and splits and joins back to itself.
    const again = new JsonJoiner();
    const options = {
      splitLongerThan: 1 + (input.length % 7),
      pieceChars: 1 + (input.length % 61),
    };
    refusedOnly(
      () => {
        for (const doc of splitJson(value, options)) again.push(doc);
      },
      [],
      "splitJson / JsonJoiner of a joined value",
    );
    if (!again.complete || jsonText(again.value()) !== jsonText(value)) {
      throw new FuzzFailure(`a joined value does not round-trip: ${jsonText(value).slice(0, 300)}`);
    }
  },
};

// ---------------------------------------------------------------------------------------------
// The peer handshake, on a real PeerServer

/**
 * What a correct peer server delivers for `input`: the messages of each accepted frame. Pieces
 * are numbered, flagged and bounded as `peer_stream.ts` documents; their documents are joined by
 * `JsonJoiner` (fuzzed on its own by `json-split`).
 */
function expectedDeliveries(input: Uint8Array): { from: ReplicaId; msgs: PeerMessage[] }[] {
  const d = new FrameDecoder(PEER_HELLO_MAX_FRAME_BYTES);
  d.push(input);
  let from: ReplicaId | undefined;
  const out: { from: ReplicaId; msgs: PeerMessage[] }[] = [];
  /** The message being received in pieces: the next seq, the document's bytes, the joiner. */
  let partial: { next: number; bytes: Uint8Array[]; held: number; joiner: JsonJoiner } | undefined;
  const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  for (;;) {
    let payload: Uint8Array | null;
    let frame: PeerFrame;
    try {
      payload = d.next();
      if (payload === null) return out;
      frame = decodePeerFrame(payload);
    } catch {
      return out;
    }
    if (from === undefined) {
      // The fuzzed server has no cluster key: a keyed hello (with a nonce) is refused too. Any id
      // but its own (1) is accepted. A whois is answered and the connection closed.
      if (
        frame.kind !== "hello" || frame.cluster !== FUZZ_CLUSTER || frame.nonce !== undefined ||
        frame.from === 1
      ) return out;
      from = frame.from;
      d.maxFrameBytes = 1024 * 1024;
      continue;
    }
    if (frame.kind === "piece") {
      // Pieces run 0, 1, 2...; a document is at most the bound; each document must be a valid
      // next piece of the value, which is complete exactly at the final frame and a msgs frame.
      partial ??= { next: 0, bytes: [], held: 0, joiner: new JsonJoiner() };
      if (frame.seq !== partial.next) return out;
      partial.next++;
      partial.held += frame.data.length;
      if (partial.held > FUZZ_MAX_DOC_BYTES) return out;
      partial.bytes.push(frame.data);
      if (!frame.docEnd) continue;
      try {
        partial.joiner.push(utf8.decode(join(partial.bytes)));
      } catch {
        return out;
      }
      partial.bytes = [];
      partial.held = 0;
      if (!frame.final) {
        if (partial.joiner.complete) return out;
        continue;
      }
      if (!partial.joiner.complete) return out;
      const value = partial.joiner.value();
      partial = undefined;
      try {
        frame = frameFromWire(value);
      } catch {
        return out;
      }
      if (frame.kind !== "msgs") return out;
    } else if (partial !== undefined) {
      return out; // anything else between the pieces of a message
    }
    if (frame.kind !== "msgs") return out; // a second hello, or handshake frames unasked
    out.push({ from, msgs: frame.msgs });
  }
}

let handshakeServer: PeerServer | undefined;
let handshakeGot: { from: ReplicaId; msgs: PeerMessage[] }[] = [];

async function exchange(port: number, input: Uint8Array): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    try {
      let off = 0;
      while (off < input.length) off += await conn.write(input.subarray(off));
      await conn.closeWrite();
    } catch {
      // the server closed first: fine
    }
    const buf = new Uint8Array(1024);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), 3000)));
    try {
      for (;;) {
        const n = await Promise.race([conn.read(buf).catch(() => null), late]);
        if (n === "late") {
          throw new FuzzFailure("the peer server kept a finished connection open for 3 s");
        }
        if (n === null) break;
        throw new FuzzFailure(`the peer server wrote ${n} bytes to a peer`);
      }
    } finally {
      clearTimeout(timer);
    }
  } finally {
    try {
      conn.close();
    } catch {
      // closed
    }
  }
}

const peerHandshake: Target = {
  name: "peer-handshake",
  covers:
    "a real PeerServer on 127.0.0.1: only a valid hello admits frames; delivers what a model does",
  ciCount: 3_000,
  ciNote: "one TCP connection per input (~1 ms each); the decoding itself is covered by peer-frame",
  input: frameInput,
  setup() {
    handshakeServer = new PeerServer({
      hostname: "127.0.0.1",
      port: 0,
      self: 1,
      cluster: FUZZ_CLUSTER,
      onMessages: (from, msgs) => {
        handshakeGot.push({ from, msgs });
      },
      log: SILENT,
      helloTimeoutMs: 2000,
      maxFrameBytes: 1024 * 1024,
      maxDocBytes: FUZZ_MAX_DOC_BYTES,
    });
    handshakeServer.listen();
  },
  async teardown() {
    await handshakeServer?.close();
    handshakeServer = undefined;
  },
  async run(input) {
    if (handshakeServer === undefined) this.setup!();
    handshakeGot = [];
    await refusedOnlyAsync(
      () => exchange(handshakeServer!.addr.port, input),
      [],
      "the peer connection",
    );
    const want = expectedDeliveries(input);
    if (jsonText(handshakeGot) !== jsonText(want)) {
      throw new FuzzFailure(
        `the peer server delivered ${jsonText(handshakeGot).slice(0, 500)}, a correct one ${
          jsonText(want).slice(0, 500)
        }`,
      );
    }
  },
};

// ---------------------------------------------------------------------------------------------
// The core: hostile messages into a real Replica

/** Sender chosen by the first input byte: mostly the two real peers, sometimes self or a stranger. */
const SENDERS: ReplicaId[] = [2, 2, 3, 3, 2, 3, 1, 4];
const SCENARIOS = 3;

function scenario(n: number): { replica: Replica; cluster: SyncCluster; id: ReplicaId } {
  const c = new SyncCluster([1, 2, 3]);
  c.start();
  let rid = 1;
  const write = (r: ReplicaId, argv: string[]) => {
    c.step(r, { type: "request", id: rid++, cmd: { op: { argv, time: 1000 * rid } } });
    c.settle();
    for (const x of c.ids) c.step(x, { type: "flush" });
    c.settle();
  };
  write(1, ["SET", "a", "1"]);
  write(2, ["SET", "b", "2"]);
  write(3, ["INCR", "n"]);
  if (n === 2) {
    c.isolate(1); // replica 1 alone: no majority, view change pending
    for (let t = 0; t < 150; t++) c.step(1, { type: "tick" });
  }
  const id = n === 1 ? 3 : 1;
  return { replica: c.replicas.get(id)!, cluster: c, id };
}

const live: ({ replica: Replica; cluster: SyncCluster; id: ReplicaId } | undefined)[] = [];

const messagesTo = new Map<ReplicaId, ReturnType<typeof recordedMessages>>();

function replicaInput(rng: Prng): Uint8Array {
  const sc = rng.int(0, SCENARIOS - 1);
  const to = sc === 1 ? 3 : 1;
  let msgs = messagesTo.get(to);
  if (msgs === undefined) messagesTo.set(to, msgs = recordedMessages().filter((m) => m.to === to));
  const picked = Array.from({ length: rng.int(1, 3) }, () => pickMessage(rng, msgs!));
  const from = picked[0].from;
  let fromByte = SENDERS.indexOf(from);
  if (rng.chance(0.05)) fromByte = rng.int(0, 255);
  const frame = decodeValue(
    encodePeerFrame({ kind: "msgs", msgs: picked.map((m) => m.msg) }),
    1,
  );
  let payload: Uint8Array;
  if (rng.chance(0.85)) {
    const donors = [pickMessage(rng, msgs).msg, pickMessage(rng, msgs).msg];
    payload = encodeMutated(rng, mutateJson(rng, frame, donors), VALUE_TAG);
  } else {
    payload = mutateBinary(rng, encodeValue(frame, VALUE_TAG), []);
  }
  return join([new Uint8Array([fromByte & 0xff, sc]), payload]);
}

const replicaTarget: Target = {
  name: "replica",
  covers:
    "Replica.check + step with decoded-but-hostile messages (3 scenarios): refuse or accept, never throw",
  ciCount: 100_000,
  input: replicaInput,
  run(input) {
    if (input.length < 2) return;
    const from = SENDERS[input[0] % SENDERS.length];
    const sc = input[1] % SCENARIOS;
    let frame: PeerFrame;
    try {
      frame = decodePeerFrame(input.subarray(2));
    } catch (err) {
      if (err instanceof CodecError) return;
      throw new FuzzFailure(`decodePeerFrame threw ${describe(err)}`);
    }
    if (frame.kind !== "msgs" || frame.msgs.length === 0) return;
    const s = (live[sc] ??= scenario(sc));
    let refusal: string | null = null;
    refusedOnly(() => void (refusal = s.replica.check(from, frame.msgs[0])), [], "Replica.check");
    if (refusal !== null) {
      // check is pure and the first message is refused: step changes nothing; the state is reused.
      const actions = s.replica.step({ type: "peer", from, msgs: frame.msgs });
      const reject = actions.find((a) => a.type === "reject");
      if (reject === undefined) {
        throw new FuzzFailure(`check refused (${refusal}) but step did not reject`);
      }
      return;
    }
    live[sc] = undefined; // the state may change: the next input starts from a fresh one
    refusedOnly(
      () => {
        s.replica.step({ type: "peer", from, msgs: frame.msgs });
        s.replica.step({ type: "flush" });
        for (let t = 0; t < 3; t++) s.replica.step({ type: "tick" });
        s.replica.step({
          type: "request",
          id: 999_999,
          cmd: { op: { argv: ["SET", "z", "1"], time: 1 } },
        });
        s.replica.status();
      },
      [],
      `Replica ${s.id} (scenario ${sc}) given ${from}'s messages`,
    );
  },
};

// ---------------------------------------------------------------------------------------------
// The state machine

function kvCommandsInput(rng: Prng): Uint8Array {
  const argvs = commandArgvs(rng, 10);
  if (rng.chance(0.3)) {
    // Random argv: random names and arguments, some from the valid pool.
    for (let i = 0; i < argvs.length; i++) {
      if (rng.chance(0.5)) continue;
      const a = [...argvs[i]];
      const j = rng.int(0, a.length - 1);
      a[j] = rng.pick([
        "",
        "\x00",
        "-1",
        "9223372036854775808",
        "nan",
        "inf",
        "*",
        "[",
        "\\",
        "x".repeat(rng.int(0, 3000)),
        "*a*a*a*a*a*a*a*a*a*b",
      ]);
      if (rng.chance(0.2)) a.push(...a);
      argvs[i] = a;
    }
  }
  const bytes = join(argvs.map((a) => encodeRespCommand(a)));
  return rng.chance(0.2) ? mutateBytes(rng, bytes, { tokens: "none" }) : bytes;
}

function encodeRespCommand(argv: string[]): Uint8Array {
  const parts = [`*${argv.length}\r\n`];
  for (const a of argv) parts.push(`$${a.length}\r\n${a}\r\n`);
  const s = parts.join("");
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

const kvApply: Target = {
  name: "kv-apply",
  covers:
    "KvStore.apply with random argv: a reply, never a throw; two stores stay equal; snapshots restore",
  ciCount: 100_000,
  input: kvCommandsInput,
  run(input) {
    const p = new RespRequestParser();
    p.push(input);
    const a = new KvStore();
    const b = new KvStore();
    let t = 1_700_000_000_000;
    for (let n = 0; n < 64; n++) {
      const item = p.next();
      if (item === null || !("argv" in item)) break;
      t += 997;
      const cmd = {
        op: { argv: item.argv, time: t },
        tag: n % 3 === 0 ? { client: "c", seq: n } : undefined,
      };
      let ra: unknown;
      let rb: unknown;
      refusedOnly(
        () => void (ra = a.apply(cmd)),
        [],
        `KvStore.apply(${jsonText(item.argv).slice(0, 200)})`,
      );
      refusedOnly(
        () => void (rb = b.apply(structuredClone(cmd))),
        [],
        "KvStore.apply (second store)",
      );
      if (ra === undefined) throw new FuzzFailure(`no reply to ${jsonText(item.argv)}`);
      if (!isDeepStrictEqual(ra, rb)) {
        throw new FuzzFailure(`stores replied differently to ${jsonText(item.argv)}`);
      }
      if (a.digest() !== b.digest()) {
        throw new FuzzFailure(`digests differ after ${jsonText(item.argv)}`);
      }
    }
    const c = new KvStore();
    refusedOnly(
      () => c.restore(JSON.parse(JSON.stringify(a.snapshot()))),
      [],
      "KvStore.restore of its own snapshot",
    );
    if (c.digest() !== a.digest()) throw new FuzzFailure("a restored snapshot has another digest");
  },
};

function kvSnapshotBytes(rng: Prng): Uint8Array {
  return enc.encode(JSON.stringify(kvSnapshot(rng)));
}

const kvSnapshotItems = pool(kvSnapshotBytes, 24);
let kvSnapshotValues: unknown[] | undefined;
const kvValues =
  () => (kvSnapshotValues ??= kvSnapshotItems().map((b) => JSON.parse(dec.decode(b))));

const kvRestore: Target = {
  name: "kv-restore",
  covers:
    "KvStore.restore with fuzzed snapshot JSON: refused with TypeError (checkState agrees) or usable",
  ciCount: 100_000,
  input(rng) {
    if (rng.chance(0.15)) return mutatedInput(rng, kvSnapshotBytes, kvSnapshotItems, "json");
    return enc.encode(jsonText(mutateJson(rng, rng.pick(kvValues()), [rng.pick(kvValues())])));
  },
  run(input) {
    let state: unknown;
    try {
      state = JSON.parse(dec.decode(input));
    } catch {
      return;
    }
    const store = new KvStore();
    const problem = store.checkState(state);
    const ok = refusedOnly(() => store.restore(state), [TypeError], "KvStore.restore");
    if (ok !== (problem === null)) {
      throw new FuzzFailure(
        `checkState says ${JSON.stringify(problem)} but restore ${ok ? "succeeded" : "refused"}`,
      );
    }
    if (!ok) return;
    refusedOnly(
      () => {
        const digest = store.digest();
        const copy = new KvStore();
        copy.restore(JSON.parse(JSON.stringify(store.snapshot())));
        if (copy.digest() !== digest) {
          throw new FuzzFailure(
            "the restored state does not survive snapshot+restore",
          );
        }
        let t = 1_800_000_000_000;
        for (
          const argv of [
            ["KEYS", "*"],
            ["SCAN", "0"],
            ["SET", "k", "v"],
            ["GET", "k"],
            ["DBSIZE"],
            ["INCR", "n"],
            ["LPUSH", "l", "x"],
            ["FLUSHALL"],
          ]
        ) {
          store.apply({ op: { argv, time: t += 1000 }, tag: { client: "c1", seq: 5 } });
          store.apply({ op: { argv, time: t += 1000 } });
        }
        store.digest();
      },
      [],
      "a restored KvStore",
    );
  },
};

// ---------------------------------------------------------------------------------------------
// Storage

function persistRecord(rng: Prng): unknown {
  const m = pickMessage(rng, recordedMessages()).msg;
  switch (rng.int(0, 4)) {
    case 0:
      return {
        r: "entry",
        entry: m.type === "update" ? m.entry : {
          view: 0,
          ts: 5,
          origin: 1,
          seq: 1,
          cmd: { op: { argv: ["SET", "a", "b"], time: 0 } },
        },
      };
    case 1:
      return { r: "promise", view: rng.int(0, 5) };
    case 2:
      return {
        r: "accept",
        view: 2,
        members: [1, 2],
        install: m.type === "newview" ? m.install : { from: 1, entries: [] },
      };
    case 3:
      return { r: "commit", view: rng.int(0, 5) };
    default:
      return {
        r: "delivered",
        view: rng.int(0, 5),
        index: rng.int(1, 100),
        last: { view: rng.int(0, 5), ts: rng.int(1, 100), origin: rng.int(1, 3) },
      };
  }
}

/**
 * A record payload as the log writes it, `BINARY_RECORD_TAG` and the record's binary value (valid,
 * value-mutated, or byte-mutated after the tag), or 25% of the time an older release's JSON
 * record (sometimes JSON-mutated).
 */
function recordPayload(rng: Prng): Uint8Array {
  const v = persistRecord(rng);
  const r = rng.next();
  if (r < 0.45) return encodeValue(v, BINARY_RECORD_TAG);
  if (r < 0.6) {
    return encodeMutated(rng, mutateJson(rng, v, [persistRecord(rng)]), BINARY_RECORD_TAG);
  }
  if (r < 0.75) {
    const value = mutateBinary(rng, encodeValue(v), []);
    return join([new Uint8Array([BINARY_RECORD_TAG]), value]);
  }
  return enc.encode(
    rng.chance(0.7) ? JSON.stringify(v) : jsonText(mutateJson(rng, v, [persistRecord(rng)])),
  );
}

function recordFile(rng: Prng): Uint8Array {
  const n = rng.int(0, 4);
  const parts = Array.from({ length: n }, () => encodeRecord(recordPayload(rng)));
  if (rng.chance(0.3)) parts.push(new Uint8Array(rng.int(1, 200)));
  return join(parts);
}

const recordItems = pool(recordFile);

const recordScan: Target = {
  name: "record-scan",
  covers: "scanRecords (WAL/snapshot framing): valid prefix + torn tail, or CorruptionError",
  ciCount: 100_000,
  input: (rng) => mutatedInput(rng, recordFile, recordItems, "length"),
  run(input) {
    for (const zeroPadding of [false, true]) {
      let scan: ReturnType<typeof scanRecords> | undefined;
      if (
        !refusedOnly(() => void (scan = scanRecords(input, "fuzz", { zeroPadding })), [
          CorruptionError,
        ], "scanRecords")
      ) continue;
      const s = scan!;
      if (s.validBytes > input.length) throw new FuzzFailure("validBytes beyond the input");
      const again = join(s.payloads.map((p) => encodeRecord(p)));
      if (!isDeepStrictEqual(again, input.subarray(0, s.validBytes))) {
        throw new FuzzFailure("the valid prefix is not the records returned");
      }
      if (s.tornTail !== null && s.tornTail.offset !== s.validBytes) {
        throw new FuzzFailure("torn tail not at validBytes");
      }
    }
  },
};

function storedSnapshot(rng: Prng): unknown {
  return {
    snapshot: {
      index: rng.int(0, 50),
      last: rng.chance(0.3) ? null : { view: 1, ts: 9, origin: 2 },
      state: kvSnapshot(rng),
    },
    view: 1,
    members: [1, 2, 3],
    promised: 1,
    holdback: [],
    walFrom: { segment: rng.int(0, 3), offset: rng.int(0, 5000) },
  };
}

/** A stored snapshot with a large array beside it, so that the split format has holes. */
function paddedSnapshot(rng: Prng): unknown {
  const pad = Array.from({ length: 65 + rng.int(0, 100) }, (_, i) => [`k${i}`, "v".repeat(i % 5)]);
  return { ...(storedSnapshot(rng) as object), pad };
}

/** The records of a split snapshot file of `value`, small pieces so that there are many. */
function splitRecords(value: unknown): Uint8Array[] {
  return [...groupRecords(value, 64)].map((parts) => join(parts));
}

const snapshotItems = pool(
  (rng) =>
    rng.chance(0.5)
      ? encodeRecord(enc.encode(JSON.stringify(storedSnapshot(rng))))
      : join(splitRecords(paddedSnapshot(rng))),
  16,
);

const snapshotFile: Target = {
  name: "snapshot-file",
  covers:
    "decodeSnapshotFile (readSnapshotFile's decoder): split records or one checksummed JSON " +
    "record, or CorruptionError",
  ciCount: 100_000,
  input(rng) {
    if (rng.chance(0.3)) {
      // Split format: one document mutated at the JSON level, re-framed with a valid checksum.
      const records = splitRecords(paddedSnapshot(rng));
      const i = rng.int(1, records.length - 1);
      const doc = JSON.parse(dec.decode(records[i].subarray(12)));
      records[i] = encodeRecord(enc.encode(jsonText(mutateJson(rng, doc))));
      return join(rng.chance(0.2) ? records.slice(0, rng.int(1, records.length)) : records);
    }
    if (rng.chance(0.4)) {
      // A JSON-level mutation, re-framed with a valid checksum, so it gets past the framing.
      const v = mutateJson(rng, storedSnapshot(rng));
      const payload = enc.encode(jsonText(v));
      return rng.chance(0.8)
        ? encodeRecord(payload)
        : mutateBytes(rng, encodeRecord(payload), { tokens: "length" });
    }
    return mutateBytes(rng, rng.pick(snapshotItems()), {
      corpus: snapshotItems(),
      tokens: "length",
    });
  },
  run(input) {
    refusedOnly(
      () => void decodeSnapshotFile(input, "fuzz/snapshot.bin"),
      [CorruptionError],
      "decodeSnapshotFile",
    );
  },
};

/** Packs segment files as [u8 count][u32 length, bytes]... */
function packSegments(files: Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array([files.length])];
  for (const f of files) {
    const h = new Uint8Array(4);
    new DataView(h.buffer).setUint32(0, f.length);
    parts.push(h, f);
  }
  return join(parts);
}

function unpackSegments(input: Uint8Array): Uint8Array[] {
  if (input.length === 0) return [];
  const n = Math.min(input[0], 4);
  const out: Uint8Array[] = [];
  let at = 1;
  for (let i = 0; i < n && at < input.length; i++) {
    const len = at + 4 <= input.length
      ? new DataView(input.buffer, input.byteOffset + at, 4).getUint32(0)
      : 0;
    at += 4;
    out.push(input.subarray(Math.min(at, input.length), Math.min(at + len, input.length)));
    at += len;
  }
  return out;
}

/** A large record as the log writes it: a group of records (group header, then documents). */
function largeRecordGroup(rng: Prng): Uint8Array[] {
  const state = Array.from({ length: 65 + rng.int(0, 60) }, (_, i) => [`k${i}`, "v"]);
  if (rng.chance(0.5)) {
    // An install logged as the peer frame it was streamed in (`DiskStorage.encodingAhead`).
    return splitRecords(msgsToWire([{
      type: "newview",
      view: 1,
      ts: 1,
      members: [1],
      install: { from: 1, entries: [], snapshot: { index: 1, last: null, state } },
    }]));
  }
  return splitRecords({
    r: "accept",
    view: 1,
    members: [1],
    install: { from: 1, entries: [] },
    state,
  });
}

function walSegments(rng: Prng): Uint8Array {
  const n = rng.int(1, 3);
  const files = Array.from({ length: n }, () => {
    let f = recordFile(rng);
    if (rng.chance(0.3)) {
      // A large record, whole or cut short (as a crash while writing it leaves it).
      const group = largeRecordGroup(rng);
      f = join([f, ...group.slice(0, rng.chance(0.7) ? group.length : rng.int(1, group.length))]);
    }
    return rng.chance(0.5) ? mutateBytes(rng, f, { tokens: "length" }) : f;
  });
  return packSegments(files);
}

let walDir: string | undefined;

const WAL_CHECK = (record: unknown, i: number) => checkLogRecord(record, i, "fuzz");

const walOpen: Target = {
  name: "wal-open",
  covers:
    "WriteAheadLog.open on fuzzed segment files: opens (cutting a torn tail) or CorruptionError; reopens clean",
  ciCount: 2_000,
  ciNote:
    "each input writes and opens segment files twice (~2-3 ms); the framing is covered by record-scan",
  input: walSegments,
  setup() {
    walDir ??= Deno.makeTempDirSync({ prefix: "lamportkv-fuzz-wal-" });
  },
  teardown() {
    if (walDir) Deno.removeSync(walDir, { recursive: true });
    walDir = undefined;
  },
  async run(input) {
    if (walDir === undefined) this.setup!();
    const dir = joinPath(walDir!, "w");
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // not there
    }
    Deno.mkdirSync(dir);
    unpackSegments(input).forEach((bytes, n) =>
      Deno.writeFileSync(joinPath(dir, segmentFileName(n)), bytes)
    );
    let first: unknown[] = [];
    const opened = await refusedOnlyAsync(
      async () => {
        const o = await WriteAheadLog.open(dir, {
          fsync: "never",
          segmentBytes: 4096,
          check: WAL_CHECK,
        });
        try {
          first = [...o.records]; // a record's content is decoded and checked as it is read
        } finally {
          await o.wal.close();
        }
      },
      [CorruptionError],
      "WriteAheadLog.open and reading its records",
    );
    if (!opened) return;
    await refusedOnlyAsync(
      async () => {
        const o = await WriteAheadLog.open(dir, {
          fsync: "never",
          segmentBytes: 4096,
          check: WAL_CHECK,
        });
        await o.wal.close();
        if (o.tornTail !== null) {
          throw new FuzzFailure(
            `the reopened log still has a torn tail: ${o.tornTail.reason}`,
          );
        }
        if (jsonText([...o.records]) !== jsonText(first)) {
          throw new FuzzFailure(
            "the reopened log reads other records",
          );
        }
      },
      [],
      "WriteAheadLog.open after repair",
    );
  },
};

// ---------------------------------------------------------------------------------------------
// Config

const configItems = pool((rng) => enc.encode(configText(rng)));

const config: Target = {
  name: "config",
  covers: "parseConfig + resolveSettings: a config, or ConfigError/SettingError naming the line",
  ciCount: 100_000,
  input: (rng) => mutatedInput(rng, (r) => enc.encode(configText(r)), configItems, "resp"),
  run(input) {
    const text = dec.decode(input);
    let cfg: ReturnType<typeof parseConfig> | undefined;
    if (
      !refusedOnly(() => void (cfg = parseConfig(text, "fuzz.txt")), [ConfigError], "parseConfig")
    ) return;
    const c = cfg!;
    const ids = c.replicas.map((r) => r.id);
    if (new Set(ids).size !== ids.length || ids.some((id) => !Number.isSafeInteger(id) || id < 1)) {
      throw new FuzzFailure(`bad ids accepted: ${ids}`);
    }
    for (const r of c.replicas) {
      for (const p of [r.clientPort, r.peerPort]) {
        if (!Number.isInteger(p) || p < 1 || p > 65535) {
          throw new FuzzFailure(`bad port accepted: ${p}`);
        }
      }
    }
    if (!/^[0-9a-f]{16}$/.test(clusterId(c))) throw new FuzzFailure("bad cluster id");
    refusedOnly(() => void resolveSettings(c.settings ?? []), [SettingError], "resolveSettings");
  },
};

function settingsText(rng: Prng): string {
  const lines: string[] = [];
  for (let i = rng.int(1, 4); i > 0; i--) {
    const name = rng.pick(SETTING_NAMES);
    const value = rng.pick([
      "0",
      "1",
      "10",
      "100",
      "8mb",
      "1gb",
      "64KB",
      "normal 0 0 0",
      "normal 64mb 16mb 60",
      "3600",
      "999999999999999999999gb",
    ]);
    lines.push(`${name} ${value}`);
  }
  return lines.join("\n");
}

const settingsItems = pool((rng) => enc.encode(settingsText(rng)));

const settings: Target = {
  name: "settings",
  covers: "parseSetting / resolveSettings on `name value` lines: settings, or SettingError",
  ciCount: 100_000,
  input: (rng) =>
    mutatedInput(rng, (r) => enc.encode(settingsText(r)), settingsItems, "resp").subarray(0, 4096),
  run(input) {
    const lines = dec.decode(input).split("\n").slice(0, 32).map((l, i) => {
      const [name, ...rest] = l.trim().split(/\s+/);
      return { name, value: rest.join(" "), where: `fuzz:${i + 1}` };
    });
    for (const l of lines) {
      refusedOnly(() => void parseSetting(l.name, l.value), [SettingError], "parseSetting");
    }
    let s: ReturnType<typeof resolveSettings> | undefined;
    if (!refusedOnly(() => void (s = resolveSettings(lines)), [SettingError], "resolveSettings")) {
      return;
    }
    for (const [k, v] of Object.entries(s!)) {
      if (typeof v === "number" && !(Number.isSafeInteger(v) && v >= 0)) {
        throw new FuzzFailure(`${k} = ${v} accepted`);
      }
    }
  },
};

// ---------------------------------------------------------------------------------------------
// The ACL file parser: hook.
//
// lamportkv has no ACL file yet. When `src/config/acl.ts` lands, add a target here:
//
//   const acl: Target = {
//     name: "acl",
//     covers: "parseAclFile: users and rules, or AclError naming the line",
//     ciCount: 100_000,
//     input: (rng) => mutatedInput(rng, (r) => enc.encode(aclText(r)), aclItems, "resp"),
//     run(input) { refusedOnly(() => void parseAclFile(dec.decode(input), "fuzz.acl"), [AclError], "parseAclFile"); },
//   };
//
// and list it in TARGETS. The unit test then runs it in CI and replays tests/fuzz/corpus/acl/.

/** Every target, in the order the runner goes through them. */
export const TARGETS: readonly Target[] = [
  respRequest,
  respReply,
  binaryValue,
  peerFrame,
  jsonSplit,
  peerHandshake,
  replicaTarget,
  kvApply,
  kvRestore,
  recordScan,
  snapshotFile,
  walOpen,
  config,
  settings,
];

/** The target called `name`. */
export function targetNamed(name: string): Target {
  const t = TARGETS.find((t) => t.name === name);
  if (t === undefined) {
    throw new Error(
      `unknown fuzz target "${name}" (targets: ${TARGETS.map((t) => t.name).join(", ")})`,
    );
  }
  return t;
}
