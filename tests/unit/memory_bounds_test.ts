/**
 * Unit tests of the pieces that keep a replica's memory small under many connections: the read
 * buffer that is small while idle, the byte queue that allocates lazily, the request parser that
 * collects a large bulk string in parts, and the shared encoding of large bulk replies.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ReadBuffer } from "../../src/net/read_buffer.ts";
import { ByteQueue } from "../../src/net/byte_queue.ts";
import { encodeBulk, encodeCommand, encodeReply, RespRequestParser } from "../../src/net/resp.ts";
import { SharedBulks } from "../../src/net/shared_bulks.ts";
import { LARGE_BULK_BYTES } from "../../src/limits.ts";

Deno.test("ReadBuffer: small while reads are short, large after a full read, small again", () => {
  const r = new ReadBuffer(1024, 16 * 1024);
  assert.equal(r.buffer.length, 1024);
  r.buffer.fill(7);
  const data = r.filled(1024);
  assert.equal(data.length, 1024);
  assert.equal(data[1023], 7);
  assert.equal(r.buffer.length, 16 * 1024);
  r.filled(16 * 1024);
  assert.equal(r.buffer.length, 16 * 1024);
  r.filled(5000);
  assert.equal(r.buffer.length, 16 * 1024, "a medium read keeps the large buffer");
  r.filled(10);
  assert.equal(r.buffer.length, 1024);
});

Deno.test("ByteQueue: no buffer until bytes arrive, none once emptied after a large one", () => {
  const q = new ByteQueue();
  assert.equal(q.capacity, 0);
  q.append(new Uint8Array(10));
  assert.ok(q.capacity >= 10 && q.capacity <= 1024);
  q.start = q.end;
  q.resetIfEmpty();
  assert.ok(q.capacity > 0, "a small buffer is kept");
  q.append(new Uint8Array(100_000));
  assert.ok(q.capacity >= 100_000 && q.capacity <= 150_000, `capacity ${q.capacity}`);
  q.start = q.end;
  q.resetIfEmpty();
  assert.equal(q.capacity, 0);
});

/** A request whose value is `size` bytes of varying content. */
function bigSet(size: number): { bytes: Uint8Array; value: string } {
  let value = "";
  for (let i = 0; i < size; i++) value += String.fromCharCode((i * 7) & 0xff);
  return { bytes: encodeCommand(["SET", "k", value]), value };
}

Deno.test("RespRequestParser: a large bulk split anywhere (CRLF too) parses the same", () => {
  const size = LARGE_BULK_BYTES + 123;
  const { bytes, value } = bigSet(size);
  const cuts = [1, 17, 20, bytes.length - size, bytes.length - 2, bytes.length - 1];
  for (let step = 1; step < bytes.length; step = step * 3 + 1) cuts.push(step);
  for (const cut of cuts) {
    const p = new RespRequestParser();
    const pieces = [
      bytes.subarray(0, cut),
      bytes.subarray(cut, cut + 1000),
      bytes.subarray(cut + 1000),
    ].filter((piece) => piece.length > 0);
    let item = null;
    for (const piece of pieces) {
      assert.equal(item, null, `cut ${cut}: complete before the last piece`);
      p.push(piece);
      item = p.next();
    }
    assert.ok(item !== null && "argv" in item, `cut ${cut}: ${JSON.stringify(item)}`);
    assert.equal(item.argv.length, 3);
    assert.equal(item.argv[2].length, size);
    assert.ok(item.argv[2] === value, `cut ${cut}: the value differs`);
    assert.equal(p.pendingBytes, 0);
    assert.equal(p.next(), null);
  }
});

Deno.test("RespRequestParser: a large bulk arriving slowly is held once, then followed", () => {
  const size = 4 * LARGE_BULK_BYTES;
  const { bytes, value } = bigSet(size);
  const p = new RespRequestParser();
  const half = bytes.length - size / 2;
  for (let off = 0; off < half; off += 1000) {
    p.push(bytes.subarray(off, Math.min(off + 1000, half)));
    assert.equal(p.next(), null);
  }
  // After the consumed headers: "SET", "k" and the value received (half of it and 2 bytes).
  assert.equal(p.pendingBytes, 4 + size / 2 + 2);
  assert.ok(p.heldBytes < half + 2048, `held ${p.heldBytes} for ${half} bytes`);
  p.push(bytes.subarray(half));
  p.push(encodeCommand(["PING"]));
  const item = p.next();
  assert.ok(item !== null && "argv" in item && item.argv[2] === value);
  assert.deepEqual(p.next(), { argv: ["PING"] });
});

Deno.test("RespRequestParser: a large bulk not followed by CRLF is a protocol error", () => {
  const size = LARGE_BULK_BYTES;
  const p = new RespRequestParser();
  p.push(new TextEncoder().encode(`*2\r\n$3\r\nGET\r\n$${size}\r\n`));
  assert.equal(p.next(), null);
  p.push(new Uint8Array(size).fill(0x61));
  assert.equal(p.next(), null);
  p.push(new TextEncoder().encode("xy"));
  const item = p.next();
  assert.ok(item !== null && "error" in item && item.fatal, JSON.stringify(item));
  assert.match(item.error, /not followed by CRLF/);
  assert.ok(p.failed);
});

Deno.test("SharedBulks: one encoding per large value, as encodeReply would", () => {
  const bulks = new SharedBulks(1000, 5000);
  const big = "b".repeat(2000);
  const a = bulks.encode(big);
  assert.deepEqual(a, encodeBulk(big));
  assert.equal(bulks.encode(big), a, "the same bytes are shared");
  assert.equal(bulks.encode("b".repeat(2000)), a, "equal content shares too");
  const small = bulks.encode("s");
  assert.notEqual(bulks.encode("s"), small, "small values are not shared");
  const arr = bulks.encode([big, null, 3]);
  assert.deepEqual(arr, encodeReply([big, null, 3]));
  // Budget 5000: a third value of ~2000 bytes pushes out the least recently used.
  bulks.encode("c".repeat(2000));
  bulks.encode(big);
  bulks.encode("d".repeat(2000));
  assert.ok(bulks.cachedBytes <= 5000, `cached ${bulks.cachedBytes}`);
  assert.equal(bulks.encode(big), a, "the value used most recently stayed");
  const huge = "h".repeat(6000);
  assert.notEqual(bulks.encode(huge), bulks.encode(huge), "a value above the budget is not kept");
});
