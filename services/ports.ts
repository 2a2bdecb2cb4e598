import type { NewUserRow, UserRow, UserRowPatch } from '../db/schema.js'

/** Where in the (created_at desc, id desc) order a page starts; created_at keeps full precision as text. */
export interface KeysetPosition {
  createdAt: string
  id: string
}

export interface UserPage {
  rows: UserRow[]
  /** Position of the last row when more rows follow, null on the last page. */
  next: KeysetPosition | null
}

/**
 * What the user service needs from storage. Implementations enforce uniqueness themselves and
 * report a duplicate as EmailAlreadyExistsError / UsernameAlreadyExistsError.
 */
export interface UserRepository {
  create: (user: NewUserRow) => Promise<UserRow>
  findById: (id: string) => Promise<UserRow | undefined>
  findByEmail: (email: string) => Promise<UserRow | undefined>
  update: (id: string, patch: UserRowPatch) => Promise<UserRow | undefined>
  delete: (id: string) => Promise<boolean>
  list: (limit: number, after: KeysetPosition | undefined) => Promise<UserPage>
}

export interface PasswordHasher {
  hash: (password: string) => Promise<string>
  verify: (hash: string, password: string) => Promise<boolean>
}
