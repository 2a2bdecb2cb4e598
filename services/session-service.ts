import { createHash, randomBytes } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'
import { InvalidCredentialsError, InvalidRefreshTokenError, NotFoundError } from './errors.js'
import type { RefreshTokenRepository, SessionSummary, UserRepository } from './ports.js'
import type { AccessToken, TokenService } from './token-service.js'

export interface ClientInfo {
  userAgent: string | undefined
  ip: string | undefined
}

export interface SessionTokens extends AccessToken {
  refresh_token: string
  refresh_expires_in: number
}

/** A refresh token used again after it was rotated, outside the grace window: likely stolen. */
export interface ReuseEvent {
  userId: string
  familyId: string
  tokenId: string
  client: ClientInfo
}

export interface SessionServiceOptions {
  refreshTokens: RefreshTokenRepository
  users: UserRepository
  accessTokens: TokenService
  refreshTtlSeconds: number
  /** Two refreshes of one token this close together are a client race, not theft. */
  reuseGraceSeconds: number
  onReuse: (event: ReuseEvent) => void
  now?: () => Date
}

export type SessionService = ReturnType<typeof createSessionService>

const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex')
// Client-supplied details are stored for the owner to recognise a session, not trusted; cap them.
const clip = (value: string | undefined): string | null => value === undefined ? null : value.slice(0, 512)

/**
 * Sessions are families of opaque refresh tokens, rotated on every use. Only their SHA-256 is
 * stored. A token used a second time revokes its whole family, unless the second use comes
 * within the grace window (two tabs refreshing at once), which gets a sibling token instead.
 */
export function createSessionService (options: SessionServiceOptions) {
  const { refreshTokens, users, accessTokens, refreshTtlSeconds, reuseGraceSeconds, onReuse } = options
  const now = options.now ?? (() => new Date())

  /**
   * A new token in `familyId`: the family's first (a login) or the replacement of `parentId`.
   * Refused when the user was deleted, or the parent revoked (reuse, logout, a password change),
   * while the request was in flight.
   */
  async function issue (user: { id: string, role: 'user' | 'admin' }, familyId: string, client: ClientInfo, parentId?: string): Promise<SessionTokens> {
    const refreshToken = randomBytes(32).toString('base64url')
    const issuedAt = now()
    const created = await refreshTokens.create({
      id: uuidv7(),
      family_id: familyId,
      user_id: user.id,
      token_hash: hashToken(refreshToken),
      created_at: issuedAt,
      expires_at: new Date(issuedAt.getTime() + refreshTtlSeconds * 1000),
      user_agent: clip(client.userAgent),
      ip: clip(client.ip)
    }, parentId)
    if (!created) throw parentId === undefined ? new InvalidCredentialsError() : new InvalidRefreshTokenError()
    return { ...accessTokens.issueAccessToken(user), refresh_token: refreshToken, refresh_expires_in: refreshTtlSeconds }
  }

  async function issueFor (parent: { id: string, user_id: string, family_id: string }, client: ClientInfo): Promise<SessionTokens> {
    // The role comes from the database, so a promotion or demotion takes effect at the next refresh.
    const user = await users.findById(parent.user_id)
    if (user === undefined) throw new InvalidRefreshTokenError()
    return await issue(user, parent.family_id, client, parent.id)
  }

  return {
    /** A new session for a user who just proved who they are. */
    start: async (user: { id: string, role: 'user' | 'admin' }, client: ClientInfo): Promise<SessionTokens> =>
      await issue(user, uuidv7(), client),

    async refresh (refreshToken: string, client: ClientInfo): Promise<SessionTokens> {
      const hash = hashToken(refreshToken)
      const at = now()
      const consumed = await refreshTokens.consume(hash, at)
      if (consumed !== undefined) return await issueFor(consumed, client)

      const known = await refreshTokens.findByHash(hash)
      if (known?.used_at == null || known.revoked_at !== null || known.expires_at <= at) throw new InvalidRefreshTokenError()
      // A zero window means none: a concurrent second use whose clock read came a moment before the
      // winner's (a negative gap) must not slip through as a "race".
      if (reuseGraceSeconds > 0 && at.getTime() - known.used_at.getTime() <= reuseGraceSeconds * 1000) {
        return await issueFor(known, client)
      }
      await refreshTokens.revokeFamily(known.family_id, at)
      onReuse({ userId: known.user_id, familyId: known.family_id, tokenId: known.id, client })
      throw new InvalidRefreshTokenError()
    },

    /** Ends the session a refresh token belongs to. Unknown tokens are ignored: logout is idempotent. */
    async logout (refreshToken: string): Promise<void> {
      const known = await refreshTokens.findByHash(hashToken(refreshToken))
      if (known !== undefined) await refreshTokens.revokeFamily(known.family_id, now())
    },

    logoutAll: async (userId: string): Promise<void> => { await refreshTokens.revokeAllForUser(userId, now()) },

    list: async (userId: string): Promise<SessionSummary[]> => await refreshTokens.listActiveSessions(userId, now()),

    async revoke (userId: string, sessionId: string): Promise<void> {
      if (!await refreshTokens.revokeFamily(sessionId, now(), userId)) throw new NotFoundError('No such session')
    }
  }
}
