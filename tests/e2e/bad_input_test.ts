/**
 * End to end: bad input on the client port and on the peer port of real replicas (including
 * streamed messages' piece frames that break the rules). Every abuse
 * gets an error reply or a closed connection; afterwards every replica is still running, serves
 * fresh connections, still holds every write acknowledged before, and the replicas agree on
 * delivered index and digest.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { clusterId } from "../../src/config/config.ts";
import { encodeFrame } from "../../src/net/frame.ts";
import { encodePeerFrame, VALUE_TAG } from "../../src/net/peer_codec.ts";
import { encodeValue } from "../../src/codec/binary_value.ts";
import { encodeCommand, RespError, type RespValue } from "../../src/net/resp.ts";
import {
  ConnectionClosedError,
  respCall,
  RespTestClient,
  type TestCluster,
  withCluster,
} from "../support/cluster.ts";
import { Prng } from "../support/prng.ts";

const encoder = new TextEncoder();
const text = (s: string): Uint8Array => encoder.encode(s);

/** Bytes of a byte string (char codes 0..255). */
function raw(s: string): Uint8Array {
  return Uint8Array.from(s, (ch) => ch.charCodeAt(0));
}

function randomBytes(rng: Prng, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => rng.int(0, 255));
}

function show(value: RespValue): string {
  return value instanceof RespError ? `-${value.message}` : JSON.stringify(value);
}

/**
 * Writes acknowledged values to the cluster (one per replica, through different replicas) and
 * returns them, to check later that nothing was lost.
 */
async function writeSome(cluster: TestCluster, prefix: string): Promise<Map<string, string>> {
  const written = new Map<string, string>();
  for (const id of cluster.ids) {
    const key = `${prefix}-${id}`;
    const value = `value of ${key}`;
    assert.equal(await respCall(cluster.clientPort(id), ["SET", key, value], 10_000), "OK");
    written.set(key, value);
  }
  return written;
}

/** Every replica serves a fresh connection, holds `written`, and they agree on the digest. */
async function assertHealthy(cluster: TestCluster, written: Map<string, string>): Promise<void> {
  for (const id of cluster.ids) {
    assert.ok(cluster.running(id), `replica ${id} is no longer running`);
    const c = await RespTestClient.connect(cluster.clientPort(id));
    try {
      assert.equal(await c.call(["PING"]), "PONG");
      const key = `fresh-${id}`;
      assert.equal(await c.call(["SET", key, "still serving"], 10_000), "OK");
      assert.equal(await c.call(["GET", key], 10_000), "still serving");
      for (const [k, v] of written) {
        assert.equal(await c.call(["GET", k], 10_000), v, `replica ${id} lost ${k}`);
      }
    } finally {
      await c.close();
    }
  }
  await cluster.waitForAgreement();
  for (const id of cluster.ids) assert.ok(cluster.running(id), `replica ${id} exited`);
}

/**
 * After bad bytes were written on `c`: the server answers an error or closes. If it answered an
 * error and kept the connection, the connection must still work (a PING gets PONG).
 */
async function expectErrorOrClose(c: RespTestClient, what: string): Promise<string> {
  let first: RespValue;
  try {
    first = await c.next(5000);
  } catch (err) {
    if (err instanceof ConnectionClosedError) return "closed";
    throw new Error(`${what}: ${(err as Error).message}`);
  }
  assert.ok(first instanceof RespError, `${what}: expected an error reply, got ${show(first)}`);
  await c.tryWrite(encodeCommand(["PING"]));
  try {
    const probe = await c.next(5000);
    assert.equal(probe, "PONG", `${what}: after the error, PING got ${show(probe)}`);
    return `error (${first.message}), connection kept`;
  } catch (err) {
    if (err instanceof ConnectionClosedError) return `error (${first.message}), then closed`;
    throw new Error(`${what}: after the error reply: ${(err as Error).message}`);
  }
}

/** Opens a client connection to replica `id`, writes `bytes`, checks {@link expectErrorOrClose}. */
async function clientAbuse(
  cluster: TestCluster,
  id: number,
  what: string,
  bytes: Uint8Array,
): Promise<void> {
  const c = await RespTestClient.connect(cluster.clientPort(id));
  try {
    await c.tryWrite(bytes); // the server may close before reading everything
    const outcome = await expectErrorOrClose(c, what);
    cluster.note(`client port abuse "${what}" on replica ${id}: ${outcome}`);
  } finally {
    await c.close();
  }
}

Deno.test({
  name: "e2e: bad input on the client port gets errors or a closed connection, nothing breaks",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const rng = new Prng(0x5eed_0001);
    await withCluster({ replicas: 3 }, async (cluster) => {
      const written = await writeSome(cluster, "before");

      // Random garbage, then EOF: only error replies, and the server closes its side.
      {
        const c = await RespTestClient.connect(cluster.clientPort(1));
        try {
          await c.tryWrite(randomBytes(rng, 4096));
          await c.closeWrite();
          const { replies, closed } = await c.drain(10_000);
          assert.ok(closed, "garbage then EOF: the server did not close the connection");
          for (const r of replies) {
            assert.ok(r instanceof RespError, `garbage got a non-error reply ${show(r)}`);
          }
          cluster.note(`garbage: ${replies.length} error replies, then closed`);
        } finally {
          await c.close();
        }
      }

      await clientAbuse(cluster, 1, "array length 99999999999", text("*99999999999\r\n"));
      await clientAbuse(cluster, 2, "negative array length", text("*-5\r\n$4\r\nPING\r\n"));
      await clientAbuse(cluster, 2, "top-level $-5", text("$-5\r\n"));
      await clientAbuse(cluster, 3, "bulk length -5 in an array", text("*1\r\n$-5\r\n"));
      await clientAbuse(cluster, 3, "bulk length not a number", text("*1\r\n$abc\r\n"));
      await clientAbuse(
        cluster,
        1,
        "oversized bulk length",
        text("*2\r\n$3\r\nGET\r\n$999999999999\r\n"),
      );
      await clientAbuse(
        cluster,
        2,
        "huge inline line",
        new Uint8Array(200 * 1024).fill("x".charCodeAt(0)),
      );
      await clientAbuse(cluster, 3, "integers instead of bulk strings", text("*2\r\n:5\r\n:6\r\n"));
      await clientAbuse(cluster, 1, "nested array", text("*1\r\n*1\r\n$4\r\nPING\r\n"));
      await clientAbuse(cluster, 2, "unbalanced quotes inline", text('SET "k v\r\n'));
      await clientAbuse(
        cluster,
        3,
        "SET with a conflicting option",
        encodeCommand(["SET", "k", "v", "NX", "XX"]),
      );
      await clientAbuse(cluster, 1, "SET with too few arguments", encodeCommand(["SET", "a"]));

      // A truncated request, then EOF: the connection is closed and nothing is applied.
      {
        const c = await RespTestClient.connect(cluster.clientPort(2));
        try {
          await c.tryWrite(text("*3\r\n$3\r\nSET\r\n$9\r\ntrunc-key\r\n$5\r\nab"));
          await c.closeWrite();
          const { replies, closed } = await c.drain(10_000);
          assert.ok(closed, "truncated request then EOF: the server did not close");
          for (const r of replies) assert.ok(r instanceof RespError, `got ${show(r)}`);
        } finally {
          await c.close();
        }
        for (const id of cluster.ids) {
          assert.equal(await respCall(cluster.clientPort(id), ["EXISTS", "trunc-key"], 10_000), 0);
        }
      }

      // Pipelined: a bad command between good ones only fails itself.
      {
        const c = await RespTestClient.connect(cluster.clientPort(3));
        try {
          await c.write(text("SET pipe 1\r\nBOGUS cmd\r\nGET pipe\r\n"));
          assert.equal(await c.next(10_000), "OK");
          const err = await c.next(10_000);
          assert.ok(err instanceof RespError && /unknown command/i.test(err.message), show(err));
          assert.equal(await c.next(10_000), "1");
        } finally {
          await c.close();
        }
        written.set("pipe", "1");
      }

      // Binary keys and values: every byte value, CR LF inside, survive through other replicas.
      {
        let key = "";
        for (let b = 0; b < 256; b++) key += String.fromCharCode(b);
        const value = "\r\n\0" + key.split("").reverse().join("") + "*1\r\n$-1\r\n";
        assert.equal(await respCall(cluster.clientPort(1), ["SET", key, value], 10_000), "OK");
        assert.equal(await respCall(cluster.clientPort(2), ["GET", key], 10_000), value);
        assert.equal(await respCall(cluster.clientPort(3), ["EXISTS", key], 10_000), 1);
        const inlineKey = "\x80\xff\xfe"; // raw bytes in an inline command
        const c = await RespTestClient.connect(cluster.clientPort(2));
        try {
          await c.write(raw(`SET ${inlineKey} x\r\n`));
          assert.equal(await c.next(10_000), "OK");
        } finally {
          await c.close();
        }
        assert.equal(await respCall(cluster.clientPort(3), ["GET", inlineKey], 10_000), "x");
        written.set(key, value);
        written.set(inlineKey, "x");
      }

      await assertHealthy(cluster, written);
    });
  },
});

/** Reads until the server closes the connection; false if it is still open after `timeoutMs`. */
async function closedByServer(conn: Deno.Conn, timeoutMs: number): Promise<boolean> {
  const buf = new Uint8Array(4096);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => (timer = setTimeout(resolve, timeoutMs, "late")));
  try {
    for (;;) {
      const read = conn.read(buf).catch(() => null); // reset counts as closed
      const n = await Promise.race([read, late]);
      if (n === "late") return false;
      if (n === null) return true;
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Connects to replica `id`'s peer port, writes `chunks` one by one (ignoring write failures), then
 * (with `closeWrite`) half-closes, and asserts the replica closes the connection.
 */
async function peerAbuse(
  cluster: TestCluster,
  id: number,
  what: string,
  chunks: Uint8Array[],
  options: { closeWrite?: boolean } = {},
): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: cluster.peerPort(id) });
  try {
    for (const chunk of chunks) {
      try {
        let off = 0;
        while (off < chunk.length) off += await conn.write(chunk.subarray(off));
      } catch {
        break; // closed by the replica already
      }
    }
    if (options.closeWrite) {
      try {
        await conn.closeWrite();
      } catch {
        // already closed
      }
    }
    // The hello timeout (5 s) would close a silent connection too: stay well below it.
    const closed = await closedByServer(conn, 3000);
    assert.ok(closed, `peer port abuse "${what}" on replica ${id}: connection not closed`);
    cluster.note(`peer port abuse "${what}" on replica ${id}: closed`);
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

/** A frame holding `value` in the binary codec, whatever its fields (a hostile peer's frame). */
function valueFrame(value: unknown): Uint8Array {
  return encodeFrame(encodeValue(value, VALUE_TAG));
}

Deno.test({
  name: "e2e: bad input on the peer port closes that connection; the cluster serves and agrees",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const rng = new Prng(0x5eed_0002);
    await withCluster({ replicas: 3 }, async (cluster) => {
      const written = await writeSome(cluster, "before");
      const cluster_ = clusterId(cluster.config);
      const hello = (from: number, cluster = cluster_) =>
        encodeFrame(encodePeerFrame({ kind: "hello", from, cluster }));

      await peerAbuse(cluster, 1, "random garbage", [randomBytes(rng, 2048)], {
        closeWrite: true,
      });
      await peerAbuse(cluster, 1, "HTTP request", [text("GET / HTTP/1.1\r\nHost: x\r\n\r\n")]);
      await peerAbuse(cluster, 2, "frame length 0xffffffff", [raw("\xff\xff\xff\xff")]);
      await peerAbuse(cluster, 2, "frame length 64 MiB + 1", [raw("\x04\x00\x00\x01abc")]);
      // A hello that would be valid but for its encoding: JSON (an earlier release's), or one
      // byte after its value. (From id 7, a replica outside the configuration: it takes over no
      // real peer's link, so only the refusal closes the connection.)
      await peerAbuse(cluster, 3, "valid length, a hello as JSON (an earlier release's)", [
        encodeFrame(text(JSON.stringify({ kind: "hello", from: 7, cluster: cluster_ }))),
      ]);
      await peerAbuse(cluster, 1, "valid length, a hello with a byte after its value", [
        encodeFrame(
          new Uint8Array([...encodePeerFrame({ kind: "hello", from: 7, cluster: cluster_ }), 0]),
        ),
      ]);
      await peerAbuse(cluster, 3, "valid length, an unknown tag", [encodeFrame(raw("\xff\xfe"))]);
      await peerAbuse(cluster, 1, "empty frame", [encodeFrame(new Uint8Array(0))]);
      // Any id is accepted at the hello (a joining replica is in no config file); the core
      // ignores a replica outside its configuration (it may be one joining, or one behind a
      // change) but refuses an id no replica can have, which closes the connection.
      await peerAbuse(cluster, 1, "hello from an impossible replica id, then a message", [
        hello(1000),
        valueFrame({ kind: "msgs", msgs: [{ type: "probe", view: 0, ts: 1, round: 1 }] }),
      ]);
      await peerAbuse(cluster, 2, "hello with another cluster id", [hello(1, "0123456789abcdef")]);
      await peerAbuse(cluster, 3, "hello claiming the replica's own id", [hello(3)]);
      await peerAbuse(cluster, 1, "hello with a string id", [
        valueFrame({ kind: "hello", from: "2", cluster: cluster_ }),
      ]);
      await peerAbuse(cluster, 2, "messages before hello", [
        valueFrame({ kind: "msgs", msgs: [] }),
      ]);
      await peerAbuse(cluster, 1, "truncated frame, then EOF", [raw("\x00\x00\x01\x00{")], {
        closeWrite: true,
      });

      // A valid hello impersonating a real peer (it replaces that peer's connection), then bad
      // messages: the impostor is closed and the real peer's link recovers.
      await peerAbuse(cluster, 1, "hello, then an unknown message type", [
        hello(2),
        valueFrame({ kind: "msgs", msgs: [{ type: "bogus" }] }),
      ]);
      await peerAbuse(cluster, 2, "hello, then an update with wrong field types", [
        hello(3),
        valueFrame({
          kind: "msgs",
          msgs: [{ type: "update", entry: { view: "x", ts: -1, origin: 1, seq: 0, cmd: {} } }],
        }),
      ]);
      await peerAbuse(cluster, 3, "hello, then an empty msgs frame with a byte after its value", [
        hello(7),
        encodeFrame(new Uint8Array([...encodePeerFrame({ kind: "msgs", msgs: [] }), 0])),
      ]);
      await peerAbuse(cluster, 1, "hello, then a second hello", [hello(3), hello(3)]);
      await peerAbuse(cluster, 2, "hello, then a huge frame length", [
        hello(1),
        raw("\x7f\xff\xff\xff"),
      ]);
      // Piece frames (how a message carrying a snapshot, or larger than 4 MiB, is streamed) that
      // break the rules.
      const piece = (seq: number, end: "none" | "doc" | "final", data: string) =>
        encodeFrame(encodePeerFrame({
          kind: "piece",
          seq,
          docEnd: end !== "none",
          final: end === "final",
          data: text(data),
        }));
      const msgsDoc = JSON.stringify({ v: { kind: "msgs", msgs: [] }, h: [] });
      await peerAbuse(cluster, 3, "piece frames before the hello", [piece(0, "final", msgsDoc)]);
      await peerAbuse(cluster, 1, "hello, then piece 1 without piece 0", [
        hello(2),
        piece(1, "final", msgsDoc),
      ]);
      await peerAbuse(cluster, 2, "hello, then a msgs frame between pieces", [
        hello(3),
        piece(0, "none", msgsDoc.slice(0, 10)),
        valueFrame({ kind: "msgs", msgs: [] }),
      ]);
      await peerAbuse(cluster, 3, "hello, then a document that is invalid JSON", [
        hello(1),
        piece(0, "doc", '{"v":[],"h":[[[],'),
      ]);
      await peerAbuse(cluster, 1, "hello, then pieces carrying a hello", [
        hello(2),
        piece(
          0,
          "final",
          JSON.stringify({ v: { kind: "hello", from: 2, cluster: cluster_ }, h: [] }),
        ),
      ]);
      await peerAbuse(cluster, 2, "hello, then a piece with unknown flags", [
        hello(3),
        encodeFrame(new Uint8Array([0, 0x80, 0, 0, 0, 0, 0x7b])),
      ]);

      for (const [k, v] of await writeSome(cluster, "after")) written.set(k, v);
      await assertHealthy(cluster, written);
    });
  },
});
