/** The core's read-only view of its peers (`Replica.peerHealth`): silence and ack lag. */
import assert from "node:assert/strict";
import type { PeerMessage } from "../../src/core/types.ts";
import { SyncCluster } from "../support/sync_cluster.ts";

function ack(ts: number, acks: Record<number, number>): PeerMessage {
  return { type: "ack", view: 0, promised: 0, ts, acks };
}

Deno.test("peer health: own entries not acknowledged per peer, and ticks since heard", () => {
  const cluster = new SyncCluster([1, 2, 3], {});
  cluster.start();
  const r = cluster.replicas.get(1)!;
  const behind = () => r.peerHealth().map((p) => [p.id, p.ackedBehind]);
  assert.deepEqual(behind(), [[2, 0], [3, 0]]);
  const put = (key: string) => ({ op: { argv: ["SET", key, "v"], time: 0 } });
  cluster.step(1, { type: "request", id: 1, cmd: put("a") });
  cluster.step(1, { type: "request", id: 2, cmd: put("b") });
  assert.deepEqual(behind(), [[2, 2], [3, 2]]);
  cluster.step(1, { type: "peer", from: 2, msgs: [ack(50, { 1: 1 })] });
  assert.deepEqual(behind(), [[2, 1], [3, 2]]);
  for (let i = 0; i < 4; i++) cluster.step(1, { type: "tick" });
  const [two, three] = r.peerHealth();
  assert.equal(two.silentTicks, 4, "peer 2 was heard 4 ticks ago");
  assert.ok(three.silentTicks === null || three.silentTicks >= 4, `${three.silentTicks}`);
  assert.equal(r.peerHealth().length, 2, "self is not a peer");
});
