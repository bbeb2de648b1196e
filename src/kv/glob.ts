/**
 * Redis's glob-style pattern matching (`stringmatchlen`), used by KEYS, SCAN MATCH and friends:
 * `*` any run, `?` one byte, `[abc]`, `[^a]`, `[a-z]` classes, and `\` escaping the next byte.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";

/** True when `s` matches `pattern` (both byte strings), with Redis's rules. */
export function globMatch(pattern: ByteString, s: ByteString, nocase = false): boolean {
  return match(pattern, 0, s, 0, nocase, 0, { skipLonger: false });
}

function lower(c: string, nocase: boolean): string {
  return nocase ? c.toLowerCase() : c;
}

/**
 * `state.skipLonger` is Redis's guard against patterns like `*a*a*a*...b` (CVE-2022-36021): once
 * the rest of the pattern after a `*` matched nowhere in the rest of the string, no earlier `*`
 * can help by matching more, so the search stops instead of trying exponentially many splits.
 */
function match(
  p: string,
  pi: number,
  s: string,
  si: number,
  nocase: boolean,
  depth: number,
  state: { skipLonger: boolean },
): boolean {
  if (depth > 1000) return false; // Redis also bounds the recursion
  while (pi < p.length && si <= s.length) {
    const c = p[pi];
    if (c === "*") {
      while (pi + 1 < p.length && p[pi + 1] === "*") pi++;
      if (pi + 1 === p.length) return true;
      for (let k = si; k <= s.length; k++) {
        if (match(p, pi + 1, s, k, nocase, depth + 1, state)) return true;
        if (state.skipLonger) return false;
      }
      state.skipLonger = true;
      return false;
    }
    if (si >= s.length) return false;
    if (c === "?") {
      si++;
      pi++;
      continue;
    }
    if (c === "[") {
      pi++;
      const not = p[pi] === "^";
      if (not) pi++;
      let matched = false;
      for (;;) {
        if (pi >= p.length) {
          pi--; // like Redis: a missing ']' is treated as the end of the class
          break;
        }
        if (p[pi] === "\\" && pi + 2 < p.length + 1 && pi + 1 < p.length) {
          pi++;
          if (p[pi] === s[si]) matched = true;
        } else if (p[pi] === "]") {
          break;
        } else if (pi + 2 < p.length && p[pi + 1] === "-") {
          let start = p[pi];
          let end = p[pi + 2];
          const ch = lower(s[si], nocase);
          if (start > end) [start, end] = [end, start];
          start = lower(start, nocase);
          end = lower(end, nocase);
          pi += 2;
          if (ch >= start && ch <= end) matched = true;
        } else if (lower(p[pi], nocase) === lower(s[si], nocase)) {
          matched = true;
        }
        pi++;
      }
      if (not) matched = !matched;
      if (!matched) return false;
      si++;
      pi++;
      continue;
    }
    if (c === "\\" && pi + 1 < p.length) pi++;
    if (lower(p[pi], nocase) !== lower(s[si], nocase)) return false;
    si++;
    pi++;
  }
  return pi === p.length && si === s.length;
}
