/**
 * End to end: hostile input on the peer port of real replicas. A process that knows the cluster
 * id (a hash of the replica list in the config) can complete the handshake; whatever it sends
 * then must close its connection, never the replica. Before the handshake, a connection may send
 * only a small frame, must say hello within `peer-hello-timeout`, and only a few such
 * connections are held at once.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { closedWithin, closeQuietly, tryWriteAll } from "../support/raw_conn.ts";
import { clusterId } from "../../src/config/config.ts";
import { encodeFrame } from "../../src/net/frame.ts";
import { encodePeerFrame } from "../../src/net/peer_codec.ts";
import type { PeerMessage } from "../../src/core/types.ts";
import { MAX_UNAUTHENTICATED_PEERS } from "../../src/limits.ts";
import { respCall, type TestCluster, waitFor, withCluster } from "../support/cluster.ts";
import { memoryOf } from "../support/memory.ts";

const LOOPBACK = "127.0.0.1";

const MB = 1024 * 1024;

function hello(cluster: TestCluster, from: number): Uint8Array {
  return encodeFrame(encodePeerFrame({ kind: "hello", from, cluster: clusterId(cluster.config) }));
}

function msgs(...messages: PeerMessage[]): Uint8Array {
  return encodeFrame(encodePeerFrame({ kind: "msgs", msgs: messages }));
}

/** Every replica runs and serves a write and a read; they agree afterwards. */
async function assertServing(cluster: TestCluster, tag: string): Promise<void> {
  for (const id of cluster.ids) {
    assert.ok(cluster.running(id), `replica ${id} is no longer running`);
    assert.equal(
      await respCall(cluster.clientPort(id), ["SET", `${tag}-${id}`, "v"], 10_000),
      "OK",
    );
    assert.equal(await respCall(cluster.clientPort(id), ["GET", `${tag}-${id}`], 10_000), "v");
  }
  await cluster.waitForAgreement();
}

Deno.test({
  name: "e2e: a forged peer's seq jump closes its link, not the replica",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({ replicas: 3 }, async (cluster) => {
      const view = Number((await cluster.info(1)).view);
      assert.ok(view >= 0);
      // The issue's frame: replica 2's hello, then an update of the current view whose seq
      // jumps from 0 to 999999999. Today's code died of "InvariantError: gap from 2".
      const conn = await Deno.connect({ hostname: LOOPBACK, port: cluster.peerPort(1) });
      try {
        await tryWriteAll(conn, hello(cluster, 2));
        await tryWriteAll(
          conn,
          msgs({
            type: "update",
            entry: {
              view,
              ts: 1_000,
              origin: 2,
              seq: 999_999_999,
              cmd: { op: { argv: ["SET", "forged", "x"], time: 0 } },
            },
          }),
        );
        assert.ok(await closedWithin(conn, 5000), "the forged link was not closed");
      } finally {
        closeQuietly(conn);
      }
      await waitFor(() => cluster.logged(1, /refused its message.*gap: got seq 999999999/), {
        timeoutMs: 5000,
        message: "replica 1 to log the refused message",
      });
      // A forged stranger id in the hello never gets that far; an update relayed for another
      // origin is refused the same way.
      const relay = await Deno.connect({ hostname: LOOPBACK, port: cluster.peerPort(2) });
      try {
        await tryWriteAll(relay, hello(cluster, 3));
        await tryWriteAll(
          relay,
          msgs({
            type: "update",
            entry: {
              view,
              ts: 1_000,
              origin: 1,
              seq: 1,
              cmd: { op: { argv: ["GET", "k"], time: 0 } },
            },
          }),
        );
        assert.ok(await closedWithin(relay, 5000), "the relaying link was not closed");
      } finally {
        closeQuietly(relay);
      }
      await assertServing(cluster, "after-forgery");
      assert.equal(await respCall(cluster.clientPort(1), ["GET", "forged"], 10_000), null);
    });
  },
});

Deno.test({
  name: "e2e: peer connections before the hello: small frames, a deadline, a bounded number",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster(
      { replicas: 3, extraArgs: ["--peer-hello-timeout", "2"] },
      async (cluster) => {
        const pid = cluster.pid(1);
        const before = await memoryOf(pid);
        cluster.note(`replica 1 RSS before: ${(before.rss / MB).toFixed(0)} MB`);

        // 30 connections, each announcing a 60 MiB frame and sending up to 40 MiB of it before
        // any hello. Today's code buffered all of it (1.35 GB); now each is closed at once.
        const chunk = new Uint8Array(MB);
        const header = new Uint8Array(4);
        new DataView(header.buffer).setUint32(0, 60 * MB);
        const sent = await Promise.all(Array.from({ length: 30 }, async () => {
          const conn = await Deno.connect({ hostname: LOOPBACK, port: cluster.peerPort(1) });
          let bytes = 0;
          try {
            if (await tryWriteAll(conn, header)) {
              for (let i = 0; i < 40 && await tryWriteAll(conn, chunk); i++) bytes += chunk.length;
            }
            assert.ok(await closedWithin(conn, 10_000), "an oversized pre-hello frame was kept");
          } finally {
            closeQuietly(conn);
          }
          return bytes;
        }));
        const after = await memoryOf(pid);
        cluster.note(
          `sent ${(sent.reduce((a, b) => a + b, 0) / MB).toFixed(0)} MB in total; replica 1 ` +
            `RSS ${(after.rss / MB).toFixed(0)} MB, peak ${(after.peak / MB).toFixed(0)} MB`,
        );
        assert.ok(after.peak < before.rss + 200 * MB, `replica 1 grew to ${after.peak} bytes`);
        assert.ok(cluster.logged(1, /frame declares 62914560 bytes/));

        // A connection that never says hello is closed after the deadline (2 s here).
        const silent = await Deno.connect({ hostname: LOOPBACK, port: cluster.peerPort(1) });
        try {
          assert.ok(await closedWithin(silent, 10_000), "a silent connection was kept");
        } finally {
          closeQuietly(silent);
        }
        await waitFor(() => cluster.logged(1, /no hello within 2000 ms/), { timeoutMs: 5000 });

        // More connections without a hello than the bound: the oldest make room.
        const crowd = await Promise.all(
          Array.from(
            { length: MAX_UNAUTHENTICATED_PEERS + 4 },
            () => Deno.connect({ hostname: LOOPBACK, port: cluster.peerPort(2) }),
          ),
        );
        try {
          await waitFor(
            () => cluster.logged(2, /connections without a hello, closing the oldest/),
            { timeoutMs: 5000, message: "replica 2 to close the oldest pre-hello connection" },
          );
        } finally {
          crowd.forEach(closeQuietly);
        }
        await assertServing(cluster, "after-crowd");
      },
    );
  },
});
