/**
 * Unit tests of users and rights: the ACL rule engine and its descriptions (compared with what
 * redis-server 7.0.15 answered for the same rules), ACL files and their errors, permission checks,
 * the replicated `__ACL` operation in the state machine (snapshots included), and a session's
 * AUTH, NOAUTH, NOPERM and ACL replies.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  aclFileErrorText,
  type AclTable,
  applyRule,
  checkCommand,
  defaultTable,
  deniedText,
  describeTable,
  describeUser,
  getUserReply,
  hashPassword,
  newUser,
  parseUserLines,
} from "../../src/kv/acl.ts";
import { COMMANDS } from "../../src/kv/commands/index.ts";
import { KvStore } from "../../src/kv/store.ts";
import type { Reply } from "../../src/core/types.ts";
import { Session } from "../../src/net/session.ts";
import { ImmediateSessionHost } from "../support/session_host.ts";
import { aclSetup, readAclFile, saveAclFile } from "../../src/runtime/acl_setup.ts";
import { DEFAULT_SETTINGS, resolveSettings } from "../../src/config/settings.ts";
import { credentials } from "../../src/cli/client.ts";

function user(name: string, ...rules: string[]) {
  const u = newUser(name);
  for (const r of rules) applyRule(u, r);
  return u;
}

Deno.test("acl: ACL LIST lines are redis-server 7.0.15's for the same rules", () => {
  // Each expected line is what redis-server 7.0.15 printed after ACL SETUSER with these rules.
  const cases: [string[], string][] = [
    [
      ["on", ">p", "~app:*", "+@read"],
      "user u on #148de9c5a7a44d19e56cd9ae1a554bf67847afb0c58f6e12fa29ac7ddfca9940 ~app:* resetchannels -@all +@read",
    ],
    [
      ["on", "nopass", "+@all", "-@dangerous", "allkeys"],
      "user u on nopass ~* resetchannels +@all -@dangerous",
    ],
    [["+@read", "+set"], "user u off resetchannels -@all +@read +set"],
    [["+@read", "-get", "reset"], "user u off sanitize-payload resetchannels -@all"],
    [
      ["on", ">a", ">b", "<a", "~a", "~b", "resetkeys", "~c", "+get", "+get", "-get", "+set"],
      "user u on #3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d ~c resetchannels -@all +set",
    ],
    [["on", ">x", "nopass"], "user u on nopass resetchannels -@all"],
    [
      ["on", ">x", "+@all", "-@all", "+acl|whoami"],
      "user u on #2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881 resetchannels -@all +acl|whoami",
    ],
  ];
  for (const [rules, line] of cases) assert.equal(describeUser(user("u", ...rules)), line);
  assert.deepEqual(describeTable(defaultTable()), ["user default on nopass ~* &* +@all"]);
});

Deno.test("acl: GETUSER replies are Redis's", () => {
  assert.deepEqual(getUserReply(user("u2", "on", "nopass", "+@all", "-@dangerous", "allkeys")), [
    "flags",
    ["on", "nopass"],
    "passwords",
    [],
    "commands",
    "+@all -@dangerous",
    "keys",
    "~*",
    "channels",
    "",
    "selectors",
    [],
  ]);
  assert.deepEqual(getUserReply(user("u4", "+@read", "reset")), [
    "flags",
    ["off", "sanitize-payload"],
    "passwords",
    [],
    "commands",
    "-@all",
    "keys",
    "",
    "channels",
    "",
    "selectors",
    [],
  ]);
});

Deno.test("acl: SETUSER rule errors carry Redis's messages", () => {
  const bad = (rules: string[], message: string) =>
    assert.throws(() => user("x", ...rules), { message });
  bad(["badrule"], "Syntax error");
  bad(["+nocmd"], "Unknown command or category name in ACL");
  bad(["+@nocat"], "Unknown command or category name in ACL");
  bad(
    ["#abc"],
    "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
  );
  bad(["<nope"], "The password you are trying to remove from the user does not exist");
  bad(
    ["allkeys", "~x"],
    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
  );
  // Passwords: > adds a hash, < removes it, nopass clears them; hashes are SHA-256.
  assert.equal(
    hashPassword("secret"),
    "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
  );
  const u = user("x", ">a", "#" + hashPassword("b"));
  assert.deepEqual(u.passwords, [hashPassword("a"), hashPassword("b")]);
  applyRule(u, "nopass");
  assert.deepEqual([u.nopass, u.passwords], [true, []]);
});

Deno.test("acl: a user limited to ~app:* and +@read cannot write app:x nor read other", () => {
  const u = user("app", "on", ">pw", "~app:*", "+@read");
  const check = (...argv: string[]) => checkCommand(u, COMMANDS.get(argv[0])!, argv);
  assert.equal(check("GET", "app:x"), null);
  assert.deepEqual(check("SET", "app:x", "1"), { kind: "cmd", unit: "set" });
  assert.deepEqual(check("GET", "other"), { kind: "key" });
  assert.deepEqual(check("MGET", "app:x", "other"), { kind: "key" });
  assert.deepEqual(check("ACL", "WHOAMI"), { kind: "cmd", unit: "acl|whoami" });
  assert.equal(check("AUTH", "x"), null, "no_auth commands are always allowed");
  const admin = user("a", "on", "nopass", "allkeys", "+@all", "-@dangerous");
  const c2 = (...argv: string[]) => checkCommand(admin, COMMANDS.get(argv[0])!, argv);
  assert.deepEqual(c2("FLUSHALL"), { kind: "cmd", unit: "flushall" });
  assert.deepEqual(c2("KEYS", "*"), { kind: "cmd", unit: "keys" });
  assert.deepEqual(c2("CONFIG", "GET", "x"), { kind: "cmd", unit: "config|get" });
  assert.equal(c2("CLIENT", "ID"), null);
});

Deno.test("acl: channel rules (&pattern) govern PUBLISH, SUBSCRIBE and PSUBSCRIBE as in Redis", () => {
  const u = user("news", "on", "nopass", "+@all", "&news.*", "&alerts");
  const check = (...argv: string[]) => checkCommand(u, COMMANDS.get(argv[0])!, argv);
  assert.equal(check("PUBLISH", "news.sport", "x"), null);
  assert.deepEqual(check("PUBLISH", "weather", "x"), { kind: "channel", channel: "weather" });
  assert.equal(check("SUBSCRIBE", "news.a", "alerts"), null);
  assert.deepEqual(check("SUBSCRIBE", "news.a", "weather"), {
    kind: "channel",
    channel: "weather",
  });
  assert.equal(check("PSUBSCRIBE", "news.*"), null, "a pattern that is one of the user's");
  assert.deepEqual(
    check("PSUBSCRIBE", "news.s*"),
    { kind: "channel", channel: "news.s*" },
    "only exact patterns",
  );
  assert.equal(check("UNSUBSCRIBE", "weather"), null);
  assert.deepEqual(
    deniedText({ kind: "channel", channel: "c" }),
    "NOPERM this user has no permissions to access one of the channels used as arguments",
  );
  const none = user("none", "on", "nopass", "+@all");
  assert.deepEqual(checkCommand(none, COMMANDS.get("publish")!, ["PUBLISH", "c", "m"]), {
    kind: "channel",
    channel: "c",
  }, "a new user has no channels (Redis 7's acl-pubsub-default resetchannels)");
  const all = user("all", "on", "nopass", "+@all", "allchannels");
  assert.equal(checkCommand(all, COMMANDS.get("psubscribe")!, ["PSUBSCRIBE", "x*"]), null);
});

Deno.test("acl: ACL files parse with Redis's rules and report every problem with file:line", () => {
  const ok = parseUserLines(["user alice on >pw ~app:* +@read", "", "# comment"]);
  assert.ok("table" in ok);
  assert.deepEqual(describeTable(ok.table), [
    "user alice on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~app:* resetchannels -@all +@read",
    "user default on nopass ~* &* +@all",
  ]);
  const bad = parseUserLines(["user a on", "foo bar", "user b on badrule", "user a off", "user"]);
  assert.ok("problems" in bad);
  assert.equal(
    aclFileErrorText("/x/users.acl", bad.problems),
    "/x/users.acl:2 should start with user keyword followed by the username. " +
      "/x/users.acl:3: Syntax error. WARNING: Duplicate user 'a' found on line 4. " +
      "/x/users.acl:5 should start with user keyword followed by the username. ",
  );
});

Deno.test("acl: settings make the local users; the aclfile is relative to the config file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const open = await aclSetup(DEFAULT_SETTINGS);
    assert.equal(open.secured, false);
    const pass = await aclSetup({ ...DEFAULT_SETTINGS, requirepass: "adminpw" });
    assert.equal(pass.secured, true);
    assert.deepEqual(describeTable(pass.table), [
      `user default on #${hashPassword("adminpw")} ~* &* +@all`,
    ]);
    const lines = [{ name: "aclfile", value: "users.acl", where: `${dir}/c.txt:3`, base: dir }];
    const aclfile = resolveSettings(lines).aclfile!;
    const path = aclfile.path;
    assert.equal(path, `${dir}/users.acl`);
    await Deno.writeTextFile(path, "user app on >apppw ~app:* +@read\n");
    const withFile = await aclSetup({ ...DEFAULT_SETTINGS, requirepass: "adminpw", aclfile });
    assert.equal(withFile.table.get("default")!.passwords[0], hashPassword("adminpw"));
    assert.ok(withFile.table.has("app"));
    await Deno.writeTextFile(path, "user app on\nuser x y\n");
    await assert.rejects(() => aclSetup({ ...DEFAULT_SETTINGS, aclfile }), {
      message: `${path}:2: Syntax error.`,
    });
    await saveAclFile(path, withFile.table);
    const back = await readAclFile(path, () => newUser("default"));
    assert.deepEqual(describeTable(back), describeTable(withFile.table));
    assert.ok(!(await Deno.readTextFile(path)).includes("apppw"), "only hashes are saved");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("acl: __ACL operations change the replicated table, survive snapshots, INIT only once", () => {
  const store = new KvStore();
  const apply = (...argv: string[]) => store.apply({ op: { argv, time: 1 } });
  assert.equal(store.acl.table, null);
  assert.equal(store.snapshot().acl, undefined, "no ACL field while uninitialised");
  assert.equal(apply("__ACL", "INIT", `user default on #${hashPassword("a")} ~* &* +@all`), 1);
  assert.equal(apply("__ACL", "INIT", "user default on nopass ~* &* +@all"), 0);
  assert.deepEqual(apply("__ACL", "SETUSER", "bob", "on", `#${hashPassword("b")}`, "+@read"), {
    ok: "OK",
  });
  assert.deepEqual(apply("__ACL", "SETUSER", "bob", "bogus"), {
    err: "ERR Error in ACL SETUSER modifier 'bogus': Syntax error",
  });
  const snap = store.snapshot();
  const copy = new KvStore();
  copy.restore(JSON.parse(JSON.stringify(snap)));
  assert.deepEqual(describeTable(copy.acl.table!), describeTable(store.acl.table!));
  assert.equal(apply("__ACL", "DELUSER", "bob", "nobody"), 1);
  assert.deepEqual(apply("__ACL", "DELUSER", "default"), {
    err: "ERR The 'default' user cannot be removed",
  });
  assert.deepEqual(apply("__ACL", "LOAD", "user x on nopass"), { ok: "OK" });
  assert.deepEqual([...store.acl.table!.keys()].sort(), ["default", "x"]);
});

// ---------------------------------------------------------------------------------------------
// Sessions

/** A host recording what it counted as denied. */
class Host extends ImmediateSessionHost {
  readonly denied: string[] = [];
  override noteDenied(kind: "auth" | "cmd" | "key"): void {
    this.denied.push(kind);
  }
}

function call(s: Session, ...argv: string[]): Promise<Reply> {
  return new Promise((resolve) => s.run(argv, resolve));
}

const NOAUTH = { err: "NOAUTH Authentication required." };
const WRONGPASS = { err: "WRONGPASS invalid username-password pair or user is disabled." };

function protectedTable(): AclTable {
  const parsed = parseUserLines([
    "user default on >adminpw ~* &* +@all",
    "user app on >apppw ~app:* +@read +@transaction",
  ]);
  assert.ok("table" in parsed);
  return parsed.table;
}

Deno.test("acl session: NOAUTH until AUTH; WRONGPASS; the limited user's NOPERMs", async () => {
  const host = new Host(protectedTable());
  const s = new Session(host, 1, "127.0.0.1:1", "127.0.0.1:2");
  assert.deepEqual(await call(s, "GET", "x"), NOAUTH);
  assert.deepEqual(await call(s, "foo"), {
    err: "ERR unknown command 'foo', with args beginning with: ",
  });
  assert.deepEqual(await call(s, "HELLO", "2"), {
    err:
      "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
  });
  assert.deepEqual(await call(s, "AUTH", "wrong"), WRONGPASS);
  assert.deepEqual(await call(s, "AUTH", "app", "wrong"), WRONGPASS);
  assert.deepEqual(await call(s, "AUTH", "a", "b", "c"), { err: "ERR syntax error" });
  assert.deepEqual(host.denied, ["auth", "auth"]);
  assert.ok(Array.isArray(await call(s, "HELLO", "2", "AUTH", "app", "apppw")));
  assert.equal(await call(s, "ACL", "WHOAMI").then(() => s.user), "app");
  assert.deepEqual(await call(s, "SET", "app:x", "1"), {
    err: "NOPERM this user has no permissions to run the 'set' command",
  });
  assert.deepEqual(await call(s, "GET", "other"), {
    err: "NOPERM this user has no permissions to access one of the keys used as arguments",
  });
  assert.equal(await call(s, "GET", "app:x"), null);
  assert.deepEqual(await call(s, "REQ", "c1", "1", "SET", "app:x", "1"), {
    err: "NOPERM this user has no permissions to run the 'set' command",
  });
  // Inside MULTI the check is at queue time, and the transaction is aborted.
  assert.deepEqual(await call(s, "MULTI"), { ok: "OK" });
  assert.deepEqual(await call(s, "GET", "other"), {
    err: "NOPERM this user has no permissions to access one of the keys used as arguments",
  });
  assert.deepEqual(await call(s, "EXEC"), {
    err: "EXECABORT Transaction discarded because of previous errors.",
  });
  assert.deepEqual(await call(s, "WATCH", "other"), {
    err: "NOPERM this user has no permissions to access one of the keys used as arguments",
  });
  assert.deepEqual(await call(s, "AUTH", "adminpw"), { ok: "OK" });
  assert.deepEqual(await call(s, "SET", "other", "1"), { ok: "OK" });
});

Deno.test("acl session: ACL subcommands reply as Redis; SETUSER goes through the order hashed", async () => {
  const host = new Host(protectedTable());
  const s = new Session(host, 1, "127.0.0.1:1", "127.0.0.1:2");
  assert.deepEqual(await call(s, "AUTH", "default", "adminpw"), { ok: "OK" });
  assert.equal(await call(s, "ACL", "WHOAMI"), "default");
  assert.deepEqual(await call(s, "ACL", "USERS"), ["app", "default"]);
  assert.deepEqual(await call(s, "ACL", "SETUSER", "bob", "on", ">bobpw", "~*", "+@all"), {
    ok: "OK",
  });
  // The first change is preceded by an INIT of the local users; no clear password is submitted.
  assert.deepEqual(host.submitted.map((c) => c.op.argv.slice(0, 2)), [
    ["__ACL", "INIT"],
    ["__ACL", "SETUSER"],
  ]);
  assert.ok(!JSON.stringify(host.submitted).includes("bobpw"));
  assert.deepEqual(await call(s, "ACL", "LIST"), [
    "user app on #" + hashPassword("apppw") + " ~app:* resetchannels -@all +@read +@transaction",
    "user bob on #" + hashPassword("bobpw") + " ~* resetchannels +@all",
    "user default on #" + hashPassword("adminpw") + " ~* &* +@all",
  ]);
  assert.equal(await call(s, "ACL", "GETUSER", "nobody"), null);
  assert.deepEqual(await call(s, "ACL", "SETUSER", "x", "badrule"), {
    err: "ERR Error in ACL SETUSER modifier 'badrule': Syntax error",
  });
  assert.deepEqual(await call(s, "ACL", "SETUSER", "a b"), {
    err: "ERR Usernames can't contain spaces or null characters",
  });
  assert.deepEqual(await call(s, "ACL", "DELUSER", "default"), {
    err: "ERR The 'default' user cannot be removed",
  });
  assert.equal(await call(s, "ACL", "DELUSER", "bob", "nobody"), 1);
  assert.deepEqual(await call(s, "ACL", "CAT", "foo"), { err: "ERR Unknown category 'foo'" });
  assert.equal(((await call(s, "ACL", "CAT")) as string[]).length, 21);
  assert.deepEqual(await call(s, "ACL", "CAT", "a", "b"), {
    err: "ERR unknown subcommand or wrong number of arguments for 'CAT'. Try ACL HELP.",
  });
  assert.deepEqual(await call(s, "ACL"), {
    err: "ERR wrong number of arguments for 'acl' command",
  });
  assert.deepEqual(await call(s, "ACL", "foo"), {
    err: "ERR unknown subcommand 'foo'. Try ACL HELP.",
  });
  assert.deepEqual(await call(s, "ACL", "SETUSER"), {
    err: "ERR wrong number of arguments for 'acl|setuser' command",
  });
  assert.deepEqual(await call(s, "ACL", "GETUSER"), {
    err: "ERR wrong number of arguments for 'acl|getuser' command",
  });
  const noFile =
    "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";
  assert.deepEqual(await call(s, "ACL", "SAVE"), { err: noFile });
  assert.deepEqual(await call(s, "ACL", "LOAD"), { err: noFile });
  assert.equal(
    await call(s, "ACL", "DRYRUN", "app", "SET", "app:x", "1"),
    "This user has no permissions to run the 'set' command",
  );
  assert.deepEqual(await call(s, "ACL", "DRYRUN", "app", "GET", "app:x"), { ok: "OK" });
});

Deno.test("acl session: without security settings everything is allowed, as before", async () => {
  const host = new Host(defaultTable());
  const s = new Session(host, 1, "127.0.0.1:1", "127.0.0.1:2");
  assert.deepEqual(await call(s, "SET", "k", "v"), { ok: "OK" });
  assert.deepEqual(await call(s, "AUTH", "x"), {
    err:
      "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
  });
  assert.deepEqual(await call(s, "AUTH", "default", "anything"), { ok: "OK" });
  assert.equal(await call(s, "ACL", "WHOAMI"), "default");
});

Deno.test("acl session: failed logins are delayed more and more, then the connection closes", async () => {
  const host = new Host(protectedTable());
  const s = new Session(host, 1, "127.0.0.1:1", "127.0.0.1:2");
  const t0 = Date.now();
  const afters: unknown[] = [];
  const replies: Promise<Reply>[] = [];
  for (let i = 0; i < 10; i++) {
    replies.push(new Promise((resolve) => afters.push(s.run(["AUTH", "bad"], resolve))));
  }
  await Promise.all(replies);
  assert.ok(Date.now() - t0 >= 25 * (2 ** 6 - 1), "the delays add up");
  assert.equal(afters[8], undefined);
  assert.equal(afters[9], "close", "the tenth failure closes the connection");
});

Deno.test("acl client: credentials from LAMPORTKV_PASSWORD, or asked for", async () => {
  assert.deepEqual(await credentials(undefined, undefined), {});
  assert.deepEqual(await credentials(undefined, "pw"), { user: "default", password: "pw" });
  assert.deepEqual(await credentials("app", "pw"), { user: "app", password: "pw" });
  assert.deepEqual(await credentials("app", undefined, () => Promise.resolve("typed")), {
    user: "app",
    password: "typed",
  });
  await assert.rejects(() => credentials("app", undefined, () => Promise.resolve(null)), {
    message: /needs a password: set LAMPORTKV_PASSWORD/,
  });
});
