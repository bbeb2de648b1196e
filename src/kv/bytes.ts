/**
 * Conversions between raw bytes, UTF-8 text and {@link ByteString}, the binary-safe string form
 * in which keys and values travel through the core (one char code 0..255 per byte); joining chunks.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { ByteString } from "../core/types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Compares byte strings by their bytes (code units): for `Array.prototype.sort`. */
export function byteOrder(a: ByteString, b: ByteString): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Raw bytes to a byte string (lossless: true latin1, not windows-1252). */
export function bytesToByteString(bytes: Uint8Array): ByteString {
  // Short ones (keys, mostly) in one call: a flat string. Appending a char at a time makes a
  // rope (a cons string) from 13 chars on, which every map lookup must flatten first: 3 million
  // 16-byte keys took 1.1 s to build that way, their lookups and inserts 3.0 s instead of 1.7 s.
  if (bytes.length <= 16) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
}

/** A byte string back to raw bytes (lossless). */
export function byteStringToBytes(s: ByteString): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** UTF-8 text (any JS string) to the byte string of its UTF-8 encoding. */
export function utf8ToByteString(text: string): ByteString {
  return bytesToByteString(encoder.encode(text));
}

/** A byte string to text, decoding its bytes as UTF-8 (invalid sequences become U+FFFD). */
export function byteStringToUtf8(s: ByteString): string {
  return decoder.decode(byteStringToBytes(s));
}

/** Joins byte chunks into one new array. */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const c of chunks) total += c.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * The chunks of `chunks` from `start` on that go into one write: as many as together hold at
 * most `upTo` bytes (at least one, however large), joined into one new array unless there is only
 * one (a large chunk is not copied). `end` is the index after the last one taken.
 */
export function joinedRun(
  chunks: readonly Uint8Array[],
  start: number,
  upTo: number,
): { bytes: Uint8Array; end: number } {
  let end = start + 1;
  let size = chunks[start].length;
  while (end < chunks.length && size + chunks[end].length <= upTo) size += chunks[end++].length;
  const bytes = end === start + 1 ? chunks[start] : concatBytes(chunks.slice(start, end));
  return { bytes, end };
}

/** Lowercase hex digits of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** The bytes of an even-length string of hex digits (callers check its form first). */
export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
