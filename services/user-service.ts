import { randomBytes } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'
import type { Role, UserRow, UserRowPatch } from '../db/schema.js'
import { decodeCursor, encodeCursor } from './cursor.js'
import { normalizeEmail } from './email.js'
import {
  CurrentPasswordRequiredError, EmailAlreadyExistsError, ForbiddenError, InvalidCredentialsError,
  InvalidCurrentPasswordError, NotFoundError, UnauthorizedError, UsernameAlreadyExistsError
} from './errors.js'
import { assertAcceptablePassword } from './password-policy.js'
import type { KeysetPosition, PasswordHasher, PublicUserRecord, UserRepository } from './ports.js'

/** A user as the outside world sees it: never the password hash. */
export interface User {
  id: string
  email: string
  username: string
  role: Role
  created_at: Date
  updated_at: Date
}

/** Who is asking, from a verified access token. */
export interface Actor {
  id: string
  role: Role
}

export interface NewUser {
  email: string
  username: string
  password: string
}

export interface UserChanges {
  email?: string
  username?: string
  password?: string
  role?: Role
  current_password?: string
}

export interface UserListPage {
  data: User[]
  next_cursor: string | null
}

export interface UserLookup {
  /** The users found, in the order their ids were asked for. */
  data: PublicUserRecord[]
  /** The ids asked for that name no user, lower-cased, in the order asked. */
  not_found: string[]
}

export interface ExportOptions {
  /** Rows per repository query; each batch is one keyset page. */
  batchSize?: number
  /** Aborted when the consumer has gone away: no further batch is read. */
  signal?: AbortSignal
}

// Big enough that per-query overhead is small next to the rows, small enough that one batch in
// flight keeps memory flat however many users there are.
export const EXPORT_BATCH_SIZE = 1000

export type UserService = ReturnType<typeof createUserService>

const toUser = (row: UserRow): User => ({
  id: row.id,
  email: row.email,
  username: row.username,
  role: row.role,
  created_at: row.created_at,
  updated_at: row.updated_at
})

const isAdmin = (actor: Actor): boolean => actor.role === 'admin'

/** Self or admin: the one ownership rule every per-user operation shares. */
function assertSelfOrAdmin (actor: Actor, id: string): void {
  if (actor.id !== id && !isAdmin(actor)) throw new ForbiddenError('You may only act on your own account')
}

export function createUserService (repo: UserRepository, hasher: PasswordHasher) {
  // Verifying against a real hash when the email is unknown makes both failures cost the same,
  // so response times do not reveal which emails have accounts. Made once, on first need.
  let dummyHash: Promise<string> | undefined
  const getDummyHash = async (): Promise<string> => {
    // A failed attempt is forgotten, so one hashing hiccup does not break logins for good.
    dummyHash ??= hasher.hash(randomBytes(16).toString('hex')).catch((err: unknown) => {
      dummyHash = undefined
      throw err
    })
    return await dummyHash
  }

  async function findOrThrow (id: string): Promise<UserRow> {
    const row = await repo.findById(id)
    if (row === undefined) throw new NotFoundError()
    return row
  }

  async function create (input: NewUser, role: Role = 'user'): Promise<User> {
    const email = normalizeEmail(input.email)
    assertAcceptablePassword(input.password, { email, username: input.username })
    const passwordHash = await hasher.hash(input.password)
    const row = await repo.create({ id: uuidv7(), email, username: input.username, password_hash: passwordHash, role })
    return toUser(row)
  }

  return {
    create,

    /** Checks an email and password; unknown email and wrong password fail identically. */
    async authenticate (email: string, password: string): Promise<User> {
      let normalized: string
      try {
        normalized = normalizeEmail(email)
      } catch {
        normalized = ''
      }
      const row = normalized === '' ? undefined : await repo.findByEmail(normalized)
      const matches = await hasher.verify(row?.password_hash ?? await getDummyHash(), password)
      if (row === undefined || !matches) throw new InvalidCredentialsError()
      return toUser(row)
    },

    /** The account behind a token; a token whose user was deleted no longer authenticates anyone. */
    async me (actor: Actor): Promise<User> {
      const row = await repo.findById(actor.id)
      if (row === undefined) throw new UnauthorizedError('The account for this token no longer exists')
      return toUser(row)
    },

    async get (actor: Actor, id: string): Promise<User> {
      assertSelfOrAdmin(actor, id)
      return toUser(await findOrThrow(id))
    },

    async list (actor: Actor, limit: number, cursor: string | undefined, email?: string): Promise<UserListPage> {
      if (!isAdmin(actor)) throw new ForbiddenError('Listing users is for admins')
      // An exact lookup, not a filter over pages: at most one user has an email, so no cursor.
      if (email !== undefined) {
        const row = await repo.findByEmail(normalizeEmail(email))
        return { data: row === undefined ? [] : [toUser(row)], next_cursor: null }
      }
      const page = await repo.list(limit, cursor === undefined ? undefined : decodeCursor(cursor))
      return { data: page.rows.map(toUser), next_cursor: page.next === null ? null : encodeCursor(page.next) }
    },

    /** Many users by id in one repository call (admin). Ids match whatever their letter case. */
    async lookup (actor: Actor, ids: readonly string[]): Promise<UserLookup> {
      if (!isAdmin(actor)) throw new ForbiddenError('Looking users up in bulk is for admins')
      const wanted = [...new Set(ids.map((id) => id.toLowerCase()))]
      const found = new Map((await repo.findByIds(wanted)).map((row) => [row.id.toLowerCase(), row]))
      const data: PublicUserRecord[] = []
      const notFound: string[] = []
      for (const id of wanted) {
        const row = found.get(id)
        if (row === undefined) notFound.push(id)
        else data.push(row)
      }
      return { data, not_found: notFound }
    },

    /**
     * Every user, newest first, as batches of keyset pages, so memory stays flat however many
     * there are. Not async: a non-admin is refused when this is called, before any response starts.
     */
    exportAll (actor: Actor, options: ExportOptions = {}): AsyncGenerator<PublicUserRecord[], void> {
      if (!isAdmin(actor)) throw new ForbiddenError('Exporting users is for admins')
      const { batchSize = EXPORT_BATCH_SIZE, signal } = options
      return (async function * batches () {
        let after: KeysetPosition | undefined
        while (signal?.aborted !== true) {
          const page = await repo.listPublic(batchSize, after)
          if (page.rows.length > 0) yield page.rows
          if (page.next === null) return
          after = page.next
        }
      })()
    },

    async update (actor: Actor, id: string, changes: UserChanges): Promise<User> {
      assertSelfOrAdmin(actor, id)
      if (changes.role !== undefined && !isAdmin(actor)) throw new ForbiddenError('Only an admin may change a role')
      const current = await findOrThrow(id)
      const patch: UserRowPatch = {}
      if (changes.email !== undefined) patch.email = normalizeEmail(changes.email)
      if (changes.username !== undefined) patch.username = changes.username
      if (changes.role !== undefined) patch.role = changes.role
      // Re-authentication guards the two changes that hand an account over: a stolen token alone
      // must not be enough to take it.
      if (actor.id === id && (changes.email !== undefined || changes.password !== undefined)) {
        if (changes.current_password === undefined) throw new CurrentPasswordRequiredError()
        if (!await hasher.verify(current.password_hash, changes.current_password)) throw new InvalidCurrentPasswordError()
      }
      if (changes.password !== undefined) {
        assertAcceptablePassword(changes.password, { email: patch.email ?? current.email, username: patch.username ?? current.username })
        patch.password_hash = await hasher.hash(changes.password)
      }
      patch.updated_at = new Date()
      // A new password ends every session, in the same transaction: whoever knew the old one must sign
      // in again, and a crash or a lost connection cannot leave the new password with the old sessions.
      const row = await repo.update(id, patch, changes.password !== undefined ? { endSessionsAt: new Date() } : {})
      if (row === undefined) throw new NotFoundError()
      return toUser(row)
    },

    async delete (actor: Actor, id: string): Promise<void> {
      assertSelfOrAdmin(actor, id)
      if (!await repo.delete(id)) throw new NotFoundError()
    },

    /**
     * Creates the configured admin unless an account with that email exists. Safe to run on every
     * replica at once: the database's uniqueness decides, and losing the race is success.
     */
    async ensureAdmin (email: string, password: string): Promise<'created' | 'exists'> {
      if (await repo.findByEmail(normalizeEmail(email)) !== undefined) return 'exists'
      try {
        await create({ email, username: 'admin', password }, 'admin')
        return 'created'
      } catch (err) {
        if (err instanceof EmailAlreadyExistsError) return 'exists'
        if (!(err instanceof UsernameAlreadyExistsError)) throw err
      }
      // Someone holds the username "admin": take a unique one. Another replica may win the email
      // meanwhile, which is success too.
      try {
        await create({ email, username: `admin-${randomBytes(4).toString('hex')}`, password }, 'admin')
        return 'created'
      } catch (err) {
        if (err instanceof EmailAlreadyExistsError) return 'exists'
        throw err
      }
    }
  }
}
