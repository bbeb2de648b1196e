/**
 * How far a restarting replica's loading has come, in bytes of its data directory, as Redis counts
 * its file's: the snapshot file's bytes in proportion to the keys restored, then the log's records'
 * bytes as they are replayed. The storage says how large both are and how much of the log was
 * replayed, the key store how many keys were restored; INFO shows the sum (`loading_*` fields).
 *
 * @module
 */

/** Turns the parts of loading into `(loaded, total)` bytes, told to `report` on every change. */
export class LoadProgress {
  readonly #report: (loaded: number, total: number) => void;
  #snapshotBytes = 0;
  #totalBytes = 0;

  constructor(report: (loaded: number, total: number) => void) {
    this.#report = report;
  }

  /**
   * The sizes of the snapshot file and of the log's records (nothing loaded yet): told once the
   * snapshot file's size is known, with the log's 0 (before the file is read), and again once the
   * log's records are too.
   */
  sized(snapshotBytes: number, logBytes: number): void {
    this.#snapshotBytes = snapshotBytes;
    this.#totalBytes = snapshotBytes + logBytes;
    this.#report(0, this.#totalBytes);
  }

  /** `restored` of the snapshot's `keys` keys are restored: that share of its file's bytes. */
  restored(restored: number, keys: number): void {
    const loaded = keys > 0 ? Math.floor((this.#snapshotBytes * restored) / keys) : 0;
    this.#report(loaded, this.#totalBytes);
  }

  /** `bytes` of the log's records are replayed (the snapshot was restored before). */
  replayed(bytes: number): void {
    this.#report(this.#snapshotBytes + bytes, this.#totalBytes);
  }
}
