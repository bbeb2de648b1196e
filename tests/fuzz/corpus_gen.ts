/**
 * Generators of valid inputs for the fuzz targets: RESP commands and replies, peer messages
 * recorded from a real (in-memory) cluster, key-value snapshots, persist records, config files,
 * JSON-shaped values for the binary value codec (and their bytes, even for a mutated value the
 * encoder refuses). Mutations start from these, so that most inputs get deep into a decoder before
 * they go wrong.
 *
 * @module
 */
import type { Event, PeerMessage, ReplicaId } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { encodePeerFrame } from "../../src/net/peer_codec.ts";
import { streamFrames } from "../../src/net/peer_stream.ts";
import { splitJson } from "../../src/codec/json_split.ts";
import { WELL_KNOWN_KEYS } from "../../src/codec/binary_value.ts";
import {
  encodeArray,
  encodeBulk,
  encodeCommand,
  encodeError,
  encodeInteger,
  encodeNullArray,
  encodeSimple,
} from "../../src/net/resp.ts";
import { CommandGenerator } from "../support/command_gen.ts";
import { ALL_FAMILIES } from "../support/command_gen.ts";
import { Prng } from "../support/prng.ts";
import { SyncCluster } from "../support/sync_cluster.ts";

const enc = new TextEncoder();

/** Random argument vectors from the differential-test generator (every family). */
export function commandArgvs(rng: Prng, max: number): string[][] {
  const gen = new CommandGenerator({
    seed: rng.int(0, 2 ** 32 - 1),
    families: ALL_FAMILIES,
    nowMs: 1_700_000_000_000,
  });
  const out: string[][] = [];
  const n = rng.int(1, max);
  while (out.length < n) {
    const unit = gen.next();
    if (unit.kind === "scan") out.push(unit.argv.map((a, i) => (i === unit.cursorIndex ? "0" : a)));
    else for (const c of unit.commands) out.push(c.argv);
  }
  return out.slice(0, n);
}

/** A few requests, as RESP arrays or inline lines. */
export function respRequests(rng: Prng): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const argv of commandArgvs(rng, 4)) {
    if (rng.chance(0.2)) {
      const words = argv.map((
        a,
      ) => (/^[\x21-\x7e]+$/.test(a) && !/["']/.test(a) ? a : JSON.stringify(a)));
      parts.push(enc.encode(words.join(" ") + (rng.chance(0.5) ? "\r\n" : "\n")));
    } else {
      parts.push(encodeCommand(argv));
    }
  }
  return join(parts);
}

function randomReply(rng: Prng, depth: number): Uint8Array {
  switch (rng.int(0, depth > 3 ? 5 : 7)) {
    case 0:
      return encodeSimple(rng.pick(["OK", "PONG", "QUEUED", "héllo"]));
    case 1:
      return encodeError(
        rng.pick(["ERR wrong", "NOQUORUM no", "UNKNOWN x", "WRONGTYPE Operation"]),
      );
    case 2:
      return encodeInteger(
        rng.pick([0, -1, 42, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]),
      );
    case 3:
      return encodeBulk(rng.chance(0.1) ? null : "v\r\n\x00\xff".slice(0, rng.int(0, 6)));
    case 4:
      return encodeNullArray();
    case 5:
      return encodeBulk("x".repeat(rng.int(0, 100)));
    default: {
      const n = rng.int(0, 4);
      return encodeArray(Array.from({ length: n }, () => randomReply(rng, depth + 1)));
    }
  }
}

/** A few replies. */
export function respReplies(rng: Prng): Uint8Array {
  return join(Array.from({ length: rng.int(1, 4) }, () => randomReply(rng, 0)));
}

/** Concatenates byte arrays. */
export function join(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * The payloads of the piece frames streaming `wire` (a frame's JSON value) with pieces of 1 to
 * `maxPiece` bytes, as a sender would write them (`src/net/peer_stream.ts`), each to be framed.
 */
export function piecePayloads(rng: Prng, wire: unknown, maxPiece = 64): Uint8Array[] {
  return [...streamFrames(wire, rng.int(1, maxPiece))].map(encodePeerFrame);
}

/**
 * The documents of a value split by `splitJson` (`src/codec/json_split.ts`), cut small (arrays over
 * 1 to 8 elements are holes, 1 to 200 characters a batch) so that they have many holes: a key-value
 * snapshot, recorded peer messages, or a nest of arrays.
 */
export function splitDocuments(rng: Prng, messages: readonly RecordedMessage[]): string[] {
  const r = rng.next();
  const value = r < 0.4
    ? kvSnapshot(rng)
    : r < 0.8
    ? Array.from({ length: rng.int(1, 12) }, () => pickMessage(rng, messages).msg)
    : nest(rng, 3);
  return [...splitJson(value, { splitLongerThan: rng.int(1, 8), pieceChars: rng.int(1, 200) })];
}

/** Arrays of arrays and objects, `depth` deep. */
function nest(rng: Prng, depth: number): unknown {
  if (depth === 0 || rng.chance(0.2)) return rng.pick([1, "x", null, true, [], {}]);
  const items = Array.from({ length: rng.int(0, 12) }, () => nest(rng, depth - 1));
  return rng.chance(0.7) ? items : { a: items, b: nest(rng, depth - 1) };
}

/** A message some replica sent, with its sender and receiver. */
export interface RecordedMessage {
  from: ReplicaId;
  to: ReplicaId;
  msg: PeerMessage;
}

class RecordingCluster extends SyncCluster {
  readonly sent: RecordedMessage[] = [];
  override step(id: ReplicaId, event: Event) {
    const actions = super.step(id, event);
    for (const a of actions) {
      if (a.type === "send") this.sent.push({ from: id, to: a.to, msg: a.msg });
    }
    return actions;
  }
}

let recorded: RecordedMessage[] | undefined;

const byType = new Map<readonly RecordedMessage[], RecordedMessage[][]>();

/** A message of `list`, each message type equally likely (most messages are acks). */
export function pickMessage(rng: Prng, list: readonly RecordedMessage[]): RecordedMessage {
  let groups = byType.get(list);
  if (groups === undefined) {
    const m = new Map<string, RecordedMessage[]>();
    for (const x of list) m.set(x.msg.type, [...(m.get(x.msg.type) ?? []), x]);
    groups = [...m.values()];
    byType.set(list, groups);
  }
  return rng.pick(rng.pick(groups));
}

/**
 * Every message of a short life of a 3-replica cluster: start (a view change), writes from each
 * replica, reads (probes), a replica cut off and healed (another view change with installs).
 */
export function recordedMessages(): RecordedMessage[] {
  if (recorded) return recorded;
  const c = new RecordingCluster([1, 2, 3]);
  c.start();
  let id = 1;
  const write = (r: ReplicaId, argv: string[], tag?: { client: string; seq: number }) => {
    c.step(r, {
      type: "request",
      id: id++,
      cmd: { op: { argv, time: 1_700_000_000_000 + id }, ...(tag ? { tag } : {}) },
    });
    c.settle();
    for (const x of c.ids) c.step(x, { type: "flush" });
    c.settle();
  };
  write(1, ["SET", "a", "1"]);
  write(2, ["SET", "b", "\x00\xff"], { client: "c1", seq: 1 });
  write(3, ["RPUSH", "l", "x", "y"]);
  write(1, ["GET", "a"]);
  c.tick(3);
  c.isolate(3);
  c.tick(400);
  write(1, ["INCR", "n"]);
  c.heal(3);
  c.tick(400);
  write(3, ["DEL", "a"]);
  c.tick(20);
  recorded = c.sent;
  return recorded;
}

/** A valid snapshot state of a {@link KvStore} after a few random commands. */
export function kvSnapshot(rng: Prng): unknown {
  const store = new KvStore();
  let t = 1_700_000_000_000;
  for (const argv of commandArgvs(rng, 12)) {
    store.apply({
      op: { argv, time: t += 1000 },
      tag: rng.chance(0.3) ? { client: `c${rng.int(1, 3)}`, seq: rng.int(1, 40) } : undefined,
    });
  }
  if (rng.chance(0.1)) {
    return { map: [["k", "v"], ["\x00", ""]], clients: [["c1", 3, { kind: "ok" }]] }; // the older format
  }
  return JSON.parse(JSON.stringify(store.snapshot())); // as it travels (its keys are lazy)
}

/** A config file's text: replica lines and setting lines, with comments and odd spacing. */
export function configText(rng: Prng): string {
  const lines: string[] = [];
  const n = rng.int(1, 5);
  for (let i = 1; i <= n; i++) {
    const sep = () => rng.pick([" ", "\t", "  ", " \t "]);
    lines.push(
      `${i}${sep()}${rng.pick(["127.0.0.1", "localhost", "::1", "Host.Example"])}${sep()}${
        7000 + i
      }${sep()}${7100 + i}` +
        (rng.chance(0.2) ? " # comment" : ""),
    );
  }
  const settings = [
    "maxclients 100",
    "timeout 0",
    "proto-max-bulk-len 8mb",
    "client-query-buffer-limit 1gb",
    "client-output-buffer-limit normal 0 0 0",
    "client-output-buffer-limit normal 64mb 16mb 60",
    "maxmemory-clients 128MB",
    "client-request-timeout 10",
    "peer-hello-timeout 5",
  ];
  for (const s of settings) if (rng.chance(0.3)) lines.push(s);
  if (rng.chance(0.3)) lines.unshift("# lamportkv cluster", "");
  for (let i = lines.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [lines[i], lines[j]] = [lines[j], lines[i]];
  }
  return (rng.chance(0.1) ? "\uFEFF" : "") + lines.join(rng.chance(0.2) ? "\r\n" : "\n");
}

// ---------------------------------------------------------------------------------------------
// Binary values (`src/codec/binary_value.ts`)

/** Every char code 0..255 once. */
const ALL_BYTES = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));

/** Integers at the edges of the codec's varint, and floats. */
const BINARY_NUMBERS: readonly number[] = [
  0,
  1,
  127,
  128,
  16383,
  16384,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  -1,
  -128,
  -(2 ** 53 - 1),
  0.5,
  -2.25,
  1e-300,
  Number.MAX_VALUE,
];

function binaryString(rng: Prng): string {
  switch (rng.int(0, 5)) {
    case 0:
      return rng.chance(0.3) ? ALL_BYTES : ALL_BYTES.slice(rng.int(0, 255));
    case 1:
      return rng.pick(["", "😀", "a\u0100b", "\ufeff", "\u2028x\xff", "é".repeat(30)]);
    case 2:
      return rng.pick(WELL_KNOWN_KEYS);
    default:
      return String.fromCharCode(...Array.from({ length: rng.int(0, 30) }, () => rng.int(0, 255)));
  }
}

/**
 * A JSON-shaped value as the binary value codec carries it: nested arrays and objects (with
 * well-known, array-index and other field names), byte strings, wider strings, edge numbers.
 */
export function binaryShapedValue(rng: Prng, depth = 0): unknown {
  const r = rng.next();
  if (depth >= 5 || r < 0.5) {
    switch (rng.int(0, 5)) {
      case 0:
        return rng.pick([null, true, false]);
      case 1:
      case 2:
        return rng.chance(0.7) ? rng.pick(BINARY_NUMBERS) : rng.int(-1000, 1000);
      default:
        return binaryString(rng);
    }
  }
  if (r < 0.75) {
    return Array.from({ length: rng.int(0, 6) }, () => binaryShapedValue(rng, depth + 1));
  }
  const o: Record<string, unknown> = {};
  for (let i = rng.int(0, 5); i > 0; i--) {
    const key = rng.chance(0.4)
      ? rng.pick(WELL_KNOWN_KEYS)
      : rng.chance(0.3)
      ? String(rng.int(0, 20))
      : binaryString(rng);
    o[key] = rng.chance(0.05) ? undefined : binaryShapedValue(rng, depth + 1);
  }
  return o;
}

/** A deterministic PRNG for input `index` of a run with `seed`. */
export function inputRng(seed: number, index: number): Prng {
  let h = (seed ^ Math.imul(index + 0x9e3779b9, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return new Prng((h ^ (h >>> 16)) >>> 0);
}
