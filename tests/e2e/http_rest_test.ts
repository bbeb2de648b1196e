/**
 * End to end: the REST API of real replica processes (3 replicas with HTTP ports, `requirepass`
 * and an aclfile user with read rights only). Binary values (all 256 byte values) written over
 * REST are read over RESP on another replica and the other way round; ttl, HEAD, DELETE; listing
 * by prefix over many pages served by different replicas; 400, 404, 409, 413; 401/403 and Basic
 * and Bearer logins; the OpenAPI document's example requests; and 503 with `Retry-After` on a
 * replica that lost its majority.
 *
 * Sanitizers are off: the replica child processes outlive single async ops by design.
 *
 * @module
 */
import assert from "node:assert/strict";
import { RespTestClient, type TestCluster, waitFor, withCluster } from "../support/cluster.ts";
import type { RespValue } from "../../src/net/resp.ts";

const PASSWORD = "secret";
const ADMIN = { authorization: `Basic ${btoa(`default:${PASSWORD}`)}` };
/** proto-max-bulk-len of this cluster (the smallest allowed, so 413 is cheap to provoke). */
const MAX_BULK = 64 * 1024;

/** All 256 byte values, as bytes and as the byte string RESP carries. */
const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);
const ALL_BYTES_STRING = String.fromCharCode(...ALL_BYTES);

/** Percent-encodes every byte of a byte string (any key can be addressed this way). */
function encodeKey(key: string): string {
  let out = "";
  for (let i = 0; i < key.length; i++) {
    out += "%" + key.charCodeAt(i).toString(16).padStart(2, "0");
  }
  return out;
}

interface Answer {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
  /** The body as JSON when it is JSON. */
  json: { error?: string; code?: string; [k: string]: unknown } | undefined;
}

/** The body as JSON when its type says so (HEAD answers carry the type but no body). */
function jsonOf(headers: Headers, bytes: Uint8Array): Answer["json"] {
  const isJson = (headers.get("content-type") ?? "").startsWith("application/json");
  return isJson && bytes.length > 0 ? JSON.parse(new TextDecoder().decode(bytes)) : undefined;
}

async function http(
  url: string,
  init: RequestInit & { headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await fetch(url, { ...init, headers: { ...ADMIN, ...init.headers } });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, bytes, json: jsonOf(res.headers, bytes) };
}

/** A request without the default credentials. */
async function anonymous(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init);
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, bytes, json: jsonOf(res.headers, bytes) };
}

/** Commands on one RESP connection to replica `id`, logged in as the default user. */
async function respAll(cluster: TestCluster, id: number, cmds: string[][]): Promise<RespValue[]> {
  const client = await RespTestClient.connect(cluster.clientPort(id));
  try {
    assert.equal(await client.call(["AUTH", PASSWORD]), "OK");
    const out: RespValue[] = [];
    for (const argv of cmds) out.push(await client.call(argv));
    return out;
  } finally {
    await client.close();
  }
}

/** One RESP command on replica `id`, logged in as the default user. */
async function resp(cluster: TestCluster, id: number, argv: string[]): Promise<RespValue> {
  return (await respAll(cluster, id, [argv]))[0];
}

/** INFO's `acl_access_denied_auth` on replica `id`. */
async function deniedAuth(cluster: TestCluster, id: number): Promise<number> {
  const info = await resp(cluster, id, ["INFO", "stats"]);
  assert.equal(typeof info, "string");
  const m = /acl_access_denied_auth:(\d+)/.exec(info as string);
  assert.ok(m, "INFO stats has acl_access_denied_auth");
  return Number(m[1]);
}

Deno.test({
  name: "e2e rest: binary round trips, ttl, HEAD, DELETE, listing, errors, auth, OpenAPI, 503",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await withCluster({
      replicas: 3,
      http: true,
      settings: [`requirepass ${PASSWORD}`, "aclfile users.acl", "proto-max-bulk-len 64kb"],
      files: [{ name: "users.acl", text: "user reader on >readpw ~app:* +@read\n" }],
      auth: ["default", PASSWORD],
    }, async (cluster) => {
      const url = (id: number, path: string) => `${cluster.httpUrl(id)}${path}`;

      await t.step("binary values: REST -> RESP and RESP -> REST, binary keys too", async () => {
        const key = "bin\x00\xff/\xe9 key";
        const put = await http(url(1, `/v1/kv/${encodeKey(key)}`), {
          method: "PUT",
          body: ALL_BYTES,
        });
        assert.equal(put.status, 200, JSON.stringify(put.json));
        assert.deepEqual(put.json, { ok: true });
        assert.equal(await resp(cluster, 2, ["GET", key]), ALL_BYTES_STRING);
        const reversed = String.fromCharCode(...[...ALL_BYTES].reverse());
        assert.equal(await resp(cluster, 3, ["SET", "from-resp\xfe", reversed]), "OK");
        const get = await http(url(1, `/v1/kv/${encodeKey("from-resp\xfe")}`));
        assert.equal(get.status, 200);
        assert.equal(get.headers.get("content-type"), "application/octet-stream");
        assert.deepEqual(get.bytes, Uint8Array.from([...ALL_BYTES].reverse()));
        // A UTF-8 key written with encodeURIComponent is the key's UTF-8 bytes over RESP.
        const text = await http(url(2, `/v1/kv/${encodeURIComponent("caf\u00e9/\u20ac")}`), {
          method: "PUT",
          body: "v",
        });
        assert.equal(text.status, 200);
        assert.equal(await resp(cluster, 3, ["GET", "caf\xc3\xa9/\xe2\x82\xac"]), "v");
        // The empty value.
        assert.equal((await http(url(3, "/v1/kv/empty"), { method: "PUT", body: "" })).status, 200);
        const empty = await http(url(1, "/v1/kv/empty"));
        assert.deepEqual([empty.status, empty.bytes.length], [200, 0]);
      });

      await t.step("ttl sets an expiry; the key disappears", async () => {
        const put = await http(url(1, "/v1/kv/ttl-long?ttl=100"), { method: "PUT", body: "x" });
        assert.equal(put.status, 200);
        const ttl = await resp(cluster, 2, ["TTL", "ttl-long"]);
        assert.ok(typeof ttl === "number" && ttl > 0 && ttl <= 100, `TTL ${ttl}`);
        assert.equal(await resp(cluster, 2, ["TTL", "empty"]), -1, "no ttl: no expiry");
        const short = await http(url(2, "/v1/kv/ttl-short?ttl=1"), { method: "PUT", body: "x" });
        assert.equal(short.status, 200);
        await waitFor(async () => (await http(url(3, "/v1/kv/ttl-short"))).status === 404, {
          timeoutMs: 10_000,
          message: "ttl-short to expire",
        });
        for (const bad of ["abc", "0", "-5", "1.5"]) {
          const r = await http(url(1, `/v1/kv/ttl-bad?ttl=${bad}`), { method: "PUT", body: "x" });
          assert.equal(r.status, 400, bad);
          assert.equal(r.json?.code, "BADREQUEST");
        }
        assert.equal(
          await resp(cluster, 1, ["EXISTS", "ttl-bad"]),
          0,
          "a refused PUT stores nothing",
        );
      });

      await t.step("HEAD and DELETE", async () => {
        const head = await http(url(2, "/v1/kv/from-resp%FE"), { method: "HEAD" });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get("content-length"), "256");
        assert.equal(head.bytes.length, 0);
        assert.equal((await http(url(2, "/v1/kv/absent"), { method: "HEAD" })).status, 404);
        const del = await http(url(3, "/v1/kv/from-resp%FE"), { method: "DELETE" });
        assert.deepEqual([del.status, del.json], [200, { deleted: 1 }]);
        assert.equal(await resp(cluster, 1, ["EXISTS", "from-resp\xfe"]), 0);
        const again = await http(url(1, "/v1/kv/from-resp%FE"), { method: "DELETE" });
        assert.deepEqual([again.status, again.json?.code], [404, "NOTFOUND"]);
        const gone = await http(url(2, "/v1/kv/from-resp%FE"));
        assert.deepEqual([gone.status, gone.json?.code], [404, "NOTFOUND"]);
        assert.equal(typeof gone.json?.error, "string");
      });

      await t.step("listing by prefix: every page, from different replicas", async () => {
        const expected = new Set<string>();
        for (let i = 0; i < 230; i++) expected.add(`list:${i}`);
        expected.add("list:\xff\xfe"); // not UTF-8: listed as base64
        expected.add("list:*[?]");
        const mset = ["MSET"];
        for (const k of expected) mset.push(k, "v");
        for (let i = 0; i < 40; i++) mset.push(`other:${i}`, "v");
        mset.push("lisx", "v", "list", "v"); // near misses
        assert.equal(await resp(cluster, 1, mset), "OK");
        const seen = new Set<string>();
        let cursor: string | null = "0";
        let pages = 0;
        while (cursor !== null) {
          assert.ok(pages < 500, "the listing ends");
          const id = (pages % 3) + 1;
          const page = await http(url(id, `/v1/kv?prefix=list%3A&limit=20&cursor=${cursor}`));
          assert.equal(page.status, 200, JSON.stringify(page.json));
          const body = page.json as {
            keys: (string | { base64: string })[];
            cursor: string | null;
          };
          for (const k of body.keys) {
            const key = typeof k === "string"
              ? String.fromCharCode(...new TextEncoder().encode(k))
              : atob(k.base64);
            seen.add(key);
          }
          cursor = body.cursor;
          pages++;
        }
        assert.ok(pages > 5, `${pages} pages`);
        assert.deepEqual([...seen].sort(), [...expected].sort());
        // One big page without a prefix has the other keys too.
        const all = await http(url(2, "/v1/kv?limit=1000"));
        const keys = (all.json as { keys: unknown[] }).keys;
        assert.ok(keys.includes("other:7") && keys.includes("list:7"));
        for (const bad of ["limit=0", "limit=5000", "limit=x", "cursor=x", "cursor=-1"]) {
          const r = await http(url(1, `/v1/kv?${bad}`));
          assert.deepEqual([r.status, r.json?.code], [400, "BADREQUEST"], bad);
        }
      });

      await t.step("400, 409 and 413", async () => {
        const empty = await http(url(1, "/v1/kv/"));
        assert.deepEqual([empty.status, empty.json?.code], [400, "BADREQUEST"]);
        const escape = await http(url(1, "/v1/kv/a%zz"), { method: "PUT", body: "x" });
        assert.equal(escape.status, 400);
        assert.equal(await resp(cluster, 1, ["RPUSH", "alist", "a"]), 1);
        const wrong = await http(url(2, "/v1/kv/alist"));
        assert.equal(wrong.status, 409);
        assert.equal(wrong.json?.code, "WRONGTYPE");
        assert.equal(
          wrong.json?.error,
          "WRONGTYPE Operation against a key holding the wrong kind of value",
        );
        const big = await http(url(1, "/v1/kv/big"), {
          method: "PUT",
          body: new Uint8Array(MAX_BULK + 1),
        });
        assert.deepEqual([big.status, big.json?.code], [413, "TOOLARGE"]);
        assert.equal(await resp(cluster, 1, ["EXISTS", "big"]), 0);
        // Without Content-Length (chunked), the read is bounded too.
        const chunks = new ReadableStream<Uint8Array>({
          start(c) {
            for (let i = 0; i < 3; i++) c.enqueue(new Uint8Array(MAX_BULK / 2));
            c.close();
          },
        });
        const streamed = await http(url(1, "/v1/kv/big"), { method: "PUT", body: chunks });
        assert.equal(streamed.status, 413);
        const fits = await http(url(1, "/v1/kv/big"), {
          method: "PUT",
          body: new Uint8Array(MAX_BULK).fill(7),
        });
        assert.equal(fits.status, 200);
        assert.equal(await resp(cluster, 3, ["STRLEN", "big"]), MAX_BULK);
      });

      await t.step("auth: 401 without, Basic and Bearer, 403 without rights", async () => {
        const before = await deniedAuth(cluster, 1);
        const none = await anonymous(url(1, "/v1/kv/empty"));
        assert.equal(none.status, 401);
        assert.equal(none.json?.code, "NOAUTH");
        assert.match(none.headers.get("www-authenticate") ?? "", /^Basic realm="lamportkv"/);
        const wrong = await anonymous(url(1, "/v1/kv/empty"), {
          headers: { authorization: `Basic ${btoa("default:nope")}` },
        });
        assert.deepEqual([wrong.status, wrong.json?.code], [401, "WRONGPASS"]);
        assert.ok(!JSON.stringify(wrong.json).includes("nope"), "the password is not echoed");
        assert.equal(await deniedAuth(cluster, 1), before + 1, "counted like a RESP login");
        const basic = await anonymous(url(1, "/v1/kv/empty"), { headers: ADMIN });
        assert.equal(basic.status, 200);
        const bearer = await anonymous(url(2, "/v1/kv/empty"), {
          headers: { authorization: `Bearer ${PASSWORD}` },
        });
        assert.equal(bearer.status, 200);
        // The read-only user: may read app:*, nothing else, and may not write.
        assert.equal(await resp(cluster, 1, ["SET", "app:x", "hello"]), "OK");
        const reader = { authorization: "Bearer reader:readpw" };
        const read = await anonymous(url(3, "/v1/kv/app:x"), { headers: reader });
        assert.deepEqual([read.status, new TextDecoder().decode(read.bytes)], [200, "hello"]);
        const write = await anonymous(url(3, "/v1/kv/app:x"), {
          method: "PUT",
          body: "changed",
          headers: reader,
        });
        assert.deepEqual([write.status, write.json?.code], [403, "NOPERM"]);
        const other = await anonymous(url(3, "/v1/kv/empty"), { headers: reader });
        assert.deepEqual([other.status, other.json?.code], [403, "NOPERM"]);
        assert.equal(
          await resp(cluster, 2, ["GET", "app:x"]),
          "hello",
          "the refused PUT did nothing",
        );
        // Monitoring and the API description stay open.
        for (const path of ["/livez", "/readyz", "/status", "/openapi.json"]) {
          assert.equal((await anonymous(url(2, path))).status, 200, path);
        }
      });

      await t.step(
        "OpenAPI: every described operation's examples behave as described",
        async () => {
          const doc = (await http(url(1, "/openapi.json"))).json as {
            openapi: string;
            paths: Record<
              string,
              Record<string, {
                responses: Record<string, unknown>;
                "x-examples": { path: string; body?: string; status: number }[];
              }>
            >;
          };
          assert.equal(doc.openapi, "3.1.0");
          assert.deepEqual(Object.keys(doc.paths).sort(), [
            "/openapi.json",
            "/v1/kv",
            "/v1/kv/{key}",
          ]);
          let replayed = 0;
          for (const [, methods] of Object.entries(doc.paths)) {
            for (const [method, op] of Object.entries(methods)) {
              for (const ex of op["x-examples"]) {
                const r = await http(url(2, ex.path), {
                  method: method.toUpperCase(),
                  body: ex.body,
                });
                assert.equal(r.status, ex.status, `${method} ${ex.path}`);
                assert.ok(
                  String(r.status) in op.responses,
                  `${method} ${ex.path} documents ${r.status}`,
                );
                replayed++;
              }
            }
          }
          assert.ok(replayed >= 10, `${replayed} examples`);
          // A method not described is not served.
          assert.equal((await http(url(1, "/v1/kv/x"), { method: "POST", body: "x" })).status, 405);
        },
      );

      await t.step("503 with Retry-After on a replica without a majority", async () => {
        await cluster.kill(2, "SIGKILL");
        await cluster.kill(3, "SIGKILL");
        let last: Answer | undefined;
        await waitFor(async () => {
          last = await http(url(1, "/v1/kv/lonely"), { method: "PUT", body: "x" });
          return last.status === 503;
        }, { timeoutMs: 30_000, message: "a PUT on the lone replica to answer 503" });
        assert.equal(last!.headers.get("retry-after"), "1");
        assert.equal(last!.json?.code, "NOQUORUM");
        assert.match(last!.json?.error ?? "", /not applied/);
        const read = await http(url(1, "/v1/kv/empty"));
        assert.deepEqual([read.status, read.json?.code], [503, "NOQUORUM"]);
      });
    });
  },
});
