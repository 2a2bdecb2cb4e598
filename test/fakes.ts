import type { NewUserRow, UserRow, UserRowPatch } from '../db/schema.js'
import { EmailAlreadyExistsError, UsernameAlreadyExistsError, type DomainError } from '../services/errors.js'
import type { KeysetPosition, PasswordHasher, PublicUserRecord, UserPage, UserRepository } from '../services/ports.js'

/**
 * The keyset text the SQL repository renders for created_at: UTC with microseconds. A JS Date has
 * only milliseconds, so the fake's microseconds are always 000; the shape is what matters.
 */
export const keysetTime = (date: Date): string => date.toISOString().replace(/Z$/, '000Z')

const positionOf = (row: UserRow): KeysetPosition => ({ createdAt: keysetTime(row.created_at), id: row.id })

/** (created_at desc, id desc), as the SQL repository orders and compares rows; a negative result means a comes first. */
function compareDescending (a: KeysetPosition, b: KeysetPosition): number {
  if (a.createdAt !== b.createdAt) return a.createdAt > b.createdAt ? -1 : 1
  if (a.id === b.id) return 0
  // uuid comparison in PostgreSQL is bytewise, which is the order of the lower-case hex text.
  return a.id.toLowerCase() > b.id.toLowerCase() ? -1 : 1
}

const copy = (row: UserRow): UserRow => ({ ...row, created_at: new Date(row.created_at), updated_at: new Date(row.updated_at) })
const publicRecord = (row: UserRow): PublicUserRecord => ({ id: row.id, email: row.email, username: row.username, role: row.role, created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString() })

export interface FakeUserRepositoryOptions {
  /** The clock behind created_at and a default updated_at; a test can freeze or step it. */
  now?: () => Date
}

/**
 * An in-memory UserRepository with the database's rules: unique email (stored already normalised,
 * so compared exactly) and username unique case-insensitively, reported as the domain errors.
 * Rows go in and out as copies, as they would through SQL.
 */
export class FakeUserRepository implements UserRepository {
  readonly #rows = new Map<string, UserRow>()
  readonly #now: () => Date

  constructor (options: FakeUserRepositoryOptions = {}) {
    this.#now = options.now ?? (() => new Date())
  }

  /** How many users are stored. */
  get size (): number {
    return this.#rows.size
  }

  /** The stored row, password hash included, for assertions the service's output hides. */
  row (id: string): UserRow | undefined {
    const row = this.#rows.get(id)
    return row === undefined ? undefined : copy(row)
  }

  #assertUnique (id: string, email: string | undefined, username: string | undefined): void {
    for (const other of this.#rows.values()) {
      if (other.id === id) continue
      if (email !== undefined && other.email === email) throw new EmailAlreadyExistsError()
      if (username !== undefined && other.username.toLowerCase() === username.toLowerCase()) throw new UsernameAlreadyExistsError()
    }
  }

  async create (user: NewUserRow): Promise<UserRow> {
    this.#assertUnique(user.id, user.email, user.username)
    const now = this.#now()
    const row: UserRow = {
      id: user.id,
      email: user.email,
      username: user.username,
      password_hash: user.password_hash,
      role: user.role ?? 'user',
      created_at: user.created_at ?? now,
      updated_at: user.updated_at ?? now
    }
    this.#rows.set(row.id, copy(row))
    return copy(row)
  }

  async findById (id: string): Promise<UserRow | undefined> {
    return this.row(id)
  }

  async findByEmail (email: string): Promise<UserRow | undefined> {
    const found = [...this.#rows.values()].find((row) => row.email === email)
    return found === undefined ? undefined : copy(found)
  }

  async update (id: string, patch: UserRowPatch): Promise<UserRow | undefined> {
    const current = this.#rows.get(id)
    if (current === undefined) return undefined
    this.#assertUnique(id, patch.email, patch.username)
    const updated = copy({ ...current, ...patch })
    this.#rows.set(id, updated)
    return copy(updated)
  }

  async delete (id: string): Promise<boolean> {
    return this.#rows.delete(id)
  }

  /** Counts calls, so a test can prove a bulk read was one repository call. */
  findByIdsCalls = 0

  async findByIds (ids: readonly string[]): Promise<PublicUserRecord[]> {
    this.findByIdsCalls++
    // uuid equality in PostgreSQL ignores the case of the hex digits.
    const wanted = new Set(ids.map((id) => id.toLowerCase()))
    return [...this.#rows.values()].filter((row) => wanted.has(row.id.toLowerCase())).map(publicRecord)
  }

  async listPublic (limit: number, after: KeysetPosition | undefined): Promise<UserPage<PublicUserRecord>> {
    const { rows, next } = await this.list(limit, after)
    return { rows: rows.map(publicRecord), next }
  }

  async list (limit: number, after: KeysetPosition | undefined): Promise<UserPage> {
    const ordered = [...this.#rows.values()]
      .sort((a, b) => compareDescending(positionOf(a), positionOf(b)))
      .filter((row) => after === undefined || compareDescending(positionOf(row), after) > 0)
    const page = ordered.slice(0, limit)
    const last = page.at(-1)
    return {
      rows: page.map(copy),
      next: ordered.length > limit && last !== undefined ? positionOf(last) : null
    }
  }
}

/**
 * A PasswordHasher that is instant and transparent: hash is 'fake$' + password. It counts calls,
 * and `failWith` makes every hash() reject with that error (verify keeps working).
 */
export class FakePasswordHasher implements PasswordHasher {
  readonly hashed: string[] = []
  readonly verified: Array<{ hash: string, password: string }> = []
  failWith: Error | undefined

  async hash (password: string): Promise<string> {
    this.hashed.push(password)
    if (this.failWith !== undefined) throw this.failWith
    return `fake$${password}`
  }

  async verify (hash: string, password: string): Promise<boolean> {
    this.verified.push({ hash, password })
    return hash === `fake$${password}`
  }
}

/**
 * A t.throws / t.rejects pattern for exactly one domain error class, by constructor and code.
 * Passing the class itself does not work: tap then compares error names, and these errors all
 * keep the name 'Error'.
 */
export const an = <E extends DomainError>(Class: new () => E): { code: string, constructor: new () => E } =>
  ({ code: new Class().code, constructor: Class })
