/**
 * What the servers need from a connection and a listener, so that the same accept loop and
 * connection code serve plain TCP (`Deno.listen`) and TLS (`node:tls`, see `tls.ts`).
 *
 * {@link ByteConn} is the part of `Deno.Conn` the servers use: `Deno.TcpConn` and `Deno.TlsConn`
 * are ByteConns as they are; a `node:tls` socket is adapted by {@link SocketConn}.
 *
 * @module
 */
import type { Socket } from "node:net";

/** A byte stream connection: the part of `Deno.Conn` the servers use. */
export interface ByteConn {
  readonly remoteAddr: Deno.NetAddr;
  readonly localAddr: Deno.NetAddr;
  /** Reads into `p`; null at EOF. Rejects once the connection is closed or failed. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes (a prefix of) `p`; resolves with the bytes written. */
  write(p: Uint8Array): Promise<number>;
  /** Closes both directions; pending reads and writes end. */
  close(): void;
  /** Disables Nagle's algorithm (TCP only). */
  setNoDelay?(noDelay?: boolean): void;
  /** Enables TCP keep-alive (TCP only). */
  setKeepAlive?(keepAlive?: boolean): void;
}

/** A bound listener handing out connections. */
export interface ConnListener {
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  /** The next connection; rejects with `Deno.errors.BadResource` once closed. */
  accept(): Promise<ByteConn>;
  /** Stops listening (idempotent). */
  close(): void;
}

/** A plain TCP listener (`Deno.listen`), bound at once. @throws the `Deno.listen` error. */
export function listenTcp(address: { hostname: string; port: number }): ConnListener {
  return Deno.listen(address);
}

/** The address of a node socket, as Deno spells it. */
function netAddr(hostname: string | undefined, port: number | undefined): Deno.NetAddr {
  return { transport: "tcp", hostname: hostname ?? "", port: port ?? 0 };
}

/** Unread bytes above which a {@link SocketConn} pauses its socket until they are read. */
const READ_HIGH_WATER = 256 * 1024;

/**
 * A connected `node:net`/`node:tls` socket as a {@link ByteConn}: incoming chunks are buffered
 * (the socket is paused while more than 256 KiB wait) and handed out by {@link read}; a write
 * resolves once the socket took it. Closing rejects pending writes and ends pending reads, so
 * nothing waits forever on a destroyed socket.
 */
export class SocketConn implements ByteConn {
  readonly remoteAddr: Deno.NetAddr;
  readonly localAddr: Deno.NetAddr;
  readonly #socket: Socket;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #closed = false;
  #error: unknown;
  #waiter: (() => void) | undefined;
  readonly #writes = new Set<(err: unknown) => void>();

  /** Adapts `socket` (already connected; for TLS, after its handshake). */
  constructor(socket: Socket) {
    this.#socket = socket;
    this.remoteAddr = netAddr(socket.remoteAddress, socket.remotePort);
    this.localAddr = netAddr(socket.localAddress, socket.localPort);
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered >= READ_HIGH_WATER) socket.pause();
      this.#wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("error", (err: unknown) => {
      this.#error ??= err;
      this.#failWrites(err);
      this.#wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#failWrites(this.#error ?? new Deno.errors.BrokenPipe("connection closed"));
      this.#wake();
    });
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#closed) throw new Deno.errors.BadResource("connection closed");
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
    let n = 0;
    while (n < p.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      const take = Math.min(chunk.length, p.length - n);
      p.set(chunk.subarray(0, take), n);
      n += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    this.#buffered -= n;
    if (this.#buffered < READ_HIGH_WATER && this.#socket.isPaused() && !this.#closed) {
      this.#socket.resume();
    }
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#closed || this.#socket.destroyed) {
      return Promise.reject(new Deno.errors.BrokenPipe("connection closed"));
    }
    if (this.#error !== undefined) return Promise.reject(this.#error);
    return new Promise<number>((resolve, reject) => {
      const fail = (err: unknown) => {
        this.#writes.delete(fail);
        reject(err);
      };
      this.#writes.add(fail);
      this.#socket.write(p, (err?: Error | null) => {
        if (!this.#writes.delete(fail)) return; // already failed by a close
        if (err) reject(err);
        else resolve(p.length);
      });
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks = [];
    this.#buffered = 0;
    this.#socket.destroy();
    this.#failWrites(new Deno.errors.BrokenPipe("connection closed"));
    this.#wake();
  }

  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }

  setKeepAlive(keepAlive = true): void {
    this.#socket.setKeepAlive(keepAlive);
  }

  #failWrites(err: unknown): void {
    const writes = [...this.#writes];
    this.#writes.clear();
    for (const fail of writes) fail(err);
  }

  #wake(): void {
    const wake = this.#waiter;
    this.#waiter = undefined;
    wake?.();
  }
}
