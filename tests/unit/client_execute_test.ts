/**
 * `ClientServer.execute`, the REST API's way in: one command in a transient session, after an
 * optional AUTH, with the rights, outcomes and errors of a connection, and the outstanding-ops cap.
 * In process (no sockets): the handler answers operations from the test.
 */
import assert from "node:assert/strict";
import type { Command, Outcome, ReplicaStatus, Reply } from "../../src/core/types.ts";
import { ClientServer } from "../../src/net/client_server.ts";
import { type AclTable, applyRule, defaultUser, describeTable, newUser } from "../../src/kv/acl.ts";
import { SILENT } from "../../src/log/logger.ts";

/** A server whose default user needs `pw` and whose user `r` may only GET `app:*`. */
function server(maxOutstandingOps = 100) {
  const d = defaultUser();
  for (const rule of ["resetpass", ">pw"]) applyRule(d, rule);
  const r = newUser("r");
  for (const rule of ["on", ">rpw", "~app:*", "+get"]) applyRule(r, rule);
  const table: AclTable = new Map([["default", d], ["r", r]]);
  const submitted: { cmd: Command; respond: (o: Outcome) => void }[] = [];
  const cs = new ClientServer({
    hostname: "127.0.0.1",
    port: 0,
    log: SILENT,
    maxOutstandingOps,
    handler: {
      submit: (cmd, respond) => submitted.push({ cmd, respond }),
      status: () => ({}) as ReplicaStatus,
      acl: () => ({
        table: () => table,
        initialised: () => true,
        initArgv: () => ["__ACL", "INIT", ...describeTable(table)],
      }),
    },
  });
  return { cs, submitted };
}

const remote = "127.0.0.1:5555";

/** Resolves on the next macrotask: the AUTH before each command, answered in microtasks, is done. */
function settled(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("execute: NOAUTH without login, WRONGPASS with a wrong one; nothing submitted", async () => {
  const { cs, submitted } = server();
  assert.deepEqual(await cs.execute(["GET", "k"], { remote }), {
    err: "NOAUTH Authentication required.",
  });
  const wrong = await cs.execute(["GET", "k"], {
    remote,
    login: { user: "default", password: "x" },
  });
  assert.match((wrong as { err: string }).err, /^WRONGPASS /);
  assert.equal(submitted.length, 0);
});

Deno.test("execute: a logged-in command is submitted and answered with its outcome", async () => {
  const { cs, submitted } = server();
  const login = { user: "default", password: "pw" };
  const replies: Promise<Reply>[] = [];
  replies.push(cs.execute(["SET", "k", "\xff\x00"], { remote, login }));
  replies.push(cs.execute(["GET", "k"], { remote, login }));
  replies.push(cs.execute(["DEL", "k"], { remote, login }));
  await settled();
  assert.deepEqual(submitted.map((s) => s.cmd.op.argv), [
    ["SET", "k", "\xff\x00"],
    ["GET", "k"],
    ["DEL", "k"],
  ]);
  assert.equal(cs.outstandingOps, 3);
  submitted[0].respond({ ok: true, result: { ok: "OK" } });
  submitted[1].respond({ ok: false, code: "NOQUORUM", message: "no majority" });
  submitted[2].respond({ ok: false, code: "UNKNOWN", message: "may have been applied" });
  assert.deepEqual(await Promise.all(replies), [
    { ok: "OK" },
    { err: "NOQUORUM no majority" },
    { err: "UNKNOWN may have been applied" },
  ]);
  assert.equal(cs.outstandingOps, 0);
});

Deno.test("execute: the user's rights apply (NOPERM for commands and keys)", async () => {
  const { cs, submitted } = server();
  const login = { user: "r", password: "rpw" };
  const denied = await Promise.all([
    cs.execute(["SET", "app:x", "v"], { remote, login }),
    cs.execute(["GET", "other"], { remote, login }),
  ]);
  for (const r of denied) assert.match((r as { err: string }).err, /^NOPERM /);
  assert.equal(submitted.length, 0);
  const allowed = cs.execute(["GET", "app:x"], { remote, login });
  await settled();
  assert.equal(submitted.length, 1);
  submitted[0].respond({ ok: true, result: "v" });
  assert.equal(await allowed, "v");
});

Deno.test("execute: beyond the outstanding-operations cap the reply is REFUSED", async () => {
  const { cs, submitted } = server(1);
  const login = { user: "default", password: "pw" };
  const first = cs.execute(["GET", "a"], { remote, login });
  await settled();
  assert.equal(submitted.length, 1);
  const refused = await cs.execute(["GET", "b"], { remote, login });
  assert.match((refused as { err: string }).err, /^REFUSED /);
  assert.equal(submitted.length, 1);
  submitted[0].respond({ ok: true, result: null });
  assert.equal(await first, null);
  const again = cs.execute(["GET", "b"], { remote, login });
  await settled();
  submitted[1].respond({ ok: true, result: "b" });
  assert.equal(await again, "b");
});

Deno.test("execute: blocked commands do not count against the outstanding-operations cap", async () => {
  const { cs, submitted } = server(1);
  const login = { user: "default", password: "pw" };
  const blocked = cs.execute(["BLPOP", "q", "0"], { remote, login });
  await settled();
  assert.equal(submitted.length, 1);
  assert.equal(cs.outstandingOps, 0, "a client may stay blocked without holding a slot");
  const get = cs.execute(["GET", "a"], { remote, login });
  await settled();
  assert.equal(submitted.length, 2, "not refused");
  submitted[1].respond({ ok: true, result: "a" });
  submitted[0].respond({ ok: true, result: ["q", "x"] });
  assert.deepEqual(await Promise.all([blocked, get]), [["q", "x"], "a"]);
  assert.equal(cs.outstandingOps, 0);
});
