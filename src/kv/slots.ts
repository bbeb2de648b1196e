/**
 * Redis Cluster's hash slots: a key belongs to slot `CRC16(key) mod 16384`, where only the part
 * between the first `{` and the next `}` is hashed when that part is not empty (a hash tag), so
 * that related keys can be kept in one slot. CRC16 is the XMODEM variant (polynomial 0x1021, initial
 * value 0), as in Redis's `crc16.c`.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";

/** The number of hash slots. */
export const SLOTS = 16_384;

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let b = 0; b < 8; b++) c = (c & 0x8000) !== 0 ? ((c << 1) ^ 0x1021) : c << 1;
    t[i] = c & 0xffff;
  }
  return t;
})();

/** CRC16 (XMODEM) of the bytes of `s` (a byte string: one byte per code unit) from `start` to `end`. */
export function crc16(s: ByteString, start = 0, end = s.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ s.charCodeAt(i)) & 0xff];
  }
  return crc;
}

/** The hash slot of `key` (Redis's `keyHashSlot`). */
export function keySlot(key: ByteString): number {
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) return crc16(key, open + 1, close) & (SLOTS - 1);
  }
  return crc16(key) & (SLOTS - 1);
}

/**
 * The one slot all of `keys` hash to (a key repeated counts once); undefined when there are none,
 * null when they span slots (Redis's CROSSSLOT).
 */
export function commonSlot(keys: readonly ByteString[]): number | null | undefined {
  if (keys.length === 0) return undefined;
  const slot = keySlot(keys[0]);
  for (let i = 1; i < keys.length; i++) {
    if (keys[i] !== keys[0] && keySlot(keys[i]) !== slot) return null;
  }
  return slot;
}

/**
 * `<slot>` or `<start>-<end>`: an inclusive range of slots within 0..16383 with start <= end;
 * undefined when `text` is not one. The one parser of slot ranges (CLUSTER SETSLOT, MIGRATEKEYS,
 * the reshard tool's `--slots`).
 */
export function slotRange(text: string): { start: number; end: number } | undefined {
  const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(text);
  if (m === null) return undefined;
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  return start <= end && end < SLOTS ? { start, end } : undefined;
}

/**
 * A `-MOVED <slot> <host>:<port>` or `-ASK <slot> <host>:<port>` reply (without the `-`), parsed;
 * null for any other error.
 */
export function parseRedirect(
  message: string,
): { ask: boolean; slot: number; host: string; port: number } | null {
  const m = /^(MOVED|ASK) (\d+) (.+):(\d+)$/.exec(message);
  if (m === null) return null;
  const slot = Number(m[2]);
  if (slot >= SLOTS) return null;
  // An IPv6 address may come in brackets.
  const host = m[3].startsWith("[") && m[3].endsWith("]") ? m[3].slice(1, -1) : m[3];
  return { ask: m[1] === "ASK", slot, host, port: Number(m[4]) };
}
