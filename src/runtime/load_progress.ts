/**
 * How far a restarting replica's loading has come, in bytes of its data directory, as Redis counts
 * its file's: the snapshot file's bytes, half of them as the file is read and parsed and half in
 * proportion to the keys restored (the two passes take about as long: 6 and 9 s for 5.7 million
 * keys), then the log's records' bytes as they are replayed. The storage says how large both are
 * and how much of each was read, the key store how many keys were restored; INFO shows the sum
 * (`loading_*` fields).
 *
 * @module
 */

/** Turns the parts of loading into `(loaded, total)` bytes, told to `report` on every change. */
export class LoadProgress {
  readonly #report: (loaded: number, total: number) => void;
  #snapshotBytes = 0;
  #totalBytes = 0;
  /** The snapshot file's bytes read and parsed so far. */
  #readBytes = 0;

  constructor(report: (loaded: number, total: number) => void) {
    this.#report = report;
  }

  /**
   * The sizes of the snapshot file and of the log's records (no key restored yet): told once the
   * snapshot file's size is known, with the log's 0 (before the file is read), and again once the
   * log's records are too.
   */
  sized(snapshotBytes: number, logBytes: number): void {
    this.#snapshotBytes = snapshotBytes;
    this.#totalBytes = snapshotBytes + logBytes;
    this.#report(this.#readShare(), this.#totalBytes);
  }

  /** `bytes` of the snapshot file are read and parsed: half of their count. */
  read(bytes: number): void {
    this.#readBytes = Math.min(bytes, this.#snapshotBytes);
    this.#report(this.#readShare(), this.#totalBytes);
  }

  /**
   * `restored` of the snapshot's `keys` keys are restored (the file was read): half of its
   * bytes, and that share of the other half.
   */
  restored(restored: number, keys: number): void {
    const read = halfOf(this.#snapshotBytes);
    const share = keys > 0 ? (this.#snapshotBytes - read) * restored / keys : 0;
    this.#report(read + Math.floor(share), this.#totalBytes);
  }

  /** The bytes that reading the snapshot file counts for so far: half of those read. */
  #readShare(): number {
    return halfOf(this.#readBytes);
  }

  /** `bytes` of the log's records are replayed (the snapshot was restored before). */
  replayed(bytes: number): void {
    this.#report(this.#snapshotBytes + bytes, this.#totalBytes);
  }
}

/** What reading `bytes` of the snapshot file counts for. */
function halfOf(bytes: number): number {
  return Math.floor(bytes / 2);
}
