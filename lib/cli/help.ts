// How `bitdrop start --help` and the banner write defaults: as people write them (7d, 24h, 5GiB, on), the
// same spellings the flags accept and README shows.

const UNITS: Array<[number, string]> = [[86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'm'], [1000, 's']];

/** ms → "7d", "24h", "30m", "10s", "200ms" (the largest unit that divides it). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  // a day or so reads better in hours (24h, 36h)
  for (const [size, unit] of UNITS) if (ms % size === 0 && !(unit === 'd' && ms < 2 * size)) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** bytes → "5GiB", "600KiB", "1000" (the largest binary unit that divides it). */
export function formatSize(bytes: number): string {
  for (const [size, unit] of [[1024 ** 4, 'TiB'], [1024 ** 3, 'GiB'], [1024 ** 2, 'MiB'], [1024, 'KiB']] as Array<[number, string]>) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/** A default as --help shows it, by the option's kind. */
export function formatDefault(kind: string, value: unknown): string {
  if (kind === 'duration' && typeof value === 'number') return formatDuration(value);
  if (kind === 'bytes' && typeof value === 'number') return formatSize(value);
  if (kind === 'bool') return value ? 'on' : 'off';
  if (value && typeof value === 'object' && !Array.isArray(value)) return Object.values(value as object).join(':');
  return String(value);
}
