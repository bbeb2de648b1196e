/**
 * Recovery of the write-ahead log, decided without I/O: given the bytes of its segments and its
 * sync mark (`wal_mark.ts`), which records are the log, where a torn tail starts and what to cut,
 * or a {@link CorruptionError} when data that may have been acknowledged is damaged.
 *
 * The rules, in order, for the first bad record (one that is neither a valid record nor the
 * zero padding of a preallocated segment):
 *
 * 1. **Before the mark** (in a segment before the mark's, or before its byte offset in the mark's
 *    segment): refused. That part was durable when the log said so, and may have been
 *    acknowledged.
 * 2. **A later segment holds a valid record**: refused too, mark or not. The log fdatasyncs a
 *    segment before it writes the first byte of the next one, so the damaged segment was
 *    complete and durable.
 * 3. **After the mark**: a torn tail, even if valid records follow it in the same segment: a power
 *    loss may have written later pages of the last writes and not earlier ones, and none of them
 *    was acknowledged (acknowledgements count only records the log reported durable, and the mark
 *    never runs ahead of that). It is cut off, and everything after it.
 * 4. **No mark** (a log written before marks existed): the older rule: a torn tail if no valid
 *    record follows it in its segment, refused otherwise.
 *
 * And without any bad record: the mark's segment must hold records up to the mark's offset, ending
 * exactly there or running on past it (else refused: durable records are missing).
 *
 * A large record written as a group of records (`record_groups.ts`) is one record of the log: a
 * group left unfinished at the end is a torn tail (cut at its start) unless the mark covers part
 * of it (refused); a record inside a group that is not a valid piece of it is refused.
 *
 * @module
 */

import { CorruptionError, middleDamageMessage, scanRecordPrefix } from "./record_codec.ts";
import { RECORD_HEADER_BYTES } from "./record_codec.ts";
import { type MarkPosition, SYNC_MARK_FILE } from "./wal_mark.ts";
import { joinGroups } from "./record_groups.ts";

/** One segment as read from disk. */
export interface SegmentBytes {
  number: number;
  path: string;
  bytes: Uint8Array;
}

/**
 * A record of the log: where it is and its payload (a view into the segment's bytes); for a large
 * record written as a group of records (`record_groups.ts`), where its group starts and the value
 * the group holds.
 */
export interface RecoveredRecord {
  segment: number;
  offset: number;
  path: string;
  payload: Uint8Array;
  /** The joined value of a group (no such property for a plain record: parse its payload). */
  value?: unknown;
}

/** What {@link planRecovery} decided. */
export interface RecoveryPlan {
  /** The records of the log, in order. */
  records: RecoveredRecord[];
  /** The torn tail found, if any. */
  tornTail: { file: string; offset: number; reason: string } | null;
  /** Files to cut to a length (the torn segment, and later ones holding only garbage). */
  cuts: { path: string; bytes: number }[];
}

/**
 * Decides the recovery of the segments `segments` (ascending, contiguous), with the sync mark
 * `mark` (null if there is none). A mark before `fromSegment` (segments deleted after a snapshot)
 * covers none of them.
 *
 * @throws {CorruptionError} per the rules of the module documentation.
 */
export function planRecovery(
  segments: SegmentBytes[],
  mark: MarkPosition | null,
  fromSegment: number,
): RecoveryPlan {
  const scans = segments.map((s) => ({
    ...s,
    scan: scanRecordPrefix(s.bytes, { zeroPadding: true }),
  }));
  /** Bytes of segment `n` known durable: all of it (Infinity), up to the offset, none. */
  const durableBytes = (n: number): number | undefined =>
    mark === null ? undefined : n < mark.segment ? Infinity : n === mark.segment ? mark.offset : 0;
  const records: RecoveredRecord[] = [];
  let tornTail: RecoveryPlan["tornTail"] = null;
  const cuts: RecoveryPlan["cuts"] = [];
  for (let i = 0; i < scans.length; i++) {
    const { number, path, scan } = scans[i];
    let offset = 0;
    for (const payload of scan.payloads) {
      records.push({ segment: number, offset, path, payload });
      offset += RECORD_HEADER_BYTES + payload.length;
    }
    const damage = scan.damage;
    if (damage === null) continue;
    const durable = durableBytes(number);
    const beforeMark = durable !== undefined && damage.offset < durable;
    if (damage.nextValid >= 0 && (durable === undefined || beforeMark)) {
      throw new CorruptionError(
        middleDamageMessage(path, damage.offset, damage.reason, damage.nextValid),
        { file: path, offset: damage.offset },
      );
    }
    const later = scans.slice(i + 1).find((s) =>
      s.scan.payloads.length > 0 || (s.scan.damage?.nextValid ?? -1) >= 0
    );
    if (later !== undefined) {
      throw new CorruptionError(
        `${path}: corrupt record at byte offset ${damage.offset}: ${damage.reason}; a later ` +
          `segment (${later.path}) holds records, so this is damage in the middle of the log, ` +
          `not a torn write at its end`,
        { file: path, offset: damage.offset },
      );
    }
    if (beforeMark) {
      const upTo = durable === Infinity ? "past the end of this segment" : `up to byte ${durable}`;
      throw new CorruptionError(
        `${path}: corrupt record at byte offset ${damage.offset}: ${damage.reason}; the log ` +
          `was reported durable ${upTo} (${SYNC_MARK_FILE}), so this record may have been ` +
          `acknowledged: damage, not a torn write`,
        { file: path, offset: damage.offset },
      );
    }
    tornTail = { file: path, offset: damage.offset, reason: damage.reason };
    cuts.push({ path, bytes: scan.validBytes });
    for (const rest of scans.slice(i + 1)) {
      if (rest.scan.damage !== null) cuts.push({ path: rest.path, bytes: rest.scan.validBytes });
    }
    break;
  }
  if (mark !== null && mark.offset > 0 && mark.segment >= fromSegment) {
    checkMarkCovered(scans, mark, records);
  }
  // Large records: a group cut short at the end was being written when the process stopped.
  const { values, unfinished } = joinGroups(records);
  const joined = values.map((v) => "value" in v ? { ...v.at, value: v.value } : v.at);
  if (unfinished === undefined) return { records: joined, tornTail, cuts };
  const durable = durableBytes(unfinished.segment);
  if (durable !== undefined && durable > unfinished.offset) {
    throw new CorruptionError(
      `${unfinished.path}: the group of records at byte offset ${unfinished.offset} ends before ` +
        `its value is complete, but the log was reported durable past it (${SYNC_MARK_FILE}): ` +
        `acknowledged data is missing`,
      { file: unfinished.path, offset: unfinished.offset },
    );
  }
  // Cut at the group's start, and every later segment to nothing (a cut there for damage, past
  // the group's start, is superseded).
  const groupCuts = [
    { path: unfinished.path, bytes: unfinished.offset },
    ...scans.filter((s) => s.number > unfinished.segment).map((s) => ({ path: s.path, bytes: 0 })),
  ];
  return {
    records: joined,
    tornTail: tornTail ?? {
      file: unfinished.path,
      offset: unfinished.offset,
      reason: "a group of records (one large record) cut short",
    },
    cuts: [...cuts.filter((c) => !groupCuts.some((g) => g.path === c.path)), ...groupCuts],
  };
}

/** Throws unless the mark's segment holds records up to the mark's offset, ending on a record. */
function checkMarkCovered(
  scans: { number: number; path: string }[],
  mark: MarkPosition,
  records: RecoveredRecord[],
): void {
  const segment = scans.find((s) => s.number === mark.segment);
  if (segment === undefined) {
    throw new CorruptionError(
      `log segment ${mark.segment} is missing, but the log was reported durable up to byte ` +
        `${mark.offset} of it (${SYNC_MARK_FILE})`,
    );
  }
  const ends = new Set<number>([0]);
  let last = 0;
  for (const r of records) {
    if (r.segment !== mark.segment) continue;
    last = r.offset + RECORD_HEADER_BYTES + r.payload.length;
    ends.add(last);
  }
  if (last < mark.offset) {
    throw new CorruptionError(
      `${segment.path}: its records end at byte offset ${last}, but the log was reported ` +
        `durable up to byte ${mark.offset} (${SYNC_MARK_FILE}): acknowledged records are missing`,
      { file: segment.path, offset: last },
    );
  }
  if (!ends.has(mark.offset)) {
    throw new CorruptionError(
      `${segment.path}: the log was reported durable up to byte ${mark.offset} ` +
        `(${SYNC_MARK_FILE}), which is inside a record: the mark does not belong to this log`,
      { file: segment.path, offset: mark.offset },
    );
  }
}
