import assert from "node:assert/strict";
import { crc16, keySlot, SLOTS } from "../../src/kv/slots.ts";

Deno.test("slots: CRC16/XMODEM and Redis's key slots, hash tags included", () => {
  // The CRC16/XMODEM check value, and slots Redis's documentation and CLUSTER KEYSLOT give.
  assert.equal(crc16("123456789"), 0x31c3);
  assert.equal(keySlot("foo"), 12182);
  assert.equal(keySlot("bar"), 5061);
  assert.equal(keySlot("{user1000}.following"), keySlot("{user1000}.followers"));
  assert.equal(keySlot("{user1000}.following"), 3443);
  // Redis's hash-tag rules (cluster specification): only the first {...} with something in it.
  assert.equal(keySlot("foo{}{bar}"), crc16("foo{}{bar}") % SLOTS);
  assert.equal(keySlot("foo{{bar}}zap"), crc16("{bar") % SLOTS);
  assert.equal(keySlot("foo{bar}{zap}"), crc16("bar") % SLOTS);
  assert.equal(keySlot("{}"), crc16("{}") % SLOTS);
  assert.equal(keySlot("no-brace}{"), crc16("no-brace}{") % SLOTS);
  // Binary keys (one byte per code unit) and the empty key stay in range.
  for (const k of ["", "\x00\xff", "\xff".repeat(100)]) {
    const s = keySlot(k);
    assert.ok(s >= 0 && s < SLOTS);
  }
});
