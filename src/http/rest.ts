/**
 * The REST API on a replica's HTTP port: `GET|PUT|DELETE|HEAD /v1/kv/<key>` (raw bytes in and
 * out), `GET /v1/kv?prefix=&limit=&cursor=` (keys as JSON) and `GET /openapi.json`.
 *
 * Every request runs as the commands a RESP client would send (GET, SET [EX], DEL, SCAN), through
 * the client server's sessions ({@link RestBackend.execute}), so users and rights, limits,
 * linearizable outcomes and errors are those of the client port. Errors are JSON
 * `{"error": "...", "code": "..."}` with the status {@link errorStatus} maps them to.
 *
 * The operations below are the one source of both the routes served and the OpenAPI document
 * ({@link openApiDocument}); each carries example requests and the statuses they get, which the
 * e2e test replays against real replicas.
 *
 * @module
 */
import type { ByteString, Reply } from "../core/types.ts";
import { bytesToByteString, byteStringToBytes } from "../kv/bytes.ts";
import { type BodyRefusal, HttpLimits } from "./request_limits.ts";
import { LAMPORTKV_VERSION } from "../version.ts";
import { type HttpRoute, jsonResponse } from "./http_server.ts";
import { LoginThrottle, MAX_QUEUE_MS } from "./login_throttle.ts";
import {
  AUTH_REALM,
  type Credentials,
  DEFAULT_LIST_LIMIT,
  errorStatus,
  isRestError,
  keyFromPath,
  keyToJson,
  MAX_LIST_LIMIT,
  parseAuthorization,
  parseListQuery,
  parseTtl,
  prefixPattern,
  type RestError,
} from "./rest_parse.ts";

/** What the REST API runs its commands on (the client server). */
export interface RestBackend {
  /** Runs `argv` in a transient session, logged in with `login` first when given. */
  execute(
    argv: ByteString[],
    options: { remote: string; login?: { user: ByteString; password: ByteString } },
  ): Promise<Reply>;
  /** `proto-max-bulk-len`: the largest key or value. */
  readonly maxBulkBytes: number;
}

/** The key routes' path prefix. */
const KEY_BASE = "/v1/kv/";

/** One request as an operation sees it. */
interface RestContext {
  req: Request;
  url: URL;
  remote: Deno.NetAddr;
  /** Runs one command as this request's client (auth included). */
  run(argv: ByteString[]): Promise<Reply>;
  backend: RestBackend;
  /** The HTTP port's bounds (request bodies are read through them). */
  limits: HttpLimits;
}

/** An operation of the API: its OpenAPI description, an example, and its handler. */
interface RestOperation {
  method: "GET" | "PUT" | "DELETE" | "HEAD";
  /** OpenAPI path template; a `{key}` at the end takes the rest of the path. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
  /** Open to everyone (no `security`). */
  open?: boolean;
  /**
   * Example requests, replayed in document order by the e2e test (logged in as the default
   * user): `path` (with query), optional body, and the status it must get.
   */
  examples: { path: string; body?: string; status: number }[];
  handle(ctx: RestContext): Promise<Response> | Response;
}

/** A JSON error response. */
export function errorResponse(e: RestError): Response {
  return jsonResponse({ error: e.error, code: e.code }, e.status, e.headers ?? {});
}

/** True when `r` is an error reply. */
function isErr(r: Reply): r is { err: string } {
  return r !== null && typeof r === "object" && !Array.isArray(r) && "err" in r;
}

const notFound = (): Response =>
  errorResponse({ status: 404, code: "NOTFOUND", error: "no such key" });

const unexpected = (r: Reply): Response =>
  errorResponse({ status: 500, code: "ERR", error: `unexpected reply ${JSON.stringify(r)}` });

/** The response to a request body that was not read. */
function bodyRefused(r: BodyRefusal): Response {
  const code = { 400: "BADREQUEST", 408: "TIMEOUT", 413: "TOOLARGE", 503: "BUSY" }[r.status];
  return errorResponse({
    status: r.status,
    code,
    error: r.reason,
    headers: r.status === 503 ? { "retry-after": "1" } : undefined,
  });
}

/** The key of a `/v1/kv/<key>` request, or the error response. */
function keyOf(ctx: RestContext): ByteString | Response {
  const key = keyFromPath(ctx.url.pathname, KEY_BASE);
  if (isRestError(key)) return errorResponse(key);
  if (key.length > ctx.backend.maxBulkBytes) {
    return errorResponse({
      status: 413,
      code: "TOOLARGE",
      error: `the key is larger than proto-max-bulk-len (${ctx.backend.maxBulkBytes} bytes)`,
    });
  }
  return key;
}

/** Runs GET for `key`: the value, or the response to answer instead. */
async function getValue(ctx: RestContext, key: ByteString): Promise<ByteString | Response> {
  const r = await ctx.run(["GET", key]);
  if (isErr(r)) return errorResponse(errorStatus(r.err));
  if (r === null) return notFound();
  if (typeof r !== "string") return unexpected(r);
  return r;
}

const keyParam = {
  name: "key",
  in: "path",
  required: true,
  description: "The key: the rest of the path, percent-decoded byte by byte (`%FF` is byte 0xFF; " +
    "`/` may appear). Keys `.` and `..` cannot be addressed (URLs normalise them).",
  schema: { type: "string", minLength: 1 },
};

const errorBody = {
  "application/json": {
    schema: {
      type: "object",
      required: ["error", "code"],
      properties: {
        error: { type: "string", description: "What went wrong (Redis's error text for commands)" },
        code: {
          type: "string",
          description: "Redis's error code (NOQUORUM, UNKNOWN, REFUSED, WRONGTYPE, NOPERM, " +
            "NOAUTH, WRONGPASS, MOVED, ASK, TRYAGAIN, CROSSSLOT, ERR) or the API's own (BADREQUEST, NOTFOUND, " +
            "TOOLARGE, TOOMANY)",
        },
      },
    },
  },
};

/** Describes an error status. */
function errorResp(description: string, headers?: Record<string, unknown>): unknown {
  return { description, content: errorBody, ...(headers ? { headers } : {}) };
}

const retryAfter = { "Retry-After": { schema: { type: "integer" }, description: "Always 1" } };
const wwwAuthenticate = {
  "WWW-Authenticate": { schema: { type: "string" }, description: `Basic realm="${AUTH_REALM}"` },
};

/** The error statuses every command route may answer. */
const commonErrors: Record<string, unknown> = {
  "400": errorResp("Bad input: empty key, bad escape, bad ttl/limit/cursor, or an ERR reply"),
  "401": errorResp("Credentials needed (NOAUTH) or wrong (WRONGPASS)", wwwAuthenticate),
  "429": errorResp("Too many failed logins from this host (TOOMANY); not tried", {
    "Retry-After": { schema: { type: "integer" } },
  }),
  "403": errorResp("The user lacks the right to the command or key (NOPERM)"),
  "421": errorResp(
    "A sharded cluster: the key's hash slot is another group's (MOVED) or moving to another " +
      "group (ASK); the error names its master's address",
  ),
  "503": errorResp(
    "Not applied: the replica has no quorum (NOQUORUM), refused the request (REFUSED) or " +
      "the key is being moved between groups (TRYAGAIN); retry",
    retryAfter,
  ),
  "504": errorResp(
    "Outcome unknown (UNKNOWN): the write may or may not have been applied; PUT and DELETE may " +
      "be retried",
  ),
};

const OPERATIONS: RestOperation[] = [
  {
    method: "PUT",
    path: "/v1/kv/{key}",
    operationId: "putKey",
    summary: "Set a key to the request body (SET key value [EX ttl])",
    parameters: [keyParam, {
      name: "ttl",
      in: "query",
      required: false,
      description: "Expire the key after this many seconds (SET ... EX ttl)",
      schema: { type: "integer", minimum: 1 },
    }],
    requestBody: {
      required: true,
      description: "The value: any bytes, at most proto-max-bulk-len",
      content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
    },
    responses: {
      "200": {
        description: "Stored",
        content: { "application/json": { example: { ok: true } } },
      },
      ...commonErrors,
      "408": errorResp("The body did not arrive within the deadline (TIMEOUT)"),
      "413": errorResp("The value (or key) is larger than proto-max-bulk-len"),
      "507": errorResp("Not stored: the replica's used memory is over its limit (OOM, maxmemory)"),
    },
    examples: [
      { path: "/v1/kv/openapi-example", body: "hello", status: 200 },
      { path: "/v1/kv/openapi-example-ttl?ttl=60", body: "hello", status: 200 },
      { path: "/v1/kv/openapi-example?ttl=0", body: "x", status: 400 },
    ],
    handle(ctx) {
      const key = keyOf(ctx);
      if (key instanceof Response) return key;
      const ttl = parseTtl(ctx.url.search);
      if (isRestError(ttl)) return errorResponse(ttl);
      return ctx.limits.withBody(ctx.req, ctx.backend.maxBulkBytes, async (body) => {
        const argv = ["SET", key, bytesToByteString(body)];
        if (ttl !== undefined) argv.push("EX", ttl);
        const r = await ctx.run(argv);
        if (isErr(r)) return errorResponse(errorStatus(r.err));
        return jsonResponse({ ok: true });
      }, bodyRefused);
    },
  },
  {
    method: "GET",
    path: "/v1/kv/{key}",
    operationId: "getKey",
    summary: "Read a key's value (GET key)",
    parameters: [keyParam],
    responses: {
      "200": {
        description: "The value, bytes as stored",
        content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
      },
      "404": errorResp("No such key"),
      "409": errorResp("The key holds another type (WRONGTYPE)"),
      ...commonErrors,
    },
    examples: [
      { path: "/v1/kv/openapi-example", status: 200 },
      { path: "/v1/kv/openapi-example-absent", status: 404 },
      { path: "/v1/kv/", status: 400 },
    ],
    async handle(ctx) {
      const key = keyOf(ctx);
      if (key instanceof Response) return key;
      const value = await getValue(ctx, key);
      if (value instanceof Response) return value;
      return new Response(byteStringToBytes(value) as Uint8Array<ArrayBuffer>, {
        status: 200,
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(value.length),
          "cache-control": "no-store",
        },
      });
    },
  },
  {
    method: "HEAD",
    path: "/v1/kv/{key}",
    operationId: "headKey",
    summary: "Whether a key exists, and its value's length as Content-Length (GET key)",
    parameters: [keyParam],
    responses: {
      "200": {
        description: "The key exists",
        headers: { "Content-Length": { schema: { type: "integer" } } },
      },
      "404": { description: "No such key" },
      "409": { description: "The key holds another type (WRONGTYPE)" },
      ...Object.fromEntries(
        Object.entries(commonErrors).map(([s, d]) => [s, {
          description: (d as { description: string }).description,
        }]),
      ),
    },
    examples: [
      { path: "/v1/kv/openapi-example", status: 200 },
      { path: "/v1/kv/openapi-example-absent", status: 404 },
    ],
    async handle(ctx) {
      const key = keyOf(ctx);
      if (key instanceof Response) return withoutBody(key);
      const value = await getValue(ctx, key);
      if (value instanceof Response) return withoutBody(value);
      return new Response(null, {
        status: 200,
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(value.length),
          "cache-control": "no-store",
        },
      });
    },
  },
  {
    method: "DELETE",
    path: "/v1/kv/{key}",
    operationId: "deleteKey",
    summary: "Delete a key (DEL key)",
    parameters: [keyParam],
    responses: {
      "200": {
        description: "Deleted",
        content: { "application/json": { example: { deleted: 1 } } },
      },
      "404": errorResp("No such key"),
      ...commonErrors,
    },
    examples: [
      { path: "/v1/kv/openapi-example-ttl", status: 200 },
      { path: "/v1/kv/openapi-example-ttl", status: 404 },
    ],
    async handle(ctx) {
      const key = keyOf(ctx);
      if (key instanceof Response) return key;
      const r = await ctx.run(["DEL", key]);
      if (isErr(r)) return errorResponse(errorStatus(r.err));
      if (r === 0) return notFound();
      if (typeof r !== "number") return unexpected(r);
      return jsonResponse({ deleted: r });
    },
  },
  {
    method: "GET",
    path: "/v1/kv",
    operationId: "listKeys",
    summary: "List keys by prefix, one page at a time (SCAN cursor MATCH <prefix>* COUNT limit)",
    description:
      "Pages follow the order of a hash of the key, so any replica can serve any page. " +
      "`limit` is how many keys SCAN looks at, before the prefix filter: a page may hold fewer " +
      "keys, even none, while `cursor` is not null. Follow `cursor` until it is null; every key " +
      "present for the whole listing is returned at least once.",
    parameters: [
      {
        name: "prefix",
        in: "query",
        required: false,
        description:
          "Only keys starting with these bytes (percent-decoded byte by byte; `+` is a space)",
        schema: { type: "string" },
      },
      {
        name: "limit",
        in: "query",
        required: false,
        schema: {
          type: "integer",
          minimum: 1,
          maximum: MAX_LIST_LIMIT,
          default: DEFAULT_LIST_LIMIT,
        },
      },
      {
        name: "cursor",
        in: "query",
        required: false,
        description: "The previous page's cursor (absent or 0: the first page)",
        schema: { type: "string", pattern: "^[0-9]+$" },
      },
    ],
    responses: {
      "200": {
        description: "One page",
        content: {
          "application/json": {
            schema: {
              type: "object",
              required: ["keys", "cursor"],
              properties: {
                keys: {
                  type: "array",
                  description: "Keys: a string when the key's bytes are valid UTF-8, else " +
                    '`{"base64": "<its bytes, standard base64>"}`',
                  items: {
                    oneOf: [
                      { type: "string" },
                      {
                        type: "object",
                        required: ["base64"],
                        properties: { base64: { type: "string", contentEncoding: "base64" } },
                      },
                    ],
                  },
                },
                cursor: {
                  type: ["string", "null"],
                  description: "Pass it for the next page; null when the listing is complete",
                },
              },
            },
            example: { keys: ["user:1", "user:2"], cursor: "1877343310" },
          },
        },
      },
      ...commonErrors,
    },
    examples: [
      { path: "/v1/kv?prefix=openapi-&limit=10", status: 200 },
      { path: "/v1/kv?limit=0", status: 400 },
      { path: "/v1/kv?cursor=x", status: 400 },
    ],
    async handle(ctx) {
      const q = parseListQuery(ctx.url.search);
      if (isRestError(q)) return errorResponse(q);
      const argv = ["SCAN", q.cursor];
      if (q.prefix !== "") argv.push("MATCH", prefixPattern(q.prefix));
      argv.push("COUNT", String(q.limit));
      const r = await ctx.run(argv);
      if (isErr(r)) return errorResponse(errorStatus(r.err));
      if (!Array.isArray(r) || r.length !== 2 || !Array.isArray(r[1])) return unexpected(r);
      const [next, keys] = r as [ByteString, ByteString[]];
      return jsonResponse({ keys: keys.map(keyToJson), cursor: next === "0" ? null : next }, 200, {
        "cache-control": "no-store",
      });
    },
  },
  {
    method: "GET",
    path: "/openapi.json",
    operationId: "openapi",
    summary: "This description of the REST API (OpenAPI 3.1)",
    open: true,
    responses: {
      "200": { description: "The OpenAPI document", content: { "application/json": {} } },
    },
    examples: [{ path: "/openapi.json", status: 200 }],
    handle: () => jsonResponse(openApiDocument(), 200, { "access-control-allow-origin": "*" }),
  },
];

/** A response with the same status and headers and no body (HEAD). */
function withoutBody(res: Response): Response {
  res.body?.cancel().catch(() => {});
  return new Response(null, { status: res.status, headers: res.headers });
}

/** The OpenAPI 3.1 document of the REST API, built from the operations served. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    paths[op.path] ??= {};
    paths[op.path][op.method.toLowerCase()] = {
      operationId: op.operationId,
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      ...(op.parameters ? { parameters: op.parameters } : {}),
      ...(op.requestBody ? { requestBody: op.requestBody } : {}),
      responses: op.responses,
      ...(op.open ? { security: [] } : {}),
      "x-examples": op.examples,
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "lamportkv REST API",
      version: LAMPORTKV_VERSION,
      description:
        "Keys and values over HTTP on a replica's HTTP port, with the semantics of the " +
        "client port: every request runs as the Redis command named in its summary, linearizable. " +
        "When the cluster has passwords (requirepass, aclfile, ACL SETUSER), send HTTP Basic " +
        "credentials (user:password) or `Authorization: Bearer <token>`, where the token is " +
        "`user:password`, or just the default user's password when it holds no ':'.",
    },
    paths,
    components: {
      securitySchemes: {
        basic: { type: "http", scheme: "basic" },
        bearer: { type: "http", scheme: "bearer" },
      },
    },
    security: [{}, { basic: [] }, { bearer: [] }],
  };
}

/** Every (path template, method) the REST API serves, for tests. */
export function restOperations(): {
  path: string;
  method: string;
  examples: RestOperation["examples"];
}[] {
  return OPERATIONS.map((op) => ({ path: op.path, method: op.method, examples: op.examples }));
}

/** The HTTP route of path template `path`: exact, or a prefix up to a trailing `{param}`. */
export function routePathOf(path: string): { path: string; prefix: boolean } {
  const brace = path.indexOf("{");
  return brace < 0 ? { path, prefix: false } : { path: path.slice(0, brace), prefix: true };
}

/** The 429 of a host whose login attempts already wait too long. */
function tooManyLogins(): RestError {
  return {
    status: 429,
    code: "TOOMANY",
    error: "too many failed logins from this host; retry later",
    headers: { "retry-after": String(MAX_QUEUE_MS / 1000) },
  };
}

/**
 * The REST API's routes over `backend`: one route per path of {@link OPERATIONS}, dispatching on
 * the method. Login attempts from a host with failed logins are spaced by {@link LoginThrottle}.
 */
export function restRoutes(
  backend: RestBackend,
  limits: HttpLimits = new HttpLimits(),
): HttpRoute[] {
  const throttle = new LoginThrottle();
  const byPath = new Map<string, RestOperation[]>();
  for (const op of OPERATIONS) byPath.set(op.path, [...byPath.get(op.path) ?? [], op]);
  return [...byPath].map(([template, ops]) => ({
    ...routePathOf(template),
    methods: ops.map((op) => op.method),
    handle: async (req: Request, url: URL, remote: Deno.NetAddr) => {
      // HEAD on a path without a HEAD operation runs its GET (the server drops the body).
      const op = ops.find((o) => o.method === req.method) ?? ops.find((o) => o.method === "GET")!;
      if (op.open) {
        return op.handle({
          req,
          url,
          remote,
          backend,
          limits,
          run: () => Promise.reject(new Error("an open operation runs no command")),
        });
      }
      const login = parseAuthorization(req.headers.get("authorization"));
      if (isRestError(login)) return errorResponse(login);
      const host = remote.hostname;
      if (login !== undefined) {
        const wait = throttle.admit(host, Date.now());
        if (wait === null) return errorResponse(tooManyLogins());
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      const run = async (argv: ByteString[]): Promise<Reply> => {
        const r = await backend.execute(argv, {
          remote: `${host}:${remote.port}`,
          login: login as Credentials | undefined,
        });
        if (isErr(r) && r.err.startsWith("WRONGPASS")) throttle.failed(host, Date.now());
        return r;
      };
      return op.handle({ req, url, remote, backend, limits, run });
    },
  }));
}
