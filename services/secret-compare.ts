import { createHash, timingSafeEqual } from 'node:crypto'

/** Compares two secrets in time that does not depend on where they differ (hashing first evens out lengths). */
export function secretsEqual (given: string, expected: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(given), digest(expected))
}
