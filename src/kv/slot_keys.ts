/**
 * The keys of each hash slot of a sharded group's key space, as Redis Cluster keeps them
 * (`slots_to_keys`): CLUSTER COUNTKEYSINSLOT and GETKEYSINSLOT, the batches of a slot move and
 * the check that a slot given away holds no key read the keys of their slots only. They walked
 * every key of the key space before, and a slot move's batch, applied by every replica of the
 * group, did so once per batch.
 *
 * A set per slot, not an array as SCAN's buckets (`key_buckets.ts`): hash tags can put any number
 * of keys in one slot, and a delete must not search them. Set order depends on the history of adds
 * and deletes (a restored replica's differs): readers sort what they read (see
 * `KeySpace.keysInSlot`). Not part of the state: rebuilt whenever the key space is.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";

/** Keys by hash slot. */
export class SlotKeys {
  readonly #slotOf: (key: ByteString) => number;
  readonly #slots = new Map<number, Set<ByteString>>();
  #size = 0;

  /** An empty index; `slotOf` gives a key's slot. */
  constructor(slotOf: (key: ByteString) => number) {
    this.#slotOf = slotOf;
  }

  /** Number of keys held. */
  get size(): number {
    return this.#size;
  }

  /** Adds `key`, which it must not hold. */
  add(key: ByteString): void {
    const slot = this.#slotOf(key);
    const keys = this.#slots.get(slot);
    if (keys === undefined) this.#slots.set(slot, new Set([key]));
    else keys.add(key);
    this.#size++;
  }

  /** Removes `key`; false if it was not held. */
  delete(key: ByteString): boolean {
    const slot = this.#slotOf(key);
    const keys = this.#slots.get(slot);
    if (keys === undefined || !keys.delete(key)) return false;
    if (keys.size === 0) this.#slots.delete(slot);
    this.#size--;
    return true;
  }

  /** Removes every key. */
  clear(): void {
    this.#slots.clear();
    this.#size = 0;
  }

  /** The keys of `slot`, in no particular order. */
  keys(slot: number): Iterable<ByteString> {
    return this.#slots.get(slot) ?? [];
  }
}
