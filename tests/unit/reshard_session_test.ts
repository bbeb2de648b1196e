/**
 * Unit tests of online resharding around the state machine: the client session (ASKING flags the
 * next command only and is carried into the order as `__ASKING`; the state machine's redirects,
 * which name a group, answered with that group's master's address; the fast path lets commands
 * of an importing slot through), the CLUSTER resharding subcommands (what they submit, their
 * errors without groups, HELP, CLUSTER NODES' moving slots), and the group probe learning the
 * control group's newer slot map.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Command, Outcome, Reply } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { initialSlotMap } from "../../src/kv/slot_map.ts";
import { keySlot } from "../../src/kv/slots.ts";
import { NO_CLUSTER } from "../../src/kv/commands/slots.ts";
import { Session } from "../../src/net/session.ts";
import { addressRedirect, type SlotRouting } from "../../src/net/slot_routing.ts";
import { RespError } from "../../src/net/resp.ts";
import { clusterCommand, nodesReply } from "../../src/runtime/cluster_command.ts";
import { GroupProbe, newerMapArgs, readSlotMap } from "../../src/runtime/group_probe.ts";
import type { Shard, Shards } from "../../src/runtime/shards.ts";
import { ImmediateSessionHost } from "../support/session_host.ts";
import { FakeRespServer } from "../support/fake_resp_server.ts";
import { waitFor } from "../support/cluster.ts";
import { encodeArray, encodeBulk, encodeInteger } from "../../src/net/resp.ts";

const MAP = initialSlotMap(["a", "b"]);
const ADDRESS: Record<string, string> = { a: "127.0.0.1:7011", b: "127.0.0.1:7014" };
/** A key of group a's slots (0-8191) and one of b's. */
const A_KEY = "{b}1";
const B_KEY = "{a}1";
const SA = keySlot(A_KEY);
const SB = keySlot(B_KEY);

/** A session host of group a whose operations run at once on a sharded store. */
class ShardedHost extends ImmediateSessionHost {
  override readonly store = new KvStore(undefined, 0, undefined, { group: "a", map: MAP });
  routing(): SlotRouting {
    const slots = this.store.slots!;
    return {
      group: "a",
      map: () => slots.map,
      moving: (slot) => slots.moving(slot),
      askingStamp: () => slots.askingStamp,
      masterAddress: (g) => ADDRESS[g],
    };
  }
}

function run(s: Session, ...argv: string[]): Reply {
  let got: Reply | undefined;
  s.run(argv, (r) => (got = r));
  return got!;
}

Deno.test("session: ASKING flags the next command only, and redirects get addresses", () => {
  const host = new ShardedHost();
  const s = new Session(host, 1, "127.0.0.1:5000", "127.0.0.1:7011");
  const last = () => host.submitted.at(-1)!.op.argv;
  // Group b's slot SB imports here: the session's fast path lets its commands into the order,
  // where the state machine answers MOVED b (naming the group), turned into b's address.
  host.store.apply({
    op: { argv: ["__RESHARD", "SETSLOT", String(SB), "IMPORTING", "b"], time: 1 },
  });
  assert.deepEqual(run(s, "GET", B_KEY), { err: `MOVED ${SB} 127.0.0.1:7014` });
  assert.deepEqual(last(), ["GET", B_KEY]);
  assert.deepEqual(run(s, "ASKING"), { ok: "OK" });
  assert.deepEqual(run(s, "SET", B_KEY, "v"), { ok: "OK" });
  // Stamped with the imports this replica had seen when it read the command (one).
  assert.deepEqual(last(), ["__ASKING", "1", "SET", B_KEY, "v"]);
  assert.equal(run(s, "GET", B_KEY), "v", "it exists here now: served without ASKING");
  assert.deepEqual(last(), ["GET", B_KEY]);
  assert.deepEqual(run(s, "GET", "{a}2"), { err: `MOVED ${SB} 127.0.0.1:7014` }, "one command");
  // ASKING before EXEC and before REQ.
  run(s, "ASKING");
  run(s, "MULTI");
  run(s, "SET", "{a}3", "x");
  assert.deepEqual(run(s, "EXEC"), [{ ok: "OK" }]);
  assert.deepEqual(last().slice(0, 3), ["__ASKING", "1", "__EXEC"]);
  run(s, "ASKING");
  assert.deepEqual(run(s, "REQ", "cid", "1", "SET", "{a}4", "y"), { ok: "OK" });
  assert.deepEqual(last(), ["__ASKING", "1", "SET", "{a}4", "y"]);
  assert.deepEqual(host.submitted.at(-1)!.tag, { client: "cid", seq: 1 });
  // ASK from a migrating slot of this group, with b's address.
  host.store.apply({
    op: { argv: ["__RESHARD", "SETSLOT", String(SA), "MIGRATING", "b"], time: 1 },
  });
  assert.deepEqual(run(s, "GET", A_KEY), { err: `ASK ${SA} 127.0.0.1:7014` });
  // A slot of b not importing: the fast path answers MOVED before ordering.
  const before = host.submitted.length;
  assert.deepEqual(run(s, "GET", "x"), { err: `MOVED ${keySlot("x")} 127.0.0.1:7014` });
  assert.equal(host.submitted.length, before);
  // Without groups, ASKING is accepted and changes nothing.
  const plainHost = new ImmediateSessionHost();
  const plain = new Session(plainHost, 2, "127.0.0.1:5001", "127.0.0.1:7001");
  assert.deepEqual(run(plain, "ASKING"), { ok: "OK" });
  run(plain, "SET", "k", "v");
  assert.deepEqual(plainHost.submitted.at(-1)!.op.argv, ["SET", "k", "v"]);
});

Deno.test("addressRedirect: only MOVED/ASK naming a known group are rewritten", () => {
  const routing: SlotRouting = {
    group: "a",
    map: () => MAP,
    moving: () => false,
    askingStamp: () => 0,
    masterAddress: (g) => ADDRESS[g],
  };
  assert.deepEqual(addressRedirect({ err: "MOVED 5 b" }, routing), {
    err: "MOVED 5 127.0.0.1:7014",
  });
  assert.deepEqual(addressRedirect({ err: "ASK 5 a" }, routing), { err: "ASK 5 127.0.0.1:7011" });
  for (const r of [{ err: "MOVED 5 zz" }, { err: "ERR MOVED 5 b" }, "MOVED 5 b", 3, null, ["x"]]) {
    assert.deepEqual(addressRedirect(r as Reply, routing), r);
  }
});

/** CLUSTER run against `shards`, recording what it submits (answered by `store`). */
function clusterRun(sharded: boolean, argv: string[], store = new KvStore()) {
  const submitted: Command[] = [];
  let reply: Reply | undefined;
  clusterCommand(
    {
      id: 1,
      shards: { all: () => [] } as unknown as Shards,
      serving: () => true,
      submit: (cmd: Command, respond: (o: Outcome) => void) => {
        submitted.push(cmd);
        respond({ ok: true, result: store.apply(cmd) });
      },
      now: () => 1000,
      sharded,
    },
    argv,
    (r) => (reply = r),
  );
  return { reply, submitted: submitted.map((c) => c.op.argv) };
}

Deno.test("CLUSTER resharding subcommands: submitted as __RESHARD / __SLOTMAP, errors, HELP", () => {
  for (
    const argv of [
      ["CLUSTER", "SETSLOT", "1", "STABLE"],
      ["CLUSTER", "SLOTMAP"],
      ["CLUSTER", "LOADSLOTMAP", "1", "0", "16383", "a"],
      ["CLUSTER", "MIGRATEKEYS", "1", "10"],
      ["CLUSTER", "IMPORTKEYS", "a", "1", "k", "p"],
      ["CLUSTER", "MIGRATEDONE", "1"],
    ]
  ) {
    assert.deepEqual(clusterRun(false, argv).reply, { err: NO_CLUSTER }, argv.join(" "));
  }
  const store = new KvStore(undefined, 0, undefined, { group: "a", map: MAP });
  const slotmap = clusterRun(true, ["CLUSTER", "slotmap"], store);
  assert.deepEqual(slotmap.submitted, [["__SLOTMAP"]]);
  assert.deepEqual(slotmap.reply, [0, [0, 8191, "a"], [8192, 16383, "b"]]);
  const set = clusterRun(true, ["CLUSTER", "SetSlot", "9000", "IMPORTING", "b"], store);
  assert.deepEqual(set.submitted, [["__RESHARD", "SetSlot", "9000", "IMPORTING", "b"]]);
  assert.deepEqual(set.reply, { ok: "OK" });
  assert.ok(store.slots!.importing.has(9000));
  assert.deepEqual(clusterRun(true, ["CLUSTER", "MIGRATEKEYS", "1"], store).reply, {
    err: "ERR wrong number of arguments for 'cluster|migratekeys' command",
  });
  assert.deepEqual(clusterRun(true, ["CLUSTER", "SLOTMAP", "x"], store).reply, {
    err: "ERR wrong number of arguments for 'cluster|slotmap' command",
  });
  const help = (clusterRun(true, ["CLUSTER", "HELP"]).reply as { ok: string }[]).map((l) => l.ok);
  for (
    const sub of ["SETSLOT", "SLOTMAP", "LOADSLOTMAP", "MIGRATEKEYS", "IMPORTKEYS", "MIGRATEDONE"]
  ) {
    assert.ok(help.some((l) => l.startsWith(sub)), sub);
  }
});

Deno.test("CLUSTER NODES shows a group's migrating and importing slots as Redis does", () => {
  const node = (id: number) => ({
    id,
    host: "127.0.0.1",
    clientPort: 7010 + id,
    peerPort: 7110 + id,
    online: true,
  });
  const shard: Shard = {
    group: "a",
    clusterId: "aaaaaaaaaaaaaaaa",
    ranges: [[0, 8191]],
    master: node(1),
    replicas: [node(2)],
    mine: true,
    offset: 0,
    epoch: 1,
    migrating: [[5, "b".repeat(40)]],
    importing: [[9000, "c".repeat(40)]],
  };
  const lines = String(nodesReply([shard], 2)).trim().split("\n");
  assert.match(
    lines[0],
    new RegExp(` 0-8191 \\[5->-${"b".repeat(40)}\\] \\[9000-<-${"c".repeat(40)}\\]$`),
  );
  assert.doesNotMatch(lines[1], /->-|-<-/, "on the master's line only");
});

Deno.test("group probe: a newer control-group map is loaded, an older or equal one is not", async () => {
  assert.deepEqual(newerMapArgs([2, [0, 100, "a"], [101, 16383, "b"]], 1), [
    "2",
    "0",
    "100",
    "a",
    "101",
    "16383",
    "b",
  ]);
  assert.equal(newerMapArgs([1, [0, 16383, "a"]], 1), undefined);
  assert.equal(newerMapArgs([2], 1), undefined);
  assert.equal(newerMapArgs([2, [0, 16383]], 1), undefined);
  assert.equal(newerMapArgs(new RespError("ERR x"), 1), undefined);
  assert.equal(newerMapArgs(undefined, 1), undefined);

  // A fake control replica answering CLUSTER SLOTMAP with epoch 3.
  const server = FakeRespServer.start(() =>
    encodeArray([
      encodeInteger(3),
      encodeArray([encodeInteger(0), encodeInteger(16383), encodeBulk("a")]),
    ])
  );
  const source = { id: 1, host: "127.0.0.1", clientPort: server.port, peerPort: 1 };
  try {
    assert.deepEqual(await readSlotMap(source, 2000), [3, [0, 16383, "a"]]);
    assert.deepEqual(server.requests.at(-1)!.argv, ["CLUSTER", "SLOTMAP"]);
    let epoch = 1;
    const loads: string[][] = [];
    const probe = new GroupProbe({
      targets: [source],
      intervalMs: 10,
      probe: () => Promise.resolve(true),
      follow: {
        sources: [source],
        epoch: () => epoch,
        load: (args) => {
          loads.push(args);
          epoch = Number(args[0]);
          return Promise.resolve();
        },
      },
    });
    probe.start();
    try {
      await waitFor(() => loads.length > 0 && server.requests.length > 3);
    } finally {
      probe.stop();
    }
    assert.deepEqual(loads, [["3", "0", "16383", "a"]], "loaded once: then it is not newer");
  } finally {
    await server.close();
  }
});
