/**
 * Unit tests of the fault-injecting peer proxy (`tests/support/fault_proxy.ts`) over real loopback
 * sockets, with the resource and op sanitizers on: it forwards bytes both ways, learns the caller
 * from the hello, cuts (open and new connections) and heals per link, delays in order,
 * black-holes without ever resuming a stream with a gap, and closes without leaking anything.
 *
 * @module
 */
import assert from "node:assert/strict";
import { concatBytes } from "../../src/kv/bytes.ts";
import { encodeFrame } from "../../src/net/frame.ts";
import { encodePeerFrame } from "../../src/net/peer_codec.ts";
import {
  BLACKHOLE,
  delayRule,
  DROP,
  FaultNetwork,
  FaultProxy,
  partition,
  PASS,
  writeAll,
} from "../support/fault_proxy.ts";
import { waitFor } from "../support/cluster.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The hello frame replica `from` opens its peer connections with. */
function hello(from: number): Uint8Array {
  return encodeFrame(encodePeerFrame({ kind: "hello", from, cluster: "test-cluster" }));
}

/** One end of a TCP connection that collects everything it reads. */
class Endpoint {
  readonly chunks: Uint8Array[] = [];
  eof = false;
  readonly #done: Promise<void>;

  constructor(readonly conn: Deno.TcpConn) {
    this.#done = this.#read();
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        this.chunks.push(buf.slice(0, n));
      }
    } catch {
      // reset or closed by us
    }
    this.eof = true;
  }

  /** Everything read so far. */
  get bytes(): Uint8Array {
    return concatBytes(this.chunks);
  }

  get text(): string {
    return decoder.decode(this.bytes);
  }

  write(bytes: Uint8Array | string): Promise<void> {
    return writeAll(this.conn, typeof bytes === "string" ? encoder.encode(bytes) : bytes);
  }

  /** Waits until `n` bytes were read (deadline 5 s). */
  async waitBytes(n: number, what: string): Promise<void> {
    await waitFor(() => this.bytes.length >= n, { timeoutMs: 5000, message: what });
  }

  /** Waits until the other side closed (deadline 5 s). */
  async waitEof(what: string): Promise<void> {
    await waitFor(() => this.eof, { timeoutMs: 5000, message: what });
  }

  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    await this.#done;
  }
}

/** A server standing in for a replica's private peer port: keeps every accepted connection. */
class Target {
  readonly accepted: Endpoint[] = [];
  readonly #listener: Deno.TcpListener;
  readonly #accepting: Promise<void>;

  constructor() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listener = listener;
    this.#accepting = (async () => {
      for (;;) {
        try {
          this.accepted.push(new Endpoint(await listener.accept()));
        } catch {
          return;
        }
      }
    })();
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  /** The accepted connection that opened with `from`'s hello (deadline 5 s). */
  async byHello(from: number): Promise<Endpoint> {
    const h = hello(from);
    const find = () =>
      this.accepted.find((e) =>
        e.bytes.length >= h.length && e.bytes.subarray(0, h.length).every((b, i) => b === h[i])
      );
    await waitFor(() => find() !== undefined, {
      timeoutMs: 5000,
      message: `a connection opening with ${from}'s hello`,
    });
    return find()!;
  }

  async waitAccepted(n: number, what: string): Promise<Endpoint> {
    await waitFor(() => this.accepted.length >= n, { timeoutMs: 5000, message: what });
    return this.accepted[n - 1];
  }

  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    await Promise.all(this.accepted.map((e) => e.close()));
  }
}

async function connect(port: number): Promise<Endpoint> {
  return new Endpoint(await Deno.connect({ hostname: "127.0.0.1", port }));
}

/** Runs `body` with a target and a proxy in front of it (replica 1); closes all of it. */
async function withProxy(
  body: (proxy: FaultProxy, target: Target, clients: Endpoint[]) => Promise<void>,
): Promise<void> {
  const target = new Target();
  const proxy = FaultProxy.start({ listenPort: 0, targetPort: target.port, to: 1 });
  const clients: Endpoint[] = [];
  try {
    await body(proxy, target, clients);
  } finally {
    await proxy.close();
    await Promise.all(clients.map((c) => c.close()));
    await target.close();
  }
}

Deno.test("fault proxy: forwards bytes both ways, learns the caller from the hello", async () => {
  await withProxy(async (proxy, target, clients) => {
    const c = await connect(proxy.port);
    clients.push(c);
    // The hello split in two writes, the first frame after it in the same write as its end.
    const h = hello(2);
    await c.write(h.subarray(0, 3));
    await c.write(concatBytes([h.subarray(3), encoder.encode("after-hello")]));
    const t = await target.waitAccepted(1, "the proxy to connect upstream");
    await t.waitBytes(h.length + 11, "hello and data at the target");
    assert.deepEqual(t.bytes, concatBytes([h, encoder.encode("after-hello")]));
    assert.equal(proxy.connections(2), 1);
    assert.equal(proxy.connections(3), 0);
    assert.equal(proxy.connections(), 1);

    await t.write("reply");
    await c.waitBytes(5, "the reply at the caller");
    assert.equal(c.text, "reply");

    // More traffic both ways, larger than one read buffer.
    const big = new Uint8Array(300_000).map((_, i) => i % 251);
    await Promise.all([c.write(big), t.write(big)]);
    await t.waitBytes(h.length + 11 + big.length, "the big chunk at the target");
    await c.waitBytes(5 + big.length, "the big chunk at the caller");
    assert.deepEqual(t.bytes.subarray(h.length + 11), big);
    assert.deepEqual(c.bytes.subarray(5), big);

    // The caller closes: the target sees EOF.
    await c.close();
    await t.waitEof("EOF at the target after the caller closed");
    await waitFor(() => proxy.connections() === 0, { message: "the link to be gone" });
    const s = proxy.stats();
    assert.equal(s.accepted, 1);
    assert.equal(s.refused, 0);
    assert.equal(s.forwardedBytes, h.length + 11 + 5 + 2 * big.length);
  });
});

Deno.test("fault proxy: a cut closes open connections, refuses new ones; heal", async () => {
  await withProxy(async (proxy, target, clients) => {
    const from2 = await connect(proxy.port);
    const from3 = await connect(proxy.port);
    clients.push(from2, from3);
    await from2.write(concatBytes([hello(2), encoder.encode("x")]));
    await waitFor(() => proxy.connections(2) === 1, { message: "2 to be forwarded" });
    await from3.write(hello(3));
    await waitFor(() => proxy.connections(3) === 1, { message: "3 to be forwarded" });
    const t2 = await target.byHello(2);
    await t2.waitBytes(hello(2).length + 1, "2's hello and byte at the target");

    proxy.setRule(2, DROP);
    assert.deepEqual(proxy.rule(2), DROP);
    assert.deepEqual(proxy.rule(3), PASS);
    await from2.waitEof("2's connection to be closed by the cut");
    await t2.waitEof("the target's side of 2's connection to be closed");
    assert.equal(proxy.connections(2), 0);
    assert.equal(proxy.stats().cut, 1);

    // A new connection from 2 is closed right after its hello, never reaching the target.
    const accepted = target.accepted.length;
    const again = await connect(proxy.port);
    clients.push(again);
    await again.write(hello(2));
    await again.waitEof("a new connection of 2 to be refused");
    assert.equal(proxy.stats().refused, 1);
    assert.equal(target.accepted.length, accepted, "a refused connection reached the target");

    // 3 is not affected.
    await from3.write("still");
    const t3 = await target.byHello(3);
    await t3.waitBytes(hello(3).length + 5, "3's bytes after 2 was cut");
    assert.equal(decoder.decode(t3.bytes.subarray(hello(3).length)), "still");

    proxy.heal();
    assert.deepEqual(proxy.rule(2), PASS);
    const healed = await connect(proxy.port);
    clients.push(healed);
    await healed.write(concatBytes([hello(2), encoder.encode("back")]));
    const t = await target.waitAccepted(accepted + 1, "2 to be forwarded after the heal");
    await t.waitBytes(hello(2).length + 4, "2's bytes after the heal");
    assert.equal(decoder.decode(t.bytes.subarray(hello(2).length)), "back");
  });
});

Deno.test("fault proxy: anything but a hello first is closed", async () => {
  await withProxy(async (proxy, target, clients) => {
    const junk = await connect(proxy.port);
    clients.push(junk);
    await junk.write(encodeFrame(encoder.encode('{"kind":"msgs","msgs":[]}')));
    await junk.waitEof("a connection opening with a msgs frame to be closed");
    const huge = await connect(proxy.port);
    clients.push(huge);
    await huge.write(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    await huge.waitEof("a connection declaring a huge first frame to be closed");
    assert.equal(target.accepted.length, 0);
    assert.equal(proxy.stats().accepted, 2);
  });
});

Deno.test("fault proxy: a delayed link forwards every byte in order", async () => {
  await withProxy(async (proxy, target, clients) => {
    proxy.setRule(2, delayRule(30));
    const c = await connect(proxy.port);
    clients.push(c);
    const parts = Array.from({ length: 20 }, (_, i) => `part-${i};`);
    const sent = performance.now();
    await c.write(hello(2));
    for (const p of parts) await c.write(p);
    const t = await target.waitAccepted(1, "the delayed connection to reach the target");
    const want = concatBytes([hello(2), encoder.encode(parts.join(""))]);
    await t.waitBytes(want.length, "every delayed byte");
    assert.ok(performance.now() - sent >= 30, "the bytes arrived without the 30 ms delay");
    assert.deepEqual(t.bytes, want);
    // A delay set on an open connection applies to later chunks; back to pass works too.
    proxy.setRule(2, delayRule(5));
    await c.write("more");
    proxy.setRule(2, PASS);
    await c.write("end");
    await t.waitBytes(want.length + 7, "the bytes after the rule changes");
    assert.equal(decoder.decode(t.bytes.subarray(want.length)), "moreend");
    // A clean close after delayed bytes still delivers them before the EOF.
    proxy.setRule(2, delayRule(20));
    await c.write("last");
    await c.close();
    await t.waitEof("EOF after the last delayed bytes");
    assert.equal(decoder.decode(t.bytes.subarray(want.length)), "moreendlast");
  });
});

Deno.test("fault proxy: a black hole swallows bytes, and that stream never resumes", async () => {
  await withProxy(async (proxy, target, clients) => {
    const c = await connect(proxy.port);
    clients.push(c);
    await c.write(concatBytes([hello(2), encoder.encode("before")]));
    const t = await target.waitAccepted(1, "the connection to reach the target");
    await t.waitBytes(hello(2).length + 6, "the bytes before the black hole");
    proxy.setRule(2, BLACKHOLE);
    await c.write("lost");
    await waitFor(() => proxy.stats().discardedBytes >= 4, { message: "the bytes to be eaten" });
    assert.equal(c.eof, false, "a black hole keeps the connection open");
    // A new connection during the black hole is accepted but never forwarded.
    const late = await connect(proxy.port);
    clients.push(late);
    await late.write(concatBytes([hello(2), encoder.encode("late")]));
    await waitFor(() => proxy.stats().discardedBytes >= 4 + hello(2).length + 4, {
      message: "the new connection's bytes to be eaten",
    });
    proxy.heal();
    // Both streams have a gap: they are closed, not resumed.
    await c.waitEof("the black-holed connection to be closed on heal");
    await late.waitEof("the connection opened in the black hole to be closed on heal");
    await t.waitEof("the target's side to be closed on heal");
    assert.equal(decoder.decode(t.bytes.subarray(hello(2).length)), "before");
    assert.equal(target.accepted.length, 1);
  });
});

Deno.test("fault proxy: target down; close with open connections leaks nothing", async () => {
  const target = new Target();
  const targetPort = target.port;
  await target.close(); // nobody listens there now
  const proxy = FaultProxy.start({ listenPort: 0, targetPort, to: 1 });
  const clients: Endpoint[] = [];
  try {
    const c = await connect(proxy.port);
    clients.push(c);
    await c.write(hello(2));
    await c.waitEof("the caller to see EOF when the target is down");
    const open = await connect(proxy.port);
    clients.push(open);
    // Closing the proxy with a connection waiting for its hello, and another open one.
    await open.write(hello(3).subarray(0, 2));
    await waitFor(() => proxy.stats().accepted === 2, { message: "the second accept" });
    await proxy.close();
    await open.waitEof("the open connection to be closed by the proxy's close");
  } finally {
    await proxy.close();
    await Promise.all(clients.map((c) => c.close()));
  }
});

Deno.test("fault proxy: FaultNetwork.cut and partition set both directions", async () => {
  const targets = [new Target(), new Target(), new Target(), new Target(), new Target()];
  const net = new FaultNetwork(
    targets.map((t, i) => FaultProxy.start({ listenPort: 0, targetPort: t.port, to: i + 1 })),
  );
  try {
    assert.deepEqual(net.ids, [1, 2, 3, 4, 5]);
    const cluster = { ids: net.ids, network: () => net };
    const { side, rest } = partition(cluster, [5, 4]);
    assert.deepEqual(side, [4, 5]);
    assert.deepEqual(rest, [1, 2, 3]);
    for (const from of net.ids) {
      for (const to of net.ids) {
        const across = side.includes(from) !== side.includes(to);
        assert.equal(net.rule(from, to).kind, across ? "drop" : "pass", `${from} -> ${to}`);
      }
    }
    assert.equal(
      net.describe(),
      "4->1 drop, 5->1 drop, 4->2 drop, 5->2 drop, 4->3 drop, 5->3 drop, " +
        "1->4 drop, 2->4 drop, 3->4 drop, 1->5 drop, 2->5 drop, 3->5 drop",
    );
    net.heal();
    assert.equal(net.describe(), "none");
    net.setRule(1, 2, delayRule(10));
    assert.equal(net.describe(), "1->2 delay 10ms");
    net.heal();
    assert.throws(() => partition(cluster, []), /both sides/);
    assert.throws(() => partition(cluster, [1, 2, 3, 4, 5]), /both sides/);
    assert.throws(() => partition(cluster, [6]), /no replica 6/);
    assert.throws(() => net.proxy(6), /no proxy/);
    assert.throws(() => delayRule(-1), RangeError);

    // A cut made through the network is enforced by the right proxy.
    net.cut([2], [1]);
    const c = await connect(net.proxy(1).port);
    try {
      await c.write(hello(2));
      await c.waitEof("2 -> 1 to be refused");
      assert.equal(net.proxy(1).stats().refused, 1);
      assert.equal(targets[0].accepted.length, 0);
    } finally {
      await c.close();
    }
  } finally {
    await net.close();
    await Promise.all(targets.map((t) => t.close()));
  }
});
