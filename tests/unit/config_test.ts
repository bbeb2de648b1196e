/**
 * Tests for the cluster config parser: format, every error message with its file and line, and
 * the shipped config files.
 *
 * @module
 */
import assert from "node:assert/strict";
import { formatNotifyFlags } from "../../src/kv/notify.ts";
import {
  checkResolvedAddresses,
  type ClusterConfig,
  clusterId,
  ConfigError,
  findReplica,
  groupConfig,
  type HostResolver,
  loadConfig,
  parseConfig,
  resolveHost,
} from "../../src/config/config.ts";
import {
  clientAuthOf,
  DEFAULT_SETTINGS,
  parseSize,
  resolveSettings,
  SettingError,
} from "../../src/config/settings.ts";
import { parseNodeArgs, replicaGroup, resolveNodeSettings } from "../../src/cli/node.ts";

const P = "test.txt";

/** Asserts that parsing `text` throws a ConfigError with exactly `message` (or matching it). */
function assertParseError(text: string, message: string | RegExp): void {
  assert.throws(
    () => parseConfig(text, P),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
      if (typeof message === "string") assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
  );
}

Deno.test("config: parses a plain file", () => {
  const cfg = parseConfig("1 127.0.0.1 7001 7101\n2 127.0.0.1 7002 7102\n", P);
  assert.deepEqual(cfg, {
    path: P,
    replicas: [
      { id: 1, host: "127.0.0.1", clientPort: 7001, peerPort: 7101 },
      { id: 2, host: "127.0.0.1", clientPort: 7002, peerPort: 7102 },
    ],
  });
});

Deno.test("config: comments, blank lines, any whitespace, CRLF, no final newline", () => {
  const text = [
    "# header comment",
    "",
    "   ",
    "\t# indented comment",
    "  3\t\tlocalhost   7003 \t 7103   # trailing comment",
    "1 a.example 1 65535#no space before comment",
    "",
    "2 127.0.0.1 7002 7102\r",
    "# last",
  ].join("\n");
  const cfg = parseConfig(text, P);
  assert.deepEqual(cfg.replicas, [
    { id: 1, host: "a.example", clientPort: 1, peerPort: 65535 },
    { id: 2, host: "127.0.0.1", clientPort: 7002, peerPort: 7102 },
    { id: 3, host: "localhost", clientPort: 7003, peerPort: 7103 },
  ]);
});

Deno.test("config: replicas are sorted by id", () => {
  const cfg = parseConfig("10 h 1 2\n2 h 3 4\n7 h 5 6\n1 h 7 8\n", P);
  assert.deepEqual(cfg.replicas.map((r) => r.id), [1, 2, 7, 10]);
});

Deno.test("config: missing fields", () => {
  const text = "# c\n1 h 1 2\n2 h 3\n";
  assertParseError(
    text,
    'test.txt:3: missing field peer_port (expected "<id> <host> <client_port> <peer_port> [<http_port>]")',
  );
  assertParseError(
    "\n\n3   # only an id\n",
    "test.txt:3: missing field host, client_port, peer_port " +
      '(expected "<id> <host> <client_port> <peer_port> [<http_port>]")',
  );
});

Deno.test("config: extra fields", () => {
  assertParseError(
    "1 h 1 2\n\n2 h 3 4 5 six # comment\n",
    'test.txt:3: extra field "six" (expected "<id> <host> <client_port> <peer_port> [<http_port>]")',
  );
});

Deno.test("config: id must be a positive integer", () => {
  for (const bad of ["0", "-1", "1.5", "+3", "1e3", "0x10", "99999999999999999999"]) {
    assertParseError(
      `1 h 1 2\n${bad} h 3 4\n`,
      `test.txt:2: id must be a positive integer, got "${bad}"`,
    );
  }
  // A first word starting with a letter is a setting name.
  assertParseError(
    "1 h 1 2\nx h 3 4\n",
    'test.txt:2: unknown setting "x" (a replica line starts with its id, a positive integer)',
  );
  // Leading zeros are still a positive integer.
  assert.equal(parseConfig("007 h 1 2", P).replicas[0].id, 7);
});

Deno.test("config: ports must be integers in 1..65535", () => {
  for (const bad of ["0", "65536", "-1", "80.0", "http", "1e3", "99999999999999999999"]) {
    assertParseError(
      `1 h ${bad} 7101\n`,
      `test.txt:1: client_port must be an integer in 1..65535, got "${bad}"`,
    );
    assertParseError(
      `# c\n1 h 7001 ${bad}\n`,
      `test.txt:2: peer_port must be an integer in 1..65535, got "${bad}"`,
    );
  }
});

Deno.test("config: duplicate id names the first line", () => {
  assertParseError(
    "# c\n2 h 1 2\n1 h 3 4\n\n2 h 5 6\n",
    "test.txt:5: duplicate id 2 (first defined on line 2)",
  );
});

Deno.test("config: duplicate addresses, client or peer, anywhere", () => {
  assertParseError(
    "1 h 7001 7101\n2 h 7001 7102\n",
    "test.txt:2: duplicate address h:7001 (client_port of replica 2; " +
      "already used as client_port of replica 1 on line 1)",
  );
  assertParseError(
    "1 h 7001 7101\n2 h 7002 7101\n",
    "test.txt:2: duplicate address h:7101 (peer_port of replica 2; " +
      "already used as peer_port of replica 1 on line 1)",
  );
  assertParseError(
    "1 h 7001 7101\n\n2 h 7101 7102\n",
    "test.txt:3: duplicate address h:7101 (client_port of replica 2; " +
      "already used as peer_port of replica 1 on line 1)",
  );
  assertParseError(
    "1 h 7001 7001\n",
    "test.txt:1: duplicate address h:7001 (peer_port of replica 1; " +
      "already used as client_port of replica 1 on line 1)",
  );
  // Host names compare case-insensitively.
  assertParseError(
    "1 Host 7001 7101\n2 host 7001 7102\n",
    "test.txt:2: duplicate address host:7001 (client_port of replica 2; " +
      "already used as client_port of replica 1 on line 1)",
  );
  // The loopback names are one address (localhost and 127.0.0.1 share their ports).
  assertParseError(
    "1 localhost 7001 7101\n2 127.0.0.1 7001 7102\n",
    "test.txt:2: duplicate address 127.0.0.1:7001 (client_port of replica 2; " +
      "already used as client_port of replica 1 on line 1)",
  );
  assertParseError(
    "1 ::1 7001 7101\n2 LOCALHOST 7002 7101\n",
    "test.txt:2: duplicate address LOCALHOST:7101 (peer_port of replica 2; " +
      "already used as peer_port of replica 1 on line 1)",
  );
  // The same port on different hosts is fine.
  const cfg = parseConfig("1 a 7001 7101\n2 b 7001 7101\n", P);
  assert.equal(cfg.replicas.length, 2);
});

Deno.test("config: an empty file or only comments has no replicas", () => {
  for (const text of ["", "\n\n", "# only\n  # comments\n\n"]) {
    assertParseError(text, "test.txt: no replicas defined");
  }
});

Deno.test("config: ConfigError carries the line", () => {
  try {
    parseConfig("1 h 1 2\nx h 3 4\n", P);
    assert.fail("expected an error");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.line, 2);
    assert.equal(err.name, "ConfigError");
  }
  try {
    parseConfig("", P);
    assert.fail("expected an error");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.line, undefined);
  }
});

Deno.test("config: findReplica", () => {
  const cfg = parseConfig("3 h 5 6\n1 h 1 2\n2 h 3 4\n", "c.txt");
  assert.deepEqual(findReplica(cfg, 2), { id: 2, host: "h", clientPort: 3, peerPort: 4 });
  assert.throws(
    () => findReplica(cfg, 9),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, "c.txt: no replica with id 9 (ids in file: 1, 2, 3)");
      return true;
    },
  );
});

Deno.test("config: clusterId is stable, short hex and depends only on the replica list", () => {
  const a = parseConfig("1 h 7001 7101\n2 h 7002 7102\n", "a.txt");
  const b = parseConfig("# other layout\n2  h 7002 7102 # x\n\n1\th\t7001\t7101\n", "b.txt");
  const id = clusterId(a);
  assert.match(id, /^[0-9a-f]{16}$/);
  assert.equal(clusterId(b), id);
  assert.equal(clusterId(a), id, "same result on every call");
  // FNV-1a 64 of "1 h 7001 7101\n2 h 7002 7102\n" (computed independently).
  assert.equal(id, fnv1a64Reference("1 h 7001 7101\n2 h 7002 7102\n"));

  const variants = [
    "1 h 7001 7101\n", // a replica fewer
    "1 h 7001 7101\n3 h 7002 7102\n", // other id
    "1 h 7001 7101\n2 g 7002 7102\n", // other host
    "1 h 7001 7101\n2 h 7003 7102\n", // other client port
    "1 h 7001 7101\n2 h 7002 7103\n", // other peer port
  ];
  const ids = new Set([id, ...variants.map((t) => clusterId(parseConfig(t, P)))]);
  assert.equal(ids.size, variants.length + 1);

  // Replica order in a hand-built config does not matter.
  const shuffled: ClusterConfig = { path: "x", replicas: [...a.replicas].reverse() };
  assert.equal(clusterId(shuffled), id);
});

/** A straightforward FNV-1a 64 over the UTF-8 bytes, as an independent reference. */
function fnv1a64Reference(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    h = BigInt.asUintN(64, (h ^ BigInt(byte)) * 0x100000001b3n);
  }
  return h.toString(16).padStart(16, "0");
}

Deno.test("config: loadConfig reads a file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lamportkv-config-" });
  try {
    const path = `${dir}/c.txt`;
    await Deno.writeTextFile(path, "2 127.0.0.1 7002 7102\n1 127.0.0.1 7001 7101\n");
    const cfg = await loadConfig(path);
    assert.equal(cfg.path, path);
    assert.deepEqual(cfg.replicas.map((r) => r.id), [1, 2]);

    await Deno.writeTextFile(path, "1 127.0.0.1 7001\n");
    await assert.rejects(loadConfig(path), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, new RegExp(`^${escapeRe(path)}:1: missing field peer_port`));
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: loadConfig on an unreadable file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lamportkv-config-" });
  try {
    const missing = `${dir}/missing.txt`;
    await assert.rejects(loadConfig(missing), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, `${missing}: cannot read: no such file`);
      return true;
    });
    await assert.rejects(loadConfig(dir), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.ok(err.message.startsWith(`${dir}: cannot read: `), err.message);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: the shipped config files parse", async () => {
  const root = new URL("../../", import.meta.url);
  const three = await loadConfig(new URL("config/cluster.txt", root).pathname);
  assert.deepEqual(three.replicas, [
    { id: 1, host: "127.0.0.1", clientPort: 7001, peerPort: 7101, httpPort: 8001 },
    { id: 2, host: "127.0.0.1", clientPort: 7002, peerPort: 7102, httpPort: 8002 },
    { id: 3, host: "127.0.0.1", clientPort: 7003, peerPort: 7103, httpPort: 8003 },
  ]);
  const five = await loadConfig(new URL("config/cluster5.txt", root).pathname);
  assert.deepEqual(
    five.replicas,
    [1, 2, 3, 4, 5].map((id) => ({
      id,
      host: "127.0.0.1",
      clientPort: 7000 + id,
      peerPort: 7100 + id,
      httpPort: 8000 + id,
    })),
  );
  assert.notEqual(clusterId(three), clusterId(five));
  const sharded = await loadConfig(new URL("config/cluster-sharded.txt", root).pathname);
  assert.deepEqual(sharded.groups, ["a", "b"]);
  assert.deepEqual(
    sharded.replicas.map((r) => [r.id, r.clientPort, r.peerPort, r.httpPort, r.group]),
    [1, 2, 3, 4, 5, 6].map((id) => [id, 7010 + id, 7110 + id, 8010 + id, id <= 3 ? "a" : "b"]),
  );
  // No port of the sharded file is one of the other shipped files'.
  const ports = (c: ClusterConfig) =>
    c.replicas.flatMap((r) => [r.clientPort, r.peerPort, r.httpPort]);
  const taken = new Set([...ports(three), ...ports(five)]);
  assert.deepEqual(ports(sharded).filter((p) => taken.has(p)), []);
});

Deno.test("config: group=<name> ends a replica line; groups in order of first appearance", () => {
  const cfg = parseConfig(
    [
      "# id host client peer [http] group",
      "4 127.0.0.1 7004 7104 group=b",
      "1 127.0.0.1 7001 7101 8001 group=a_1",
      "2 127.0.0.1 7002 7102 group=b   # trailing comment",
      "maxclients 100",
      "3 127.0.0.1 7003 7103 group=a_1",
    ].join("\n"),
    P,
  );
  assert.deepEqual(cfg.groups, ["b", "a_1"]);
  assert.deepEqual(cfg.replicas, [
    { id: 1, host: "127.0.0.1", clientPort: 7001, peerPort: 7101, httpPort: 8001, group: "a_1" },
    { id: 2, host: "127.0.0.1", clientPort: 7002, peerPort: 7102, group: "b" },
    { id: 3, host: "127.0.0.1", clientPort: 7003, peerPort: 7103, group: "a_1" },
    { id: 4, host: "127.0.0.1", clientPort: 7004, peerPort: 7104, group: "b" },
  ]);
  assert.equal(cfg.settings?.length, 1);
  // A group's config: its lines only, without group, the settings kept, no groups.
  const b = groupConfig(cfg, "b");
  assert.deepEqual(b, {
    path: P,
    replicas: [
      { id: 2, host: "127.0.0.1", clientPort: 7002, peerPort: 7102 },
      { id: 4, host: "127.0.0.1", clientPort: 7004, peerPort: 7104 },
    ],
    settings: cfg.settings,
  });
  // Each group's cluster id is its own lines' fingerprint, as for a file of those lines alone.
  assert.equal(
    clusterId(b),
    clusterId(parseConfig("2 127.0.0.1 7002 7102\n4 127.0.0.1 7004 7104", P)),
  );
  assert.notEqual(clusterId(b), clusterId(groupConfig(cfg, "a_1")));
  assert.throws(() => groupConfig(cfg, "c"), /test\.txt: no group c \(groups in file: b, a_1\)/);
  // A file without groups has none, and is its own (only) group's config.
  const plain = parseConfig("1 h 1 2\n", P);
  assert.equal(plain.groups, undefined);
  assert.equal(groupConfig(plain, "x"), plain);
});

Deno.test("config: group errors name the line", () => {
  assertParseError(
    "1 h 1 2 group=a\n2 h 3 4\n",
    "test.txt:2: line 2 has no group= but line 1 has one: either every replica line ends " +
      "with group=<name> or none does",
  );
  assertParseError(
    "1 h 1 2\n2 h 3 4 group=a\n",
    "test.txt:2: line 1 has no group= but line 2 has one: either every replica line ends " +
      "with group=<name> or none does",
  );
  assertParseError(
    "1 h 1 2 group=\n",
    'test.txt:1: group name must be 1 to 40 letters, digits, "_" or "-", got ""',
  );
  assertParseError(
    "1 h 1 2 group=a.b\n",
    'test.txt:1: group name must be 1 to 40 letters, digits, "_" or "-", got "a.b"',
  );
  assertParseError(
    `1 h 1 2 group=${"x".repeat(41)}\n`,
    /^test\.txt:1: group name must be 1 to 40 letters/,
  );
  parseConfig(`1 h 1 2 group=${"x".repeat(40)}\n`, P);
  assertParseError("1 h 1 group=a 2\n", 'test.txt:1: "group=a" must be the last field of the line');
  assertParseError("1 h 1 group=a\n", /^test\.txt:1: missing field peer_port/);
  assertParseError("1 h 1 2 3 4 group=a\n", /^test\.txt:1: extra field "4"/);
  // Ids and addresses stay unique across groups.
  assertParseError("1 h 1 2 group=a\n1 h 3 4 group=b\n", /^test\.txt:2: duplicate id 1/);
  assertParseError("1 h 1 2 group=a\n2 h 1 4 group=b\n", /^test\.txt:2: duplicate address h:1/);
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// ---- settings ----

Deno.test("config: setting lines beside replica lines", () => {
  const cfg = parseConfig(
    "maxclients 5000\n1 h 1 2 # replica\n  client-output-buffer-limit   normal 32mb 8mb 60 # c\n",
    P,
  );
  assert.deepEqual(cfg.replicas, [{ id: 1, host: "h", clientPort: 1, peerPort: 2 }]);
  assert.deepEqual(cfg.settings, [
    { name: "maxclients", value: "5000", where: "test.txt:1", base: "." },
    {
      name: "client-output-buffer-limit",
      value: "normal 32mb 8mb 60",
      where: "test.txt:3",
      base: ".",
    },
  ]);
  // Settings do not change the cluster fingerprint.
  assert.equal(clusterId(cfg), clusterId(parseConfig("1 h 1 2\n", P)));
  // Without setting lines there is no settings field (the config is as it always was).
  assert.equal(parseConfig("1 h 1 2\n", P).settings, undefined);
});

Deno.test("config: unknown settings, bad values and duplicates name the line", () => {
  assertParseError(
    "1 h 1 2\nmaxclient 5\n",
    'test.txt:2: unknown setting "maxclient" (a replica line starts with its id, a positive integer)',
  );
  assertParseError(
    "maxclients many\n1 h 1 2\n",
    'test.txt:1: maxclients: expected an integer in 1..1000000, got "many"',
  );
  assertParseError(
    "1 h 1 2\nmaxclients\n",
    'test.txt:2: maxclients: expected an integer in 1..1000000, got ""',
  );
  assertParseError(
    "1 h 1 2\nproto-max-bulk-len 512mb\n",
    /^test\.txt:2: proto-max-bulk-len: expected a size of 65536\.\.33554432 bytes/,
  );
  assertParseError(
    "1 h 1 2\nclient-output-buffer-limit replica 1mb 1mb 1\n",
    /^test\.txt:2: client-output-buffer-limit: only the classes "normal" and "pubsub"/,
  );
  assertParseError(
    "timeout 1\n1 h 1 2\ntimeout 2\n",
    "test.txt:3: duplicate setting timeout (first given on line 1)",
  );
});

Deno.test("settings: sizes use Redis's syntax", () => {
  assert.equal(parseSize("100"), 100);
  assert.equal(parseSize("1k"), 1000);
  assert.equal(parseSize("1kb"), 1024);
  assert.equal(parseSize("512MB"), 512 * 1024 * 1024);
  assert.equal(parseSize("2m"), 2_000_000);
  assert.equal(parseSize("1gb"), 1024 ** 3);
  assert.equal(parseSize("1g"), 1e9);
  for (const bad of ["", "1.5mb", "-1", "1 mb", "mb", "1tb", "0x10"]) {
    assert.equal(parseSize(bad), null, bad);
  }
});

Deno.test("settings: defaults, flags win over the file, relations are checked", () => {
  assert.deepEqual(resolveSettings([]), DEFAULT_SETTINGS);
  assert.equal(DEFAULT_SETTINGS.maxclients, 10_000);
  assert.equal(DEFAULT_SETTINGS.timeout, 0);
  const s = resolveSettings([
    { name: "maxclients", value: "10", where: "c.txt:1" },
    { name: "timeout", value: "30", where: "c.txt:2" },
    { name: "maxclients", value: "20", where: "--maxclients" },
    { name: "client-output-buffer-limit", value: "normal 32mb 8mb 60", where: "c.txt:3" },
  ]);
  assert.equal(s.maxclients, 20);
  assert.equal(s.timeout, 30);
  assert.deepEqual(s.clientOutputBufferLimit, {
    hard: 32 * 1024 ** 2,
    soft: 8 * 1024 ** 2,
    softSeconds: 60,
  });
  assert.throws(
    () => resolveSettings([{ name: "timeout", value: "-1", where: "--timeout" }]),
    (err: Error) => err instanceof SettingError && err.message.startsWith("--timeout: timeout:"),
  );
  assert.throws(
    () => resolveSettings([{ name: "client-query-buffer-limit", value: "1mb", where: "c.txt:4" }]),
    (err: Error) =>
      /^c\.txt:4: client-query-buffer-limit: .* at least proto-max-bulk-len/.test(err.message),
  );
  assert.equal(
    resolveSettings([
      { name: "proto-max-bulk-len", value: "512kb", where: "c.txt:1" },
      { name: "client-query-buffer-limit", value: "1mb", where: "c.txt:2" },
    ]).clientQueryBufferLimit,
    1024 ** 2,
  );
  assert.throws(
    () =>
      resolveSettings([{
        name: "client-output-buffer-limit",
        value: "normal 1mb 2mb 5",
        where: "x:1",
      }]),
    /soft limit \(2097152\) is above the hard limit/,
  );
});

Deno.test("settings: maxmemory is a size, 0 (none) by default", () => {
  assert.equal(DEFAULT_SETTINGS.maxmemory, 0);
  assert.equal(
    resolveSettings([{ name: "maxmemory", value: "2gb", where: "c:1" }]).maxmemory,
    2 ** 31,
  );
  assert.equal(
    resolveSettings([{ name: "maxmemory", value: "100m", where: "c:1" }]).maxmemory,
    1e8,
  );
  assert.throws(
    () => resolveSettings([{ name: "maxmemory", value: "lots", where: "c:1" }]),
    (err: Error) =>
      err instanceof SettingError && /^c:1: maxmemory: expected a size/.test(err.message),
  );
});

Deno.test("settings: client-output-buffer-limit per class, notify-keyspace-events", () => {
  assert.deepEqual(DEFAULT_SETTINGS.clientOutputBufferLimitPubsub, {
    hard: 32 * 1024 ** 2,
    soft: 8 * 1024 ** 2,
    softSeconds: 60,
  });
  const s = resolveSettings([
    { name: "client-output-buffer-limit", value: "pubsub 1mb 512kb 5", where: "c.txt:1" },
    { name: "client-output-buffer-limit", value: "normal 4mb 0 0", where: "c.txt:2" },
    { name: "notify-keyspace-events", value: "KEA", where: "c.txt:3" },
  ]);
  assert.deepEqual(s.clientOutputBufferLimitPubsub, {
    hard: 1024 ** 2,
    soft: 512 * 1024,
    softSeconds: 5,
  });
  assert.deepEqual(s.clientOutputBufferLimit, { hard: 4 * 1024 ** 2, soft: 0, softSeconds: 0 });
  assert.equal(formatNotifyFlags(s.notifyKeyspaceEvents), "AKE");
  assert.throws(
    () => resolveSettings([{ name: "notify-keyspace-events", value: "K?", where: "c.txt:9" }]),
    /^SettingError: c\.txt:9: notify-keyspace-events: invalid event class character/,
  );
  assert.throws(
    () =>
      resolveSettings([
        { name: "client-output-buffer-limit", value: "pubsub 1mb 2mb 5", where: "c.txt:4" },
      ]),
    /soft limit \(2097152\) is above the hard limit \(1048576\)/,
  );
});

Deno.test("settings: the node command line takes every setting as a flag", () => {
  const args = parseNodeArgs([
    "1",
    "c.txt",
    "--maxclients",
    "7",
    "--client-output-buffer-limit",
    "normal 0 0 0",
  ]);
  assert.ok(args !== "help");
  assert.deepEqual(args.settings, [
    { name: "maxclients", value: "7", where: "--maxclients" },
    {
      name: "client-output-buffer-limit",
      value: "normal 0 0 0",
      where: "--client-output-buffer-limit",
    },
  ]);
  const file = [{ name: "maxclients", value: "5", where: "c.txt:3" }];
  assert.equal(resolveNodeSettings(file, args.settings).maxclients, 7);
  assert.equal(resolveNodeSettings(file, []).maxclients, 5);
});

Deno.test("settings: TLS files are relative to the config file, combinations are checked", () => {
  const cfg = parseConfig(
    "1 h 1 2\ntls-cert-file certs/server.crt\ntls-key-file /abs/server.key\n" +
      "tls-ca-cert-file ca.crt\n",
    "/etc/lamportkv/cluster.txt",
  );
  const s = resolveSettings(cfg.settings!);
  assert.deepEqual(s.tlsCertFile, {
    path: "/etc/lamportkv/certs/server.crt",
    where: "/etc/lamportkv/cluster.txt:2",
  });
  assert.equal(s.tlsKeyFile?.path, "/abs/server.key");
  assert.equal(s.tlsCaCertFile?.path, "/etc/lamportkv/ca.crt");
  // Redis's default: with a CA, clients must present a certificate; without one they cannot.
  assert.equal(clientAuthOf(s), "yes");
  assert.equal(s.tlsReplication, false);
  // A flag is relative to the working directory, and wins.
  const flagged = resolveSettings([
    ...cfg.settings!,
    { name: "tls-auth-clients", value: "optional", where: "--tls-auth-clients" },
    { name: "tls-cert-file", value: "here.crt", where: "--tls-cert-file" },
  ]);
  assert.equal(flagged.tlsCertFile?.path, "here.crt");
  assert.equal(clientAuthOf(flagged), "optional");
  assert.equal(clientAuthOf(DEFAULT_SETTINGS), "no");

  const line = (name: string, value: string, n: number) => ({ name, value, where: `c.txt:${n}` });
  const refused: [ReturnType<typeof line>[], RegExp][] = [
    [[line("tls-cert-file", "a", 1)], /^c\.txt:1: tls-cert-file: tls-key-file is needed too/],
    [[line("tls-key-file", "a", 1)], /^c\.txt:1: tls-key-file: tls-cert-file is needed too/],
    [[line("tls-ca-cert-file", "a", 3)], /^c\.txt:3: tls-ca-cert-file: TLS needs tls-cert-file/],
    [[line("tls-replication", "yes", 2)], /^c\.txt:2: tls-replication: TLS needs/],
    [
      [
        line("tls-cert-file", "a", 1),
        line("tls-key-file", "b", 2),
        line("tls-auth-clients", "yes", 3),
      ],
      /^c\.txt:3: tls-auth-clients: tls-auth-clients yes needs tls-ca-cert-file/,
    ],
    [
      [
        line("tls-cert-file", "a", 1),
        line("tls-key-file", "b", 2),
        line("tls-replication", "yes", 4),
      ],
      /^c\.txt:4: tls-replication: tls-replication yes needs tls-ca-cert-file/,
    ],
    [[line("tls-auth-clients", "sometimes", 5)], /^c\.txt:5: tls-auth-clients: expected yes, no/],
  ];
  for (const [lines, expected] of refused) {
    assert.throws(() => resolveSettings(lines), (err: Error) => {
      assert.ok(err instanceof SettingError);
      assert.match(err.message, expected);
      return true;
    });
  }
  // Bad values are caught while parsing the file already, with the line.
  assertParseError(
    "1 h 1 2\ntls-replication 1\n",
    'test.txt:2: tls-replication: expected yes or no, got "1"',
  );
});

Deno.test("config: an optional fifth field is the HTTP port, checked like the others", () => {
  const cfg = parseConfig("1 h 1 2 3\n2 h 4 5\n", P);
  assert.equal(cfg.replicas[0].httpPort, 3);
  assert.equal(cfg.replicas[1].httpPort, undefined);
  assertParseError("1 h 1 2 0\n", 'test.txt:1: http_port must be an integer in 1..65535, got "0"');
  assertParseError(
    "1 h 1 2 3\n2 h 4 5 2\n",
    "test.txt:2: duplicate address h:2 (http_port of replica 2; already used as peer_port of " +
      "replica 1 on line 1)",
  );
  // Monitoring ports do not change the cluster's identity (data directories stay valid).
  assert.equal(clusterId(cfg), clusterId(parseConfig("1 h 1 2\n2 h 4 5\n", P)));
});

/** A resolver from a table; names not in it do not resolve. */
function table(entries: Record<string, string[]>): HostResolver {
  return (host) => Promise.resolve(entries[host] ?? []);
}

/** The ConfigError message `checkResolvedAddresses` raises for `text`, or null. */
async function resolvedError(text: string, resolve: HostResolver): Promise<string | null> {
  try {
    await checkResolvedAddresses(parseConfig(text, P), resolve);
    return null;
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
}

Deno.test("config: names resolving to one address are a duplicate address", async () => {
  const hosts = table({
    "db1.example": ["10.0.0.5"],
    "db1-alias.example": ["10.0.0.5"],
    "both.example": ["10.0.0.9", "fd00::9"],
    "me": ["127.0.0.1"],
  });
  assert.equal(
    await resolvedError("1 db1.example 7001 7101\n\n2 db1-alias.example 7001 7102\n", hosts),
    "test.txt:3: duplicate address db1-alias.example:7001 (client_port of replica 2; already " +
      "used as client_port of replica 1 on line 1: db1.example and db1-alias.example both " +
      "resolve to 10.0.0.5)",
  );
  // A name and the address it resolves to; the peer port this time.
  assert.match(
    (await resolvedError("1 10.0.0.5 7001 7101\n2 db1.example 7002 7101\n", hosts))!,
    /^test\.txt:2: duplicate address db1\.example:7101 \(peer_port of replica 2; .* resolve to 10\.0\.0\.5\)$/,
  );
  // Any common address counts; IPv6 literals in brackets are compared as addresses.
  assert.match(
    (await resolvedError("1 both.example 7001 7101\n2 [fd00::9] 7001 7102\n", hosts))!,
    /^test\.txt:2: duplicate address \[fd00::9\]:7001 .* resolve to fd00::9\)$/,
  );
  // A name for a loopback address and localhost.
  assert.match(
    (await resolvedError("1 localhost 7001 7101\n2 me 7001 7102\n", hosts))!,
    /^test\.txt:2: duplicate address me:7001 .* resolve to a loopback address\)$/,
  );
  // Different addresses, or the same address on other ports: fine.
  assert.equal(await resolvedError("1 db1.example 7001 7101\n2 me 7001 7101\n", hosts), null);
  assert.equal(await resolvedError("1 db1.example 7001 7101\n2 10.0.0.5 7002 7102\n", hosts), null);
});

Deno.test("config: names that do not resolve are compared as written", async () => {
  const nothing = table({});
  assert.equal(
    await resolvedError("1 a.invalid 7001 7101\n2 b.invalid 7001 7101\n", nothing),
    null,
  );
  const failing: HostResolver = () => Promise.reject(new Error("no DNS"));
  assert.equal(
    await resolvedError("1 a.invalid 7001 7101\n2 b.invalid 7001 7101\n", failing),
    null,
  );
  // Still one name written twice is caught (by parseConfig already).
  assert.throws(
    () => parseConfig("1 a.invalid 7001 7101\n2 A.invalid 7001 7102\n", P),
    ConfigError,
  );
  // IP literals are never looked up.
  const asked: string[] = [];
  const spy: HostResolver = (host) => {
    asked.push(host);
    return Promise.resolve([]);
  };
  await checkResolvedAddresses(
    parseConfig(
      "1 127.0.0.1 7001 7101\n2 [::1] 7002 7102\n3 10.1.2.3 7003 7103\n4 h 7004 7104\n",
      P,
    ),
    spy,
  );
  assert.deepEqual(asked, ["h"]);
});

Deno.test("config: loadConfig resolves names (this machine's name and its address)", async () => {
  const name = Deno.hostname();
  const addresses = await resolveHost(name);
  if (addresses.length === 0) {
    console.log(`SKIPPED: loadConfig resolves names: ${name} does not resolve here`);
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "lamportkv-config-" });
  try {
    const path = `${dir}/c.txt`;
    const address = addresses[0].includes(":") ? `[${addresses[0]}]` : addresses[0];
    await Deno.writeTextFile(path, `1 ${address} 7001 7101\n2 ${name} 7001 7102\n`);
    await assert.rejects(loadConfig(path), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.line, 2);
      assert.match(err.message, new RegExp(`^${escapeRe(path)}:2: duplicate address `));
      return true;
    });
    await Deno.writeTextFile(path, `1 ${address} 7001 7101\n2 ${name} 7002 7102\n`);
    assert.equal((await loadConfig(path)).replicas.length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: a replica of a file with groups runs as its group's replica set", () => {
  const file = parseConfig("1 h 1 2 group=a\n2 h 3 4 group=b\n3 h 5 6 group=a\n", P);
  const { config, sharding } = replicaGroup(file, 3);
  assert.deepEqual(config.replicas.map((r) => r.id), [1, 3]);
  assert.deepEqual(sharding, { config: file, group: "a" });
  assert.throws(
    () => replicaGroup(file, 9),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.message === "test.txt: no replica with id 9 (ids in file: 1, 2, 3); in a file with " +
          "groups every replica, a joining one too, needs its line with group=<name>",
  );
  // Without groups: the file as it is, not sharded.
  const plain = parseConfig("1 h 1 2\n", P);
  assert.deepEqual(replicaGroup(plain, 7), { config: plain });
});
