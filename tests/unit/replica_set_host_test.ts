/**
 * `ReplicaSetHost`'s peer links follow the protocol core's peers: the ids come from the core, the
 * addresses from the replica set in force, else the last set that had the replica, else the
 * config file; `setPeers` is called only when the addresses to link to changed.
 */
import assert from "node:assert/strict";
import type { ReplicaId } from "../../src/core/types.ts";
import {
  foundingReplicaSet,
  type MemberAddress,
  nextReplicaSet,
  type ReplicaSet,
} from "../../src/kv/replica_set.ts";
import { ReplicaSetHost } from "../../src/runtime/replica_set_host.ts";

const address = (id: number, peerPort = 8000 + id): MemberAddress => ({
  id,
  host: "127.0.0.1",
  clientPort: 7000 + id,
  peerPort,
});

/** `nextReplicaSet`, asserting that it was applied. */
function next(set: ReplicaSet, argv: string[]): ReplicaSet {
  const r = nextReplicaSet(set, argv, 5);
  if ("err" in r) throw new Error(`refused: ${r.err}`);
  return r;
}

/** Replica 1's host with a stand-in core: `set` and `peers` are what the core would show. */
function fixture(seeds: MemberAddress[]) {
  const state = {
    set: foundingReplicaSet(seeds) as ReplicaSet | undefined,
    peers: Object.freeze([2, 3]) as readonly ReplicaId[],
  };
  const calls: string[] = [];
  const host = new ReplicaSetHost({
    id: 1,
    replicaSet: () => state.set,
    membership: () => state.set ?? { voters: [], learners: [] },
    standing: () => ({ state: "normal", view: 1, members: [1, 2, 3], learners: [] }),
    peers: () => state.peers,
    waitingToJoin: () => [],
    caughtUpLearners: () => [],
    submit: () => {},
    now: () => 0,
    setPeers: (addresses) => calls.push(addresses.map((a) => `${a.id}:${a.peerPort}`).join(" ")),
    seeds,
    logChange: () => {},
  });
  /** Runs one `afterStep`; the `setPeers` call it made, if any. */
  const step = (): string | undefined => {
    const before = calls.length;
    host.afterStep();
    assert.ok(calls.length <= before + 1, "setPeers called twice in one step");
    return calls.length > before ? calls[calls.length - 1] : undefined;
  };
  return { state, step };
}

Deno.test("replica set host: peer links follow the core's peers", () => {
  const { state, step } = fixture([address(1), address(2), address(3)]);
  assert.equal(step(), "2:8002 3:8003");
  assert.equal(step(), undefined, "nothing changed");
  state.peers = Object.freeze([2, 3]);
  assert.equal(step(), undefined, "a new list with the same peers changes nothing");

  // 3 is removed from the set; the core still talks to it (it is in the view, or a contact):
  // its link stays, at the address it had.
  state.set = next(state.set!, ["__REPLICASET", "REMOVE", "3"]);
  assert.equal(step(), undefined);
  // The core drops it: its link closes. It writes again (a contact): linked again.
  state.peers = Object.freeze([2]);
  assert.equal(step(), "2:8002");
  state.peers = Object.freeze([2, 3]);
  assert.equal(step(), "2:8002 3:8003");

  // A replica added to the set: linked once the core lists it, at the set's address.
  state.set = next(state.set!, [
    "__REPLICASET",
    "ADD",
    "4",
    "127.0.0.1",
    "7004",
    "9004",
    "LEARNER",
  ]);
  assert.equal(step(), undefined, "not a peer of the core yet");
  state.peers = Object.freeze([2, 3, 4]);
  assert.equal(step(), "2:8002 3:8003 4:9004");

  // A peer the core lists but whose address is known nowhere is left out; so is ourselves.
  state.peers = Object.freeze([1, 2, 3, 4, 9]);
  assert.equal(step(), undefined);
});

Deno.test("replica set host: a joiner links to the config file's replicas the core lists", () => {
  const { state, step } = fixture([address(1), address(2, 8102), address(3)]);
  state.set = undefined;
  state.peers = Object.freeze([2, 3]);
  assert.equal(step(), "2:8102 3:8003");
  // Its install gives it the set: the set's addresses win over the config file's.
  state.set = next(foundingReplicaSet([address(2), address(3)]), [
    "__REPLICASET",
    "ADD",
    "1",
    "127.0.0.1",
    "7001",
    "8001",
  ]);
  assert.equal(step(), "2:8002 3:8003");
});
