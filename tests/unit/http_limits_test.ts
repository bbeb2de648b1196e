/**
 * The HTTP port's bounds (`src/http/request_limits.ts`): requests in flight, the shared budget of
 * body bytes, the body deadline, and the server answering 503 beyond its requests in flight
 * (a real `HttpServer` on a loopback port).
 */
import assert from "node:assert/strict";
import { type BodyRefusal, HttpLimits } from "../../src/http/request_limits.ts";
import { HttpServer, textResponse } from "../../src/http/http_server.ts";
import { SILENT } from "../../src/log/logger.ts";

const URL_ = "http://127.0.0.1/v1/kv/x";

/** A body stream that yields `chunks` and then stays open (never closes) when `hang`. */
function stream(chunks: Uint8Array[], hang = false): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(controller): Promise<void> | void {
      if (i < chunks.length) controller.enqueue(chunks[i++]);
      else if (!hang) controller.close();
      else return new Promise(() => {}); // never resolves: a sender that stopped sending
    },
  });
}

function put(body: BodyInit | null, headers: Record<string, string> = {}): Request {
  return new Request(URL_, { method: "PUT", body, headers });
}

type Outcome = { body: Uint8Array } | { refused: BodyRefusal };

function read(limits: HttpLimits, req: Request, max = 100): Promise<Outcome> {
  return limits.withBody<Outcome>(req, max, (body) => ({ body }), (refused) => ({ refused }));
}

Deno.test("http limits: requests in flight are bounded and given back", () => {
  const limits = new HttpLimits({ maxInFlight: 2 });
  assert.ok(limits.enter());
  assert.ok(limits.enter());
  assert.equal(limits.enter(), false);
  assert.equal(limits.inFlight, 2);
  limits.leave();
  assert.ok(limits.enter());
  limits.leave();
  limits.leave();
  assert.equal(limits.inFlight, 0);
  assert.throws(() => limits.leave(), /without enter/);
});

Deno.test("http limits: a body is read whole and its budget given back after use", async () => {
  const limits = new HttpLimits({ maxBodyBytesInFlight: 10 });
  let during = -1;
  const r = await limits.withBody(put("hello"), 100, (body) => {
    during = limits.bodyBytes;
    return new TextDecoder().decode(body);
  }, () => "refused");
  assert.equal(r, "hello");
  assert.equal(during, 5);
  assert.equal(limits.bodyBytes, 0);
  // A streamed body without Content-Length is counted as it arrives.
  const chunks = [new Uint8Array([1, 2]), new Uint8Array([3])];
  const s = await read(limits, new Request(URL_, { method: "PUT", body: stream(chunks) }));
  assert.deepEqual(s, { body: new Uint8Array([1, 2, 3]) });
  assert.equal(limits.bodyBytes, 0);
  assert.deepEqual(await read(limits, new Request(URL_, { method: "DELETE" })), {
    body: new Uint8Array(0),
  });
});

Deno.test("http limits: too large is 413, by Content-Length or as it streams", async () => {
  const limits = new HttpLimits();
  const declared = await read(limits, put("x".repeat(101)));
  assert.ok("refused" in declared && declared.refused.status === 413, JSON.stringify(declared));
  const chunks = [new Uint8Array(60), new Uint8Array(60)];
  const streamed = await read(limits, new Request(URL_, { method: "PUT", body: stream(chunks) }));
  assert.ok("refused" in streamed && streamed.refused.status === 413);
  assert.match((streamed as { refused: BodyRefusal }).refused.reason, /proto-max-bulk-len \(100/);
  assert.equal(limits.bodyBytes, 0);
});

Deno.test("http limits: bodies beyond the shared budget get 503 while others hold it", async () => {
  const limits = new HttpLimits({ maxBodyBytesInFlight: 8 });
  let release = () => {};
  const held = new Promise<void>((resolve) => release = resolve);
  const first = limits.withBody(put("123456"), 100, async () => {
    await held;
    return "stored";
  }, () => "refused");
  const second = await read(limits, put("abc"));
  assert.ok("refused" in second && second.refused.status === 503, JSON.stringify(second));
  // Without Content-Length, the budget runs out while the body streams.
  const chunks = [new Uint8Array(1), new Uint8Array(4)];
  const third = await read(limits, new Request(URL_, { method: "PUT", body: stream(chunks) }));
  assert.ok("refused" in third && third.refused.status === 503);
  assert.equal(limits.bodyBytes, 6);
  release();
  assert.equal(await first, "stored");
  assert.equal(limits.bodyBytes, 0);
  assert.deepEqual(await read(limits, put("abc")), { body: new TextEncoder().encode("abc") });
});

Deno.test("http limits: a body that stops arriving gets 408 at the deadline", async () => {
  const limits = new HttpLimits({ bodyDeadlineMs: 50 });
  const req = new Request(URL_, { method: "PUT", body: stream([new Uint8Array(3)], true) });
  const r = await read(limits, req);
  assert.ok("refused" in r && r.refused.status === 408, JSON.stringify(r));
  assert.equal(limits.bodyBytes, 0);
  const bad = await read(limits, put("x", { "content-length": "-1" }));
  assert.ok("refused" in bad && bad.refused.status === 400);
});

Deno.test("http limits: the server answers 503 beyond its requests in flight", async () => {
  let release = () => {};
  const held = new Promise<void>((resolve) => release = resolve);
  let entered = () => {};
  const inside = new Promise<void>((resolve) => entered = resolve);
  const server = new HttpServer({
    hostname: "127.0.0.1",
    port: 0,
    log: SILENT,
    limits: new HttpLimits({ maxInFlight: 1 }),
    routes: [{
      methods: ["GET"],
      path: "/slow",
      handle: async () => {
        entered();
        await held;
        return textResponse("done\n");
      },
    }],
  });
  await server.open();
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const first = fetch(`${base}/slow`);
    await inside;
    const busy = await fetch(`${base}/slow`);
    assert.equal(busy.status, 503);
    assert.equal(busy.headers.get("retry-after"), "1");
    await busy.body?.cancel();
    release();
    const ok = await first;
    assert.equal(await ok.text(), "done\n");
    const again = await fetch(`${base}/slow`);
    assert.equal(again.status, 200);
    await again.body?.cancel();
  } finally {
    await server.close();
  }
});
