/**
 * End to end: a replica catches up from a state larger than one peer frame (64 MiB).
 *
 * Three replicas; replica 3 is stopped, 70 MB of values (7,000 values of 10 KB, written as MSETs
 * of 100 keys) are written through the other two, which snapshot on the way
 * (`--snapshot-every 50`). Replica 3 then restarts with its data directory wiped: the view change
 * that readmits it hands it the whole state in one NEWVIEW (an install carrying the snapshot),
 * more than `MAX_FRAME_BYTES`. A message carrying a snapshot is streamed as `piece` frames
 * (`src/net/peer_stream.ts`: its JSON value split into documents whose large arrays, here the
 * keyspace's records, go in batches), so neither side holds it as one string. When such a message
 * was one frame it could not be framed, the link was dropped and the same message resent on every
 * reconnect, and the view change never ended. Checked: all three are normal in one view and
 * report the same digest at the same delivered index, and replica 3 serves the values itself.
 * Replica 3 takes no snapshot of its own afterwards: killed with SIGKILL and restarted, it
 * recovers the state from the record it logged on accepting it (the streamed frame's documents,
 * as they came) and serves the same values.
 *
 * With the default failure timeout (1 s, view changes retried after 0.5 s): replica 3, a voter that
 * must be given a snapshot, is taken into a view as a learner first (no write waits while it
 * receives and restores 70 MB), then made a member once it follows the view. A client writing to
 * replica 1 all along sees every write succeed. Before that rule the test needed
 * `--failure-timeout 15000`: with the default, replica 3 stayed `installing` while replicas 1 and 2
 * went through view after view, each attempt timing out before it had restored the install.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { RespTestClient, withCluster } from "../support/cluster.ts";
import { MAX_FRAME_BYTES } from "../../src/limits.ts";

const VALUES = 7_000;
const VALUE_BYTES = 10_000;
const PER_MSET = 100;

/** Value `i`: 10 KB of printable bytes (JSON carries them 1:1), different for every key. */
function valueOf(i: number): string {
  const head = `value-${i}-`;
  const pattern = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(Math.ceil(VALUE_BYTES / 36));
  return (head + pattern.slice(i % 36)).slice(0, VALUE_BYTES);
}

/** Log segments in `dir` holding a peer frame's first document (an install logged as it came). */
function loggedFrames(dir: string): number {
  const latin1 = new TextDecoder("latin1");
  let found = 0;
  for (const entry of Deno.readDirSync(dir)) {
    if (!/^wal-.*\.log$/.test(entry.name)) continue;
    const text = latin1.decode(Deno.readFileSync(join(dir, entry.name)));
    if (text.includes('{"v":{"kind":"msgs","msgs":[{"type":"newview"')) found++;
  }
  return found;
}

Deno.test({
  name: "e2e big state: a wiped replica catches up from a state larger than a peer frame",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    assert.ok(VALUES * VALUE_BYTES > MAX_FRAME_BYTES, "the state must not fit one frame");
    const extraArgs = ["--snapshot-every", "50"];
    await withCluster({ replicas: 3, extraArgs }, async (cluster) => {
      assert.equal((await cluster.kill(3)).signal, "SIGKILL");
      await cluster.waitForView({ ids: [1, 2], timeoutMs: 40_000 });

      const client = await RespTestClient.connect(cluster.clientPort(1));
      try {
        for (let from = 0; from < VALUES; from += PER_MSET) {
          const argv = ["MSET"];
          for (let i = from; i < from + PER_MSET; i++) argv.push(`key:${i}`, valueOf(i));
          assert.equal(await client.call(argv, 30_000), "OK");
        }
      } finally {
        await client.close();
      }
      const written = await cluster.waitForAgreement({ ids: [1, 2], timeoutMs: 30_000 });
      cluster.note(
        `wrote ${VALUES} values of ${VALUE_BYTES} bytes, delivered ${written.delivered}`,
      );

      await Deno.remove(join(cluster.dir, "data", "3"), { recursive: true });
      // No snapshot of its own afterwards (none at all, also none for the log's bytes): its
      // restart below reads the state from its log.
      cluster.setArgs(3, ["--snapshot-every", "0"]);
      const writer = await RespTestClient.connect(cluster.clientPort(1));
      let caughtUp = false;
      const writes = (async () => {
        const failed: string[] = [];
        let ok = 0;
        // Bounded: stops once replica 3 is a member, or after 5,000 writes.
        for (let i = 0; !caughtUp && i < 5_000; i++) {
          const reply = await writer.call(["SET", `during:${i}`, String(i)], 30_000)
            .catch((err) => (err as Error).message);
          if (reply === "OK") ok++;
          else failed.push(String(reply));
        }
        return { ok, failed };
      })();
      try {
        await cluster.restart(3, 30_000);
        await cluster.waitForView({ ids: [1, 2, 3], timeoutMs: 60_000 });
      } finally {
        caughtUp = true;
      }
      const during = await writes;
      await writer.close();
      cluster.note(`${during.ok} writes to replica 1 while replica 3 caught up`);
      assert.deepEqual(during.failed, [], "writes failed while replica 3 caught up");
      assert.ok(during.ok > 0, "no write was made while replica 3 caught up");
      const agreed = await cluster.waitForAgreement({
        ids: [1, 2, 3],
        minDelivered: written.delivered,
        timeoutMs: 60_000,
      });
      assert.ok(agreed.delivered >= written.delivered + during.ok);

      const three = await RespTestClient.connect(cluster.clientPort(3));
      try {
        for (const i of [0, 1, 4_567, VALUES - 1]) {
          assert.equal(await three.call(["GET", `key:${i}`], 10_000), valueOf(i), `key:${i}`);
        }
        assert.equal(await three.call(["DBSIZE"], 10_000), VALUES + during.ok);
      } finally {
        await three.close();
      }

      // It logged the state it accepted as the documents the frame came in: killed and restarted,
      // it recovers that state from its log (there is no snapshot file).
      assert.equal((await cluster.kill(3)).signal, "SIGKILL");
      const logged = loggedFrames(join(cluster.dir, "data", "3"));
      assert.ok(logged > 0, "replica 3's log holds the frame of the state it accepted");
      await cluster.restart(3, 60_000);
      assert.ok(cluster.logged(3, /recovery: \d+ log records/), "recovered from the log alone");
      await cluster.waitForView({ ids: [1, 2, 3], timeoutMs: 60_000 });
      const again = await RespTestClient.connect(cluster.clientPort(3));
      try {
        for (const i of [0, 2_345, VALUES - 1]) {
          assert.equal(await again.call(["GET", `key:${i}`], 10_000), valueOf(i), `key:${i}`);
        }
        assert.equal(await again.call(["DBSIZE"], 10_000), VALUES + during.ok);
      } finally {
        await again.close();
      }
    });
  },
});
