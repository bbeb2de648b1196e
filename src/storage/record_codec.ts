/**
 * Checksummed record framing for the files of a data directory. Pure: no I/O.
 *
 * One record on disk is a 12-byte header followed by the payload:
 *
 * ```text
 * [u32 BE magic 0x4C4B5652 "LKVR"][u32 BE payload length][u32 BE CRC-32C of length+payload][payload]
 * ```
 *
 * The checksum covers the 4 length bytes and the payload, so a damaged length is detected even
 * when it still points inside the file. {@link scanRecords} reads a file of records and tells a
 * torn write at the end of the file (a crash while appending: expected, recoverable by truncating)
 * apart from damage in the middle (never silently repaired: {@link CorruptionError}); optionally,
 * zero bytes after the last record are padding (a preallocated log segment), neither.
 *
 * @module
 */
import { MAX_RECORD_BYTES } from "../limits.ts";

/** The magic number that starts every record: the ASCII bytes "LKVR". */
export const RECORD_MAGIC = 0x4c4b5652;

/** Size of a record header in bytes (magic, length, checksum). */
export const RECORD_HEADER_BYTES = 12;

/**
 * The largest payload a record may carry: 256 MiB (from `src/limits.ts`). A length field above it
 * is treated as damage, so a corrupt length never makes a reader allocate or wait for gigabytes.
 */
export { MAX_RECORD_BYTES };

/**
 * A file is damaged in a way that is not a torn write at its end: a record in the middle is bad
 * (with valid records after it), or a file that is only ever replaced atomically is damaged at
 * all. The message names the file, the byte offset and what is wrong.
 */
export class CorruptionError extends Error {
  /** The file the damage was found in, when known. */
  readonly file?: string;
  /** Byte offset of the damaged record in that file, when known. */
  readonly offset?: number;

  /** Builds the error; `details` records the file and offset for programs. */
  constructor(message: string, details: { file?: string; offset?: number } = {}) {
    super(message);
    this.name = "CorruptionError";
    this.file = details.file;
    this.offset = details.offset;
  }
}

/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) lookup tables for slicing by 8, one flat
 * array: entry `256 * t + b` is the CRC of byte `b` followed by `t` zero bytes.
 */
const CRC_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  for (let t = 1; t < 8; t++) {
    for (let n = 0; n < 256; n++) {
      const prev = table[256 * (t - 1) + n];
      table[256 * t + n] = (table[prev & 0xff] ^ (prev >>> 8)) >>> 0;
    }
  }
  return table;
})();

/** Whether this machine stores a 32-bit word least significant byte first (words are read so). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Computes the CRC-32C (Castagnoli) checksum of `bytes[start, end)`. To checksum data in pieces,
 * pass the previous result as `crc`: `crc32c(b, 0, b.length, crc32c(a))` equals the CRC of `a`
 * followed by `b`. `crc32c(utf8("123456789")) === 0xe3069283`.
 *
 * Eight bytes per step, read as two aligned 32-bit words (about 1.2 GB/s, three times a byte
 * at a time by 4: every byte of the log and of snapshot files goes through it).
 */
export function crc32c(
  bytes: Uint8Array,
  start: number = 0,
  end: number = bytes.length,
  crc: number = 0,
): number {
  const t = CRC_TABLE;
  let c = ~crc >>> 0;
  let i = start;
  while (i < end && ((bytes.byteOffset + i) & 3) !== 0) c = t[(c ^ bytes[i++]) & 0xff] ^ (c >>> 8);
  const steps = LITTLE_ENDIAN ? (end - i) >>> 3 : 0;
  if (steps > 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset + i, 2 * steps);
    for (let w = 0; w < words.length; w += 2) {
      c ^= words[w];
      const hi = words[w + 1];
      c = t[1792 + (c & 0xff)] ^ t[1536 + ((c >>> 8) & 0xff)] ^ t[1280 + ((c >>> 16) & 0xff)] ^
        t[1024 + (c >>> 24)] ^ t[768 + (hi & 0xff)] ^ t[512 + ((hi >>> 8) & 0xff)] ^
        t[256 + ((hi >>> 16) & 0xff)] ^ t[hi >>> 24];
    }
    i += 8 * steps;
  }
  for (; i < end; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-32C of the 4 length bytes and the payload of the record starting at `offset`. */
function recordChecksum(bytes: Uint8Array, offset: number, length: number): number {
  const payloadAt = offset + RECORD_HEADER_BYTES;
  return crc32c(bytes, payloadAt, payloadAt + length, crc32c(bytes, offset + 4, offset + 8));
}

/**
 * The CRC-32C of a record's 4 length bytes: continue it over the payload (with {@link crc32c})
 * to get the record's checksum. For writers that produce a payload in pieces.
 */
export function lengthChecksum(length: number): number {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, length, false);
  return crc32c(bytes);
}

/** The 12-byte header of a record whose payload has `length` bytes and checksum `checksum`. */
export function recordHeader(length: number, checksum: number): Uint8Array {
  const header = new Uint8Array(RECORD_HEADER_BYTES);
  const view = new DataView(header.buffer);
  view.setUint32(0, RECORD_MAGIC, false);
  view.setUint32(4, length, false);
  view.setUint32(8, checksum, false);
  return header;
}

/**
 * Frames `payload` as one record: its 12-byte header, and the payload itself (not copied), for a
 * writer that writes them back to back (a state's 1 MiB records are not copied once more).
 *
 * @throws {RangeError} if the payload is longer than {@link MAX_RECORD_BYTES}.
 */
export function encodeRecordParts(payload: Uint8Array): [Uint8Array, Uint8Array] {
  if (payload.length > MAX_RECORD_BYTES) {
    throw new RangeError(
      `record payload of ${payload.length} bytes exceeds the limit of ${MAX_RECORD_BYTES} bytes`,
    );
  }
  const checksum = crc32c(payload, 0, payload.length, lengthChecksum(payload.length));
  return [recordHeader(payload.length, checksum), payload];
}

/**
 * Frames `payload` as one record (header + payload, in a new array).
 *
 * @throws {RangeError} if the payload is longer than {@link MAX_RECORD_BYTES}.
 */
export function encodeRecord(payload: Uint8Array): Uint8Array {
  const [header, body] = encodeRecordParts(payload);
  const out = new Uint8Array(header.length + body.length);
  out.set(header);
  out.set(body, header.length);
  return out;
}

/** What {@link scanRecords} found in a file. */
export interface ScanResult {
  /** The payloads of the valid records, in file order (views into the scanned bytes). */
  payloads: Uint8Array[];
  /** Length of the valid prefix: the byte offset where the last valid record ends. */
  validBytes: number;
  /**
   * Set when the file ends with a bad or incomplete record and no valid record follows it (a torn
   * write): where it starts (equal to `validBytes`) and what is wrong with it.
   */
  tornTail: { offset: number; reason: string } | null;
}

/**
 * Checks the record starting at `offset`. Returns its payload length when it is valid, else the
 * reason it is not.
 */
function checkRecordAt(bytes: Uint8Array, offset: number): number | string {
  const left = bytes.length - offset;
  if (left < RECORD_HEADER_BYTES) {
    return `incomplete record header (${left} of ${RECORD_HEADER_BYTES} bytes)`;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, RECORD_HEADER_BYTES);
  const magic = view.getUint32(0, false);
  if (magic !== RECORD_MAGIC) return `bad magic number 0x${hex(magic)}`;
  const length = view.getUint32(4, false);
  if (length > MAX_RECORD_BYTES) {
    return `implausible record length ${length} (limit ${MAX_RECORD_BYTES})`;
  }
  if (length > left - RECORD_HEADER_BYTES) {
    return `record length ${length} extends past the end of the file ` +
      `(${left - RECORD_HEADER_BYTES} bytes follow the header)`;
  }
  const stored = view.getUint32(8, false);
  const computed = recordChecksum(bytes, offset, length);
  if (stored !== computed) {
    return `checksum mismatch (stored 0x${hex(stored)}, computed 0x${hex(computed)})`;
  }
  return length;
}

/** Byte offset of the first valid record starting after `after`, or -1 if there is none. */
function findValidRecordAfter(bytes: Uint8Array, after: number): number {
  const m0 = RECORD_MAGIC >>> 24;
  const m1 = (RECORD_MAGIC >>> 16) & 0xff;
  const m2 = (RECORD_MAGIC >>> 8) & 0xff;
  const m3 = RECORD_MAGIC & 0xff;
  const last = bytes.length - RECORD_HEADER_BYTES;
  for (let q = after + 1; q <= last; q++) {
    if (
      bytes[q] === m0 && bytes[q + 1] === m1 && bytes[q + 2] === m2 && bytes[q + 3] === m3 &&
      typeof checkRecordAt(bytes, q) === "number"
    ) {
      return q;
    }
  }
  return -1;
}

/** What {@link scanRecordPrefix} found in a file. */
export interface PrefixScan {
  /** The payloads of the valid records before the first bad one, in file order (views into the
   * scanned bytes). */
  payloads: Uint8Array[];
  /** Length of the valid prefix: the byte offset where the last valid record ends. */
  validBytes: number;
  /**
   * The first bad or incomplete record, if any (not zero padding, when that is allowed): where it
   * starts (equal to `validBytes`), what is wrong with it, and where the first valid record after
   * it starts (-1 if none does).
   */
  damage: { offset: number; reason: string; nextValid: number } | null;
}

/**
 * Reads the valid records of a file from its start up to the first bad one, and says what comes
 * after it, without deciding whether that is a torn write or damage (a caller that knows how far
 * the file was made durable decides; {@link scanRecords} decides by what follows).
 *
 * With `zeroPadding`, where the bytes left are all zero the records simply end: that is the
 * unused, preallocated part of a log segment, not damage.
 */
export function scanRecordPrefix(
  bytes: Uint8Array,
  options: { zeroPadding?: boolean } = {},
): PrefixScan {
  const payloads: Uint8Array[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const checked = checkRecordAt(bytes, offset);
    if (typeof checked === "string") {
      if (options.zeroPadding && allZero(bytes, offset)) {
        return { payloads, validBytes: offset, damage: null };
      }
      const nextValid = findValidRecordAfter(bytes, offset);
      return { payloads, validBytes: offset, damage: { offset, reason: checked, nextValid } };
    }
    const start = offset + RECORD_HEADER_BYTES;
    payloads.push(bytes.subarray(start, start + checked));
    offset = start + checked;
  }
  return { payloads, validBytes: offset, damage: null };
}

/** The message of a bad record at `offset` of `fileName` followed by a valid one at `next`. */
export function middleDamageMessage(
  fileName: string,
  offset: number,
  reason: string,
  next: number,
): string {
  return `${fileName}: corrupt record at byte offset ${offset}: ${reason}; a valid record ` +
    `follows at byte offset ${next}, so this is damage in the middle of the file, ` +
    `not a torn write at its end`;
}

/**
 * Reads the records of a file from its start.
 *
 * With `zeroPadding`, where the bytes left are all zero the records simply end: that is the
 * unused, preallocated part of a log segment, not damage. Without it (files that are never
 * padded, like snapshots) zero bytes after the last record are a torn tail like any others.
 *
 * A bad record (bad magic, implausible length, length past the end, checksum mismatch) is a torn
 * tail only if no valid record starts at any later byte offset: then the result reports it and
 * `validBytes` is where the good prefix ends. Otherwise the damage is in the middle and this
 * throws, since dropping the valid records that follow would lose data.
 *
 * @param fileName used in error messages only.
 * @throws {CorruptionError} on a bad record that is followed by a valid one.
 */
export function scanRecords(
  bytes: Uint8Array,
  fileName: string,
  options: { zeroPadding?: boolean } = {},
): ScanResult {
  const { payloads, validBytes, damage } = scanRecordPrefix(bytes, options);
  if (damage === null) return { payloads, validBytes, tornTail: null };
  if (damage.nextValid >= 0) {
    throw new CorruptionError(
      middleDamageMessage(fileName, damage.offset, damage.reason, damage.nextValid),
      { file: fileName, offset: damage.offset },
    );
  }
  return { payloads, validBytes, tornTail: { offset: damage.offset, reason: damage.reason } };
}

/** True when every byte of `bytes` from `from` on is zero. */
function allZero(bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}
