/**
 * The payload of peer frames: a {@link PeerFrame} encoded as JSON text in UTF-8.
 *
 * Wire form (one JSON object per frame; field names follow the types in `src/core/types.ts`):
 *
 * ```text
 * {"kind":"hello","from":1,"cluster":"3f2a..."}
 * {"kind":"msgs","msgs":[
 *   {"type":"update","entry":{"view":1,"ts":7,"origin":2,"seq":3,
 *                             "cmd":{"op":{"kind":"put","key":"k","value":"v"},
 *                                    "tag":{"client":"c1","seq":4}}}},
 *   {"type":"ack","view":1,"ts":9,"acks":{"1":4,"2":3}}]}
 * ```
 *
 * Keys and values are {@link ByteString}s (char codes 0..255), which JSON carries unchanged.
 * {@link decodePeerFrame} trusts nothing: it checks every field's presence, type and range, refuses
 * unknown kinds, types and fields, and throws {@link CodecError} naming the offending field, e.g.
 * `msgs[2].entry.seq: expected an integer >= 1, got 0`.
 *
 * @module
 */
import type {
  AckVector,
  ByteString,
  ClientTag,
  Command,
  Entry,
  Op,
  PeerMessage,
  ReplicaId,
} from "../core/types.ts";

/** What one peer frame carries. */
export type PeerFrame =
  /** First frame on every peer connection: who is calling, and the fingerprint of its config. */
  | { kind: "hello"; from: ReplicaId; cluster: string }
  /** A batch of protocol messages, in send order. */
  | { kind: "msgs"; msgs: PeerMessage[] };

/** A peer frame payload that is not valid. The connection should be closed. */
export class CodecError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "CodecError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Encodes a frame's payload (without the length prefix). Only the fields defined by the types are
 * written, so extra properties on the objects passed in never reach the wire.
 */
export function encodePeerFrame(frame: PeerFrame): Uint8Array {
  return encoder.encode(JSON.stringify(toWire(frame)));
}

function toWire(frame: PeerFrame): unknown {
  switch (frame.kind) {
    case "hello":
      return { kind: "hello", from: frame.from, cluster: frame.cluster };
    case "msgs":
      return { kind: "msgs", msgs: frame.msgs.map(messageToWire) };
  }
}

function messageToWire(msg: PeerMessage): unknown {
  switch (msg.type) {
    case "update": {
      const { view, ts, origin, seq, cmd } = msg.entry;
      return { type: "update", entry: { view, ts, origin, seq, cmd: commandToWire(cmd) } };
    }
    case "ack":
      return { type: "ack", view: msg.view, ts: msg.ts, acks: { ...msg.acks } };
  }
}

function commandToWire(cmd: Command): unknown {
  const op = cmd.op;
  const wireOp = op.kind === "put"
    ? { kind: op.kind, key: op.key, value: op.value }
    : { kind: op.kind, key: op.key };
  return cmd.tag === undefined
    ? { op: wireOp }
    : { op: wireOp, tag: { client: cmd.tag.client, seq: cmd.tag.seq } };
}

/**
 * Decodes and validates a frame payload.
 *
 * @throws {CodecError} on invalid UTF-8, invalid JSON, or any missing, unknown, mistyped or
 * out-of-range field.
 */
export function decodePeerFrame(payload: Uint8Array): PeerFrame {
  let text: string;
  try {
    text = decoder.decode(payload);
  } catch {
    throw new CodecError("peer frame is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new CodecError(`peer frame is not valid JSON: ${reason}`);
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
function object(v: unknown, path: string, required: string[], optional: string[] = []): Obj {
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
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    fail(path, `expected an integer >= ${min}, got ${describe(v)}`);
  }
  return v;
}

function string(v: unknown, path: string): string {
  if (typeof v !== "string") fail(path, `expected a string, got ${describe(v)}`);
  return v;
}

function byteString(v: unknown, path: string): ByteString {
  if (typeof v !== "string") fail(path, `expected a byte string, got ${describe(v)}`);
  for (let i = 0; i < v.length; i++) {
    if (v.charCodeAt(i) > 0xff) {
      fail(path, `expected a byte string, found char code ${v.charCodeAt(i)} at index ${i}`);
    }
  }
  return v;
}

function frameFromWire(v: unknown): PeerFrame {
  const head = object(v, "frame", ["kind"], ["from", "cluster", "msgs"]);
  switch (head.kind) {
    case "hello": {
      const o = object(v, "hello frame", ["kind", "from", "cluster"]);
      const cluster = string(o.cluster, "cluster");
      if (cluster === "") fail("cluster", "expected a non-empty string");
      return { kind: "hello", from: integer(o.from, "from", 1), cluster };
    }
    case "msgs": {
      const o = object(v, "msgs frame", ["kind", "msgs"]);
      if (!Array.isArray(o.msgs)) fail("msgs", `expected an array, got ${describe(o.msgs)}`);
      return { kind: "msgs", msgs: o.msgs.map((m, i) => messageFromWire(m, `msgs[${i}]`)) };
    }
    default:
      return fail("kind", `unknown frame kind ${describe(head.kind)}`);
  }
}

function messageFromWire(v: unknown, path: string): PeerMessage {
  const head = object(v, path, ["type"], ["entry", "view", "ts", "acks"]);
  switch (head.type) {
    case "update": {
      const o = object(v, path, ["type", "entry"]);
      return { type: "update", entry: entryFromWire(o.entry, join(path, "entry")) };
    }
    case "ack": {
      const o = object(v, path, ["type", "view", "ts", "acks"]);
      return {
        type: "ack",
        view: integer(o.view, join(path, "view"), 0),
        ts: integer(o.ts, join(path, "ts"), 0),
        acks: acksFromWire(o.acks, join(path, "acks")),
      };
    }
    default:
      return fail(join(path, "type"), `unknown message type ${describe(head.type)}`);
  }
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
  const head = object(v, path, ["kind"], ["key", "value"]);
  switch (head.kind) {
    case "put": {
      const o = object(v, path, ["kind", "key", "value"]);
      return {
        kind: "put",
        key: byteString(o.key, join(path, "key")),
        value: byteString(o.value, join(path, "value")),
      };
    }
    case "get":
    case "delete":
    case "has": {
      const o = object(v, path, ["kind", "key"]);
      return { kind: head.kind, key: byteString(o.key, join(path, "key")) };
    }
    default:
      return fail(join(path, "kind"), `unknown op kind ${describe(head.kind)}`);
  }
}
