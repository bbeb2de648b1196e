/**
 * TLS for the client port, the peer port and the outgoing peer links.
 *
 * Listeners use `node:tls` rather than `Deno.listenTls`: Deno's listener has no way to request
 * or verify client certificates (its options are only the key pair and ALPN), which
 * `tls-auth-clients` and mutual authentication between replicas need, and it cannot swap its
 * certificate without being closed (`setSecureContext` can, for reloads on SIGHUP). One code path
 * serves every TLS listener. A connection is handed to the server only after its handshake
 * completed (and, when client certificates are required, verified against the CA); a handshake
 * that fails or does not complete within the timeout closes the socket.
 *
 * Outgoing connections (peer links, the lamportkv client) use `Deno.connectTls`, which verifies
 * the server's certificate against the given CA and host name (or IP SAN) and can present a
 * client certificate.
 *
 * @module
 */
import tls from "node:tls";
import type { ByteConn, ConnListener } from "./listener.ts";
import { SocketConn } from "./listener.ts";
import { errorText } from "./conn_writer.ts";
import type { Log } from "../log/logger.ts";

/** PEM texts of a key pair and the CA that certificates are checked against. */
export interface TlsMaterial {
  /** Certificate chain (PEM). */
  cert: string;
  /** Private key (PEM). */
  key: string;
  /** CA certificate(s) (PEM) that peers' certificates must be signed by, if any. */
  ca?: string;
}

/**
 * The current TLS material, shared by every listener and link of a replica. {@link update}
 * (e.g. on SIGHUP) makes new connections use the new material; open ones keep theirs.
 */
export class TlsContext {
  #material: TlsMaterial;
  readonly #listeners = new Set<(m: TlsMaterial) => void>();

  /** Starts with `material`. */
  constructor(material: TlsMaterial) {
    this.#material = material;
  }

  /** The current material. */
  get material(): TlsMaterial {
    return this.#material;
  }

  /** Replaces the material for new connections. */
  update(material: TlsMaterial): void {
    this.#material = material;
    for (const listener of this.#listeners) listener(material);
  }

  /** Calls `listener` on every update; returns the function that stops it. */
  onUpdate(listener: (m: TlsMaterial) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** Whether a TLS listener asks for client certificates (Redis's `tls-auth-clients`). */
export type ClientAuth = "no" | "yes" | "optional";

/** TLS of a listener. */
export interface TlsServerConfig {
  context: TlsContext;
  /**
   * `yes`: a client must present a certificate signed by the CA; `optional`: one it presents
   * must be; `no`: none is asked for.
   */
  clientAuth: ClientAuth;
  /** A handshake not complete within this many ms closes the socket (default 10 s). */
  handshakeTimeoutMs?: number;
}

/** TLS of an outgoing connection. */
export interface TlsClientConfig {
  /** CA certificates (PEM) the server's certificate must be signed by (default: system roots). */
  caCerts?: string[];
  /** Client certificate and key (PEM), presented when the server asks. */
  cert?: string;
  key?: string;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

function secureContextOptions(m: TlsMaterial): tls.SecureContextOptions {
  return m.ca === undefined ? { cert: m.cert, key: m.key } : { cert: m.cert, key: m.key, ca: m.ca };
}

/**
 * A TLS listener on `address`. Resolves once bound.
 *
 * @throws (as a rejection) the listen error, e.g. `Deno.errors.AddrInUse`.
 */
export async function listenTls(
  address: { hostname: string; port: number },
  config: TlsServerConfig,
  log: Log,
  label: string,
): Promise<ConnListener> {
  const listener = new TlsListener(config, log, label);
  await listener.bind(address);
  return listener;
}

class TlsListener implements ConnListener {
  readonly #server: tls.Server;
  readonly #queue: ByteConn[] = [];
  #waiter: { resolve: (c: ByteConn) => void; reject: (err: unknown) => void } | undefined;
  #closed = false;
  #addr: Deno.NetAddr | undefined;
  readonly #stopUpdates: () => void;

  constructor(config: TlsServerConfig, log: Log, label: string) {
    const { context, clientAuth } = config;
    const request = clientAuth !== "no";
    this.#server = tls.createServer({
      ...secureContextOptions(context.material),
      requestCert: request,
      rejectUnauthorized: clientAuth === "yes",
      allowHalfOpen: true,
      handshakeTimeout: config.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    }, (socket) => {
      if (this.#closed) {
        socket.destroy();
        return;
      }
      if (clientAuth === "optional" && !socket.authorized && hasPeerCertificate(socket)) {
        log.limited(
          "warn",
          "tls.refused",
          socket.remoteAddress ?? "",
          `${label}: refused ${socket.remoteAddress}:${socket.remotePort}: its certificate is ` +
            `not valid (${socket.authorizationError})`,
        );
        socket.destroy();
        return;
      }
      this.#push(new SocketConn(socket));
    });
    // A failed handshake (no or a bad client certificate, not TLS at all, a timeout): the socket
    // must be closed here (it is not always closed otherwise). Not logged: anyone can cause it.
    this.#server.on("tlsClientError", (_err: Error, socket: tls.TLSSocket) => socket?.destroy());
    this.#stopUpdates = context.onUpdate((m) => {
      try {
        this.#server.setSecureContext(secureContextOptions(m));
      } catch (err) {
        log.error("tls.error", `${label}: cannot use the new TLS certificate: ${errorText(err)}`);
      }
    });
  }

  bind(address: { hostname: string; port: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error & { code?: string }) => {
        this.#stopUpdates();
        reject(err.code === "EADDRINUSE" ? new Deno.errors.AddrInUse(err.message) : err);
      };
      this.#server.once("error", onError);
      this.#server.listen(address.port, address.hostname, () => {
        this.#server.off("error", onError);
        this.#server.on("error", () => {}); // after binding, errors are per connection
        const a = this.#server.address();
        const port = typeof a === "object" && a !== null ? a.port : address.port;
        this.#addr = { transport: "tcp", hostname: address.hostname, port };
        resolve();
      });
    });
  }

  get addr(): Deno.NetAddr {
    if (this.#addr === undefined) throw new Error("TLS listener is not bound");
    return this.#addr;
  }

  #push(conn: ByteConn): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter !== undefined) waiter.resolve(conn);
    else this.#queue.push(conn);
  }

  accept(): Promise<ByteConn> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("listener closed"));
    const next = this.#queue.shift();
    if (next !== undefined) return Promise.resolve(next);
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopUpdates();
    this.#server.close();
    for (const conn of this.#queue.splice(0)) conn.close();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(new Deno.errors.BadResource("listener closed"));
  }
}

function hasPeerCertificate(socket: tls.TLSSocket): boolean {
  try {
    const cert = socket.getPeerCertificate();
    return cert !== null && Object.keys(cert).length > 0;
  } catch {
    return false;
  }
}

/**
 * Opens a TLS connection and completes its handshake (so that a refused certificate is reported
 * here, not on the first read). `timeoutMs` bounds connect and handshake together; `signal`
 * aborts them.
 *
 * @throws the connect or handshake error, `Deno.errors.TimedOut`, or `Deno.errors.Interrupted`.
 */
export async function connectTls(
  hostname: string,
  port: number,
  config: TlsClientConfig,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Deno.TlsConn> {
  const options: Deno.ConnectTlsOptions & Partial<Deno.TlsCertifiedKeyPem> = { hostname, port };
  if (config.caCerts !== undefined) options.caCerts = config.caCerts;
  if (config.cert !== undefined && config.key !== undefined) {
    options.cert = config.cert;
    options.key = config.key;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  const connecting = Deno.connectTls(options as Deno.ConnectTlsOptions & Deno.TlsCertifiedKeyPem);
  const opened = connecting.then(async (conn) => {
    try {
      await conn.handshake();
    } catch (err) {
      closeQuietly(conn);
      throw err;
    }
    if (timedOut) closeQuietly(conn);
    return conn;
  });
  let onAbort: (() => void) | undefined;
  const late = new Promise<never>((_, reject) => {
    const give = (err: Error) => {
      timedOut = true;
      void connecting.then(closeQuietly, () => {});
      reject(err);
    };
    timer = setTimeout(
      () => give(new Deno.errors.TimedOut(`TLS connect timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    onAbort = () => give(new Deno.errors.Interrupted("TLS connect aborted"));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([opened, late]);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
    opened.catch(() => {}); // a failure after the timeout is not unhandled
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
