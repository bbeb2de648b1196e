/**
 * The REST API's pure parts (paths, queries, ttl, prefixes, keys in JSON, Authorization, status
 * mapping, login throttling), its routes over a fake backend (the commands each request runs and
 * how replies become responses), and the OpenAPI document against the routes served.
 */
import assert from "node:assert/strict";
import type { ByteString, Reply } from "../../src/core/types.ts";
import { globMatch } from "../../src/kv/glob.ts";
import {
  errorStatus,
  isRestError,
  keyFromPath,
  keyToJson,
  parseAuthorization,
  parseListQuery,
  parseTtl,
  percentDecode,
  prefixPattern,
  queryParam,
} from "../../src/http/rest_parse.ts";
import { LoginThrottle } from "../../src/http/login_throttle.ts";
import { openApiDocument, restOperations, restRoutes, routePathOf } from "../../src/http/rest.ts";
import type { HttpRoute } from "../../src/http/http_server.ts";

Deno.test("rest: percent-decoding is byte by byte", () => {
  assert.equal(percentDecode("a%2Fb%FF%00"), "a/b\xff\x00");
  assert.equal(percentDecode("%e2%82%ac"), "\xe2\x82\xac"); // UTF-8 of €, as bytes
  assert.equal(percentDecode("a+b"), "a+b");
  assert.equal(percentDecode("a+b", true), "a b");
  assert.equal(percentDecode("%"), null);
  assert.equal(percentDecode("%zz"), null);
  assert.equal(percentDecode("%4"), null);
  assert.equal(percentDecode("\u20ac"), null);
});

Deno.test("rest: the key is the decoded rest of the path; empty or malformed is 400", () => {
  assert.equal(keyFromPath("/v1/kv/user%3A1", "/v1/kv/"), "user:1");
  assert.equal(keyFromPath("/v1/kv/a/b%20c", "/v1/kv/"), "a/b c");
  const empty = keyFromPath("/v1/kv/", "/v1/kv/");
  assert.ok(isRestError(empty) && empty.status === 400);
  const bad = keyFromPath("/v1/kv/%G0", "/v1/kv/");
  assert.ok(isRestError(bad) && bad.status === 400);
});

Deno.test("rest: query parameters, ttl and the listing's query", () => {
  assert.equal(queryParam("?a=1&prefix=x%20y+z", "prefix"), "x y z");
  assert.equal(queryParam("?a=1", "prefix"), undefined);
  assert.equal(queryParam("", "prefix"), undefined);
  assert.equal(queryParam("?prefix", "prefix"), "");
  assert.equal(parseTtl(""), undefined);
  assert.equal(parseTtl("?ttl=60"), "60");
  for (const bad of ["?ttl=", "?ttl=0", "?ttl=-1", "?ttl=1.5", "?ttl=abc", "?ttl=1e3"]) {
    const r = parseTtl(bad);
    assert.ok(isRestError(r) && r.status === 400, bad);
  }
  assert.deepEqual(parseListQuery(""), { prefix: "", limit: 100, cursor: "0" });
  assert.deepEqual(parseListQuery("?prefix=%FFa&limit=5&cursor=0042"), {
    prefix: "\xffa",
    limit: 5,
    cursor: "42",
  });
  for (
    const bad of [
      "?limit=0",
      "?limit=1001",
      "?limit=x",
      "?cursor=-1",
      "?cursor=x",
      "?cursor=4294967297",
    ]
  ) {
    const r = parseListQuery(bad);
    assert.ok(isRestError(r) && r.status === 400, bad);
  }
  assert.deepEqual(parseListQuery("?cursor=4294967296"), {
    prefix: "",
    limit: 100,
    cursor: "4294967296",
  });
});

Deno.test("rest: a prefix's pattern matches exactly the keys that start with it", () => {
  const prefixes = ["", "a", "a*", "[x]", "q?", "back\\slash", "\xff\x00", "*"];
  const keys = ["", "a", "ab", "a*", "a*b", "[x]", "[x]y", "x", "q?", "qq", "back\\slash1", "*z"];
  keys.push("\xff\x00\x01", "\xff");
  for (const p of prefixes) {
    for (const k of keys) {
      assert.equal(globMatch(prefixPattern(p), k), k.startsWith(p), `${p} vs ${k}`);
    }
  }
});

Deno.test("rest: keys in JSON are text when valid UTF-8, else base64", () => {
  assert.equal(keyToJson("user:1"), "user:1");
  assert.equal(keyToJson("\xe2\x82\xac"), "\u20ac");
  assert.deepEqual(keyToJson("\xff\x00a"), { base64: btoa("\xff\x00a") });
  assert.deepEqual(keyToJson("\xe2\x82"), { base64: "4oI=" }); // truncated sequence
});

Deno.test("rest: Authorization: Basic and Bearer", () => {
  assert.equal(parseAuthorization(null), undefined);
  assert.deepEqual(parseAuthorization(`Basic ${btoa("app:pw:with:colons")}`), {
    user: "app",
    password: "pw:with:colons",
  });
  assert.deepEqual(parseAuthorization(`basic ${btoa(":secret")}`), {
    user: "default",
    password: "secret",
  });
  // UTF-8 credentials arrive as their bytes, as AUTH over RESP gets them.
  const utf8 = String.fromCharCode(...new TextEncoder().encode("u:p\u00e9"));
  assert.deepEqual(parseAuthorization(`Basic ${btoa(utf8)}`), { user: "u", password: "p\xc3\xa9" });
  assert.deepEqual(parseAuthorization("Bearer secret"), { user: "default", password: "secret" });
  assert.deepEqual(parseAuthorization("Bearer app:pw"), { user: "app", password: "pw" });
  for (const bad of ["Basic !!!", `Basic ${btoa("nocolon")}`, "Bearer ", "Digest x", "junk"]) {
    const r = parseAuthorization(bad);
    assert.ok(isRestError(r) && r.status === 401, bad);
    assert.match(r.headers!["www-authenticate"], /^Basic realm="lamportkv"/);
  }
});

Deno.test("rest: error replies map to honest statuses", () => {
  const cases: [string, number][] = [
    ["NOAUTH Authentication required.", 401],
    ["WRONGPASS invalid username-password pair or user is disabled.", 401],
    ["NOPERM User app has no permissions to run the 'get' command", 403],
    ["WRONGTYPE Operation against a key holding the wrong kind of value", 409],
    ["NOQUORUM no majority", 503],
    ["REFUSED replica is shutting down", 503],
    ["UNKNOWN timed out in the order", 504],
    ["ERR invalid expire time in 'set' command", 400],
    ["ERR string exceeds maximum allowed size (proto-max-bulk-len)", 413],
    ["MOVED 12182 127.0.0.1:7014", 421],
    ["ASK 12182 127.0.0.1:7014", 421],
    ["TRYAGAIN Multiple keys request during rehashing of slot", 503],
    ["CROSSSLOT Keys in request don't hash to the same slot", 400],
    ["OOM command not allowed when used memory > 'maxmemory'.", 507],
    ["WEIRD something", 500],
  ];
  for (const [text, status] of cases) {
    const e = errorStatus(text);
    assert.equal(e.status, status, text);
    assert.equal(e.code, text.split(" ")[0]);
    assert.ok(e.error.startsWith(text));
  }
  assert.equal(errorStatus("NOQUORUM x").headers?.["retry-after"], "1");
  assert.equal(errorStatus("REFUSED x").headers?.["retry-after"], "1");
  assert.equal(errorStatus("TRYAGAIN x").headers?.["retry-after"], "1");
  assert.match(errorStatus("NOAUTH x").headers!["www-authenticate"], /realm="lamportkv"/);
  // An uncertain outcome is never reported as not applied.
  const unknown = errorStatus("UNKNOWN x");
  assert.match(unknown.error, /may or may not have been applied/);
  assert.doesNotMatch(unknown.error, /not applied/);
  assert.equal(unknown.headers, undefined);
});

Deno.test("rest: after two failed logins a host's attempts are spaced, then refused", () => {
  const t = new LoginThrottle();
  const now = 1000;
  assert.equal(t.admit("h", now), 0);
  t.failed("h", now);
  assert.equal(t.admit("h", now), 0);
  t.failed("h", now);
  // Two failures: attempts in parallel are tried 25 ms apart; each failure doubles the spacing.
  assert.deepEqual([t.admit("h", now), t.admit("h", now), t.admit("h", now)], [0, 25, 50]);
  t.failed("h", now);
  assert.deepEqual([t.admit("h", now), t.admit("h", now)], [75, 125]);
  for (let i = 0; i < 10; i++) t.failed("h", now);
  // At most 1 s apart, and no more than 10 s of attempts wait: the rest are refused untried.
  const waits: (number | null)[] = [];
  for (let i = 0; i < 12; i++) waits.push(t.admit("h", now));
  assert.deepEqual(waits.slice(0, 3), [175, 1175, 2175]);
  assert.equal(waits[9], 9175);
  assert.deepEqual(waits.slice(10), [null, null]);
  assert.equal(t.admit("other", now), 0, "another host is not affected");
  // A minute without failures forgets the host.
  assert.equal(t.admit("h", now + 60_001), 0);
  assert.equal(t.size, 0);
});

/** A backend that answers each command from `answer` and records what ran. */
function fakeBackend(answer: (argv: ByteString[]) => Reply, maxBulkBytes = 1000) {
  const ran: { argv: ByteString[]; login?: { user: string; password: string } }[] = [];
  return {
    ran,
    backend: {
      maxBulkBytes,
      execute(
        argv: ByteString[],
        options: { remote: string; login?: { user: ByteString; password: ByteString } },
      ) {
        ran.push({ argv, login: options.login });
        return Promise.resolve(answer(argv));
      },
    },
  };
}

/** Dispatches `req` to the route of `routes` the way HttpServer does. */
async function call(routes: HttpRoute[], req: Request): Promise<Response> {
  const url = new URL(req.url);
  const route = routes.find((r) =>
    r.prefix ? url.pathname.startsWith(r.path) : url.pathname === r.path
  );
  assert.ok(route, `no route for ${url.pathname}`);
  assert.ok(route.methods.includes(req.method) || req.method === "HEAD", req.method);
  return await route.handle(req, url, { transport: "tcp", hostname: "127.0.0.1", port: 1 });
}

Deno.test("rest: each request runs the command a RESP client would send", async () => {
  const store = new Map<string, string>();
  const { backend, ran } = fakeBackend((argv) => {
    switch (argv[0]) {
      case "SET":
        store.set(argv[1], argv[2]);
        return { ok: "OK" };
      case "GET":
        return argv[1] === "list"
          ? { err: "WRONGTYPE Operation against a key" }
          : store.get(argv[1]) ?? null;
      case "DEL":
        return store.delete(argv[1]) ? 1 : 0;
      case "SCAN":
        return ["0", [...store.keys()]];
    }
    return { err: "ERR unexpected" };
  });
  const routes = restRoutes(backend);
  const base = "http://127.0.0.1";
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  let res = await call(
    routes,
    new Request(`${base}/v1/kv/b%FFin?ttl=30`, { method: "PUT", body: bytes }),
  );
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true });
  assert.deepEqual(ran.at(-1)!.argv, ["SET", "b\xffin", String.fromCharCode(...bytes), "EX", "30"]);
  res = await call(routes, new Request(`${base}/v1/kv/b%FFin`));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/octet-stream");
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), bytes);
  res = await call(routes, new Request(`${base}/v1/kv/b%FFin`, { method: "HEAD" }));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-length"), "256");
  assert.equal(res.body, null);
  res = await call(routes, new Request(`${base}/v1/kv/list`));
  assert.equal(res.status, 409);
  assert.equal((await res.json()).code, "WRONGTYPE");
  res = await call(routes, new Request(`${base}/v1/kv?prefix=a*b&limit=7&cursor=9`));
  assert.equal(res.status, 200);
  assert.deepEqual(ran.at(-1)!.argv, ["SCAN", "9", "MATCH", "a\\*b*", "COUNT", "7"]);
  assert.deepEqual(await res.json(), { keys: [{ base64: btoa("b\xffin") }], cursor: null });
  res = await call(routes, new Request(`${base}/v1/kv/b%FFin`, { method: "DELETE" }));
  assert.deepEqual([res.status, await res.json()], [200, { deleted: 1 }]);
  res = await call(routes, new Request(`${base}/v1/kv/b%FFin`, { method: "DELETE" }));
  assert.deepEqual([res.status, (await res.json()).code], [404, "NOTFOUND"]);
  res = await call(routes, new Request(`${base}/v1/kv/b%FFin`));
  assert.equal(res.status, 404);
  // Credentials travel to the session's AUTH.
  await (await call(
    routes,
    new Request(`${base}/v1/kv/x`, { headers: { authorization: "Bearer app:pw" } }),
  )).body?.cancel();
  assert.deepEqual(ran.at(-1)!.login, { user: "app", password: "pw" });
});

Deno.test("rest: bad input is refused before any command runs", async () => {
  const { backend, ran } = fakeBackend(() => ({ ok: "OK" }), 100);
  const routes = restRoutes(backend);
  const base = "http://127.0.0.1";
  const statusOf = async (req: Request) => {
    const res = await call(routes, req);
    const body = await res.json();
    assert.equal(typeof body.error, "string");
    assert.equal(typeof body.code, "string");
    return res.status;
  };
  assert.equal(await statusOf(new Request(`${base}/v1/kv/`, { method: "PUT", body: "x" })), 400);
  assert.equal(
    await statusOf(new Request(`${base}/v1/kv/k?ttl=x`, { method: "PUT", body: "x" })),
    400,
  );
  assert.equal(await statusOf(new Request(`${base}/v1/kv?limit=0`)), 400);
  assert.equal(
    await statusOf(new Request(`${base}/v1/kv/k`, { method: "PUT", body: "x".repeat(101) })),
    413,
  );
  // Without Content-Length (a stream), the read stops past the limit.
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < 5; i++) c.enqueue(new Uint8Array(40));
      c.close();
    },
  });
  assert.equal(
    await statusOf(new Request(`${base}/v1/kv/k`, { method: "PUT", body: stream })),
    413,
  );
  assert.equal(
    await statusOf(new Request(`${base}/v1/kv/k`, { headers: { authorization: "Basic !" } })),
    401,
  );
  assert.equal(ran.length, 0);
  // Exactly the limit is fine.
  const ok = await call(
    routes,
    new Request(`${base}/v1/kv/k`, { method: "PUT", body: "x".repeat(100) }),
  );
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
});

Deno.test("rest: the OpenAPI document describes exactly the routes served", () => {
  const doc = openApiDocument() as {
    openapi: string;
    paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  };
  assert.equal(doc.openapi, "3.1.0");
  const described = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`)
  ).sort();
  const { backend } = fakeBackend(() => null);
  const served = restRoutes(backend).flatMap((r) => {
    const template = restOperations().find((op) => routePathOf(op.path).path === r.path)!.path;
    return r.methods.map((m) => `${m} ${template}`);
  }).sort();
  assert.deepEqual(described, served);
  for (const op of restOperations()) {
    const responses = doc.paths[op.path][op.method.toLowerCase()].responses;
    assert.ok(op.examples.length > 0, `${op.method} ${op.path} has no example`);
    for (const ex of op.examples) {
      assert.ok(String(ex.status) in responses, `${op.method} ${ex.path} -> ${ex.status}`);
    }
  }
});
