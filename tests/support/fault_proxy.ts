/**
 * A fault-injecting TCP proxy for peer links, for end-to-end tests of partitions.
 *
 * Every replica listens for peers on a private port (`node --listen-peer-port`); a
 * {@link FaultProxy} listens on the replica's config peer port and forwards to the private one.
 * Peer connections are one per ordered pair (the caller's outgoing link) and open with a hello
 * frame (`{"kind":"hello","from":<id>,...}`, see `src/net/peer_codec.ts`), so the proxy of
 * replica `to` learns which replica `from` is calling before it connects upstream, and applies
 * the rule of the link `from → to`:
 *
 * - `pass`: forward both ways.
 * - `drop`: a cut link. Open connections from `from` are closed at once (bytes not yet forwarded
 *   are discarded) and new ones are closed right after their hello.
 * - `delay`: forward every chunk `ms` later than it was read, in order.
 * - `blackhole`: connections stay open but every byte is discarded (a silent network). A
 *   connection that lost bytes is never forwarded again: it is closed when the rule changes,
 *   since the stream it carries has a gap.
 * - `corrupt`: a man in the middle. The next chunk `from` sends after the rule is set is forwarded
 *   with one bit of its last byte flipped (logged); then the link passes again.
 *
 * ```ts
 * const net = new FaultNetwork([FaultProxy.start({ listenPort: 7101, targetPort: 9101, to: 1 })]);
 * net.cut([2, 3], [1]);   // 2 → 1 and 3 → 1 are down
 * net.heal();             // every link passes again
 * await net.close();
 * ```
 *
 * A rule is per direction: replicas talk over one outgoing connection per ordered pair, so
 * `net.setRule(1, 3, DROP)` cuts 1 → 3 only while 3 → 1 still carries 3's messages (a link that
 * fails one way). {@link partition} cuts every link between two sides of a cluster, both
 * directions. The proxy never keeps a socket, timer or pending operation past
 * {@link FaultProxy.close}.
 *
 * @module
 */
import { concatBytes } from "../../src/kv/bytes.ts";
import { FrameDecoder } from "../../src/net/frame.ts";
import { decodePeerFrame } from "../../src/net/peer_codec.ts";

/** What a proxy does with the traffic of one link `from → to`. */
export type LinkRule =
  | { kind: "pass" }
  | { kind: "drop" }
  | { kind: "delay"; ms: number }
  | { kind: "blackhole" }
  | { kind: "corrupt" };

/** Forward everything. */
export const PASS: LinkRule = Object.freeze({ kind: "pass" });
/** Cut the link: close its connections and refuse new ones. */
export const DROP: LinkRule = Object.freeze({ kind: "drop" });
/** Keep connections open, discard every byte. */
export const BLACKHOLE: LinkRule = Object.freeze({ kind: "blackhole" });

/** Flip a bit in the next chunk forwarded, then pass. */
export const CORRUPT: LinkRule = Object.freeze({ kind: "corrupt" });

/** Forward every chunk `ms` milliseconds after it was read (order kept). */
export function delayRule(ms: number): LinkRule {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`invalid delay: ${ms}`);
  return { kind: "delay", ms };
}

/** `pass`, `drop`, `blackhole` or `delay <ms>`. */
export function describeRule(rule: LinkRule): string {
  return rule.kind === "delay" ? `delay ${rule.ms}ms` : rule.kind;
}

/** Options of {@link FaultProxy.start}. */
export interface FaultProxyOptions {
  /** Port to listen on, on 127.0.0.1 (0 picks a free one; see {@link FaultProxy.port}). */
  listenPort: number;
  /** Port the traffic goes to, on 127.0.0.1 (the replica's private peer port). */
  targetPort: number;
  /** The replica behind this proxy (for log lines). */
  to: number;
  /** A connection that has not sent its hello within this time is closed (default 5000 ms). */
  helloTimeoutMs?: number;
  /** One line per rule change and refused connection (default: none). */
  log?: (line: string) => void;
}

/** Counters of a {@link FaultProxy}, for tests and logs. */
export interface ProxyStats {
  /** Connections accepted. */
  accepted: number;
  /** Connections closed after their hello because the link was cut. */
  refused: number;
  /** Open connections closed because their link was cut (or left the blackhole). */
  cut: number;
  /** Bytes written to either side. */
  forwardedBytes: number;
  /** Bytes read and thrown away (blackhole, or pending when a link was cut). */
  discardedBytes: number;
}

const LOOPBACK = "127.0.0.1";
/** A hello is tiny; anything this large before it is not a peer. */
const MAX_HELLO_BYTES = 64 * 1024;

/** One accepted connection and, once the hello allows it, its upstream connection. */
interface Link {
  /** The calling replica, once its hello was read. */
  from: number | undefined;
  client: Deno.TcpConn;
  upstream: Deno.TcpConn | undefined;
  closed: boolean;
  /** Bytes of this connection were discarded: it must never forward again. */
  tainted: boolean;
  /** Cancels the upstream connect. */
  abort: AbortController;
  /** Wakes every delay wait of this link (called on close). */
  wakers: Set<() => void>;
}

/** Writes all of `bytes` to `conn`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/**
 * A TCP proxy in front of one replica's peer port with a rule per calling replica. Create with
 * {@link FaultProxy.start}; always {@link FaultProxy.close} it.
 */
export class FaultProxy {
  /** The replica behind this proxy. */
  readonly to: number;
  /** The port the traffic goes to. */
  readonly targetPort: number;
  readonly #listener: Deno.TcpListener;
  readonly #helloTimeoutMs: number;
  readonly #log: (line: string) => void;
  readonly #rules = new Map<number, LinkRule>();
  readonly #links = new Set<Link>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  readonly #stats: ProxyStats = {
    accepted: 0,
    refused: 0,
    cut: 0,
    forwardedBytes: 0,
    discardedBytes: 0,
  };
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(options: FaultProxyOptions) {
    this.to = options.to;
    this.targetPort = options.targetPort;
    this.#helloTimeoutMs = options.helloTimeoutMs ?? 5000;
    this.#log = options.log ?? (() => {});
    this.#listener = Deno.listen({ hostname: LOOPBACK, port: options.listenPort });
    this.#accepting = this.#acceptLoop();
  }

  /**
   * Listens on `listenPort` and starts forwarding to `targetPort`; every link passes.
   *
   * @throws the `Deno.listen` error (e.g. `Deno.errors.AddrInUse`).
   */
  static start(options: FaultProxyOptions): FaultProxy {
    return new FaultProxy(options);
  }

  /** The port this proxy listens on. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** A copy of the counters. */
  stats(): ProxyStats {
    return { ...this.#stats };
  }

  /** The rule of the link `from → this.to`. */
  rule(from: number): LinkRule {
    return this.#rules.get(from) ?? PASS;
  }

  /**
   * Open connections forwarding to the target: of replica `from`, or of anyone. A connection
   * counts once its hello was read and its upstream connection is open.
   */
  connections(from?: number): number {
    let n = 0;
    for (const link of this.#links) {
      if (link.closed || link.upstream === undefined) continue;
      if (from === undefined || link.from === from) n++;
    }
    return n;
  }

  /**
   * Sets the rule of the link `from → this.to`; applies to open connections at once (`drop`
   * closes them; leaving `blackhole` closes the ones that lost bytes).
   */
  setRule(from: number, rule: LinkRule): void {
    if (rule.kind === "delay") delayRule(rule.ms); // validates
    const old = this.rule(from);
    if (rule.kind === "pass") this.#rules.delete(from);
    else this.#rules.set(from, rule);
    if (describeRule(old) !== describeRule(rule)) {
      this.#log(`proxy ${from} -> ${this.to}: ${describeRule(old)} -> ${describeRule(rule)}`);
    }
    for (const link of this.#links) {
      if (link.from !== from || link.closed) continue;
      if (rule.kind === "drop" || (link.tainted && rule.kind !== "blackhole")) {
        this.#stats.cut++;
        this.#closeLink(link);
      }
    }
  }

  /** Every link of this proxy passes again. */
  heal(): void {
    for (const from of [...this.#rules.keys()]) this.setRule(from, PASS);
  }

  /** Stops listening, closes every connection; resolves once every socket op has ended. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    for (const link of this.#links) this.#closeLink(link);
    await this.#accepting;
    // Tasks started before the listener closed may still be registering: loop until none left.
    for (let round = 0; round < 100 && this.#tasks.size > 0; round++) {
      await Promise.all([...this.#tasks]);
    }
  }

  async #acceptLoop(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // listener closed
      }
      if (this.#closed) {
        conn.close();
        return;
      }
      this.#stats.accepted++;
      const link: Link = {
        from: undefined,
        client: conn,
        upstream: undefined,
        closed: false,
        tainted: false,
        abort: new AbortController(),
        wakers: new Set(),
      };
      this.#links.add(link);
      const task = this.#serve(link).finally(() => {
        this.#closeLink(link);
        this.#links.delete(link);
        this.#tasks.delete(task);
      });
      this.#tasks.add(task);
    }
  }

  #closeLink(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    link.abort.abort();
    for (const conn of [link.client, link.upstream]) {
      try {
        conn?.close();
      } catch {
        // already closed
      }
    }
    for (const wake of link.wakers) wake();
    link.wakers.clear();
  }

  async #serve(link: Link): Promise<void> {
    try {
      link.client.setNoDelay(true);
    } catch {
      // best effort
    }
    const hello = await this.#readHello(link);
    if (hello === undefined || link.closed) return;
    link.from = hello.from;
    const rule = this.rule(hello.from);
    if (rule.kind === "drop") {
      this.#stats.refused++;
      this.#stats.discardedBytes += hello.bytes.length;
      return;
    }
    if (rule.kind === "blackhole") {
      link.tainted = true;
      this.#stats.discardedBytes += hello.bytes.length;
      await this.#discard(link);
      return;
    }
    let upstream: Deno.TcpConn;
    try {
      upstream = await Deno.connect({
        hostname: LOOPBACK,
        port: this.targetPort,
        signal: link.abort.signal,
      });
    } catch {
      return; // target down (or we are closing): the caller sees EOF and reconnects
    }
    if (link.closed) {
      upstream.close();
      return;
    }
    link.upstream = upstream;
    try {
      upstream.setNoDelay(true);
    } catch {
      // best effort
    }
    // The rule may have changed while connecting; `#forward` applies it to the hello too.
    await Promise.all([
      this.#pipe(link, link.client, upstream, hello.bytes),
      this.#pipe(link, upstream, link.client, undefined),
    ]);
  }

  /** Reads until the hello frame is complete; its sender and every byte read so far. */
  async #readHello(link: Link): Promise<{ from: number; bytes: Uint8Array } | undefined> {
    const timer = setTimeout(() => {
      this.#log(`proxy -> ${this.to}: no hello within ${this.#helloTimeoutMs} ms, closing`);
      this.#closeLink(link);
    }, this.#helloTimeoutMs);
    const decoder = new FrameDecoder(MAX_HELLO_BYTES);
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(16 * 1024);
    try {
      for (;;) {
        let n: number | null;
        try {
          n = await link.client.read(buf);
        } catch {
          return undefined;
        }
        if (n === null || link.closed) return undefined;
        const chunk = buf.slice(0, n);
        chunks.push(chunk);
        decoder.push(chunk);
        let payload: Uint8Array | null;
        try {
          payload = decoder.next();
          if (payload === null) continue;
          const frame = decodePeerFrame(payload);
          if (frame.kind !== "hello") throw new Error(`first frame is "${frame.kind}"`);
          return { from: frame.from, bytes: concatBytes(chunks) };
        } catch (err) {
          this.#log(`proxy -> ${this.to}: not a peer hello, closing: ${String(err)}`);
          return undefined;
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads and throws away everything until the link closes. */
  async #discard(link: Link): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    while (!link.closed) {
      let n: number | null;
      try {
        n = await link.client.read(buf);
      } catch {
        return;
      }
      if (n === null) return;
      this.#stats.discardedBytes += n;
    }
  }

  /**
   * Copies `src` to `dst` under the link's rule until either side ends or the link is closed;
   * then closes the link. `first` is written before anything read from `src`.
   */
  async #pipe(
    link: Link,
    src: Deno.TcpConn,
    dst: Deno.TcpConn,
    first: Uint8Array | undefined,
  ): Promise<void> {
    let chain: Promise<void> = Promise.resolve();
    const forward = (bytes: Uint8Array): boolean => {
      if (link.closed) return false;
      const rule = this.rule(link.from!);
      if (rule.kind === "drop" || (link.tainted && rule.kind !== "blackhole")) {
        this.#stats.discardedBytes += bytes.length;
        this.#closeLink(link);
        return false;
      }
      if (rule.kind === "blackhole") {
        link.tainted = true;
        this.#stats.discardedBytes += bytes.length;
        return true;
      }
      if (rule.kind === "corrupt" && src === link.client && bytes.length > 0) {
        bytes[bytes.length - 1] ^= 0x01;
        this.setRule(link.from!, PASS);
        this.#log(
          `proxy ${link.from} -> ${this.to}: flipped a bit of byte ${bytes.length - 1} of a ` +
            `${bytes.length}-byte chunk`,
        );
      }
      const due = performance.now() + (rule.kind === "delay" ? rule.ms : 0);
      chain = chain.then(async () => {
        await this.#waitUntil(link, due);
        if (link.closed) {
          this.#stats.discardedBytes += bytes.length;
          return;
        }
        try {
          await writeAll(dst, bytes);
          this.#stats.forwardedBytes += bytes.length;
        } catch {
          this.#closeLink(link);
        }
      });
      // Without a delay, wait for the write (back-pressure); with one, keep reading so that
      // chunks are delayed independently rather than one after another.
      return rule.kind !== "delay";
    };
    if (first !== undefined && forward(first)) await chain;
    const buf = new Uint8Array(64 * 1024);
    while (!link.closed) {
      let n: number | null;
      try {
        n = await src.read(buf);
      } catch {
        break;
      }
      if (n === null) break;
      if (forward(buf.slice(0, n))) await chain;
    }
    await chain; // delayed bytes of a cleanly ended stream still go out (or are discarded)
    this.#closeLink(link);
  }

  /** Resolves at `due` (performance.now() time), or at once when the link closes. */
  #waitUntil(link: Link, due: number): Promise<void> {
    const left = due - performance.now();
    if (left <= 0 || link.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        link.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, left);
      link.wakers.add(wake);
    });
  }
}

/** A set of {@link FaultProxy}s, one per replica, addressed by link `from → to`. */
export class FaultNetwork {
  readonly #proxies = new Map<number, FaultProxy>();

  /** Groups `proxies` (one per replica `to`). */
  constructor(proxies: Iterable<FaultProxy>) {
    for (const p of proxies) {
      if (this.#proxies.has(p.to)) throw new Error(`two proxies in front of replica ${p.to}`);
      this.#proxies.set(p.to, p);
    }
  }

  /** The replicas that have a proxy, ascending. */
  get ids(): number[] {
    return [...this.#proxies.keys()].sort((a, b) => a - b);
  }

  /** The proxy in front of replica `to`. */
  proxy(to: number): FaultProxy {
    const p = this.#proxies.get(to);
    if (p === undefined) throw new Error(`no proxy in front of replica ${to}`);
    return p;
  }

  /** The rule of the link `from → to`. */
  rule(from: number, to: number): LinkRule {
    return this.proxy(to).rule(from);
  }

  /** Sets the rule of the link `from → to` (see {@link FaultProxy.setRule}). */
  setRule(from: number, to: number, rule: LinkRule): void {
    this.proxy(to).setRule(from, rule);
  }

  /** Sets `rule` (default `drop`) on every link from a replica of `from` to another of `to`. */
  cut(from: Iterable<number>, to: Iterable<number>, rule: LinkRule = DROP): void {
    const targets = [...to];
    for (const f of from) {
      for (const t of targets) if (f !== t) this.setRule(f, t, rule);
    }
  }

  /** Every link passes again. */
  heal(): void {
    for (const p of this.#proxies.values()) p.heal();
  }

  /** The links whose rule is not `pass`, e.g. `"3->1 drop, 1->3 drop"` (or `"none"`). */
  describe(): string {
    const parts: string[] = [];
    for (const to of this.ids) {
      for (const from of this.ids) {
        const rule = this.rule(from, to);
        if (rule.kind !== "pass") parts.push(`${from}->${to} ${describeRule(rule)}`);
      }
    }
    return parts.length === 0 ? "none" : parts.join(", ");
  }

  /** Closes every proxy. */
  async close(): Promise<void> {
    await Promise.all([...this.#proxies.values()].map((p) => p.close()));
  }
}

/** What {@link partition} needs of a cluster: its ids and its proxies. */
export interface ProxiedCluster {
  /** Every replica id. */
  readonly ids: readonly number[];
  /** The proxies in front of the replicas' peer ports. */
  network(): FaultNetwork;
}

/**
 * Cuts every link between `side` and the other replicas of `cluster`, both directions, with
 * `rule` (default `drop`); links inside each side keep their rules. Returns both sides.
 *
 * @throws {Error} when `side` is empty, names an unknown replica, or holds every replica.
 */
export function partition(
  cluster: ProxiedCluster,
  side: readonly number[],
  rule: LinkRule = DROP,
): { side: number[]; rest: number[] } {
  const ids = [...cluster.ids];
  const cutOff = [...new Set(side)].sort((a, b) => a - b);
  for (const id of cutOff) {
    if (!ids.includes(id)) throw new Error(`partition: no replica ${id}`);
  }
  const rest = ids.filter((id) => !cutOff.includes(id));
  if (cutOff.length === 0 || rest.length === 0) {
    throw new Error(`partition: both sides must be non-empty (side ${cutOff.join(",")})`);
  }
  const net = cluster.network();
  net.cut(cutOff, rest, rule);
  net.cut(rest, cutOff, rule);
  return { side: cutOff, rest };
}
