/**
 * One pipelined RESP connection from a client to a replica's client port.
 *
 * {@link RespConnection.send} may be called many times without waiting: requests are written in
 * call order (coalesced into as few socket writes as possible) and replies resolve in the same
 * order. Every request has a timeout; when one expires the connection is closed, because the
 * replies that follow could no longer be matched to their requests. When the connection closes
 * or fails, every pending request rejects with a {@link ConnectionError} that says why.
 *
 * Reply errors (`-NOQUORUM ...`) are not exceptions here: they resolve as {@link RespError}
 * values, and the caller decides what they mean.
 *
 * @module
 */
import { ConnWriter, errorText } from "../net/conn_writer.ts";
import type { ByteConn } from "../net/listener.ts";
import { connectTls, type TlsClientConfig } from "../net/tls.ts";
import type { ByteString } from "../core/types.ts";
import {
  encodeCommand,
  RespReplyParser,
  type RespValue,
  type TaggedRespValue,
} from "../net/resp.ts";

/** Default time allowed for a TCP connect. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
/** Default time a request may wait for its reply. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

/**
 * Why a connection operation failed:
 * - `connect`: the TCP connection could not be established (refused, unreachable, timed out);
 * - `timeout`: this request got no reply in time (the connection was closed because of it);
 * - `closed`: the connection closed (by the peer, by {@link RespConnection.close}, or after an
 *   earlier failure) before this request got its reply;
 * - `protocol`: the server sent bytes that are not valid RESP, or a reply nobody asked for.
 */
export type ConnectionErrorKind = "connect" | "timeout" | "closed" | "protocol";

/** A failed connect or a request that got no reply. */
export class ConnectionError extends Error {
  /** What went wrong. */
  readonly kind: ConnectionErrorKind;
  /**
   * Whether the request's bytes may have reached the server (so it may have been executed).
   * Always false for `connect` errors and for requests made on an already closed connection.
   */
  readonly sent: boolean;

  /** Builds the error. */
  constructor(kind: ConnectionErrorKind, message: string, sent: boolean) {
    super(message);
    this.name = "ConnectionError";
    this.kind = kind;
    this.sent = sent;
  }
}

/** Options of {@link RespConnection.connect}. */
export interface ConnectionOptions {
  /** Milliseconds allowed for the TCP connect (default {@link DEFAULT_CONNECT_TIMEOUT_MS}). */
  connectTimeoutMs?: number;
  /**
   * Milliseconds each request may wait for its reply, unless {@link SendOptions.timeoutMs} says
   * otherwise (default {@link DEFAULT_REQUEST_TIMEOUT_MS}).
   */
  requestTimeoutMs?: number;
  /**
   * Connect over TLS (the server's certificate checked against `caCerts`, or the system roots;
   * `cert`/`key` presented when the server asks for a client certificate). Default: plain TCP.
   */
  tls?: TlsClientConfig;
}

/** Options of one {@link RespConnection.send}. */
export interface SendOptions {
  /** Milliseconds this request may wait for its reply (default: the connection's). */
  timeoutMs?: number;
  /** Resolve with simple strings as `RespStatus` values (see `RespReplyParser.nextTagged`). */
  tagStatus?: boolean;
}

interface Pending {
  resolve: (value: TaggedRespValue) => void;
  tagStatus: boolean;
  reject: (err: ConnectionError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const READ_BUFFER_BYTES = 64 * 1024;

/** A pipelined RESP connection to `host:port`. Create one with {@link RespConnection.connect}. */
export class RespConnection {
  /** The host connected to, as given. */
  readonly host: string;
  /** The port connected to. */
  readonly port: number;

  readonly #conn: ByteConn;
  readonly #parser = new RespReplyParser();
  readonly #requestTimeoutMs: number;
  readonly #pending: Pending[] = [];
  #pendingHead = 0;
  /** Writes requests in order, joining those of one turn into one socket write. */
  readonly #writer: ConnWriter;
  #failure: ConnectionError | null = null;
  readonly #readLoop: Promise<void>;

  private constructor(conn: ByteConn, host: string, port: number, requestTimeoutMs: number) {
    this.#conn = conn;
    this.host = host;
    this.port = port;
    this.#requestTimeoutMs = requestTimeoutMs;
    this.#writer = new ConnWriter(conn, (err) =>
      this.#fail(
        new ConnectionError(
          "closed",
          `connection to ${this.address} failed: ${errorText(err)}`,
          true,
        ),
      ));
    this.#readLoop = this.#read();
  }

  /**
   * Opens a connection to `host:port`.
   *
   * @throws {ConnectionError} kind `connect` when it cannot be established in time.
   */
  static async connect(
    host: string,
    port: number,
    options: ConnectionOptions = {},
  ): Promise<RespConnection> {
    const connectTimeoutMs = Math.max(
      0,
      Math.ceil(options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    );
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (options.tls !== undefined) {
      let conn: Deno.TlsConn;
      try {
        conn = await connectTls(host, port, options.tls, connectTimeoutMs);
      } catch (err) {
        const why = err instanceof Deno.errors.TimedOut
          ? `timed out after ${connectTimeoutMs} ms`
          : `TLS: ${errorText(err)}`;
        throw new ConnectionError("connect", `cannot connect to ${host}:${port}: ${why}`, false);
      }
      return new RespConnection(conn, host, port, requestTimeoutMs);
    }
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, connectTimeoutMs);
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname: host, port, signal: abort.signal });
    } catch (err) {
      const why = timedOut ? `timed out after ${connectTimeoutMs} ms` : errorText(err);
      throw new ConnectionError("connect", `cannot connect to ${host}:${port}: ${why}`, false);
    } finally {
      clearTimeout(timer);
    }
    try {
      conn.setNoDelay(true);
    } catch {
      // Not fatal: only latency is affected.
    }
    return new RespConnection(conn, host, port, requestTimeoutMs);
  }

  /** `host:port`. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** True once the connection is closed or failed; every later {@link send} rejects. */
  get closed(): boolean {
    return this.#failure !== null;
  }

  /** Number of requests waiting for their reply. */
  get pendingCount(): number {
    return this.#pending.length - this.#pendingHead;
  }

  /**
   * Sends one command (an array of bulk strings) and resolves with its reply; error replies
   * resolve as `RespError` values.
   *
   * @throws {ConnectionError} (as a rejection) when the connection is closed or fails before the
   * reply arrives, or when no reply arrives within the timeout.
   */
  send(argv: ByteString[], options?: SendOptions & { tagStatus?: false }): Promise<RespValue>;
  /** {@link send} with simple-string replies as `RespStatus` values. */
  send(argv: ByteString[], options: SendOptions): Promise<TaggedRespValue>;
  send(argv: ByteString[], options: SendOptions = {}): Promise<TaggedRespValue> {
    if (this.#failure) {
      const why = this.#failure.message;
      return Promise.reject(
        new ConnectionError("closed", `connection to ${this.address} is closed (${why})`, false),
      );
    }
    const bytes = encodeCommand(argv);
    const timeoutMs = Math.max(0, Math.ceil(options.timeoutMs ?? this.#requestTimeoutMs));
    return new Promise<TaggedRespValue>((resolve, reject) => {
      const pending: Pending = {
        resolve,
        reject,
        tagStatus: options.tagStatus ?? false,
        timer: undefined,
      };
      pending.timer = setTimeout(() => this.#timeout(pending, timeoutMs), timeoutMs);
      this.#pending.push(pending);
      this.#writer.write(bytes);
    });
  }

  /**
   * Closes the connection; pending requests reject with kind `closed`. Resolves when the socket
   * and its reader are fully released. Safe to call more than once.
   */
  close(): Promise<void> {
    this.#fail(
      new ConnectionError("closed", `connection to ${this.address} closed by client`, true),
    );
    return this.#readLoop;
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(READ_BUFFER_BYTES);
    try {
      while (!this.#failure) {
        const n = await this.#conn.read(buf);
        if (n === null) {
          this.#fail(
            new ConnectionError(
              "closed",
              `connection to ${this.address} closed by the server`,
              true,
            ),
          );
          return;
        }
        this.#parser.push(buf.slice(0, n));
        this.#drainReplies();
      }
    } catch (err) {
      if (!this.#failure) {
        this.#fail(
          new ConnectionError(
            "closed",
            `connection to ${this.address} failed: ${errorText(err)}`,
            true,
          ),
        );
      }
    }
  }

  #drainReplies(): void {
    while (!this.#failure) {
      // The reply being read belongs to the oldest pending request, which says how to read it.
      const tagStatus = this.#pending[this.#pendingHead]?.tagStatus ?? false;
      let value: TaggedRespValue | undefined;
      try {
        value = tagStatus ? this.#parser.nextTagged() : this.#parser.next();
      } catch (err) {
        this.#fail(
          new ConnectionError(
            "protocol",
            `invalid reply from ${this.address}: ${errorText(err)}`,
            true,
          ),
        );
        return;
      }
      if (value === undefined) return;
      const pending = this.#shift();
      if (!pending) {
        this.#fail(
          new ConnectionError("protocol", `unexpected reply from ${this.address}`, true),
        );
        return;
      }
      clearTimeout(pending.timer);
      pending.resolve(value);
    }
  }

  #shift(): Pending | undefined {
    if (this.#pendingHead >= this.#pending.length) return undefined;
    const pending = this.#pending[this.#pendingHead++];
    if (this.#pendingHead > 1024 && this.#pendingHead * 2 > this.#pending.length) {
      this.#pending.splice(0, this.#pendingHead);
      this.#pendingHead = 0;
    }
    return pending;
  }

  #timeout(pending: Pending, timeoutMs: number): void {
    if (this.#failure) return;
    const index = this.#pending.indexOf(pending, this.#pendingHead);
    if (index === -1) return;
    // Remove it first so it gets the timeout error; the others are abandoned with it.
    this.#pending.splice(index, 1);
    pending.reject(
      new ConnectionError("timeout", `no reply from ${this.address} within ${timeoutMs} ms`, true),
    );
    this.#fail(
      new ConnectionError(
        "closed",
        `connection to ${this.address} closed after a request timed out`,
        true,
      ),
    );
  }

  #fail(err: ConnectionError): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#writer.discard();
    const pending = this.#pending.slice(this.#pendingHead);
    this.#pending.length = 0;
    this.#pendingHead = 0;
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}
