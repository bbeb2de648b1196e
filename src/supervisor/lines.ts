/**
 * Line splitting of a child process's output stream.
 *
 * @module
 */

/** Longest partial line kept while waiting for its end; a longer one keeps only its tail. */
const MAX_LINE = 64 * 1024;

/**
 * Calls `onLine` for each line of `stream` (without its line end) until the stream ends or breaks;
 * a line longer than 64 KiB is cut to its last 64 KiB.
 */
export async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let rest = "";
  try {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      rest += text;
      let nl: number;
      while ((nl = rest.indexOf("\n")) !== -1) {
        onLine(rest.slice(0, nl).replace(/\r$/, ""));
        rest = rest.slice(nl + 1);
      }
      if (rest.length > MAX_LINE) rest = rest.slice(-MAX_LINE);
    }
  } catch {
    // the pipe broke: the child is gone
  }
  if (rest !== "") onLine(rest);
}
