/**
 * A replica's HTTP port (Deno's built-in server): a table of routes, each a method and a path
 * (exact, or a prefix ending in `/`), dispatched in table order. Monitoring (`/metrics`, health,
 * `/status`), the REST API and the dashboard each contribute routes; this module only binds,
 * dispatches, answers 404/405, answers 503 beyond {@link HttpLimits}' requests in flight, and turns
 * a handler's exception into a 500 (logged once per path).
 *
 * @module
 */
import type { Log } from "../log/logger.ts";

import { HttpLimits } from "./request_limits.ts";

/** One route: what it answers and how. */
export interface HttpRoute {
  /** Methods answered (`HEAD` is answered by a `GET` route unless a route lists it). */
  methods: readonly string[];
  /** An exact path, or a prefix when it ends with `/` and `prefix` is set. */
  path: string;
  /** Match every path that starts with `path`. */
  prefix?: boolean;
  /** Answers the request. */
  handle(req: Request, url: URL, remote: Deno.NetAddr): Response | Promise<Response>;
}

/** Options of an {@link HttpServer}. */
export interface HttpServerOptions {
  hostname: string;
  /** 0 picks a free port. */
  port: number;
  routes: readonly HttpRoute[];
  /** Where handler failures are logged. */
  log: Log;
  /** The port's bounds (default: those of `src/limits.ts`); routes that read bodies share it. */
  limits?: HttpLimits;
}

/** A JSON response (pretty enough to read with curl). */
export function jsonResponse(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** A plain-text response. */
export function textResponse(body: string, status = 200, headers: HeadersInit = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

/** The HTTP listener of one replica. */
export class HttpServer {
  readonly #options: HttpServerOptions;
  #server: Deno.HttpServer<Deno.NetAddr> | undefined;
  readonly #failedPaths = new Set<string>();
  readonly #limits: HttpLimits;

  /** Builds the server; nothing listens until {@link HttpServer.open}. */
  constructor(options: HttpServerOptions) {
    this.#options = options;
    this.#limits = options.limits ?? new HttpLimits();
  }

  /** Binds the port. @throws the `Deno.serve` error (e.g. `AddrInUse`). */
  open(): Promise<void> {
    const { hostname, port } = this.#options;
    return new Promise((resolve, reject) => {
      try {
        this.#server = Deno.serve({
          hostname,
          port,
          onListen: () => resolve(),
          onError: (err) => this.#failure("?", err),
        }, (req, info) => this.#admit(req, info.remoteAddr));
      } catch (err) {
        reject(err);
      }
    });
  }

  /** The bound address (after {@link HttpServer.open}). */
  get addr(): Deno.NetAddr {
    if (this.#server === undefined) throw new Error("HttpServer: not open");
    return this.#server.addr;
  }

  /** Stops listening and closes open connections (idempotent). */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    await server.shutdown().catch(() => {});
  }

  async #admit(req: Request, remote: Deno.NetAddr): Promise<Response> {
    if (!this.#limits.enter()) {
      req.body?.cancel().catch(() => {});
      return textResponse("busy: too many requests in flight; retry\n", 503, {
        "retry-after": "1",
      });
    }
    try {
      return await this.#dispatch(req, remote);
    } finally {
      this.#limits.leave();
    }
  }

  async #dispatch(req: Request, remote: Deno.NetAddr): Promise<Response> {
    const url = new URL(req.url);
    const method = req.method === "HEAD" ? "HEAD" : req.method;
    const matching = this.#options.routes.filter((r) =>
      r.prefix ? url.pathname.startsWith(r.path) : url.pathname === r.path
    );
    if (matching.length === 0) return textResponse("not found\n", 404);
    const route = matching.find((r) => r.methods.includes(method)) ??
      (method === "HEAD" ? matching.find((r) => r.methods.includes("GET")) : undefined);
    if (route === undefined) {
      const allow = [...new Set(matching.flatMap((r) => r.methods))].join(", ");
      return textResponse(`method ${req.method} not allowed\n`, 405, { allow });
    }
    try {
      const res = await route.handle(req, url, remote);
      return method === "HEAD" && !route.methods.includes("HEAD")
        ? new Response(null, { status: res.status, headers: res.headers })
        : res;
    } catch (err) {
      this.#failure(url.pathname, err);
      return textResponse("internal error\n", 500);
    }
  }

  #failure(path: string, err: unknown): Response {
    if (!this.#failedPaths.has(path)) {
      this.#failedPaths.add(path);
      this.#options.log.error(
        "http.error",
        `http: ${path}: ${err instanceof Error ? err.stack : String(err)}`,
        { path },
      );
    }
    return textResponse("internal error\n", 500);
  }
}
