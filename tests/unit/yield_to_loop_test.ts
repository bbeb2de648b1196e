/**
 * Unit tests of `yieldToLoop`: a loop that yields with it lets ready socket input and due timers
 * run (a microtask would not). How long a yield takes is measured by the bench (snapshot writes,
 * catch-up), not asserted here.
 *
 * @module
 */
import assert from "node:assert/strict";
import { yieldToLoop } from "../../src/yield_to_loop.ts";

/** Yields until `done()` or `limit` yields; returns how many it took. */
async function yieldUntil(done: () => boolean, limit: number): Promise<number> {
  let n = 0;
  while (!done() && n < limit) {
    await yieldToLoop();
    n++;
  }
  return n;
}

Deno.test("yieldToLoop: a due timer runs while a loop yields", async () => {
  let fired = false;
  setTimeout(() => fired = true, 0);
  // A microtask-only yield would spin to the limit without the timer ever running.
  await yieldUntil(() => fired, 1_000_000);
  assert.ok(fired, "the timer never ran between yields");
});

Deno.test("yieldToLoop: socket input is read while a loop yields", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const client = await Deno.connect({ hostname: "127.0.0.1", port });
  const server = await listener.accept();
  try {
    let received = 0;
    const reading = (async () => {
      const buf = new Uint8Array(16);
      const n = await server.read(buf);
      received = n ?? 0;
    })();
    await client.write(new TextEncoder().encode("ping"));
    await yieldUntil(() => received > 0, 1_000_000);
    assert.equal(received, 4, "the ready read did not complete between yields");
    await reading;
  } finally {
    client.close();
    server.close();
    listener.close();
  }
});
