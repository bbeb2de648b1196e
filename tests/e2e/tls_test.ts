/**
 * End to end: TLS on the client port and between replicas, with real processes and throwaway
 * certificates made by `openssl` in a temp dir (`../support/tls_certs.ts`).
 *
 * - Server certificate only: `redis-cli --tls --cacert`, `ioredis` with `tls: { ca }` and the
 *   lamportkv client with `--tls --cacert` work; a plain-TCP client gets nothing useful; SIGHUP
 *   makes new connections get a new certificate.
 * - `tls-auth-clients yes` and `tls-replication yes`: the replicas form a view over TLS peer
 *   links; clients with a certificate of the CA work (redis-cli, ioredis, lamportkv client), a
 *   client without one, or with one of another CA, is refused; a plain-TCP connection to a peer
 *   port is closed before its hello is processed.
 * - Bad files and combinations stop a replica at start with exit status 2 and `file:line`.
 *
 * Skipped with a `SKIPPED:` line when `openssl` is missing and cannot be installed; the
 * redis-cli parts are skipped (with a line) when redis-cli has no TLS support.
 *
 * Sanitizers: off (child processes, ioredis's sockets and timers outlive single ops).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import {
  CLIENT_TS,
  type CommandResult,
  configText,
  freePorts,
  NODE_PERMISSIONS,
  NODE_TS,
  runCommand,
  type TestCluster,
  waitFor,
  withCluster,
} from "../support/cluster.ts";
import { makeTestCerts, opensslSkipReason, type TestCerts } from "../support/tls_certs.ts";
import { withTempDir } from "../support/temp_dir.ts";
import { encodeFrame } from "../../src/net/frame.ts";
import { encodePeerFrame } from "../../src/net/peer_codec.ts";
import { clusterId } from "../../src/config/config.ts";

const OPENSSL_SKIP = await opensslSkipReason();
if (OPENSSL_SKIP !== undefined) console.log(`SKIPPED: e2e tls tests: ${OPENSSL_SKIP}`);

async function redisCliTlsSkip(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("redis-cli", {
      args: ["--tls", "--help"],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return /--cacert/.test(text) ? undefined : "redis-cli has no TLS support";
  } catch {
    return "redis-cli not installed";
  }
}
const REDIS_CLI_SKIP = await redisCliTlsSkip();
if (REDIS_CLI_SKIP !== undefined) {
  console.log(`SKIPPED: e2e tls redis-cli steps: ${REDIS_CLI_SKIP}`);
}

const TEST = { sanitizeOps: false, sanitizeResources: false, sanitizeExit: false };

/** `redis-cli --tls -h 127.0.0.1 -p <port> <tlsArgs> <args>`. */
function redisCli(port: number, tlsArgs: string[], args: string[]): Promise<CommandResult> {
  return runCommand(
    "redis-cli",
    ["--tls", ...tlsArgs, "-h", "127.0.0.1", "-p", String(port), ...args],
    { timeoutMs: 15_000 },
  );
}

/** The lamportkv client entry point with `args`. */
function lamportClient(args: string[]): Promise<CommandResult> {
  return runCommand(Deno.execPath(), [
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-env",
    CLIENT_TS,
    ...args,
  ], { timeoutMs: 30_000 });
}

function describe(r: CommandResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** An ioredis client over TLS; fails fast (no retries). */
async function ioredis(port: number, tls: { ca: string; cert?: string; key?: string }) {
  const client = new Redis({
    host: "127.0.0.1",
    port,
    tls,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => {}); // reported through the commands
  await client.connect();
  return client;
}

function withCerts(body: (certs: TestCerts) => Promise<void>): Promise<void> {
  return withTempDir("lamportkv-tls-", async (dir) => body(await makeTestCerts(dir)));
}

Deno.test({
  name: "e2e tls: client port with a server certificate: redis-cli, ioredis, lamportkv client",
  ignore: OPENSSL_SKIP !== undefined,
  ...TEST,
  fn: () =>
    withCerts(async (certs) => {
      const ca = await Deno.readTextFile(certs.caCert);
      await withCluster({
        replicas: 3,
        settings: ["tls-cert-file server.crt", "tls-key-file server.key"],
        files: [
          { name: "server.crt", from: certs.serverCert },
          { name: "server.key", from: certs.serverKey },
        ],
        clientTls: { caCerts: [ca] },
      }, async (cluster) => {
        const port = cluster.clientPort(1);
        if (REDIS_CLI_SKIP === undefined) {
          const set = await redisCli(port, ["--cacert", certs.caCert], ["SET", "greeting", "hi"]);
          assert.equal(set.stdout.trim(), "OK", describe(set));
          const get = await redisCli(port, ["--cacert", certs.caCert], ["GET", "greeting"]);
          assert.equal(get.stdout.trim(), "hi", describe(get));
          // Without TLS the client gets no RESP reply.
          const plain = await runCommand("redis-cli", ["-p", String(port), "PING"]);
          assert.ok(!plain.stdout.includes("PONG"), describe(plain));
        }

        const io = await ioredis(cluster.clientPort(2), { ca });
        try {
          assert.equal(await io.set("lib", "ioredis"), "OK");
          assert.equal(await io.incr("n"), 1);
          assert.equal(await io.get("lib"), "ioredis");
        } finally {
          io.disconnect();
        }

        const ok = await lamportClient([
          cluster.configPath,
          "--tls",
          "--cacert",
          certs.caCert,
          "get",
          "lib",
        ]);
        assert.equal(ok.code, 0, describe(ok));
        assert.equal(ok.stdout, "ioredis\n");
        const noTls = await lamportClient([cluster.configPath, "-t", "1500", "get", "lib"]);
        assert.equal(noTls.code, 1, describe(noTls));
        const noCa = await lamportClient([cluster.configPath, "-t", "1500", "--tls", "get", "lib"]);
        assert.equal(noCa.code, 1, describe(noCa)); // the test CA is not a system root

        await reloadOnSighup(cluster, certs);
      });
    }),
});

/** SIGHUP: replica 1 serves the certificate now in its files to new connections. */
async function reloadOnSighup(cluster: TestCluster, certs: TestCerts): Promise<void> {
  const subject = async () => {
    const out = await runCommand("openssl", [
      "s_client",
      "-connect",
      `127.0.0.1:${cluster.clientPort(1)}`,
      "-CAfile",
      certs.caCert,
    ], { stdin: "", timeoutMs: 10_000 });
    return /subject=.*CN\s*=\s*([^\n,]+)/.exec(out.stdout)?.[1]?.trim();
  };
  assert.equal(await subject(), "lamportkv test server");
  const fresh = await certs.issue("renewed");
  await Deno.copyFile(fresh.cert, `${cluster.dir}/server.crt`);
  await Deno.copyFile(fresh.key, `${cluster.dir}/server.key`);
  Deno.kill(cluster.pid(1), "SIGHUP");
  await waitFor(
    () =>
      cluster.logs.some((l) => l.id === 1 && /SIGHUP: TLS certificate files reloaded/.test(l.text)),
    { message: "replica 1 to reload its certificate" },
  );
  assert.equal(await subject(), "lamportkv test renewed");
  assert.ok(cluster.running(1));
  // A bad file is logged and the certificate in use kept.
  await Deno.writeTextFile(`${cluster.dir}/server.key`, "not a key\n");
  Deno.kill(cluster.pid(1), "SIGHUP");
  await waitFor(
    () =>
      cluster.logs.some((l) => l.id === 1 && /SIGHUP: keeping the TLS certificates/.test(l.text)),
    { message: "replica 1 to refuse the bad key" },
  );
  assert.equal(await subject(), "lamportkv test renewed");
}

Deno.test({
  name: "e2e tls: tls-auth-clients yes and tls-replication yes",
  ignore: OPENSSL_SKIP !== undefined,
  ...TEST,
  fn: () =>
    withCerts(async (certs) => {
      const [ca, clientCert, clientKey] = await Promise.all(
        [certs.caCert, certs.clientCert, certs.clientKey].map((f) => Deno.readTextFile(f)),
      );
      await withCluster({
        replicas: 3,
        settings: [
          "tls-cert-file tls/server.crt",
          "tls-key-file tls/server.key",
          "tls-ca-cert-file tls/ca.crt",
          "tls-auth-clients yes",
          "tls-replication yes",
        ],
        files: [
          { name: "tls/server.crt", from: certs.serverCert },
          { name: "tls/server.key", from: certs.serverKey },
          { name: "tls/ca.crt", from: certs.caCert },
        ],
        clientTls: { caCerts: [ca], cert: clientCert, key: clientKey },
      }, async (cluster) => {
        // The view formed (startCluster waited for it): the peer links run over TLS.
        assert.ok(
          cluster.logs.some((l) => /connected to peer \d/.test(l.text)),
          "peer links came up",
        );
        const port = cluster.clientPort(1);
        const withCert = [
          "--cacert",
          certs.caCert,
          "--cert",
          certs.clientCert,
          "--key",
          certs.clientKey,
        ];
        if (REDIS_CLI_SKIP === undefined) {
          const set = await redisCli(port, withCert, ["SET", "k", "v"]);
          assert.equal(set.stdout.trim(), "OK", describe(set));
          const none = await redisCli(port, ["--cacert", certs.caCert], ["GET", "k"]);
          assert.ok(!none.stdout.includes("v"), `no certificate: ${describe(none)}`);
          const rogue = await redisCli(port, [
            "--cacert",
            certs.caCert,
            "--cert",
            certs.rogueCert,
            "--key",
            certs.rogueKey,
          ], ["GET", "k"]);
          assert.ok(!rogue.stdout.includes("v"), `another CA's certificate: ${describe(rogue)}`);
        }

        const io = await ioredis(cluster.clientPort(2), { ca, cert: clientCert, key: clientKey });
        try {
          assert.equal(await io.set("lib", "ioredis"), "OK");
          assert.equal(await io.get("lib"), "ioredis");
        } finally {
          io.disconnect();
        }
        // ioredis without a certificate is refused too.
        await assert.rejects(async () => {
          const bare = await ioredis(cluster.clientPort(2), { ca });
          try {
            await bare.get("lib");
          } finally {
            bare.disconnect();
          }
        });

        const base = [cluster.configPath, "-t", "3000", "--tls", "--cacert", certs.caCert];
        const ok = await lamportClient([
          ...base,
          "--cert",
          certs.clientCert,
          "--key",
          certs.clientKey,
          "get",
          "lib",
        ]);
        assert.equal(ok.code, 0, describe(ok));
        assert.equal(ok.stdout, "ioredis\n");
        const refused = await lamportClient([...base, "-t", "1500", "get", "lib"]);
        assert.equal(refused.code, 1, describe(refused));

        await plainHelloIsRefused(cluster);
        await cluster.waitForAgreement({ minDelivered: 2 });
      });
    }),
});

/** A plain-TCP connection to a TLS peer port, sending a valid hello, is closed unheard. */
async function plainHelloIsRefused(cluster: TestCluster): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: cluster.peerPort(1) });
  const localPort = conn.localAddr.port;
  try {
    const hello = encodeFrame(
      encodePeerFrame({ kind: "hello", from: 2, cluster: clusterId(cluster.config) }),
    );
    await conn.write(hello);
    const buf = new Uint8Array(1024);
    const deadline = Date.now() + 10_000;
    for (;;) {
      assert.ok(Date.now() < deadline, "the peer port did not close the plain connection");
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break; // closed (after at most a TLS alert)
    }
  } finally {
    try {
      conn.close();
    } catch {
      // closed
    }
  }
  assert.ok(
    !cluster.logs.some((l) => l.id === 1 && l.text.includes(`127.0.0.1:${localPort}`)),
    "the plain connection was never taken for peer 2",
  );
}

Deno.test({
  name: "e2e tls: bad TLS files and combinations are refused at start (file:line, exit 2)",
  ignore: OPENSSL_SKIP !== undefined,
  ...TEST,
  fn: () =>
    withCerts(async (certs) => {
      const [client, peer] = freePorts(2);
      const start = async (settings: string[]) => {
        const path = `${certs.dir}/cluster.txt`;
        await Deno.writeTextFile(
          path,
          configText([{ id: 1, clientPort: client, peerPort: peer }]) +
            settings.map((s) => `${s}\n`).join(""),
        );
        const r = await runCommand(Deno.execPath(), [
          "run",
          ...NODE_PERMISSIONS,
          NODE_TS,
          "1",
          path,
        ], {
          timeoutMs: 30_000,
        });
        return { r, path };
      };
      const cases: [string[], RegExp][] = [
        [["tls-cert-file server.crt"], /cluster\.txt:3: tls-cert-file: tls-key-file is needed too/],
        [
          ["tls-cert-file server.crt", "tls-key-file client.key"],
          /cluster\.txt:4: tls-key-file: .*client\.key is not the key of the certificate/,
        ],
        [
          ["tls-cert-file missing.crt", "tls-key-file server.key"],
          /cluster\.txt:3: tls-cert-file: cannot read .*missing\.crt: no such file/,
        ],
        [
          ["tls-cert-file server.key", "tls-key-file server.key"],
          /cluster\.txt:3: tls-cert-file: .*no PEM certificate/,
        ],
        [
          ["tls-cert-file server.crt", "tls-key-file server.key", "tls-auth-clients yes"],
          /cluster\.txt:5: tls-auth-clients: tls-auth-clients yes needs tls-ca-cert-file/,
        ],
        [
          [
            "tls-cert-file rogue.crt",
            "tls-key-file rogue.key",
            "tls-ca-cert-file ca.crt",
            "tls-replication yes",
          ],
          /cluster\.txt:3: tls-cert-file: .*rogue\.crt is not signed by the CA/,
        ],
        [["tls-replication maybe"], /cluster\.txt:3: tls-replication: expected yes or no/],
      ];
      for (const [settings, expected] of cases) {
        const { r } = await start(settings);
        assert.equal(r.code, 2, `${settings.join("; ")}: ${describe(r)}`);
        assert.match(r.stderr, expected, `${settings.join("; ")}: ${describe(r)}`);
      }
    }),
});
