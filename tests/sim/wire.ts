/**
 * The simulator's network and disk carry bytes, as the real ones do: every message a simulated
 * replica sends goes through the peer codec (a message carrying a snapshot as the piece frames it
 * is streamed in, the others as one binary frame), and every log record through the log's binary
 * record form, and is validated field by field when read, so the simulated cluster runs on what
 * the codecs give back, not on shared objects. A snapshot is kept as what its file gives back: the
 * JSON of the value (the file's documents join into `JSON.parse(JSON.stringify(value))`).
 *
 * @module
 */
import type { DurableSnapshot, PeerMessage, PersistRecord } from "../../src/core/types.ts";
import {
  decodePeerFrame,
  encodePeerFrame,
  frameFromWire,
  msgsToWire,
  type PeerFrame,
  wireUnits,
} from "../../src/net/peer_codec.ts";
import { checkLogRecord } from "../../src/runtime/disk_storage.ts";
import { PieceAssembler, streamFrames } from "../../src/net/peer_stream.ts";
import { decodeRecordPayload } from "../../src/storage/wal.ts";
import { MAX_PEER_DOC_BYTES } from "../../src/limits.ts";

/** The messages of a `msgs` frame, or a thrown error naming what else the frame is. */
function msgsOf(frame: PeerFrame): PeerMessage[] {
  if (frame.kind !== "msgs") throw new Error(`expected a msgs frame, got "${frame.kind}"`);
  return frame.msgs;
}

/** `msg` (one carrying a snapshot) sent as piece frames and joined again, as a link does. */
function streamed(msg: PeerMessage): PeerMessage[] {
  const pieces = new PieceAssembler(MAX_PEER_DOC_BYTES);
  let whole: unknown = undefined;
  for (const piece of streamFrames(msgsToWire([msg]))) {
    const frame = decodePeerFrame(encodePeerFrame(piece));
    if (frame.kind !== "piece") throw new Error(`a piece decoded as a "${frame.kind}" frame`);
    if (whole !== undefined) throw new Error("pieces after the final one");
    whole = pieces.push(frame);
  }
  if (whole === undefined) throw new Error("a stream without its final piece");
  return msgsOf(frameFromWire(whole));
}

/**
 * What a replica receives when another sends it `msgs`: each unit of `wireUnits` encoded and
 * decoded, a batch as one frame and a message carrying a snapshot as pieces (as `PeerLink.send`).
 */
export function overTheWire(msgs: PeerMessage[]): PeerMessage[] {
  return wireUnits(msgs).flatMap((unit) =>
    "batch" in unit
      ? msgsOf(decodePeerFrame(encodePeerFrame({ kind: "msgs", msgs: unit.batch })))
      : streamed(unit.stream)
  );
}

/** Record number `index` read back from its stored bytes and checked as recovery checks it. */
export function recordFromBytes(bytes: Uint8Array, index: number): PersistRecord {
  const value = decodeRecordPayload(bytes, "simulated log", index);
  checkLogRecord(value, index, "simulated log");
  return value as PersistRecord;
}

/** `snapshot` as a snapshot file gives it back: its JSON value, parsed. */
export function snapshotFileCopy(snapshot: DurableSnapshot): DurableSnapshot {
  return JSON.parse(JSON.stringify(snapshot));
}
