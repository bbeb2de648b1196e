/**
 * The accept loop both servers share: binds the port (or takes a bound listener, e.g. a TLS one
 * from `tls.ts`), accepts connections, hands each to `serve`, keeps
 * going after transient accept errors (pausing so that e.g. running out of file descriptors does
 * not spin), and on close stops accepting and waits until every connection's `serve` ended.
 *
 * @module
 */
import { errorText, Sleep } from "./conn_writer.ts";
import { type ByteConn, type ConnListener, listenTcp } from "./listener.ts";
import type { Log } from "../log/logger.ts";

/** Accepts connections on a listener until closed. */
export class AcceptLoop {
  readonly #listener: ConnListener;
  readonly #serving = new Set<Promise<void>>();
  readonly #pause = new Sleep();
  readonly #accepting: Promise<void>;
  #closed = false;

  /**
   * Binds `address` with `Deno.listen` (or takes the bound `listener`) and starts accepting;
   * `label` names the port in log lines ("client port").
   *
   * @throws the `Deno.listen` error (e.g. `Deno.errors.AddrInUse`).
   */
  constructor(
    address: { hostname: string; port: number } | ConnListener,
    serve: (conn: ByteConn) => Promise<void>,
    log: Log,
    label: string,
  ) {
    this.#listener = "accept" in address ? address : listenTcp(address);
    this.#accepting = this.#run((conn) => serve(conn), log, label);
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Stops accepting, calls `closeConnections` (the owner closes what it serves), and resolves
   * once every `serve` has returned.
   */
  async close(closeConnections: () => void): Promise<void> {
    this.#closed = true;
    this.#pause.cancel();
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    closeConnections();
    await this.#accepting;
    while (this.#serving.size > 0) await Promise.all([...this.#serving]);
  }

  async #run(
    serve: (conn: ByteConn) => Promise<void>,
    log: Log,
    label: string,
  ): Promise<void> {
    while (!this.#closed) {
      let conn: ByteConn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.#closed || err instanceof Deno.errors.BadResource) break;
        log.limited("error", "accept.failed", label, `${label}: accept failed: ${errorText(err)}`);
        await this.#pause.wait(100);
        continue;
      }
      if (this.#closed) {
        conn.close();
        break;
      }
      const serving = serve(conn);
      this.#serving.add(serving);
      void serving.finally(() => this.#serving.delete(serving));
    }
  }
}
