/**
 * A JSON value of any size as a group of records (`record_codec.ts`): a first record whose payload
 * is {@link GROUP_HEADER}, then the JSON documents of `src/codec/json_split.ts` (about 1 MiB each;
 * the value's large arrays in batches of elements), one per record. Snapshot files hold one group;
 * the write-ahead log writes a large record (an install carrying a snapshot) as one among its
 * plain records. Neither side ever holds the value as one string, and each piece is checksummed
 * by its record.
 *
 * @module
 */
import { CorruptionError, encodeRecordParts } from "./record_codec.ts";
import { JsonJoiner, splitJson } from "../codec/json_split.ts";

/** The payload of a group's first record. */
export const GROUP_HEADER = '{"format":"split-json","version":1}';

const encoder = new TextEncoder();

/** True when a record's payload is {@link GROUP_HEADER} (a group's records follow). */
export function isGroupHeader(payload: Uint8Array): boolean {
  if (payload.length !== GROUP_HEADER.length) return false;
  for (let i = 0; i < payload.length; i++) {
    if (payload[i] !== GROUP_HEADER.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * The records of the group holding `value`, framed, lazily, each as its header and its payload
 * (see {@link encodeRecordParts}: written back to back they are the record). Each document is
 * serialized when its record is asked for; the value must not change meanwhile.
 *
 * @throws {TypeError} if `value` has no JSON form; {@link RangeError} if one element of its large
 * arrays alone exceeds a record.
 */
export function* groupRecords(
  value: unknown,
  pieceChars?: number,
): Generator<[Uint8Array, Uint8Array]> {
  yield* documentRecords(function* () {
    for (const doc of splitJson(value, { pieceChars })) yield encoder.encode(doc);
  }());
}

/**
 * The records of the group whose documents (UTF-8 JSON, as `splitJson` makes them) are
 * `documents`, framed as {@link groupRecords} frames them, lazily: for a value that arrives split
 * already (a state a peer streamed), which is then logged without being encoded again. Each
 * record's payload is its document itself, not a copy.
 *
 * @throws {RangeError} if a document exceeds a record.
 */
export function* documentRecords(
  documents: Iterable<Uint8Array>,
): Generator<[Uint8Array, Uint8Array]> {
  yield encodeRecordParts(encoder.encode(GROUP_HEADER));
  for (const doc of documents) yield encodeRecordParts(doc);
}

/** A record's payload and where it is (for errors and for positions). */
export interface LocatedPayload {
  path: string;
  offset: number;
  payload: Uint8Array;
}

/**
 * Record payloads with their groups joined: each value with its first record (a plain record has
 * no `value` property: the caller parses its payload; a group's value may be null), and the first
 * record of a group left unfinished at the end, if any. `onJoined` is told each record once it is
 * taken (a group's piece once it is parsed), in order.
 *
 * @throws {CorruptionError} when a group holds a record that is not a valid next piece.
 */
export function joinGroups<R extends LocatedPayload>(
  records: readonly R[],
  onJoined?: (record: R) => void,
): {
  values: { at: R; value?: unknown }[];
  unfinished?: R;
} {
  const values: { at: R; value?: unknown }[] = [];
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let group: { at: R; joiner: JsonJoiner } | undefined;
  for (const r of records) {
    if (group === undefined) {
      if (isGroupHeader(r.payload)) group = { at: r, joiner: new JsonJoiner() };
      else values.push({ at: r });
      onJoined?.(r);
      continue;
    }
    try {
      group.joiner.push(decoder.decode(r.payload));
    } catch (e) {
      throw new CorruptionError(
        `${r.path}: record at byte offset ${r.offset} has a valid checksum but is not a valid ` +
          `piece of the group of records at ${group.at.path}:${group.at.offset}: ` +
          (e instanceof Error ? e.message : String(e)),
        { file: r.path, offset: r.offset },
      );
    }
    if (group.joiner.complete) {
      values.push({ at: group.at, value: group.joiner.value() });
      group = undefined;
    }
    onJoined?.(r);
  }
  return { values, unfinished: group?.at };
}
