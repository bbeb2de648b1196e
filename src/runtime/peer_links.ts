/**
 * The outgoing links of one replica, one {@link PeerLink} per peer, kept in step with the set of
 * peers it should talk to: {@link PeerLinks.update} opens links to new peers, closes those of
 * peers no longer listed, and replaces the link of a peer whose address changed (closing the old
 * connection, dialling the new address). The set starts from the config file's replicas and
 * then follows the protocol core's peers (`ReplicaHost.setPeers`, from `ReplicaSetHost`).
 *
 * Links are created stopped; {@link PeerLinks.start} starts them, and links created after it are
 * started at once.
 *
 * @module
 */
import type { ReplicaAddress } from "../config/config.ts";
import type { ReplicaId } from "../core/types.ts";
import type { PeerLink } from "../net/peer_link.ts";

/** Options of {@link PeerLinks}. */
export interface PeerLinksOptions {
  /** Our replica id: never linked to, even when listed. */
  self: ReplicaId;
  /** Creates the (stopped) link to `peer`. */
  create: (peer: ReplicaAddress) => PeerLink;
}

/** What {@link PeerLinks.update} changed (peer ids, ascending). */
export interface PeerLinksChange {
  added: ReplicaId[];
  removed: ReplicaId[];
  readdressed: ReplicaId[];
}

/** One peer's link and the address it dials. */
interface Entry {
  address: ReplicaAddress;
  link: PeerLink;
}

/** The outgoing links by peer id. */
export class PeerLinks {
  readonly #opts: PeerLinksOptions;
  readonly #entries = new Map<ReplicaId, Entry>();
  /** Closes of links replaced or removed, still under way. */
  readonly #closing = new Set<Promise<void>>();
  #started = false;
  #closed = false;

  /** No links until {@link PeerLinks.update}. */
  constructor(options: PeerLinksOptions) {
    this.#opts = options;
  }

  /** The link to `peer`, if it is in the set. */
  get(peer: ReplicaId): PeerLink | undefined {
    return this.#entries.get(peer)?.link;
  }

  /** The peers in the set, ascending. */
  get peers(): ReplicaId[] {
    return [...this.#entries.keys()].sort((a, b) => a - b);
  }

  /** Every current link. */
  links(): PeerLink[] {
    return [...this.#entries.values()].map((e) => e.link);
  }

  /** The address the link to `peer` dials, if it is in the set. */
  address(peer: ReplicaId): ReplicaAddress | undefined {
    const a = this.#entries.get(peer)?.address;
    return a === undefined ? undefined : { ...a };
  }

  /**
   * Makes the set of links that of `addresses` (ours, if listed, is skipped): new peers get a
   * link, peers no longer listed lose theirs (closed in the background), and a peer whose host or
   * peer port changed gets a new link to its new address. Ignored after {@link PeerLinks.close}.
   *
   * @throws {Error} when an id is listed twice.
   */
  update(addresses: readonly ReplicaAddress[]): PeerLinksChange {
    const change: PeerLinksChange = { added: [], removed: [], readdressed: [] };
    if (this.#closed) return change;
    const wanted = new Map<ReplicaId, ReplicaAddress>();
    for (const a of addresses) {
      if (wanted.has(a.id)) throw new Error(`peer links: replica ${a.id} listed twice`);
      if (a.id !== this.#opts.self) wanted.set(a.id, { ...a });
    }
    for (const [id, entry] of [...this.#entries]) {
      if (wanted.has(id)) continue;
      this.#entries.delete(id);
      this.#retire(entry.link);
      change.removed.push(id);
    }
    for (const [id, address] of wanted) {
      const entry = this.#entries.get(id);
      if (entry !== undefined) {
        const same = entry.address.host === address.host &&
          entry.address.peerPort === address.peerPort;
        // Other fields (client and HTTP ports) do not concern the link.
        entry.address = address;
        if (same) continue;
        this.#retire(entry.link);
        change.readdressed.push(id);
      } else {
        change.added.push(id);
      }
      const link = this.#opts.create(address);
      this.#entries.set(id, { address, link });
      if (this.#started) link.start();
    }
    change.added.sort((a, b) => a - b);
    change.removed.sort((a, b) => a - b);
    change.readdressed.sort((a, b) => a - b);
    return change;
  }

  /** Starts every link (and later ones as they are created). */
  start(): void {
    if (this.#closed) return;
    this.#started = true;
    for (const { link } of this.#entries.values()) link.start();
  }

  /** Closes every link; resolves when all of them (and those retired earlier) have ended. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const { link } of this.#entries.values()) this.#retire(link);
    this.#entries.clear();
    while (this.#closing.size > 0) await Promise.all([...this.#closing]);
  }

  /** Closes `link` in the background, keeping its end for {@link PeerLinks.close}. */
  #retire(link: PeerLink): void {
    const done = link.close().catch(() => {}).finally(() => this.#closing.delete(done));
    this.#closing.add(done);
  }
}
