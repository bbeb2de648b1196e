/**
 * Tests of the checksummed record framing: CRC-32C, round trips, every truncation point, and the
 * line between a torn tail (forgiven) and damage in the middle (CorruptionError).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Prng } from "../support/prng.ts";
import {
  CorruptionError,
  crc32c,
  encodeRecord,
  MAX_RECORD_BYTES,
  RECORD_HEADER_BYTES,
  RECORD_MAGIC,
  scanRecords,
} from "../../src/storage/record_codec.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);

/** A file of records with varied sizes (an empty payload included) and its record offsets. */
function sampleFile(): { bytes: Uint8Array; payloads: Uint8Array[]; starts: number[] } {
  const payloads = [
    utf8('{"a":1}'),
    new Uint8Array(0),
    utf8(JSON.stringify({ text: "LKVR inside a payload", n: 12345 })),
    Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff),
    utf8('"last"'),
  ];
  const frames = payloads.map(encodeRecord);
  const starts: number[] = [];
  let total = 0;
  for (const frame of frames) {
    starts.push(total);
    total += frame.length;
  }
  const bytes = new Uint8Array(total);
  frames.forEach((frame, i) => bytes.set(frame, starts[i]));
  return { bytes, payloads, starts };
}

Deno.test("crc32c matches the published CRC-32C check values", () => {
  assert.equal(crc32c(utf8("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // RFC 3720 (iSCSI) appendix B.4 test vectors.
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
});

/** CRC-32C a bit at a time: the definition, independent of the tables and word reads. */
function crc32cBitwise(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

Deno.test("crc32c equals the bitwise definition at every alignment and length", () => {
  const rng = new Prng(20261206);
  const backing = Uint8Array.from({ length: 4096 + 16 }, () => rng.int(0, 255));
  for (let offset = 0; offset < 8; offset++) {
    for (const length of [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 24, 31, 64, 65, 1000, 4096]) {
      // A view that starts at `offset` of its buffer: the word reads must align themselves.
      const view = backing.subarray(offset, offset + length);
      assert.equal(crc32c(view), crc32cBitwise(view), `offset ${offset}, length ${length}`);
      const cut = length >> 1;
      assert.equal(
        crc32c(view, cut, length, crc32c(view, 0, cut)),
        crc32cBitwise(view),
        `offset ${offset}, length ${length}, in two pieces`,
      );
    }
  }
});

Deno.test("crc32c can be computed in pieces and over a range", () => {
  const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31 + 7) & 0xff);
  const whole = crc32c(data);
  for (const cut of [0, 1, 3, 4, 5, 333, 999, 1000]) {
    assert.equal(crc32c(data, cut, data.length, crc32c(data, 0, cut)), whole, `cut ${cut}`);
  }
  assert.equal(crc32c(data, 10, 20), crc32c(data.slice(10, 20)));
});

Deno.test("encodeRecord writes magic, length and checksum, and scans back", () => {
  for (const size of [0, 1, 3, 4, 5, 100, 70_000]) {
    const payload = Uint8Array.from({ length: size }, (_, i) => (i * 13) & 0xff);
    const frame = encodeRecord(payload);
    assert.equal(frame.length, RECORD_HEADER_BYTES + size);
    const view = new DataView(frame.buffer);
    assert.equal(view.getUint32(0, false), RECORD_MAGIC);
    assert.deepEqual([...frame.subarray(0, 4)], [0x4c, 0x4b, 0x56, 0x52]); // "LKVR"
    assert.equal(view.getUint32(4, false), size);
    const lengthAndPayload = new Uint8Array([...frame.subarray(4, 8), ...payload]);
    assert.equal(view.getUint32(8, false), crc32c(lengthAndPayload));
    const scan = scanRecords(frame, "f");
    assert.equal(scan.tornTail, null);
    assert.equal(scan.validBytes, frame.length);
    assert.equal(scan.payloads.length, 1);
    assert.deepEqual(scan.payloads[0], payload);
  }
});

Deno.test("encodeRecord refuses a payload over the limit", () => {
  const huge = { length: MAX_RECORD_BYTES + 1 } as unknown as Uint8Array;
  assert.throws(() => encodeRecord(huge), RangeError);
});

Deno.test("scanRecords of an empty file finds nothing and no torn tail", () => {
  assert.deepEqual(scanRecords(new Uint8Array(0), "f"), {
    payloads: [],
    validBytes: 0,
    tornTail: null,
  });
});

Deno.test("every truncation point keeps the good prefix and reports a torn tail inside a record", () => {
  const { bytes, payloads, starts } = sampleFile();
  const boundaries = [...starts, bytes.length];
  for (let cut = 0; cut <= bytes.length; cut++) {
    const scan = scanRecords(bytes.slice(0, cut), "wal.log");
    const complete = boundaries.filter((b) => b <= cut).length - 1;
    const good = boundaries[complete];
    assert.equal(scan.validBytes, good, `cut ${cut}`);
    assert.deepEqual(scan.payloads, payloads.slice(0, complete), `cut ${cut}`);
    if (boundaries.includes(cut)) {
      assert.equal(scan.tornTail, null, `cut ${cut}`);
    } else {
      assert.ok(scan.tornTail !== null, `cut ${cut}: torn tail expected`);
      assert.equal(scan.tornTail.offset, good, `cut ${cut}`);
      assert.ok(scan.tornTail.reason.length > 0);
    }
  }
});

Deno.test("a bit flip anywhere in the last record is a torn tail", () => {
  const { bytes, payloads, starts } = sampleFile();
  const last = starts[starts.length - 1];
  for (let at = last; at < bytes.length; at++) {
    for (const bit of [0x01, 0x80]) {
      const damaged = bytes.slice();
      damaged[at] ^= bit;
      const scan = scanRecords(damaged, "wal.log");
      assert.deepEqual(scan.tornTail?.offset, last, `byte ${at} bit ${bit}`);
      assert.equal(scan.validBytes, last);
      assert.deepEqual(scan.payloads, payloads.slice(0, -1));
    }
  }
});

Deno.test("a bit flip anywhere in a middle record is corruption naming file and offset", () => {
  const { bytes, starts } = sampleFile();
  for (const record of [0, 1, 2, 3]) {
    for (let at = starts[record]; at < starts[record + 1]; at++) {
      const damaged = bytes.slice();
      damaged[at] ^= 0x10;
      assert.throws(
        () => scanRecords(damaged, "data/wal.log"),
        (e: unknown) => {
          assert.ok(e instanceof CorruptionError, `byte ${at}: ${e}`);
          assert.equal(e.name, "CorruptionError");
          assert.equal(e.offset, starts[record]);
          assert.equal(e.file, "data/wal.log");
          assert.match(e.message, /^data\/wal\.log: corrupt record at byte offset \d+: /);
          assert.ok(e.message.includes(`byte offset ${starts[record]}:`), e.message);
          return true;
        },
      );
    }
  }
});

Deno.test("a middle length field pointing past the end is corruption, not a torn tail", () => {
  const { bytes, starts } = sampleFile();
  const damaged = bytes.slice();
  new DataView(damaged.buffer).setUint32(starts[1] + 4, bytes.length * 2, false);
  assert.throws(() => scanRecords(damaged, "wal.log"), (e: unknown) => {
    assert.ok(e instanceof CorruptionError);
    assert.match(e.message, /extends past the end of the file/);
    assert.match(e.message, new RegExp(`a valid record follows at byte offset ${starts[2]}`));
    return true;
  });
  // An implausible (huge) length is refused without allocating, and is also middle damage.
  new DataView(damaged.buffer).setUint32(starts[1] + 4, 0xffffffff, false);
  assert.throws(() => scanRecords(damaged, "wal.log"), /implausible record length/);
});

Deno.test("garbage before valid records is corruption; zeros after them are padding if allowed", () => {
  const { bytes, payloads } = sampleFile();
  const prefixed = new Uint8Array(bytes.length + 5);
  prefixed.set([1, 2, 3, 4, 5]);
  prefixed.set(bytes, 5);
  assert.throws(() => scanRecords(prefixed, "wal.log"), /byte offset 0: bad magic number/);

  const zeros = new Uint8Array(bytes.length + 4096);
  zeros.set(bytes);
  const scan = scanRecords(zeros, "wal.log", { zeroPadding: true });
  assert.deepEqual(scan.payloads, payloads);
  assert.equal(scan.validBytes, bytes.length);
  assert.equal(scan.tornTail, null);
  // Without padding allowed (a snapshot file), zeros after the records are a torn tail.
  const strict = scanRecords(zeros, "snapshot.bin");
  assert.deepEqual(strict.tornTail, {
    offset: bytes.length,
    reason: "bad magic number 0x00000000",
  });

  // A torn record followed by zero padding is still a torn tail.
  const torn = new Uint8Array(bytes.length + 4096);
  torn.set(bytes);
  torn.set(encodeRecord(utf8("half")).subarray(0, 9), bytes.length);
  const tornScan = scanRecords(torn, "wal.log", { zeroPadding: true });
  assert.deepEqual(tornScan.payloads, payloads);
  assert.equal(tornScan.tornTail?.offset, bytes.length);
  assert.match(tornScan.tornTail?.reason ?? "", /record length|checksum/);
});

Deno.test("a magic number in the torn tail without a valid record after it stays a torn tail", () => {
  const { bytes, payloads } = sampleFile();
  const fake = encodeRecord(utf8("fake"));
  fake[fake.length - 1] ^= 1; // checksum no longer matches
  const tail = new Uint8Array(bytes.length + 3 + fake.length);
  tail.set(bytes);
  tail.set([0x4c, 0x4b, 0x56], bytes.length);
  tail.set(fake, bytes.length + 3);
  const scan = scanRecords(tail, "wal.log");
  assert.deepEqual(scan.payloads, payloads);
  assert.equal(scan.tornTail?.offset, bytes.length);
});
