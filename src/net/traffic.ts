/**
 * Bytes read and written on the connections of one port (clients, peers), counted where the
 * servers and links read and write: a {@link ByteConn} is wrapped by {@link countedConn}, which
 * adds one addition per read or write call. `/metrics` reads the totals.
 *
 * @module
 */
import type { ByteConn } from "./listener.ts";

/** Bytes in and out of one port's connections since start. */
export class ByteTraffic {
  /** Bytes read from the connections. */
  bytesIn = 0;
  /** Bytes written to the connections. */
  bytesOut = 0;
}

/** `conn` with its reads and writes counted in `traffic` (`conn` itself when none). */
export function countedConn(conn: ByteConn, traffic: ByteTraffic | undefined): ByteConn {
  return traffic === undefined ? conn : new CountedConn(conn, traffic);
}

/** A connection whose bytes are counted. */
class CountedConn implements ByteConn {
  readonly #conn: ByteConn;
  readonly #traffic: ByteTraffic;

  constructor(conn: ByteConn, traffic: ByteTraffic) {
    this.#conn = conn;
    this.#traffic = traffic;
  }

  get remoteAddr(): Deno.NetAddr {
    return this.#conn.remoteAddr;
  }

  get localAddr(): Deno.NetAddr {
    return this.#conn.localAddr;
  }

  read(p: Uint8Array): Promise<number | null> {
    return this.#conn.read(p).then((n) => {
      if (n !== null) this.#traffic.bytesIn += n;
      return n;
    });
  }

  write(p: Uint8Array): Promise<number> {
    return this.#conn.write(p).then((n) => {
      this.#traffic.bytesOut += n;
      return n;
    });
  }

  close(): void {
    this.#conn.close();
  }

  setNoDelay(noDelay?: boolean): void {
    this.#conn.setNoDelay?.(noDelay);
  }

  setKeepAlive(keepAlive?: boolean): void {
    this.#conn.setKeepAlive?.(keepAlive);
  }
}
