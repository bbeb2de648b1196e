/**
 * The replicated replica set's pure logic (`src/kv/replica_set.ts`): ADD/REMOVE/PROMOTE effects,
 * every refusal's text, argument parsing, snapshot parsing, and that KvStore snapshots, restores
 * and digests carry the set.
 */
import assert from "node:assert/strict";
import {
  foundingReplicaSet,
  type MemberAddress,
  nextReplicaSet,
  parseAdd,
  parseReplicaSet,
  type ReplicaSet,
} from "../../src/kv/replica_set.ts";
import { KvStore } from "../../src/kv/store.ts";

const address = (id: number): MemberAddress => ({
  id,
  host: "127.0.0.1",
  clientPort: 7000 + id,
  peerPort: 8000 + id,
});

/** Voters 1, 2, 3 of the config file. */
const founding = (): ReplicaSet => foundingReplicaSet([address(3), address(1), address(2)]);

/** `nextReplicaSet`, asserting that it was applied. */
function next(set: ReplicaSet, argv: string[], view = 5): ReplicaSet {
  const r = nextReplicaSet(set, argv, view);
  if ("err" in r) throw new Error(`refused: ${r.err}`);
  return r;
}

/** `nextReplicaSet`, asserting that it was refused; the error text. */
function refused(set: ReplicaSet, argv: string[], view = 5): string {
  const r = nextReplicaSet(set, argv, view);
  if (!("err" in r)) throw new Error(`applied: ${JSON.stringify(r)}`);
  return r.err;
}

Deno.test("replica set: the founding set has every config replica as a voter, by id", () => {
  const set = founding();
  assert.deepEqual(set.voters, [1, 2, 3]);
  assert.deepEqual(set.learners, []);
  assert.deepEqual(set.promote, []);
  assert.equal(set.changedIn, -1);
  assert.deepEqual(set.addresses.map((a) => a.id), [1, 2, 3]);
});

Deno.test("replica set: ADD makes a learner to be promoted; ADD ... LEARNER one that stays", () => {
  const set = founding();
  const added = next(set, ["__REPLICASET", "ADD", "4", "127.0.0.1", "7004", "8004", "9004"]);
  assert.deepEqual(added.voters, [1, 2, 3]);
  assert.deepEqual(added.learners, [4]);
  assert.deepEqual(added.promote, [4]);
  assert.equal(added.changedIn, -1, "an ADD does not change the voters");
  assert.deepEqual(added.addresses.at(-1), {
    id: 4,
    host: "127.0.0.1",
    clientPort: 7004,
    peerPort: 8004,
    httpPort: 9004,
  });
  assert.deepEqual(set.learners, [], "the set in force is not changed in place");

  const learner = next(set, ["__REPLICASET", "add", "5", "h5", "7005", "8005", "learner"]);
  assert.deepEqual(learner.learners, [5]);
  assert.deepEqual(learner.promote, []);
  assert.deepEqual(learner.addresses.at(-1), {
    id: 5,
    host: "h5",
    clientPort: 7005,
    peerPort: 8005,
  });
  // Addresses stay ascending by id.
  const both = next(learner, ["__REPLICASET", "ADD", "4", "h4", "7004", "8004", "LEARNER"]);
  assert.deepEqual(both.learners, [4, 5]);
  assert.deepEqual(both.addresses.map((a) => a.id), [1, 2, 3, 4, 5]);
});

Deno.test("replica set: PROMOTE makes a learner a voter and marks the view", () => {
  const added = next(founding(), ["__REPLICASET", "ADD", "4", "h4", "7004", "8004"], 5);
  const promoted = next(added, ["__REPLICASET", "PROMOTE", "4"], 7);
  assert.deepEqual(promoted.voters, [1, 2, 3, 4]);
  assert.deepEqual(promoted.learners, []);
  assert.deepEqual(promoted.promote, []);
  assert.equal(promoted.changedIn, 7);
  assert.equal(
    refused(promoted, ["__REPLICASET", "PROMOTE", "4"], 9),
    "ERR replica 4 is already a voter",
  );
});

Deno.test("replica set: REMOVE of a voter marks the view; of a learner it does not", () => {
  const set = next(founding(), ["__REPLICASET", "ADD", "4", "h4", "7004", "8004", "LEARNER"], 2);
  const noLearner = next(set, ["__REPLICASET", "REMOVE", "4"], 3);
  assert.deepEqual(noLearner.learners, []);
  assert.deepEqual(noLearner.voters, [1, 2, 3]);
  assert.equal(noLearner.changedIn, -1);
  assert.deepEqual(noLearner.addresses.map((a) => a.id), [1, 2, 3]);

  const noVoter = next(set, ["__REPLICASET", "remove", "2"], 3);
  assert.deepEqual(noVoter.voters, [1, 3]);
  assert.deepEqual(noVoter.learners, [4]);
  assert.equal(noVoter.changedIn, 3);
  assert.deepEqual(noVoter.addresses.map((a) => a.id), [1, 3, 4]);
  // A removed replica's id and address may be used again.
  const back = next(noVoter, ["__REPLICASET", "ADD", "2", "127.0.0.1", "7002", "8002"], 4);
  assert.deepEqual(back.learners, [2, 4]);
});

Deno.test("replica set: an id or an address in use is refused", () => {
  const set = next(founding(), ["__REPLICASET", "ADD", "4", "h4", "7004", "8004", "LEARNER"]);
  assert.equal(
    refused(set, ["__REPLICASET", "ADD", "2", "other", "1", "2"]),
    "ERR replica id 2 is already a member",
  );
  assert.equal(
    refused(set, ["__REPLICASET", "ADD", "4", "other", "1", "2", "LEARNER"]),
    "ERR replica id 4 is already a member",
  );
  // The same port on the same host, under another spelling of loopback, in any role of port.
  for (const host of ["127.0.0.1", "localhost", "LOCALHOST", "::1", "[::1]", "0:0:0:0:0:0:0:1"]) {
    assert.equal(
      refused(set, ["__REPLICASET", "ADD", "9", host, "9999", "7001"]),
      `ERR address ${host}:7001 is already used by replica 1`,
    );
  }
  assert.equal(
    refused(set, ["__REPLICASET", "ADD", "9", "H4", "8004", "9998", "LEARNER"]),
    "ERR address H4:8004 is already used by replica 4",
  );
  // The same ports on another host are fine.
  const other = next(set, ["__REPLICASET", "ADD", "9", "10.0.0.9", "7001", "8001", "LEARNER"]);
  assert.deepEqual(other.learners, [4, 9]);
});

Deno.test("replica set: no voter change while a learner catches up or within the same view", () => {
  const catching = next(founding(), ["__REPLICASET", "ADD", "4", "h4", "7004", "8004"], 5);
  const busy = "ERR a membership change is already in progress: replica 4 is catching up to " +
    "become a voter";
  assert.equal(refused(catching, ["__REPLICASET", "ADD", "5", "h5", "7005", "8005"], 6), busy);
  assert.equal(refused(catching, ["__REPLICASET", "REMOVE", "1"], 6), busy);
  // ... but a learner may still be added, removed or promoted: the one catching up itself too.
  next(catching, ["__REPLICASET", "ADD", "5", "h5", "7005", "8005", "LEARNER"], 6);
  const other = next(catching, ["__REPLICASET", "ADD", "5", "h5", "7005", "8005", "LEARNER"], 6);
  assert.equal(refused(other, ["__REPLICASET", "PROMOTE", "5"], 6), busy);
  next(catching, ["__REPLICASET", "REMOVE", "4"], 6);
  const promoted = next(catching, ["__REPLICASET", "PROMOTE", "4"], 6);

  const sameView = "ERR a membership change is already in progress: wait until the next view " +
    "puts it in force";
  assert.equal(refused(promoted, ["__REPLICASET", "REMOVE", "1"], 6), sameView);
  assert.equal(refused(promoted, ["__REPLICASET", "ADD", "5", "h5", "7005", "8005"], 6), sameView);
  const learner = next(promoted, ["__REPLICASET", "ADD", "5", "h5", "7005", "8005", "LEARNER"], 6);
  assert.equal(refused(learner, ["__REPLICASET", "PROMOTE", "5"], 6), sameView);
  // The next view puts it in force: changes may go on.
  const later = next(learner, ["__REPLICASET", "PROMOTE", "5"], 7);
  assert.deepEqual(later.voters, [1, 2, 3, 4, 5]);
  assert.equal(later.changedIn, 7);
  const removed = next(later, ["__REPLICASET", "REMOVE", "1"], 8);
  assert.deepEqual(removed.voters, [2, 3, 4, 5]);
});

Deno.test("replica set: the last voter cannot be removed; unknown ids are refused", () => {
  let set = founding();
  set = next(set, ["__REPLICASET", "REMOVE", "1"], 1);
  set = next(set, ["__REPLICASET", "REMOVE", "2"], 2);
  assert.deepEqual(set.voters, [3]);
  assert.equal(
    refused(set, ["__REPLICASET", "REMOVE", "3"], 3),
    "ERR cannot remove the last voter",
  );
  assert.equal(
    refused(set, ["__REPLICASET", "REMOVE", "7"], 3),
    "ERR no such replica '7' (members: 3)",
  );
  assert.equal(
    refused(founding(), ["__REPLICASET", "PROMOTE", "x"]),
    "ERR no such replica 'x' (members: 1, 2, 3)",
  );
  assert.equal(
    refused(founding(), ["__REPLICASET", "REMOVE"]),
    "ERR syntax: REPLICASET REMOVE <id>",
  );
  assert.equal(
    refused(founding(), ["__REPLICASET", "PROMOTE", "1", "2"]),
    "ERR syntax: REPLICASET PROMOTE <id>",
  );
  assert.equal(
    refused(founding(), ["__REPLICASET", "SWAP", "1"]),
    "ERR unknown __REPLICASET subcommand 'SWAP'",
  );
});

Deno.test("replica set: parseAdd takes an address, optional http port and LEARNER", () => {
  assert.deepEqual(parseAdd(["4", "h", "1", "2"]), {
    address: { id: 4, host: "h", clientPort: 1, peerPort: 2 },
    learner: false,
  });
  assert.deepEqual(parseAdd(["999", "h", "65535", "2", "3", "Learner"]), {
    address: { id: 999, host: "h", clientPort: 65535, peerPort: 2, httpPort: 3 },
    learner: true,
  });
});

Deno.test("replica set: parseAdd's error texts", () => {
  const syntax =
    "ERR syntax: REPLICASET ADD <id> <host> <client_port> <peer_port> [<http_port>] [LEARNER]";
  assert.equal(parseAdd([]), syntax);
  assert.equal(parseAdd(["4", "h", "1"]), syntax);
  assert.equal(parseAdd(["4", "h", "1", "2", "3", "4"]), syntax);
  assert.equal(parseAdd(["4", "h", "1", "LEARNER"]), syntax);
  for (const id of ["0", "1000", "-1", "x", "1.5", ""]) {
    assert.equal(
      parseAdd([id, "h", "1", "2"]),
      `ERR replica id must be an integer in 1..999, got '${id}'`,
    );
  }
  assert.equal(parseAdd(["4", "", "1", "2"]), "ERR invalid host ''");
  assert.equal(parseAdd(["4", "a b", "1", "2"]), "ERR invalid host 'a b'");
  assert.equal(parseAdd(["4", "h".repeat(256), "1", "2"]), `ERR invalid host '${"h".repeat(64)}'`);
  for (const bad of ["0", "65536", "-1", "x", "123456", "1e3"]) {
    assert.equal(parseAdd(["4", "h", bad, "2"]), `ERR invalid port '${bad}' (1..65535)`);
    assert.equal(parseAdd(["4", "h", "1", bad]), `ERR invalid port '${bad}' (1..65535)`);
    assert.equal(parseAdd(["4", "h", "1", "2", bad]), `ERR invalid port '${bad}' (1..65535)`);
  }
  assert.equal(parseAdd(["4", "h", "5", "5"]), "ERR the ports of one replica must differ");
  assert.equal(parseAdd(["4", "h", "5", "6", "5"]), "ERR the ports of one replica must differ");
  // Through nextReplicaSet, parse errors are the operation's reply.
  assert.equal(
    refused(founding(), ["__REPLICASET", "ADD", "4", "h", "0", "2"]),
    "ERR invalid port '0' (1..65535)",
  );
});

Deno.test("replica set: parseReplicaSet accepts a set and refuses malformed ones", () => {
  const set = next(founding(), ["__REPLICASET", "ADD", "4", "h4", "7004", "8004", "9004"]);
  const roundTrip = parseReplicaSet(JSON.parse(JSON.stringify(set)));
  assert.deepEqual(roundTrip, set);
  const bad: [unknown, string][] = [
    [null, "replica set is not an object"],
    ["x", "replica set is not an object"],
    [{ ...set, voters: [2, 1] }, "replica set ids malformed"],
    [{ ...set, voters: [1, 1] }, "replica set ids malformed"],
    [{ ...set, learners: [0] }, "replica set ids malformed"],
    [{ ...set, promote: "4" }, "replica set ids malformed"],
    [{ ...set, changedIn: -2 }, "replica set changedIn malformed"],
    [{ ...set, changedIn: 1.5 }, "replica set changedIn malformed"],
    [{ ...set, addresses: {} }, "replica set addresses malformed"],
    [{ ...set, addresses: [{ ...address(1), id: 1000 }] }, "replica set address malformed"],
    [{ ...set, addresses: [{ ...address(1), host: 1 }] }, "replica set address malformed"],
    [{ ...set, addresses: [{ ...address(1), peerPort: "1" }] }, "replica set address malformed"],
    [{ ...set, addresses: [{ ...address(1), httpPort: 1.5 }] }, "replica set address malformed"],
    [{ ...set, addresses: [null] }, "replica set address malformed"],
  ];
  for (const [raw, text] of bad) assert.equal(parseReplicaSet(raw), text, JSON.stringify(raw));
});

Deno.test("replica set: KvStore applies __REPLICASET and its snapshots, restores, digests carry the set", () => {
  const kv = new KvStore(undefined, undefined, founding());
  const before = kv.digest();
  const reply = kv.apply({
    op: { argv: ["__REPLICASET", "ADD", "4", "h4", "7004", "8004", "LEARNER"], time: 1 },
  }, 3);
  assert.deepEqual(reply, { ok: "OK" });
  assert.deepEqual(kv.membership?.learners, [4]);
  assert.notEqual(kv.digest(), before, "the digest covers the set");
  // A refusal is the reply and leaves the set alone.
  const again = kv.apply({
    op: { argv: ["__REPLICASET", "ADD", "4", "h4", "7004", "8004", "LEARNER"], time: 2 },
  }, 3);
  assert.deepEqual(again, { err: "ERR replica id 4 is already a member" });

  const snap = JSON.parse(JSON.stringify(kv.snapshot()));
  assert.deepEqual(snap.replicaSet.learners, [4]);
  const restored = new KvStore(undefined, undefined, founding());
  assert.deepEqual(restored.membership?.learners, []);
  restored.restore(snap);
  assert.deepEqual(restored.membership, kv.membership);
  assert.equal(restored.digest(), kv.digest());
  assert.deepEqual(restored.membershipOf(snap), kv.membership);

  // A snapshot without a set restores the founding one; a malformed one is refused.
  const plain = new KvStore(undefined, undefined, founding());
  const { replicaSet: _dropped, ...withoutSet } = snap;
  plain.restore(withoutSet);
  assert.deepEqual(plain.membership, founding());
  assert.equal(plain.digest(), new KvStore(undefined, undefined, founding()).digest());
  assert.throws(
    () => plain.restore({ ...snap, replicaSet: { ...snap.replicaSet, voters: "1" } }),
    /malformed KV snapshot: replica set ids malformed/,
  );
  // The same ops on two stores give the same digest; a different set a different one.
  const twin = new KvStore(undefined, undefined, founding());
  twin.apply({
    op: { argv: ["__REPLICASET", "ADD", "4", "h4", "7004", "8004", "LEARNER"], time: 1 },
  }, 3);
  assert.equal(twin.digest(), kv.digest());
  const other = new KvStore(undefined, undefined, founding());
  other.apply({
    op: { argv: ["__REPLICASET", "ADD", "4", "h4", "7005", "8004", "LEARNER"], time: 1 },
  }, 3);
  assert.notEqual(other.digest(), kv.digest(), "the digest covers the addresses");
});

Deno.test("replica set: KvStore.nextMembership is nextReplicaSet for __REPLICASET only", () => {
  const kv = new KvStore(undefined, undefined, founding());
  const set = founding();
  const cmd = (argv: string[]) => ({ op: { argv, time: 1 } });
  assert.equal(kv.nextMembership(set, cmd(["SET", "k", "v"]), 1), null);
  assert.equal(kv.nextMembership(set, cmd(["__REPLICASET", "REMOVE", "9"]), 1), null);
  const removed = kv.nextMembership(set, cmd(["__replicaset", "REMOVE", "3"]), 1);
  assert.deepEqual(removed?.voters, [1, 2]);
  assert.deepEqual(kv.membership?.voters, [1, 2, 3], "the store itself is not changed");
});
