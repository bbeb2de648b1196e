/**
 * Unit tests of a sharded cluster's routing decision (MOVED / CROSSSLOT by the keys' hash slots),
 * of the client session applying it (inside MULTI, at EXEC, REQ and WATCH included, keyless
 * commands served here), and of the CLUSTER replies for several shards.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Reply } from "../../src/core/types.ts";
import { COMMANDS } from "../../src/kv/commands/index.ts";
import { initialSlotMap } from "../../src/kv/slot_map.ts";
import { keySlot } from "../../src/kv/slots.ts";
import { Session } from "../../src/net/session.ts";
import { ImmediateSessionHost } from "../support/session_host.ts";
import {
  CROSSSLOT_ERROR,
  routeCommand,
  routingKeys,
  type SlotRouting,
} from "../../src/net/slot_routing.ts";
import {
  infoReply,
  nodesReply,
  shardsReply,
  slotsReply,
} from "../../src/runtime/cluster_command.ts";
import { nodeId, type Shard } from "../../src/runtime/shards.ts";

const MAP = initialSlotMap(["a", "b"]);
/** Replica of group `a` (slots 0-8191); group b's master listens on 127.0.0.1:7014. */
const ROUTING: SlotRouting = {
  group: "a",
  map: () => MAP,
  moving: () => false,
  askingStamp: () => 0,
  masterAddress: (g) => (g === "b" ? "127.0.0.1:7014" : "127.0.0.1:7011"),
};

/** A key whose slot `pick` accepts, named `prefix<n>`. */
function keyWhere(prefix: string, pick: (slot: number) => boolean): string {
  for (let i = 0; i < 100_000; i++) if (pick(keySlot(`${prefix}${i}`))) return `${prefix}${i}`;
  throw new Error("no such key");
}
const A1 = keyWhere("a", (s) => s < 8192);
const A2 = keyWhere("aa", (s) => s < 8192 && s !== keySlot(A1));
const B1 = keyWhere("b", (s) => s >= 8192);
const moved = (key: string) => ({ err: `MOVED ${keySlot(key)} 127.0.0.1:7014` });
const CROSS = { err: CROSSSLOT_ERROR };

function route(...argv: string[]): Reply | null {
  return routeCommand(COMMANDS.get(argv[0])!, argv, ROUTING);
}

Deno.test("routing: keys of this group's slots are served, others MOVED, mixed ones CROSSSLOT", () => {
  assert.equal(CROSSSLOT_ERROR, "CROSSSLOT Keys in request don't hash to the same slot");
  assert.equal(route("GET", A1), null);
  assert.deepEqual(route("GET", B1), moved(B1));
  assert.deepEqual(route("SET", B1, "v"), moved(B1));
  // Multi-key: one slot (hash tags) is fine wherever it is; two slots are CROSSSLOT even when
  // this group owns both, as in Redis.
  assert.ok(keySlot("t") >= 8192);
  assert.deepEqual(route("MSET", "{t}1", "x", "{t}2", "y"), moved("{t}"));
  assert.equal(route("MSET", `{${A1}}1`, "x", `{${A1}}2`, "y"), null);
  assert.deepEqual(route("MSET", A1, "x", A2, "y"), CROSS);
  assert.deepEqual(route("MGET", A1, B1), CROSS);
  assert.deepEqual(route("DEL", B1, B1), moved(B1), "a key twice is one slot");
  assert.deepEqual(route("RENAME", A1, B1), CROSS);
  assert.deepEqual(route("BLPOP", B1, "0"), moved(B1), "blocking commands by their keys");
  assert.deepEqual(route("XREAD", "STREAMS", A1, B1, "0", "0"), CROSS, "movable keys");
  // Keyless commands, and those over the whole key space, are this group's: served here.
  for (const argv of [["PING"], ["DBSIZE"], ["KEYS", "*"], ["SCAN", "0"], ["FLUSHALL"]]) {
    assert.equal(route(...argv), null, argv.join(" "));
  }
  assert.equal(route("PUBLISH", B1, "m"), null, "channels are not keys");
  // A slot moving (importing here, or handed over from here) goes into the order, where the
  // state machine decides (ASK, MOVED or served).
  const moving = { ...ROUTING, moving: (slot: number) => slot === keySlot(B1) };
  assert.equal(routeCommand(COMMANDS.get("GET")!, ["GET", B1], moving), null);
  assert.deepEqual(routeCommand(COMMANDS.get("GET")!, ["GET", "{t}1"], moving), moved("{t}"));
  // WATCH's keys are its arguments; REQ routes by the command it wraps.
  assert.deepEqual(routingKeys(COMMANDS.get("watch")!, ["WATCH", A1, B1]), [A1, B1]);
  assert.deepEqual(route("WATCH", B1), moved(B1));
  assert.deepEqual(route("REQ", "c", "1", "GET", B1), moved(B1));
  assert.deepEqual(route("REQ", "c", "1", "MGET", A1, B1), CROSS);
  assert.equal(route("REQ", "c", "1", "GET"), null, "a malformed wrapped command: REQ answers");
  assert.equal(route("REQ", "c", "1", "NOSUCH", B1), null);
});

/** A host of group a (its routing) or of a cluster without groups. */
class Host extends ImmediateSessionHost {
  constructor(readonly sharded: boolean) {
    super();
  }
  routing(): SlotRouting | undefined {
    return this.sharded ? ROUTING : undefined;
  }
}

function run(s: Session, ...argv: string[]): Reply {
  let got: Reply | undefined;
  s.run(argv, (r) => (got = r));
  return got!;
}

Deno.test("routing in the session: refused before ordering, transactions included", () => {
  const host = new Host(true);
  const s = new Session(host, 1, "127.0.0.1:5000", "127.0.0.1:7011");
  assert.deepEqual(run(s, "SET", A1, "1"), { ok: "OK" });
  assert.deepEqual(run(s, "SET", B1, "1"), moved(B1));
  assert.deepEqual(run(s, "MGET", A1, A2), CROSS);
  assert.equal(run(s, "DBSIZE"), 1);
  assert.equal(host.submitted.length, 2, "refused commands never reach the order");
  // Inside MULTI a redirected command flags the transaction: EXEC aborts.
  run(s, "MULTI");
  assert.deepEqual(run(s, "INCR", A1), { ok: "QUEUED" });
  assert.deepEqual(run(s, "INCR", B1), moved(B1));
  assert.deepEqual(run(s, "EXEC"), {
    err: "EXECABORT Transaction discarded because of previous errors.",
  });
  // Queued commands each in one slot, but two slots together: EXEC answers CROSSSLOT.
  run(s, "MULTI");
  run(s, "INCR", A1);
  run(s, "INCR", A2);
  assert.deepEqual(run(s, "EXEC"), CROSS);
  assert.equal(host.submitted.length, 2);
  // One slot (a hash tag on this group's side): runs.
  const tag = keyWhere("t", (slot) => slot < 8192);
  run(s, "MULTI");
  run(s, "INCR", `{${tag}}x`);
  run(s, "INCR", `{${tag}}x`);
  assert.deepEqual(run(s, "EXEC"), [1, 2]);
  // A REQ-tagged command is routed by the command it wraps.
  assert.deepEqual(run(s, "REQ", "cid", "1", "GET", B1), moved(B1));
  // Without groups nothing is redirected and no CROSSSLOT is raised.
  const plain = new Session(new Host(false), 2, "127.0.0.1:5001", "127.0.0.1:7001");
  assert.deepEqual(run(plain, "SET", B1, "v"), { ok: "OK" });
  assert.deepEqual(run(plain, "MGET", A1, B1), [null, "v"]);
});

Deno.test("CLUSTER replies list every shard with its ranges and nodes", () => {
  const node = (id: number, online = true) => ({
    id,
    host: "127.0.0.1",
    clientPort: 7010 + id,
    peerPort: 7110 + id,
    online,
  });
  const shards: Shard[] = [
    {
      group: "a",
      clusterId: "aaaaaaaaaaaaaaaa",
      ranges: [[0, 8191]],
      master: node(1),
      replicas: [node(2), node(3, false)],
      mine: true,
      offset: 42,
      epoch: 3,
    },
    {
      group: "b",
      clusterId: "bbbbbbbbbbbbbbbb",
      ranges: [[8192, 16383]],
      master: node(5),
      replicas: [node(4, false), node(6)],
      mine: false,
      offset: 0,
      epoch: 0,
    },
  ];
  const id = (s: number, n: number) => nodeId(s === 0 ? "aaaaaaaaaaaaaaaa" : "bbbbbbbbbbbbbbbb", n);
  assert.equal(id(1, 5), "bbbbbbbbbbbbbbbb000000000000000000000005");
  assert.deepEqual(slotsReply([shards[1], shards[0]]), [
    [
      0,
      8191,
      ["127.0.0.1", 7011, id(0, 1), []],
      ["127.0.0.1", 7012, id(0, 2), []],
      ["127.0.0.1", 7013, id(0, 3), []],
    ],
    [
      8192,
      16383,
      ["127.0.0.1", 7015, id(1, 5), []],
      ["127.0.0.1", 7014, id(1, 4), []],
      ["127.0.0.1", 7016, id(1, 6), []],
    ],
  ]);
  const sh = shardsReply(shards) as Reply[][];
  assert.deepEqual(sh.map((s) => [s[0], s[1], s[2]]), [
    ["slots", [0, 8191], "nodes"],
    ["slots", [8192, 16383], "nodes"],
  ]);
  assert.deepEqual((sh[1][3] as Reply[][])[1], [
    "id",
    id(1, 4),
    "port",
    7014,
    "ip",
    "127.0.0.1",
    "endpoint",
    "127.0.0.1",
    "role",
    "replica",
    "replication-offset",
    0,
    "health",
    "fail",
  ]);
  assert.equal(
    nodesReply(shards, 2),
    [
      `${id(0, 1)} 127.0.0.1:7011@7111 master - 0 0 3 connected 0-8191`,
      `${id(0, 2)} 127.0.0.1:7012@7112 myself,slave ${id(0, 1)} 0 0 3 connected`,
      `${id(0, 3)} 127.0.0.1:7013@7113 slave,fail ${id(0, 1)} 0 0 3 disconnected`,
      `${id(1, 5)} 127.0.0.1:7015@7115 master - 0 0 0 connected 8192-16383`,
      `${id(1, 4)} 127.0.0.1:7014@7114 slave,fail ${id(1, 5)} 0 0 0 disconnected`,
      `${id(1, 6)} 127.0.0.1:7016@7116 slave ${id(1, 5)} 0 0 0 connected`,
    ].join("\n") + "\n",
  );
  const info = String(infoReply(shards, true));
  assert.match(info, /^cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\n/);
  assert.match(info, /\r\ncluster_slots_ok:16384\r\n.*\r\ncluster_slots_fail:0\r\n/s);
  assert.match(info, /\r\ncluster_known_nodes:6\r\ncluster_size:2\r\ncluster_current_epoch:3\r\n/);
  // The other group's master unreachable: its slots fail.
  const down = [shards[0], { ...shards[1], master: node(5, false) }];
  const failing = String(infoReply(down, true));
  assert.match(failing, /cluster_state:fail\r\n/);
  assert.match(failing, /cluster_slots_ok:8192\r\n.*cluster_slots_fail:8192\r\n/s);
});
