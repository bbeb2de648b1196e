/**
 * Tests for length-prefixed frames: encoding, incremental decoding at every split point, many
 * frames per chunk, empty frames, truncation and oversized lengths.
 *
 * @module
 */
import assert from "node:assert/strict";
import { encodeFrame, FrameDecoder, FrameError, MAX_FRAME_BYTES } from "../../src/net/frame.ts";

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Drains every complete payload currently available (bounded). */
function drain(d: FrameDecoder): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < 100_000; i++) {
    const p = d.next();
    if (p === null) return out;
    out.push(p);
  }
  throw new Error("decoder never ran dry");
}

/** Deterministic pseudo-random bytes. */
function pseudoRandom(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

Deno.test("frame: MAX_FRAME_BYTES is 64 MiB", () => {
  assert.equal(MAX_FRAME_BYTES, 64 * 1024 * 1024);
});

Deno.test("frame: encodeFrame writes a big-endian length prefix", () => {
  assert.deepEqual(encodeFrame(bytes(1, 2, 3)), bytes(0, 0, 0, 3, 1, 2, 3));
  assert.deepEqual(encodeFrame(bytes()), bytes(0, 0, 0, 0));
  const big = new Uint8Array(0x01_02_03);
  const framed = encodeFrame(big);
  assert.deepEqual(framed.subarray(0, 4), bytes(0, 0x01, 0x02, 0x03));
  assert.equal(framed.length, 4 + 0x010203);
});

Deno.test("frame: encodeFrame refuses a payload above MAX_FRAME_BYTES", () => {
  const tooBig = new Uint8Array(MAX_FRAME_BYTES + 1);
  assert.throws(() => encodeFrame(tooBig), FrameError);
});

Deno.test("frame: round trip of one frame, and the payload is a copy", () => {
  const d = new FrameDecoder();
  const payload = bytes(10, 20, 30);
  const chunk = encodeFrame(payload);
  d.push(chunk);
  chunk.fill(0); // the decoder copied the chunk
  const out = d.next();
  assert.deepEqual(out, payload);
  assert.equal(d.next(), null);
  assert.equal(d.buffered, 0);
});

Deno.test("frame: a zero-length frame is allowed", () => {
  const d = new FrameDecoder();
  d.push(concat([encodeFrame(bytes()), encodeFrame(bytes(7)), encodeFrame(bytes())]));
  assert.deepEqual(drain(d), [bytes(), bytes(7), bytes()]);
});

Deno.test("frame: many frames in one chunk", () => {
  const payloads = Array.from({ length: 50 }, (_, i) => pseudoRandom(i * 7, i + 1));
  const d = new FrameDecoder();
  d.push(concat(payloads.map(encodeFrame)));
  assert.deepEqual(drain(d), payloads);
  assert.equal(d.buffered, 0);
});

Deno.test("frame: every single split point of a multi-frame stream", () => {
  const payloads = [bytes(1, 2, 3, 4, 5), bytes(), pseudoRandom(20, 9), bytes(0xff)];
  const stream = concat(payloads.map(encodeFrame));
  for (let cut = 0; cut <= stream.length; cut++) {
    const d = new FrameDecoder();
    d.push(stream.subarray(0, cut));
    const got = drain(d);
    d.push(stream.subarray(cut));
    got.push(...drain(d));
    assert.deepEqual(got, payloads, `split at ${cut}`);
  }
});

Deno.test("frame: every pair of split points", () => {
  const payloads = [bytes(1, 2, 3), bytes(), bytes(4, 5, 6, 7, 8, 9)];
  const stream = concat(payloads.map(encodeFrame));
  for (let a = 0; a <= stream.length; a++) {
    for (let b = a; b <= stream.length; b++) {
      const d = new FrameDecoder();
      const got: Uint8Array[] = [];
      for (const part of [stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)]) {
        d.push(part);
        got.push(...drain(d));
      }
      assert.deepEqual(got, payloads, `split at ${a}, ${b}`);
    }
  }
});

Deno.test("frame: byte by byte, with frames only ready once complete", () => {
  const payload = pseudoRandom(300, 3);
  const stream = encodeFrame(payload);
  const d = new FrameDecoder();
  for (let i = 0; i < stream.length - 1; i++) {
    d.push(stream.subarray(i, i + 1));
    assert.equal(d.next(), null, `after ${i + 1} bytes`);
    assert.equal(d.buffered, i + 1);
  }
  d.push(stream.subarray(stream.length - 1));
  assert.deepEqual(d.next(), payload);
  assert.equal(d.next(), null);
});

Deno.test("frame: large frames across many chunks and buffer reuse", () => {
  const payloads = [pseudoRandom(100_000, 1), pseudoRandom(10, 2), pseudoRandom(250_000, 3)];
  const stream = concat(payloads.map(encodeFrame));
  const d = new FrameDecoder();
  const got: Uint8Array[] = [];
  for (let at = 0, step = 1; at < stream.length; at += step, step = (step * 3 + 1) % 9000) {
    d.push(stream.subarray(at, at + step));
    got.push(...drain(d));
  }
  assert.deepEqual(got, payloads);
});

Deno.test("frame: a truncated frame stays pending", () => {
  const d = new FrameDecoder();
  const stream = encodeFrame(bytes(1, 2, 3, 4));
  d.push(stream.subarray(0, 6));
  assert.equal(d.next(), null);
  assert.equal(d.buffered, 6);
  d.push(bytes());
  assert.equal(d.next(), null);
  // A truncated header too.
  const h = new FrameDecoder();
  h.push(bytes(0, 0));
  assert.equal(h.next(), null);
  assert.equal(h.buffered, 2);
});

Deno.test("frame: an oversized length throws as soon as the header is complete", () => {
  const d = new FrameDecoder(10);
  d.push(encodeFrame(bytes(1, 2, 3)));
  d.push(bytes(0, 0, 0)); // header of the next frame, incomplete
  assert.deepEqual(d.next(), bytes(1, 2, 3));
  assert.equal(d.next(), null);
  d.push(bytes(11)); // declares 11 > 10; no payload byte has arrived
  assert.throws(() => d.next(), (err: unknown) => {
    assert.ok(err instanceof FrameError);
    assert.match(err.message, /11 bytes.*limit of 10 bytes/);
    return true;
  });
  // The decoder stays broken, drops its buffer and ignores further input.
  assert.equal(d.buffered, 0);
  d.push(encodeFrame(bytes(1)));
  assert.equal(d.buffered, 0);
  assert.throws(() => d.next(), FrameError);
});

Deno.test("frame: a length of exactly the maximum is accepted", () => {
  const d = new FrameDecoder(10);
  const payload = pseudoRandom(10, 5);
  d.push(encodeFrame(payload));
  assert.deepEqual(d.next(), payload);
});

Deno.test("frame: the default limit refuses 0xffffffff without buffering it", () => {
  const d = new FrameDecoder();
  d.push(bytes(0xff, 0xff, 0xff, 0xff, 1, 2, 3));
  assert.throws(() => d.next(), (err: unknown) => {
    assert.ok(err instanceof FrameError);
    assert.match(err.message, /4294967295 bytes/);
    return true;
  });
  const e = new FrameDecoder();
  e.push(encodeFrame(bytes(1)));
  // MAX_FRAME_BYTES + 1 = 0x04000001
  e.push(bytes(0x04, 0x00, 0x00, 0x01));
  assert.deepEqual(e.next(), bytes(1));
  assert.throws(() => e.next(), FrameError);
});

Deno.test("frame: frames before an oversized one in the same chunk are still returned", () => {
  const d = new FrameDecoder(4);
  d.push(concat([encodeFrame(bytes(1)), encodeFrame(bytes(2, 2)), bytes(0, 0, 0, 5, 9)]));
  assert.deepEqual(d.next(), bytes(1));
  assert.deepEqual(d.next(), bytes(2, 2));
  assert.throws(() => d.next(), FrameError);
});

Deno.test("frame: invalid maxFrameBytes is rejected", () => {
  for (const bad of [-1, 1.5, NaN, 2 ** 32]) {
    assert.throws(() => new FrameDecoder(bad), RangeError);
  }
  const zero = new FrameDecoder(0);
  zero.push(encodeFrame(bytes()));
  assert.deepEqual(zero.next(), bytes());
  zero.push(encodeFrame(bytes(1)));
  assert.throws(() => zero.next(), FrameError);
});
