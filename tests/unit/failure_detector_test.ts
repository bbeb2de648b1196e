import assert from "node:assert/strict";
import { EXHAUSTIVE_GROUP, FailureDetector } from "../../src/core/failure_detector.ts";

const SUSPECT = 100;

/** Replica 1's detector at tick `now`, having heard each of `hears`' keys report its list. */
function detector(hears: Record<number, number[]>, ids = [1, 2, 3, 4, 5], now = 0) {
  const d = new FailureDetector(1, ids, SUSPECT);
  for (const [peer, list] of Object.entries(hears)) d.heard(Number(peer), now, 0, list);
  return d;
}

Deno.test("failure detector: silence suspects, a message or a grace period revives", () => {
  const d = new FailureDetector(1, [1, 2, 3], SUSPECT);
  assert.deepEqual(d.alive(0), [1]);
  d.heard(2, 10);
  assert.deepEqual(d.alive(10 + SUSPECT), [1, 2]);
  assert.deepEqual(d.alive(11 + SUSPECT), [1]);
  d.grace(3, 50);
  assert.deepEqual(d.alive(60), [1, 2, 3]);
  // A grace period is not a message: 3 is alive, but not reported as heard.
  assert.deepEqual(d.hearing(60), [2]);
});

Deno.test("failure detector: connected means heard both ways (by silence here, by reports there)", () => {
  // 2 hears 1 and 3; 3 hears 1 only (2 -> 3 is cut); 4 sent no report yet.
  const d = detector({ 2: [1, 3], 3: [1] });
  d.heard(4, 0);
  assert.equal(d.connected(1, 2, 0), true);
  assert.equal(d.connected(2, 1, 0), true);
  assert.equal(d.connected(2, 3, 0), false, "3 does not hear 2");
  assert.equal(d.connected(3, 2, 0), false);
  assert.equal(d.connected(1, 4, 0), true, "no report yet: assumed to work");
  assert.equal(d.connected(1, 5, 0), false, "never heard 5");
  assert.equal(d.connected(1, 2, SUSPECT + 1), false, "2 went silent here");
});

Deno.test("failure detector: the largest connected group, current members kept on a tie", () => {
  // 1..5 all hear each other but 2 and 3 (cut both ways).
  const all = [1, 2, 3, 4, 5];
  const d = detector({ 2: [1, 4, 5], 3: [1, 4, 5], 4: [1, 2, 3, 5], 5: [1, 2, 3, 4] });
  assert.deepEqual(d.largestGroup(all, [], 0), [1, 2, 4, 5]);
  assert.deepEqual(d.largestGroup(all, [1, 3, 4, 5], 0), [1, 3, 4, 5]);
  // A partition with a bridge: {1,2} | {3,4,5}, but 2 <-> 4 works. From 4's side the only
  // majority is 3, 4, 5; from 2's, no connected group of 3 exists.
  const four = new FailureDetector(4, all, SUSPECT);
  for (const [peer, list] of [[2, [1, 4]], [3, [4, 5]], [5, [3, 4]]] as const) {
    four.heard(peer, 0, 0, [...list]);
  }
  assert.deepEqual(four.largestGroup([2, 3, 4, 5], [1, 2, 3, 4, 5], 0), [3, 4, 5]);
  const two = new FailureDetector(2, all, SUSPECT);
  two.heard(1, 0, 0, [2]);
  two.heard(4, 0, 0, [2, 3, 5]);
  assert.deepEqual(two.largestGroup([1, 2, 4], all, 0).length, 2);
});

Deno.test("failure detector: beyond the exhaustive bound the group is built greedily", () => {
  const n = EXHAUSTIVE_GROUP + 3;
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const d = new FailureDetector(1, ids, SUSPECT);
  // Everyone hears everyone, except that the last replica does not hear the second.
  for (const id of ids.slice(1)) {
    d.heard(id, 0, 0, ids.filter((x) => x !== id && !(id === n && x === 2)));
  }
  const group = d.largestGroup(ids, ids, 0);
  assert.equal(group.length, n - 1);
  assert.ok(!(group.includes(2) && group.includes(n)));
});
