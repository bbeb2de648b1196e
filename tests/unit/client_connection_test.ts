import assert from "node:assert/strict";
import { ConnectionError, RespConnection } from "../../src/client/connection.ts";
import { RespError } from "../../src/net/resp.ts";
import {
  deadPort,
  type FakeReply,
  FakeRespServer,
  reply,
  waitFor,
} from "../support/fake_resp_server.ts";

Deno.test("connection: pipelined requests are all sent before any reply, replies resolve in order", async () => {
  const total = 100;
  const server = FakeRespServer.start(async (argv) => {
    // Hold the first reply until every request has arrived: proves the client pipelines.
    await waitFor(() => server.requests.length === total, "all pipelined requests");
    return reply.bulk(argv[1]);
  });
  const conn = await RespConnection.connect("127.0.0.1", server.port);
  try {
    const replies = Array.from({ length: total }, (_, i) => conn.send(["ECHO", `v${i}`]));
    const values = await Promise.all(replies);
    assert.deepEqual(values, Array.from({ length: total }, (_, i) => `v${i}`));
    assert.equal(conn.pendingCount, 0);
    assert.equal(server.connections, 1);
  } finally {
    await conn.close();
    await server.close();
  }
});

Deno.test("connection: binary arguments and every reply type round-trip", async () => {
  const bytes = "\x00\r\n\xff\xfe é";
  const server = FakeRespServer.start((argv) => {
    switch (argv[0]) {
      case "ECHO":
        return reply.bulk(argv[1]);
      case "NIL":
        return reply.bulk(null);
      case "INT":
        return reply.int(42);
      case "OK":
        return reply.ok();
      default:
        return reply.error("ERR unknown command");
    }
  });
  const conn = await RespConnection.connect("127.0.0.1", server.port);
  try {
    assert.equal(await conn.send(["ECHO", bytes]), bytes);
    assert.equal(await conn.send(["NIL"]), null);
    assert.equal(await conn.send(["INT"]), 42);
    assert.equal(await conn.send(["OK"]), "OK");
    const err = await conn.send(["NOPE"]);
    assert.ok(err instanceof RespError);
    assert.equal(err.message, "ERR unknown command");
    assert.deepEqual(server.argvs[0], ["ECHO", bytes]);
  } finally {
    await conn.close();
    await server.close();
  }
});

Deno.test("connection: a request without a reply times out and closes the connection", async () => {
  const server = FakeRespServer.start((argv) => argv[0] === "HANG" ? "hang" : reply.ok());
  const conn = await RespConnection.connect("127.0.0.1", server.port, { requestTimeoutMs: 100 });
  try {
    assert.equal(await conn.send(["PING"]), "OK");
    const hung = conn.send(["HANG"]);
    const behind = conn.send(["PING"]); // queued behind the hung one on the server
    await assert.rejects(hung, (err: unknown) => {
      assert.ok(err instanceof ConnectionError);
      assert.equal(err.kind, "timeout");
      assert.equal(err.sent, true);
      assert.match(err.message, /no reply from 127\.0\.0\.1:\d+ within 100 ms/);
      return true;
    });
    await assert.rejects(behind, (err: unknown) => {
      assert.ok(err instanceof ConnectionError);
      assert.equal(err.kind, "closed");
      return true;
    });
    assert.equal(conn.closed, true);
    await assert.rejects(conn.send(["PING"]), (err: unknown) => {
      assert.ok(err instanceof ConnectionError);
      assert.equal(err.kind, "closed");
      assert.equal(err.sent, false);
      return true;
    });
  } finally {
    await conn.close();
    await server.close();
  }
});

Deno.test("connection: a per-request timeout overrides the default", async () => {
  const server = FakeRespServer.start(() => "hang");
  const conn = await RespConnection.connect("127.0.0.1", server.port, {
    requestTimeoutMs: 60_000,
  });
  try {
    await assert.rejects(conn.send(["HANG"], { timeoutMs: 50 }), /within 50 ms/);
  } finally {
    await conn.close();
    await server.close();
  }
});

Deno.test("connection: the server closing rejects every pending request", async () => {
  const server = FakeRespServer.start(async (): Promise<FakeReply> => {
    await waitFor(() => server.requests.length === 3, "three requests");
    return "close";
  });
  const conn = await RespConnection.connect("127.0.0.1", server.port);
  try {
    const results = await Promise.allSettled([
      conn.send(["A"]),
      conn.send(["B"]),
      conn.send(["C"]),
    ]);
    for (const result of results) {
      assert.equal(result.status, "rejected");
      const err = result.reason;
      assert.ok(err instanceof ConnectionError);
      assert.equal(err.kind, "closed");
      assert.match(err.message, /closed by the server/);
    }
    assert.equal(conn.closed, true);
  } finally {
    await conn.close();
    await server.close();
  }
});

Deno.test("connection: close() rejects pending requests and is idempotent", async () => {
  const server = FakeRespServer.start(() => "hang");
  const conn = await RespConnection.connect("127.0.0.1", server.port);
  try {
    const pending = conn.send(["HANG"]);
    await waitFor(() => server.requests.length === 1, "the request");
    const rejected = assert.rejects(pending, /closed by client/);
    await conn.close();
    await rejected;
    await conn.close();
  } finally {
    await server.close();
  }
});

Deno.test("connection: connect to a closed port fails with kind connect", async () => {
  const port = deadPort();
  await assert.rejects(RespConnection.connect("127.0.0.1", port), (err: unknown) => {
    assert.ok(err instanceof ConnectionError);
    assert.equal(err.kind, "connect");
    assert.equal(err.sent, false);
    assert.match(err.message, new RegExp(`cannot connect to 127\\.0\\.0\\.1:${port}`));
    return true;
  });
});

Deno.test("connection: garbage from the server is a protocol error", async () => {
  const server = FakeRespServer.start(() => new TextEncoder().encode("?what\r\n"));
  const conn = await RespConnection.connect("127.0.0.1", server.port);
  try {
    await assert.rejects(conn.send(["PING"]), (err: unknown) => {
      assert.ok(err instanceof ConnectionError);
      assert.equal(err.kind, "protocol");
      return true;
    });
    assert.equal(conn.closed, true);
  } finally {
    await conn.close();
    await server.close();
  }
});
