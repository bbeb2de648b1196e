/// <reference lib="deno.worker" />
/**
 * The worker of `loading_listeners.ts`: on its own thread, so that it answers while the main
 * thread restores a large state without yielding, it listens on the replica's client port (and
 * HTTP port) and answers every command with `-LOADING` (INFO with `loading:1`, QUIT with `+OK`)
 * and every HTTP request but `/livez` with 503, until it is told to close.
 *
 * Messages in: {@link LoadingStart}, any number of {@link LoadingProgressMessage}, then
 * `{ type: "close" }`. Out: `{ type: "listening" }` or `{ type: "failed", message }`, then
 * `{ type: "closed" }`.
 *
 * @module
 */
import { encodeBulk, encodeError, encodeSimple, RespRequestParser } from "../net/resp.ts";
import type { ByteConn, ConnListener } from "../net/listener.ts";
import { listenTcp } from "../net/listener.ts";
import { listenTls, TlsContext } from "../net/tls.ts";
import { Logger } from "../log/logger.ts";
import { textResponse } from "../http/http_server.ts";
import { writeAll } from "../write_all.ts";
import {
  LOADING_HTTP_REASON,
  LOADING_REPLY,
  loadingInfo,
  type LoadingProgressMessage,
  type LoadingStart,
} from "./loading_listeners.ts";

const listeners: ConnListener[] = [];
/** The accept loops, which end once their listener is closed and its pending accept is over. */
const accepting: Promise<void>[] = [];
/** The ports taken, to check that they are free again before saying closed. */
const ports: { hostname: string; port: number }[] = [];
const conns = new Set<ByteConn>();
let http: Deno.HttpServer | undefined;
let maxClients = 0;

self.onmessage = async (
  e: MessageEvent<LoadingStart | LoadingProgressMessage | { type: "close" }>,
) => {
  const msg = e.data;
  if (msg.type === "progress") {
    totalBytes = msg.total;
    loadedBytes = msg.loaded;
  } else if (msg.type === "start") {
    try {
      await start(msg);
      self.postMessage({ type: "listening" });
    } catch (err) {
      await closeAll();
      self.postMessage({ type: "failed", message: err instanceof Error ? err.message : `${err}` });
    }
  } else if (msg.type === "close") {
    await closeAll();
    self.postMessage({ type: "closed" });
  }
};

async function start(msg: LoadingStart): Promise<void> {
  const { hostname, clientPort, httpPort, tls } = msg;
  maxClients = msg.maxClients;
  infoPort = clientPort;
  const listener = tls === undefined ? listenTcp({ hostname, port: clientPort }) : await listenTls(
    { hostname, port: clientPort },
    { context: new TlsContext(tls.material), clientAuth: tls.clientAuth },
    new Logger({ id: msg.id, level: "error" }),
    "client port",
  );
  listeners.push(listener);
  ports.push({ hostname, port: clientPort });
  accepting.push(acceptLoop(listener));
  if (httpPort !== undefined) {
    http = Deno.serve({ hostname, port: httpPort, onListen: () => {} }, (req) => {
      const noStore = { "cache-control": "no-store" };
      return new URL(req.url).pathname === "/livez"
        ? textResponse("ok\n", 200, noStore)
        : textResponse(`not ready: ${LOADING_HTTP_REASON}\n`, 503, noStore);
    });
    ports.push({ hostname, port: httpPort });
  }
}

async function acceptLoop(listener: ConnListener): Promise<void> {
  for (;;) {
    let conn: ByteConn;
    try {
      conn = await listener.accept();
    } catch {
      return; // closed
    }
    if (conns.size >= maxClients) {
      conn.close();
      continue;
    }
    conns.add(conn);
    serve(conn).finally(() => {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    });
  }
}

const LOADING = encodeError(LOADING_REPLY);
const OK = encodeSimple("OK");
/** When loading started: when this worker did (it is started first). */
const startedMs = Date.now();
/** The client port, for INFO (set by start), and the progress last reported. */
let infoPort = 0;
let totalBytes = 0;
let loadedBytes = 0;

/** INFO's answer meanwhile: Redis's server and persistence fields, `loading:1`, progress. */
function info(): Uint8Array {
  const progress = { startedMs, totalBytes, loadedBytes, nowMs: Date.now() };
  return encodeBulk(loadingInfo(infoPort, progress));
}

/** Answers each request of `conn` until it closes, sends QUIT or breaks the protocol. */
async function serve(conn: ByteConn): Promise<void> {
  const parser = new RespRequestParser();
  const buf = new Uint8Array(16 * 1024);
  for (;;) {
    let n: number | null;
    try {
      n = await conn.read(buf);
    } catch {
      return;
    }
    if (n === null) return;
    parser.push(buf.subarray(0, n));
    for (let item = parser.next(); item !== null; item = parser.next()) {
      if ("error" in item) {
        await send(conn, encodeError(item.error));
        if (item.fatal) return;
        continue;
      }
      const name = item.argv[0].toLowerCase();
      if (name === "quit") {
        await send(conn, OK);
        return;
      }
      if (!await send(conn, name === "info" ? info() : LOADING)) return;
    }
  }
}

/** Writes `bytes` to `conn`; false when the connection failed. */
function send(conn: ByteConn, bytes: Uint8Array): Promise<boolean> {
  return writeAll(conn, bytes).then(() => true, () => false);
}

/** Longest wait for a closed listener's port to be free again (it is a moment at most). */
const PORT_RELEASE_MS = 2_000;

/**
 * Closes everything, and returns once the ports can be bound again: a closed listener's socket
 * goes only when its pending accept has ended, and the replica binds the same ports next.
 */
async function closeAll(): Promise<void> {
  for (const l of listeners.splice(0)) l.close();
  await Promise.all(accepting.splice(0));
  for (const c of conns) {
    try {
      c.close();
    } catch {
      // already closed
    }
  }
  conns.clear();
  await http?.shutdown();
  http = undefined;
  const deadline = Date.now() + PORT_RELEASE_MS;
  for (const address of ports.splice(0)) {
    while (!canBind(address) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

function canBind(address: { hostname: string; port: number }): boolean {
  try {
    Deno.listen(address).close();
    return true;
  } catch {
    return false;
  }
}
