/**
 * This replica's pub/sub: who is subscribed to which channels and patterns (local state, never
 * replicated), and the fan-out of a published message to them.
 *
 * Messages reach the hub from the state machine as operations are applied (PUBLISH, keyspace
 * notifications), so every replica fans out the same messages in the same order: the total
 * order is the order of every subscriber's stream. The reply shapes are Redis's (RESP2): a
 * `message` push `["message", channel, payload]`, a `pmessage` push
 * `["pmessage", pattern, channel, payload]`, and one confirmation per channel or pattern
 * (`["subscribe", channel, count]` ...), where count is the client's subscriptions after it.
 *
 * @module
 */
import type { ByteString, Reply } from "../core/types.ts";
import { globMatch } from "../kv/glob.ts";

/** One subscribed connection: pushes go out on it in order, after its earlier replies. */
export interface Subscriber {
  /** Queues `reply` on the connection. */
  push(reply: Reply): void;
}

/** The subscribers of each channel and pattern on this replica. */
export class PubSubHub {
  readonly #channels = new Map<ByteString, Set<Subscriber>>();
  readonly #patterns = new Map<ByteString, Set<Subscriber>>();

  /**
   * Delivers `message` to the subscribers of `channel` and of every matching pattern; returns
   * how many pushes were made. (A push may close its connection for the output limit, which
   * unsubscribes it: the sets may shrink while they are walked, which Set and Map allow.)
   */
  publish(channel: ByteString, message: ByteString): number {
    let n = 0;
    for (const s of this.#channels.get(channel) ?? []) {
      s.push(["message", channel, message]);
      n++;
    }
    for (const [pattern, subs] of this.#patterns) {
      if (!globMatch(pattern, channel)) continue;
      for (const s of subs) {
        s.push(["pmessage", pattern, channel, message]);
        n++;
      }
    }
    return n;
  }

  /** Adds `s` to `name`'s subscribers (a channel, or a pattern when `pattern`). */
  add(s: Subscriber, name: ByteString, pattern: boolean): void {
    const map = pattern ? this.#patterns : this.#channels;
    let set = map.get(name);
    if (set === undefined) map.set(name, set = new Set());
    set.add(s);
  }

  /** Removes `s` from `name`'s subscribers. */
  remove(s: Subscriber, name: ByteString, pattern: boolean): void {
    const map = pattern ? this.#patterns : this.#channels;
    const set = map.get(name);
    if (set === undefined) return;
    set.delete(s);
    if (set.size === 0) map.delete(name);
  }

  /** PUBSUB CHANNELS: channels with at least one subscriber, matching `pattern` if given. */
  channels(pattern?: ByteString): ByteString[] {
    const out: ByteString[] = [];
    for (const ch of this.#channels.keys()) {
      if (pattern === undefined || globMatch(pattern, ch)) out.push(ch);
    }
    return out;
  }

  /** PUBSUB NUMSUB: subscribers of `channel` (patterns not counted, as in Redis). */
  numsub(channel: ByteString): number {
    return this.#channels.get(channel)?.size ?? 0;
  }

  /** PUBSUB NUMPAT: patterns with at least one subscriber. */
  numpat(): number {
    return this.#patterns.size;
  }
}

/** One connection's subscriptions, and the commands that change them. */
export class Subscriptions {
  readonly #hub: PubSubHub;
  readonly #self: Subscriber;
  readonly channels = new Set<ByteString>();
  readonly patterns = new Set<ByteString>();

  /** The subscriptions of the connection `self` in `hub`. */
  constructor(hub: PubSubHub, self: Subscriber) {
    this.#hub = hub;
    this.#self = self;
  }

  /** Channels plus patterns subscribed (the count in every confirmation). */
  get count(): number {
    return this.channels.size + this.patterns.size;
  }

  /** SUBSCRIBE / PSUBSCRIBE: one confirmation per name, in order. */
  subscribe(names: readonly ByteString[], pattern: boolean): Reply[] {
    const set = pattern ? this.patterns : this.channels;
    const kind = pattern ? "psubscribe" : "subscribe";
    return names.map((name) => {
      if (!set.has(name)) {
        set.add(name);
        this.#hub.add(this.#self, name, pattern);
      }
      return [kind, name, this.count];
    });
  }

  /**
   * UNSUBSCRIBE / PUNSUBSCRIBE: one confirmation per name (every subscribed one when `names` is
   * empty; `[kind, nil, count]` when there was none).
   */
  unsubscribe(names: readonly ByteString[], pattern: boolean): Reply[] {
    const set = pattern ? this.patterns : this.channels;
    const kind = pattern ? "punsubscribe" : "unsubscribe";
    const chosen = names.length > 0 ? names : [...set];
    if (chosen.length === 0) return [[kind, null, this.count]];
    return chosen.map((name) => {
      if (set.delete(name)) this.#hub.remove(this.#self, name, pattern);
      return [kind, name, this.count];
    });
  }

  /** Drops every subscription (the connection closed, or RESET). */
  clear(): void {
    for (const ch of this.channels) this.#hub.remove(this.#self, ch, false);
    for (const p of this.patterns) this.#hub.remove(this.#self, p, true);
    this.channels.clear();
    this.patterns.clear();
  }
}
