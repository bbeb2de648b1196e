import assert from "node:assert/strict";
import { bytesToByteString, byteStringToBytes } from "../../src/kv/bytes.ts";
import { Prng } from "../../src/kv/prng.ts";

Deno.test("bytes: a byte string has one char code per byte, both ways, at every length", () => {
  const every = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(byteStringToBytes(bytesToByteString(every)), every);
  const rng = new Prng(7);
  // Both sides of the short-string path (16 bytes and less), and views into a larger buffer.
  for (let n = 0; n <= 40; n++) {
    const buffer = Uint8Array.from({ length: n + 8 }, () => rng.int(0, 255));
    buffer[4] = 0;
    buffer[Math.min(5, n + 3)] = 255;
    const bytes = buffer.subarray(4, 4 + n);
    const s = bytesToByteString(bytes);
    assert.equal(s.length, n);
    for (let i = 0; i < n; i++) assert.equal(s.charCodeAt(i), bytes[i], `length ${n}, byte ${i}`);
    assert.deepEqual(byteStringToBytes(s), Uint8Array.from(bytes));
  }
});
