import type { NewRefreshTokenRow, NewUserRow, RefreshTokenRow, UserRow, UserRowPatch } from '../db/schema.js'

/** Where in the (created_at desc, id desc) order a page starts; created_at keeps full precision as text. */
export interface KeysetPosition {
  createdAt: string
  id: string
}

export interface UserPage<Row = UserRow> {
  rows: Row[]
  /** Position of the last row when more rows follow, null on the last page. */
  next: KeysetPosition | null
}

/**
 * A user's public fields with the timestamps already in the API's text form (ISO 8601 in UTC,
 * milliseconds, as a JS Date would print them): the export writes millions of them, and parsing
 * each timestamp into a Date only to print it again was a fifth of its time.
 */
export interface PublicUserRecord {
  id: string
  email: string
  username: string
  role: UserRow['role']
  created_at: string
  updated_at: string
}

/**
 * What the user service needs from storage. Implementations enforce uniqueness themselves and
 * report a duplicate as EmailAlreadyExistsError / UsernameAlreadyExistsError.
 */
export interface UserRepository {
  create: (user: NewUserRow) => Promise<UserRow>
  findById: (id: string) => Promise<UserRow | undefined>
  findByEmail: (email: string) => Promise<UserRow | undefined>
  /**
   * With `endSessionsAt`, every refresh token of the user is revoked in the same transaction: a
   * password change and the end of the sessions the old password opened commit together or not at all.
   */
  update: (id: string, patch: UserRowPatch, options?: { endSessionsAt?: Date }) => Promise<UserRow | undefined>
  delete: (id: string) => Promise<boolean>
  list: (limit: number, after: KeysetPosition | undefined) => Promise<UserPage>
  /** The same pages as `list`, of public fields only, timestamps as text. */
  listPublic: (limit: number, after: KeysetPosition | undefined) => Promise<UserPage<PublicUserRecord>>
  /** The users among `ids` (lower-case canonical uuids), in no particular order, fetched in one query; public fields, timestamps as text. */
  findByIds: (ids: readonly string[]) => Promise<PublicUserRecord[]>
}

export interface PasswordHasher {
  hash: (password: string) => Promise<string>
  verify: (hash: string, password: string) => Promise<boolean>
}

/** A signed-in session as its owner sees it: one refresh-token family. */
export interface SessionSummary {
  id: string
  created_at: Date
  last_used_at: Date
  expires_at: Date
  user_agent: string | null
  ip: string | null
}

/** Storage of refresh tokens (by hash only). Every method is atomic. */
export interface RefreshTokenRepository {
  /**
   * Stores a new token, unless its user is gone or (with `parentId`, for a rotation) the token it
   * replaces has been revoked meanwhile: false then. Atomic with respect to every revocation, so a
   * revocation never misses a token issued concurrently.
   */
  create: (token: NewRefreshTokenRow, parentId?: string) => Promise<boolean>
  /**
   * Marks a live token (unused, unrevoked, unexpired at `now`) as used and returns it; undefined
   * when no such token exists, so exactly one of several concurrent callers wins.
   */
  consume: (tokenHash: string, now: Date) => Promise<RefreshTokenRow | undefined>
  findByHash: (tokenHash: string) => Promise<RefreshTokenRow | undefined>
  /** Revokes every token of a family; with `userId`, only if the family is that user's. True if any was live. */
  revokeFamily: (familyId: string, now: Date, userId?: string) => Promise<boolean>
  revokeAllForUser: (userId: string, now: Date) => Promise<void>
  listActiveSessions: (userId: string, now: Date) => Promise<SessionSummary[]>
}
