import { InvalidCursorError } from './errors.js'
import type { KeysetPosition } from './ports.js'

// The repository renders created_at this way: UTC, microseconds, so no precision is lost on the round trip.
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * The digits make a time that exists: no month 13, February 30 or hour 25 (which JavaScript rolls over
 * and PostgreSQL refuses, a 500), and no year 0 (which PostgreSQL has not).
 */
function isRealTime (text: string): boolean {
  const ms = Date.parse(text)
  return !Number.isNaN(ms) && !text.startsWith('0000') && new Date(ms).toISOString().slice(0, 19) === text.slice(0, 19)
}

/** Cursors are opaque to clients: base64url of the keyset position, so its shape can change freely. */
export function encodeCursor (position: KeysetPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id])).toString('base64url')
}

export function decodeCursor (cursor: string): KeysetPosition {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw new InvalidCursorError()
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw new InvalidCursorError()
  const [createdAt, id] = parsed as unknown[]
  if (typeof createdAt !== 'string' || !TIMESTAMP.test(createdAt) || !isRealTime(createdAt) || typeof id !== 'string' || !UUID.test(id)) {
    throw new InvalidCursorError()
  }
  return { createdAt, id }
}
