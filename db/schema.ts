import type { ColumnType, Insertable, Selectable, Updateable } from 'kysely'

export const ROLES = ['user', 'admin'] as const
export type Role = typeof ROLES[number]

export interface UsersTable {
  /** UUIDv7, made by the application so ids sort by creation time. */
  id: string
  /** Trimmed and lower-cased before it is stored; unique. */
  email: string
  /** Unique case-insensitively (a unique index on lower(username)). */
  username: string
  /** argon2id PHC string; never leaves the service. */
  password_hash: string
  role: Role
  created_at: ColumnType<Date, Date | undefined, never>
  updated_at: ColumnType<Date, Date | undefined, Date>
}

export interface RefreshTokensTable {
  id: string
  family_id: string
  user_id: string
  token_hash: string
  created_at: ColumnType<Date, Date | undefined, never>
  expires_at: Date
  used_at: Date | null
  revoked_at: Date | null
  user_agent: string | null
  ip: string | null
}

export interface Database {
  users: UsersTable
  refresh_tokens: RefreshTokensTable
}

export type UserRow = Selectable<UsersTable>
export type NewUserRow = Insertable<UsersTable>
export type UserRowPatch = Updateable<UsersTable>
export type RefreshTokenRow = Selectable<RefreshTokensTable>
export type NewRefreshTokenRow = Insertable<RefreshTokensTable>
