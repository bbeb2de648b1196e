/**
 * The payload of peer frames: a {@link PeerFrame} in the binary value codec of
 * `src/codec/binary_value.ts` (the one codec of peer messages and log records), after the tag byte
 * 0x01.
 *
 * The frame's value (field names follow the types in `src/core/types.ts`; shown here as JSON):
 *
 * ```text
 * {"kind":"hello","from":1,"cluster":"3f2a..."}
 * {"kind":"hello","from":1,"cluster":"3f2a...","nonce":"<64 hex digits>"}    (with a cluster key)
 * {"kind":"challenge","from":2,"nonce":"<64 hex>","proof":"<64 hex>"}        (responder's reply)
 * {"kind":"auth","proof":"<64 hex>"}                                         (initiator's proof)
 * {"kind":"whois","from":4}                 (a joining replica asks for the cluster id; keyed:
 * {"kind":"whois","from":4,"nonce":"<64 hex>"}                                 with a nonce)
 * {"kind":"identity","from":2,"cluster":"3f2a..."}              (the answer; keyed: with a proof)
 * {"kind":"identity","from":2,"cluster":"3f2a...","proof":"<64 hex>"}
 * {"kind":"msgs","msgs":[
 *   {"type":"update","entry":{"view":1,"ts":7,"origin":2,"seq":3,
 *                             "cmd":{"op":{"argv":["SET","k","v"],"time":1733300000000},
 *                                    "tag":{"client":"c1","seq":4}}}},
 *   {"type":"ack","view":1,"promised":1,"ts":9,"acks":{"1":4,"2":3}}]}
 * ```
 *
 * A message that carries a snapshot, or a batch whose encoding is larger than `PEER_PIECE_BYTES`
 * (`src/limits.ts`), goes as a stream of consecutive piece frames (`src/net/peer_stream.ts`): the
 * `msgs` frame's value is written as JSON and split into
 * JSON documents (`src/codec/json_split.ts`: its large arrays are sent in batches of elements), and
 * each document is carried by one or more piece frames, so that no side ever holds the whole
 * message as one string:
 *
 * ```text
 * offset 0   1 byte   0x00 (the piece tag; a value frame starts with 0x01)
 * offset 1   1 byte   flags: 0x02 = this frame ends a document, 0x01 = it ends the message (and
 *                     its document); the other bits must be 0
 * offset 2   4 bytes  seq: big-endian, 0 for the first frame of a message, then 1, 2, ...
 * offset 6   n bytes  data: UTF-8 bytes of the document, at least 1
 * ```
 *
 * With a cluster key (`src/net/peer_auth.ts`) the hello carries a nonce, the responder answers
 * with a challenge and the initiator with an auth frame; every later frame's payload is a 32-byte
 * MAC followed by a `msgs` or piece frame (the MAC layer strips it before this codec sees it).
 *
 * View-change messages (`propose`, `flush`, `newview`, `accepted`, `commit`) carry entries,
 * flush reports, installs and snapshots in the same shape as their types. A snapshot's `state` is
 * the state machine's own JSON and is checked by the state machine when restored.
 *
 * Keys and values are {@link ByteString}s (char codes 0..255): one byte each in the binary codec;
 * the JSON of streamed documents carries them unchanged.
 * {@link decodePeerFrame} trusts nothing: it checks every field's presence, type and range, refuses
 * unknown kinds, types and fields, and throws {@link CodecError} naming the offending field, e.g.
 * `msgs[2].entry.seq: expected an integer >= 1, got 0`.
 *
 * @module
 */
import { BinaryValueError, decodeValue, encodeValue } from "../codec/binary_value.ts";
import type {
  AckVector,
  ByteString,
  ClientTag,
  Command,
  Entry,
  FlushReport,
  Install,
  Op,
  PeerMessage,
  PersistRecord,
  ReplicaId,
  Snapshot,
  Stamp,
} from "../core/types.ts";

/** What one peer frame carries. */
export type PeerFrame =
  /**
   * First frame on every peer connection: who is calling, and the fingerprint of its config;
   * with a cluster key also the caller's fresh nonce (32 bytes as hex).
   */
  | { kind: "hello"; from: ReplicaId; cluster: string; nonce?: string }
  /** The responder's answer to a keyed hello: its id, its nonce, and its proof (hex). */
  | { kind: "challenge"; from: ReplicaId; nonce: string; proof: string }
  /** The initiator's proof, completing a keyed handshake (hex). */
  | { kind: "auth"; proof: string }
  /** A batch of protocol messages, in send order. */
  | { kind: "msgs"; msgs: PeerMessage[] }
  /**
   * Instead of a hello: a joining replica `from` asks for the cluster id (with a cluster key, with
   * its fresh nonce). Answered with an `identity` frame, then the connection is closed.
   */
  | { kind: "whois"; from: ReplicaId; nonce?: string }
  /** The answer to a `whois`: the responder's id, the cluster id, and with a key its proof. */
  | { kind: "identity"; from: ReplicaId; cluster: string; proof?: string }
  /** A slice of a streamed `msgs` frame (binary; see the module doc). */
  | PieceFrame;

/** One `piece` frame: frame `seq` of a streamed message (see the module doc). */
export interface PieceFrame {
  kind: "piece";
  /** 0 for the first frame of a message, then consecutive. */
  seq: number;
  /** True on the frame that ends a document of the message. */
  docEnd: boolean;
  /** True on the message's last frame (it ends its document too). */
  final: boolean;
  /** This frame's bytes (not empty). */
  data: Uint8Array;
}

/** The first byte of a piece frame's payload. */
export const PIECE_TAG = 0x00;
/** The first byte of every other frame's payload: its binary value follows. */
export const VALUE_TAG = 0x01;
/** Bytes of a piece frame before its data: tag, flags, seq (u32). */
export const PIECE_HEADER_BYTES = 6;
/** The flag bit of the message's last frame. */
const PIECE_FINAL = 0x01;
/** The flag bit of a document's last frame. */
const PIECE_DOC_END = 0x02;

/** A peer frame payload that is not valid. The connection should be closed. */
export class CodecError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "CodecError";
  }
}

/**
 * Encodes a frame's payload (without the length prefix). Only the fields defined by the types are
 * written, so extra properties on the objects passed in never reach the wire.
 */
export function encodePeerFrame(frame: PeerFrame): Uint8Array {
  if (frame.kind === "piece") return encodePiece(frame);
  return encodeValue(toWire(frame), VALUE_TAG);
}

/**
 * The value of a `msgs` frame holding `msgs` (what {@link encodePeerFrame} encodes), for
 * a sender that streams it in pieces. It shares the messages' snapshot states (not copies).
 */
export function msgsToWire(msgs: PeerMessage[]): unknown {
  return toWire({ kind: "msgs", msgs });
}

/** True when `msg` carries a snapshot (a replica's whole state): such messages are streamed. */
export function carriesSnapshot(msg: PeerMessage): boolean {
  switch (msg.type) {
    case "newview":
      return msg.install.snapshot !== undefined;
    case "flush":
      return msg.report.snapshot !== undefined ||
        msg.report.accepted?.install.snapshot !== undefined;
    default:
      return false;
  }
}

/** One unit of what a link sends: messages for one `msgs` frame, or one message to stream. */
export type WireUnit = { batch: PeerMessage[] } | { stream: PeerMessage };

/**
 * How `msgs` go on a link, in order: each message carrying a snapshot streamed on its own, the
 * messages between such as one batch.
 */
export function wireUnits(msgs: PeerMessage[]): WireUnit[] {
  const units: WireUnit[] = [];
  let from = 0;
  for (let i = 0; i <= msgs.length; i++) {
    if (i < msgs.length && !carriesSnapshot(msgs[i])) continue;
    if (i > from) units.push({ batch: msgs.slice(from, i) });
    if (i < msgs.length) units.push({ stream: msgs[i] });
    from = i + 1;
  }
  return units;
}

function encodePiece({ seq, docEnd, final, data }: PieceFrame): Uint8Array {
  const out = new Uint8Array(PIECE_HEADER_BYTES + data.length);
  const view = new DataView(out.buffer);
  out[0] = PIECE_TAG;
  out[1] = (final ? PIECE_FINAL | PIECE_DOC_END : 0) | (docEnd ? PIECE_DOC_END : 0);
  view.setUint32(2, seq, false);
  out.set(data, PIECE_HEADER_BYTES);
  return out;
}

/**
 * Validates a piece frame's header field by field; `data` is a view of `payload` (not a copy).
 */
function pieceFromWire(payload: Uint8Array): PieceFrame {
  if (payload.length < PIECE_HEADER_BYTES + 1) {
    fail(
      "piece frame",
      `${payload.length} bytes, expected a ${PIECE_HEADER_BYTES}-byte header and at least 1 data byte`,
    );
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const flags = payload[1];
  if ((flags & ~(PIECE_FINAL | PIECE_DOC_END)) !== 0) {
    fail("piece frame.flags", `unknown flag bits in ${flags}`);
  }
  const final = (flags & PIECE_FINAL) !== 0;
  const docEnd = (flags & PIECE_DOC_END) !== 0;
  if (final && !docEnd) fail("piece frame.flags", "the final frame must end its document");
  return {
    kind: "piece",
    seq: view.getUint32(2, false),
    docEnd,
    final,
    data: payload.subarray(PIECE_HEADER_BYTES),
  };
}

function toWire(frame: PeerFrame): unknown {
  switch (frame.kind) {
    case "hello":
      return frame.nonce === undefined
        ? { kind: "hello", from: frame.from, cluster: frame.cluster }
        : { kind: "hello", from: frame.from, cluster: frame.cluster, nonce: frame.nonce };
    case "challenge":
      return { kind: "challenge", from: frame.from, nonce: frame.nonce, proof: frame.proof };
    case "auth":
      return { kind: "auth", proof: frame.proof };
    case "msgs":
      return { kind: "msgs", msgs: frame.msgs.map(messageToWire) };
    case "whois":
      return frame.nonce === undefined
        ? { kind: "whois", from: frame.from }
        : { kind: "whois", from: frame.from, nonce: frame.nonce };
    case "identity":
      return frame.proof === undefined
        ? { kind: "identity", from: frame.from, cluster: frame.cluster }
        : { kind: "identity", from: frame.from, cluster: frame.cluster, proof: frame.proof };
    case "piece":
      throw new Error("a piece frame has no value form");
  }
}

function messageToWire(msg: PeerMessage): unknown {
  const { type, view, ts } = msg.type === "update" ? { ...msg.entry, type: msg.type } : msg;
  switch (msg.type) {
    case "update":
      return { type, entry: entryToWire(msg.entry) };
    case "ack":
      return {
        type,
        view,
        promised: msg.promised,
        ts,
        acks: { ...msg.acks },
        ...(msg.hears === undefined ? {} : { hears: [...msg.hears] }),
      };
    case "propose":
      return {
        type,
        view,
        ts,
        ...groupToWire(msg),
        delivered: msg.delivered,
      };
    case "flush":
      return { type, view, ts, report: reportToWire(msg.report) };
    case "newview":
      return {
        type,
        view,
        ts,
        ...groupToWire(msg),
        install: installToWire(msg.install),
      };
    case "accepted":
    case "commit":
      return { type, view, ts };
    case "probe":
    case "probe-ack":
      return { type, view, ts, round: msg.round };
    case "checkpoint":
      return { type, view, ts, index: msg.index, digest: msg.digest };
  }
}

/** A proposed or installed view's members and (when it has them) learners, for the wire. */
function groupToWire(
  msg: { members: readonly ReplicaId[]; learners?: readonly ReplicaId[] },
): { members: ReplicaId[]; learners?: ReplicaId[] } {
  return {
    members: [...msg.members],
    ...(msg.learners === undefined ? {} : { learners: [...msg.learners] }),
  };
}

function entryToWire({ view, ts, origin, seq, cmd }: Entry): unknown {
  return { view, ts, origin, seq, cmd: commandToWire(cmd) };
}

function stampToWire(stamp: Stamp | null): unknown {
  return stamp === null ? null : { view: stamp.view, ts: stamp.ts, origin: stamp.origin };
}

function snapshotToWire(s: Snapshot): unknown {
  return { index: s.index, last: stampToWire(s.last), state: s.state };
}

function installToWire(install: Install): unknown {
  const wire: Record<string, unknown> = {
    from: install.from,
    entries: install.entries.map(entryToWire),
  };
  if (install.snapshot) wire.snapshot = snapshotToWire(install.snapshot);
  return wire;
}

function reportToWire(r: FlushReport): unknown {
  const wire: Record<string, unknown> = {
    normalView: r.normalView,
    delivered: r.delivered,
    last: stampToWire(r.last),
    holdback: r.holdback.map(entryToWire),
    log: { from: r.log.from, entries: r.log.entries.map(entryToWire) },
  };
  if (r.snapshot) wire.snapshot = snapshotToWire(r.snapshot);
  if (r.accepted) {
    wire.accepted = { view: r.accepted.view, install: installToWire(r.accepted.install) };
  }
  if (r.blank) wire.blank = true;
  return wire;
}

function commandToWire(cmd: Command): unknown {
  const wireOp = { argv: cmd.op.argv, time: cmd.op.time };
  return cmd.tag === undefined
    ? { op: wireOp }
    : { op: wireOp, tag: { client: cmd.tag.client, seq: cmd.tag.seq } };
}

/**
 * Decodes and validates a frame payload: a piece frame (binary header checked field by field, its
 * data a view of `payload`) or a binary value frame.
 *
 * @throws {CodecError} on an unknown tag, bytes that are not one binary value, or any missing,
 * unknown, mistyped or out-of-range field.
 */
export function decodePeerFrame(payload: Uint8Array): PeerFrame {
  if (payload.length === 0) throw new CodecError("peer frame is empty");
  if (payload[0] === PIECE_TAG) return pieceFromWire(payload);
  if (payload[0] !== VALUE_TAG) {
    throw new CodecError(`peer frame has the unknown tag ${payload[0]}`);
  }
  let value: unknown;
  try {
    value = decodeValue(payload, 1);
  } catch (err) {
    if (!(err instanceof BinaryValueError)) throw err;
    throw new CodecError(`peer frame is not a binary value: ${err.message}`);
  }
  return frameFromWire(value);
}

type Obj = Record<string, unknown>;

function fail(path: string, problem: string): never {
  throw new CodecError(path === "" ? problem : `${path}: ${problem}`);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") {
    return v.length > 40 ? `a string of length ${v.length}` : JSON.stringify(v);
  }
  if (typeof v === "object") return "an object";
  return String(v);
}

/** Checks that `v` is a plain object with exactly the `required` and (some of) `optional` keys. */
function object(
  v: unknown,
  path: string,
  required: readonly string[],
  optional: readonly string[] = [],
): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    fail(path, `expected an object, got ${describe(v)}`);
  }
  const o = v as Obj;
  for (const key of required) {
    if (!Object.hasOwn(o, key)) fail(path, `missing field "${key}"`);
  }
  for (const key of Object.keys(o)) {
    if (!required.includes(key) && !optional.includes(key)) {
      fail(path, `unknown field "${key}"`);
    }
  }
  return o;
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function integer(v: unknown, path: string, min: number): number {
  if (!isInteger(v, min)) fail(path, `expected an integer >= ${min}, got ${describe(v)}`);
  return v;
}

function string(v: unknown, path: string): string {
  if (typeof v !== "string") fail(path, `expected a string, got ${describe(v)}`);
  return v;
}

/** A char code above 0xff: not a byte string. */
const NOT_A_BYTE = /[\u0100-\uffff]/;

function byteString(v: unknown, path: string): ByteString {
  if (typeof v !== "string") fail(path, `expected a byte string, got ${describe(v)}`);
  if (!NOT_A_BYTE.test(v)) return v;
  for (let i = 0; i < v.length; i++) {
    if (v.charCodeAt(i) > 0xff) {
      fail(path, `expected a byte string, found char code ${v.charCodeAt(i)} at index ${i}`);
    }
  }
  return v;
}

/** 32 bytes as 64 lowercase hex digits (nonces and proofs of the keyed handshake). */
const HEX_32 = /^[0-9a-f]{64}$/;

function hex32(v: unknown, path: string): string {
  if (typeof v !== "string" || !HEX_32.test(v)) {
    fail(path, `expected 64 lowercase hex digits, got ${describe(v)}`);
  }
  return v;
}

/**
 * Validates the value of a frame (a decoded frame, or what a streamed message's pieces joined
 * into), like {@link decodePeerFrame} does after decoding.
 *
 * @throws {CodecError} naming the offending field.
 */
export function frameFromWire(v: unknown): PeerFrame {
  const head = object(v, "frame", ["kind"], ["from", "cluster", "msgs", "nonce", "proof"]);
  switch (head.kind) {
    case "hello": {
      const o = object(v, "hello frame", ["kind", "from", "cluster"], ["nonce"]);
      const cluster = string(o.cluster, "cluster");
      if (cluster === "") fail("cluster", "expected a non-empty string");
      const from = integer(o.from, "from", 1);
      if (!Object.hasOwn(o, "nonce")) return { kind: "hello", from, cluster };
      return { kind: "hello", from, cluster, nonce: hex32(o.nonce, "nonce") };
    }
    case "challenge": {
      const o = object(v, "challenge frame", ["kind", "from", "nonce", "proof"]);
      return {
        kind: "challenge",
        from: integer(o.from, "from", 1),
        nonce: hex32(o.nonce, "nonce"),
        proof: hex32(o.proof, "proof"),
      };
    }
    case "auth": {
      const o = object(v, "auth frame", ["kind", "proof"]);
      return { kind: "auth", proof: hex32(o.proof, "proof") };
    }
    case "msgs": {
      const o = object(v, "msgs frame", ["kind", "msgs"]);
      if (!Array.isArray(o.msgs)) fail("msgs", `expected an array, got ${describe(o.msgs)}`);
      return { kind: "msgs", msgs: o.msgs.map((m, i) => messageFromWire(m, `msgs[${i}]`)) };
    }
    case "whois": {
      const o = object(v, "whois frame", ["kind", "from"], ["nonce"]);
      const from = integer(o.from, "from", 1);
      if (!Object.hasOwn(o, "nonce")) return { kind: "whois", from };
      return { kind: "whois", from, nonce: hex32(o.nonce, "nonce") };
    }
    case "identity": {
      const o = object(v, "identity frame", ["kind", "from", "cluster"], ["proof"]);
      const from = integer(o.from, "from", 1);
      const cluster = string(o.cluster, "cluster");
      if (cluster === "") fail("cluster", "expected a non-empty string");
      if (!Object.hasOwn(o, "proof")) return { kind: "identity", from, cluster };
      return { kind: "identity", from, cluster, proof: hex32(o.proof, "proof") };
    }
    default:
      return fail("kind", `unknown frame kind ${describe(head.kind)}`);
  }
}

/** The fields of each peer message type besides `type` (exactly these, all required). */
const MESSAGE_FIELDS: Record<PeerMessage["type"], readonly string[]> = {
  update: ["entry"],
  ack: ["view", "promised", "ts", "acks"],
  propose: ["view", "ts", "members", "delivered"],
  flush: ["view", "ts", "report"],
  newview: ["view", "ts", "members", "install"],
  accepted: ["view", "ts"],
  commit: ["view", "ts"],
  probe: ["view", "ts", "round"],
  "probe-ack": ["view", "ts", "round"],
  checkpoint: ["view", "ts", "index", "digest"],
};

/** The fields a message type may have besides those of {@link MESSAGE_FIELDS}. */
const OPTIONAL_MESSAGE_FIELDS: Partial<Record<PeerMessage["type"], readonly string[]>> = {
  ack: ["hears"],
  propose: ["learners"],
  newview: ["learners"],
};

/** Every field some message type has (a field outside it is reported before the type). */
const ANY_MESSAGE_FIELD: readonly string[] = [
  ...new Set([...Object.values(MESSAGE_FIELDS), ...Object.values(OPTIONAL_MESSAGE_FIELDS)].flat()),
];

function messageFromWire(v: unknown, path: string): PeerMessage {
  const at = (key: string) => join(path, key);
  const head = object(v, path, ["type"], ANY_MESSAGE_FIELD);
  const type = head.type;
  if (typeof type !== "string" || !Object.hasOwn(MESSAGE_FIELDS, type)) {
    return fail(at("type"), `unknown message type ${describe(type)}`);
  }
  const o = object(
    v,
    path,
    ["type", ...MESSAGE_FIELDS[type as PeerMessage["type"]]],
    OPTIONAL_MESSAGE_FIELDS[type as PeerMessage["type"]],
  );
  const common = () => ({
    view: integer(o.view, at("view"), 0),
    ts: integer(o.ts, at("ts"), 0),
  });
  switch (type) {
    case "update": {
      return { type: "update", entry: entryFromWire(o.entry, at("entry")) };
    }
    case "ack": {
      return {
        type: "ack",
        view: integer(o.view, at("view"), -1),
        promised: integer(o.promised, at("promised"), -1),
        ts: integer(o.ts, at("ts"), 0),
        acks: acksFromWire(o.acks, at("acks")),
        ...(o.hears === undefined ? {} : { hears: idsFromWire(o.hears, at("hears")) }),
      };
    }
    case "propose": {
      return {
        type: "propose",
        ...common(),
        ...groupFromWire(o, path),
        delivered: integer(o.delivered, at("delivered"), 0),
      };
    }
    case "flush": {
      return { type: "flush", ...common(), report: reportFromWire(o.report, at("report")) };
    }
    case "newview": {
      return {
        type: "newview",
        ...common(),
        ...groupFromWire(o, path),
        install: installFromWire(o.install, at("install")),
      };
    }
    case "accepted":
    case "commit": {
      return { type, ...common() };
    }
    case "probe":
    case "probe-ack": {
      return { type, ...common(), round: integer(o.round, at("round"), 1) };
    }
    case "checkpoint": {
      return {
        type,
        ...common(),
        index: integer(o.index, at("index"), 1),
        digest: string(o.digest, at("digest")),
      };
    }
    default:
      return fail(at("type"), `unknown message type ${describe(type)}`);
  }
}

/**
 * Validates a write-ahead log record (a {@link PersistRecord} read back from the log) field by
 * field, with the checks the wire's messages get: the log and the wire carry entries, installs and stamps
 * in one shape. A snapshot's `state` inside an install is the state machine's to check.
 *
 * @throws {CodecError} naming the offending field, e.g. `record.entry.seq: expected ...`.
 */
export function persistRecordFromValue(v: unknown): PersistRecord {
  // Nearly every record is an entry: checked without a path string per field when well formed.
  const o = objectWith(v, ENTRY_RECORD_FIELDS);
  const entry = o?.r === "entry" ? entryIfWellFormed(o.entry) : undefined;
  return entry !== undefined ? { r: "entry", entry } : persistRecordFromValueChecked(v);
}

/**
 * {@link persistRecordFromValue} without its fast path for well-formed entries: every field
 * checked with its path at hand. The two agree on every input (a test compares them).
 *
 * @throws {CodecError} naming the offending field.
 */
export function persistRecordFromValueChecked(v: unknown): PersistRecord {
  const path = "record";
  const kind =
    object(v, path, ["r"], ["entry", "view", "members", "learners", "install", "index", "last"]).r;
  switch (kind) {
    case "entry": {
      const o = object(v, path, ["r", "entry"]);
      return { r: "entry", entry: entryFromWireChecked(o.entry, join(path, "entry")) };
    }
    case "promise":
    case "commit": {
      const o = object(v, path, ["r", "view"]);
      return { r: kind, view: integer(o.view, join(path, "view"), 0) };
    }
    case "accept": {
      const o = object(v, path, ["r", "view", "members", "install"], ["learners"]);
      return {
        r: "accept",
        view: integer(o.view, join(path, "view"), 0),
        ...groupFromWire(o, path),
        install: installFromWire(o.install, join(path, "install")),
      };
    }
    case "delivered": {
      const o = object(v, path, ["r", "view", "index", "last"]);
      const last = stampFromWire(o.last, join(path, "last"));
      if (last === null) return fail(join(path, "last"), "expected a stamp, got null");
      return {
        r: "delivered",
        view: integer(o.view, join(path, "view"), 0),
        index: integer(o.index, join(path, "index"), 1),
        last,
      };
    }
    default:
      return fail(join(path, "r"), `expected a record kind, got ${describe(kind)}`);
  }
}

function array(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) fail(path, `expected an array, got ${describe(v)}`);
  return v;
}

/** The members and optional learners of a propose or newview message `o` at `path`. */
function groupFromWire(
  o: Obj,
  path: string,
): { members: ReplicaId[]; learners?: ReplicaId[] } {
  return {
    members: idsFromWire(o.members, join(path, "members")),
    ...(Object.hasOwn(o, "learners")
      ? { learners: idsFromWire(o.learners, join(path, "learners")) }
      : {}),
  };
}

function idsFromWire(v: unknown, path: string): ReplicaId[] {
  return array(v, path).map((id, i) => integer(id, `${path}[${i}]`, 1));
}

function entriesFromWire(v: unknown, path: string): Entry[] {
  return array(v, path).map((e, i) => entryFromWire(e, `${path}[${i}]`));
}

function stampFromWire(v: unknown, path: string): Stamp | null {
  if (v === null) return null;
  const o = object(v, path, ["view", "ts", "origin"]);
  return {
    view: integer(o.view, join(path, "view"), 0),
    ts: integer(o.ts, join(path, "ts"), 0),
    origin: integer(o.origin, join(path, "origin"), 1),
  };
}

function snapshotFromWire(v: unknown, path: string): Snapshot {
  const o = object(v, path, ["index", "last", "state"]);
  return {
    index: integer(o.index, join(path, "index"), 0),
    last: stampFromWire(o.last, join(path, "last")),
    state: o.state,
  };
}

function installFromWire(v: unknown, path: string): Install {
  const o = object(v, path, ["from", "entries"], ["snapshot"]);
  const install: Install = {
    from: integer(o.from, join(path, "from"), 1),
    entries: entriesFromWire(o.entries, join(path, "entries")),
  };
  if (Object.hasOwn(o, "snapshot")) {
    install.snapshot = snapshotFromWire(o.snapshot, join(path, "snapshot"));
  }
  return install;
}

function reportFromWire(v: unknown, path: string): FlushReport {
  const o = object(
    v,
    path,
    ["normalView", "delivered", "last", "holdback", "log"],
    ["snapshot", "accepted", "blank"],
  );
  const log = object(o.log, join(path, "log"), ["from", "entries"]);
  const report: FlushReport = {
    normalView: integer(o.normalView, join(path, "normalView"), -1),
    delivered: integer(o.delivered, join(path, "delivered"), 0),
    last: stampFromWire(o.last, join(path, "last")),
    holdback: entriesFromWire(o.holdback, join(path, "holdback")),
    log: {
      from: integer(log.from, join(path, "log.from"), 1),
      entries: entriesFromWire(log.entries, join(path, "log.entries")),
    },
  };
  if (Object.hasOwn(o, "snapshot")) {
    report.snapshot = snapshotFromWire(o.snapshot, join(path, "snapshot"));
  }
  if (Object.hasOwn(o, "blank")) {
    if (o.blank !== true) fail(join(path, "blank"), `expected true, got ${describe(o.blank)}`);
    report.blank = true;
  }
  if (Object.hasOwn(o, "accepted")) {
    const a = object(o.accepted, join(path, "accepted"), ["view", "install"]);
    report.accepted = {
      view: integer(a.view, join(path, "accepted.view"), 0),
      install: installFromWire(a.install, join(path, "accepted.install")),
    };
  }
  return report;
}

const DECIMAL_ID = /^[1-9][0-9]*$/;

function acksFromWire(v: unknown, path: string): AckVector {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    fail(path, `expected an object, got ${describe(v)}`);
  }
  const acks: AckVector = {};
  for (const [key, seq] of Object.entries(v)) {
    const id = DECIMAL_ID.test(key) ? Number(key) : NaN;
    if (!Number.isSafeInteger(id)) {
      fail(path, `expected replica ids (positive integers) as keys, got ${describe(key)}`);
    }
    acks[id] = integer(seq, `${path}["${key}"]`, 0);
  }
  return acks;
}

function entryFromWire(v: unknown, path: string): Entry {
  return entryIfWellFormed(v) ?? entryFromWireChecked(v, path);
}

/**
 * The entry `v` stands for when it is well formed, else undefined: the checks of
 * {@link entryFromWireChecked} without building a path string per field (every entry of every
 * update and every recovered log record comes this way). Anything unusual, even an inherited
 * enumerable property, is left to the checked path, which then says what is wrong.
 */
function entryIfWellFormed(v: unknown): Entry | undefined {
  const o = objectWith(v, ENTRY_FIELDS);
  if (o === undefined) return undefined;
  const { view, ts, origin, seq } = o;
  if (!isInteger(view, 0) || !isInteger(ts, 0) || !isInteger(origin, 1) || !isInteger(seq, 1)) {
    return undefined;
  }
  const cmd = commandIfWellFormed(o.cmd);
  return cmd === undefined ? undefined : { view, ts, origin, seq, cmd };
}

/** {@link commandFromWire} when `v` is well formed, else undefined (see {@link entryIfWellFormed}). */
function commandIfWellFormed(v: unknown): Command | undefined {
  const c = objectWith(v, COMMAND_FIELDS, "tag");
  const op = objectWith(c?.op, OP_FIELDS);
  if (c === undefined || op === undefined) return undefined;
  const { argv, time } = op;
  if (!Array.isArray(argv) || argv.length === 0 || !isInteger(time, 0)) return undefined;
  for (const a of argv) if (typeof a !== "string" || NOT_A_BYTE.test(a)) return undefined;
  const checked: Op = { argv: argv.slice() as ByteString[], time };
  if (!Object.hasOwn(c, "tag")) return { op: checked };
  const tag = objectWith(c.tag, TAG_FIELDS);
  if (tag === undefined || typeof tag.client !== "string" || !isInteger(tag.seq, 0)) {
    return undefined;
  }
  return { op: checked, tag: { client: tag.client, seq: tag.seq } };
}

const ENTRY_RECORD_FIELDS = ["r", "entry"] as const;
const ENTRY_FIELDS = ["view", "ts", "origin", "seq", "cmd"] as const;
const COMMAND_FIELDS = ["op"] as const;
const OP_FIELDS = ["argv", "time"] as const;
const TAG_FIELDS = ["client", "seq"] as const;

/**
 * `v` when it is a plain object whose enumerable keys, inherited ones included, are exactly
 * `fields` (and `optional`, if present as its own); else undefined. What {@link object} checks,
 * without an error message or an array of its keys.
 */
function objectWith(v: unknown, fields: readonly string[], optional?: string): Obj | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const o = v as Obj;
  let n = 0;
  for (const _ in o) n++;
  if (n !== fields.length + (optional !== undefined && Object.hasOwn(o, optional) ? 1 : 0)) {
    return undefined;
  }
  for (const f of fields) if (!Object.hasOwn(o, f)) return undefined;
  return o;
}

function isInteger(v: unknown, min: number): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= min;
}

function entryFromWireChecked(v: unknown, path: string): Entry {
  const o = object(v, path, ["view", "ts", "origin", "seq", "cmd"]);
  return {
    view: integer(o.view, join(path, "view"), 0),
    ts: integer(o.ts, join(path, "ts"), 0),
    origin: integer(o.origin, join(path, "origin"), 1),
    seq: integer(o.seq, join(path, "seq"), 1),
    cmd: commandFromWire(o.cmd, join(path, "cmd")),
  };
}

function commandFromWire(v: unknown, path: string): Command {
  const o = object(v, path, ["op"], ["tag"]);
  const op = opFromWire(o.op, join(path, "op"));
  if (!Object.hasOwn(o, "tag")) return { op };
  return { op, tag: tagFromWire(o.tag, join(path, "tag")) };
}

function tagFromWire(v: unknown, path: string): ClientTag {
  const o = object(v, path, ["client", "seq"]);
  return {
    client: string(o.client, join(path, "client")),
    seq: integer(o.seq, join(path, "seq"), 0),
  };
}

function opFromWire(v: unknown, path: string): Op {
  const o = object(v, path, ["argv", "time"]);
  const argv = array(o.argv, join(path, "argv"));
  if (argv.length === 0) return fail(join(path, "argv"), "expected at least one argument");
  return {
    argv: argv.map((a, i) => byteString(a, join(path, `argv[${i}]`))),
    time: integer(o.time, join(path, "time"), 0),
  };
}
