/**
 * End to end: large collections keep their digest hashes on every replica, and a replica that
 * rebuilt them from a snapshot and its log agrees with the ones that kept them all along.
 *
 * A list, hash, set and stream of 1,024 elements or more keep the hashes the digest reads as they
 * change (`src/kv/digest_hash.ts`, `src/kv/stream.ts`), instead of being hashed whole at each
 * checkpoint. A mistake there shows only as replicas whose digests differ: the one that differs
 * from the majority stops. Three replicas compare digests every 100 deliveries
 * (`--checkpoint-every 100`) and snapshot every 300 (`--snapshot-every 300`). A queue, a hash, a
 * set and a capped stream are filled past the threshold; replica 3 is SIGKILLed while writes
 * change each at both ends, in the middle and by trimming; it restarts (its collections rebuilt
 * from its snapshot and log, or from the state the others hand it, hashed afresh) and the writes
 * go on. Checked: all three stay up and agree on delivered index and digest after each phase, and
 * replica 3 answers the same contents as replica 1.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { RespTestClient, withCluster } from "../support/cluster.ts";
import { RespError, type RespValue } from "../../src/net/resp.ts";
import { SUMMED_FROM } from "../../src/kv/digest_hash.ts";

/** Elements each collection starts with: past the size from which hashes are kept. */
const START = 2 * SUMMED_FROM;
/** Rounds of changes per phase (each round a few commands per collection). */
const ROUNDS = 150;

/** `commands` pipelined on `client` (in one write), their replies in order. */
function pipeline(client: RespTestClient, commands: string[][]): Promise<RespValue[]> {
  return client.pipeline(commands, 30_000);
}

/** Round `r` of changes: pushes and pops at both ends, edits in the middle, trims, deletions. */
function changes(r: number): string[][] {
  const out: string[][] = [
    ["LPUSH", "queue", `a${r}`, `b${r}`],
    ["RPOP", "queue"],
    ["RPUSH", "queue", `c${r}`],
    ["LPOP", "queue"],
    ["LSET", "queue", String((r * 37) % START), `s${r}`],
    ["HSET", "hash", `f${(r * 13) % START}`, `v${r}`, `new${r}`, "1"],
    ["HDEL", "hash", `f${(r * 29) % START}`],
    ["SADD", "set", `x${r}`],
    ["SREM", "set", `m${(r * 7) % START}`],
    ["XADD", "stream", "MAXLEN", String(START), `${START + r}-0`, "r", String(r)],
    ["XADD", "stream", "MAXLEN", "~", String(START), `${START + r}-1`, "r", String(r), "more", "x"],
    ["XDEL", "stream", `${START + r - 3}-1`],
  ];
  // An edit in the middle makes every replica hash the list afresh at its next checkpoint: only
  // while replica 3 is down, so that afterwards the replicas that kept the hash all along are
  // compared with the one that rebuilt it.
  if (r % 10 === 0 && r < ROUNDS) out.push(["LINSERT", "queue", "BEFORE", `s${r - 10}`, `i${r}`]);
  if (r % 15 === 0) out.push(["LTRIM", "queue", "1", "-2"]);
  if (r % 20 === 0) out.push(["SPOP", "set"], ["XTRIM", "stream", "MAXLEN", String(START - 5)]);
  return out;
}

/** Fails on an error reply of round `r` (each command of a round is well formed). */
function noErrors(replies: RespValue[], r: number): void {
  for (const reply of replies) {
    assert.ok(!(reply instanceof RespError), `round ${r}: ${(reply as RespError).message}`);
  }
}

/** The contents of every collection as one reply list (compared between replicas). */
async function contents(client: RespTestClient): Promise<RespValue[]> {
  return await pipeline(client, [
    ["LRANGE", "queue", "0", "-1"],
    ["HGETALL", "hash"],
    ["SMEMBERS", "set"],
    ["XRANGE", "stream", "-", "+"],
    ["XLEN", "stream"],
  ]);
}

Deno.test({
  name: "e2e large collections: replicas keeping their hashes and one rebuilding them agree",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const extraArgs = ["--checkpoint-every", "100", "--snapshot-every", "300"];
    await withCluster({ replicas: 3, extraArgs }, async (cluster) => {
      const one = await RespTestClient.connect(cluster.clientPort(1));
      try {
        const fill: string[][] = [
          ["RPUSH", "queue", ...Array.from({ length: START }, (_, i) => `e${i}`)],
          ["HSET", "hash", ...Array.from({ length: START }, (_, i) => [`f${i}`, `${i}`]).flat()],
          ["SADD", "set", ...Array.from({ length: START }, (_, i) => `m${i}`)],
        ];
        for (let i = 0; i < START; i++) fill.push(["XADD", "stream", `${i}-1`, "i", String(i)]);
        for (const reply of await pipeline(one, fill)) {
          assert.ok(!(reply instanceof RespError), `fill: ${JSON.stringify(reply)}`);
        }
        const filled = await cluster.waitForAgreement({ timeoutMs: 30_000 });
        cluster.note(`filled: delivered ${filled.delivered}`);

        assert.equal((await cluster.kill(3)).signal, "SIGKILL");
        await cluster.waitForView({ ids: [1, 2], timeoutMs: 40_000 });
        for (let r = 0; r < ROUNDS; r++) noErrors(await pipeline(one, changes(r)), r);
        const without = await cluster.waitForAgreement({ ids: [1, 2], timeoutMs: 30_000 });
        cluster.note(`changed without replica 3: delivered ${without.delivered}`);

        await cluster.restart(3, 60_000);
        await cluster.waitForView({ ids: [1, 2, 3], timeoutMs: 60_000 });
        for (let r = ROUNDS; r < 2 * ROUNDS; r++) noErrors(await pipeline(one, changes(r)), r);
        const all = await cluster.waitForAgreement({
          ids: [1, 2, 3],
          minDelivered: without.delivered + 1,
          timeoutMs: 60_000,
        });
        cluster.note(`changed with replica 3 back: delivered ${all.delivered}, digest agreed`);
        assert.ok(all.delivered > without.delivered);

        const three = await RespTestClient.connect(cluster.clientPort(3));
        try {
          const [mine, theirs] = [await contents(one), await contents(three)];
          assert.deepEqual(theirs, mine);
          assert.ok((mine[4] as number) >= START - 5, `stream length ${mine[4]}`);
          assert.ok((mine[0] as string[]).length >= SUMMED_FROM, "the queue stayed large");
        } finally {
          await three.close();
        }
        for (const id of [1, 2, 3]) assert.ok(cluster.running(id), `replica ${id} stopped`);
      } finally {
        await one.close();
      }
    });
  },
});
