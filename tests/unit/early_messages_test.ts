/** The core's holding of a promised view's messages until its install (`early_messages.ts`). */
import assert from "node:assert/strict";
import { EarlyMessages } from "../../src/core/early_messages.ts";
import type { PeerMessage } from "../../src/core/types.ts";

const update = (seq: number, value = "v"): Extract<PeerMessage, { type: "update" }> => ({
  type: "update",
  entry: { view: 7, ts: seq, origin: 2, seq, cmd: { op: { argv: ["SET", "k", value], time: 0 } } },
});
const ack: Extract<PeerMessage, { type: "ack" }> = {
  type: "ack",
  view: 7,
  promised: 7,
  ts: 1,
  acks: { 2: 1 },
};

Deno.test("early messages: held in order per view, taken once", () => {
  const early = new EarlyMessages();
  early.hold(7, 2, update(1));
  early.hold(7, 3, ack);
  early.hold(7, 2, update(2));
  assert.equal(early.size, 3);
  assert.deepEqual(early.take(6), [], "another view takes nothing");
  assert.deepEqual(early.take(7), [], "taking another view forgot the held ones");
  early.hold(7, 2, update(1));
  early.hold(7, 2, update(2));
  assert.deepEqual(early.take(7), [[2, update(1)], [2, update(2)]]);
  assert.deepEqual(early.take(7), []);
});

Deno.test("early messages: a later view replaces what an earlier one held", () => {
  const early = new EarlyMessages();
  early.hold(7, 2, update(1));
  early.hold(8, 2, update(5));
  assert.deepEqual(early.take(8), [[2, update(5)]]);
  early.hold(8, 2, update(6));
  early.clear();
  assert.deepEqual(early.take(8), []);
});

Deno.test("early messages: past the byte bound the view is lost, not partly kept", () => {
  const early = new EarlyMessages(1000);
  early.hold(7, 2, update(1, "x".repeat(500)));
  assert.equal(early.size, 1);
  early.hold(7, 2, update(2, "x".repeat(500)));
  assert.equal(early.size, 0);
  early.hold(7, 2, update(3));
  assert.equal(early.take(7), "lost");
  // A new view starts afresh.
  early.hold(8, 2, update(1));
  assert.deepEqual(early.take(8), [[2, update(1)]]);
});
