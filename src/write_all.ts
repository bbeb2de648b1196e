/**
 * Writing a whole buffer to something whose `write` may take only part of it (a file, a socket,
 * stdout).
 *
 * @module
 */

/** What {@link writeAll} writes to: `Deno.FsFile`, `Deno.Conn`, `Deno.stdout`, a `ByteConn`. */
export interface PartialWriter {
  /** Writes (a prefix of) `p`; resolves with the bytes written. */
  write(p: Uint8Array): Promise<number>;
}

/**
 * Writes all of `bytes` to `writer`, looping over short writes.
 *
 * @throws {Deno.errors.WriteZero} when a write takes nothing; whatever `write` throws.
 */
export async function writeAll(writer: PartialWriter, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const n = await writer.write(bytes.subarray(done));
    if (n <= 0) throw new Deno.errors.WriteZero(`write returned ${n}`);
    done += n;
  }
}
