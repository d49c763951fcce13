/**
 * Newline-delimited framing (Electrum's JSON-RPC, both sides): appends `chunk` to the unfinished tail,
 * returns the complete non-empty lines and the new tail.
 */
export function takeLines(tail: string, chunk: string): { lines: string[]; rest: string } {
  const parts = (tail + chunk).split('\n');
  const rest = parts.pop()!;
  return { lines: parts.map((l) => l.trim()).filter(Boolean), rest };
}
