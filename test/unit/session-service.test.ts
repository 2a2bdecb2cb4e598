import t from 'tap'
import type { NewRefreshTokenRow, RefreshTokenRow } from '../../db/schema.js'
import { InvalidCredentialsError, InvalidRefreshTokenError, NotFoundError } from '../../services/errors.js'
import type { RefreshTokenRepository } from '../../services/ports.js'
import { createSessionService, type ReuseEvent } from '../../services/session-service.js'
import { createTokenService } from '../../services/token-service.js'
import { an, FakeUserRepository } from '../fakes.js'

/** Refresh tokens in memory, with the same single-statement semantics as the SQL repository. */
class FakeRefreshTokens implements RefreshTokenRepository {
  readonly rows: RefreshTokenRow[] = []
  /** Stands in for the user being deleted while a request is in flight. */
  userGone = false
  async create (token: NewRefreshTokenRow, parentId?: string) {
    if (this.userGone) return false
    if (parentId !== undefined && this.rows.find((r) => r.id === parentId)?.revoked_at !== null) return false
    this.rows.push({ used_at: null, revoked_at: null, user_agent: null, ip: null, created_at: new Date(), ...token } as RefreshTokenRow)
    return true
  }

  async consume (hash: string, now: Date) {
    const row = this.rows.find((r) => r.token_hash === hash && r.used_at === null && r.revoked_at === null && r.expires_at > now)
    if (row !== undefined) row.used_at = now
    return row
  }

  async findByHash (hash: string) { return this.rows.find((r) => r.token_hash === hash) }
  async revokeFamily (familyId: string, now: Date, userId?: string) {
    const live = this.rows.filter((r) => r.family_id === familyId && r.revoked_at === null && (userId === undefined || r.user_id === userId))
    for (const r of live) r.revoked_at = now
    return live.length > 0
  }

  async revokeAllForUser (userId: string, now: Date) { for (const r of this.rows) if (r.user_id === userId) r.revoked_at = now }
  async listActiveSessions () { return [] }
}

async function setup (graceSeconds = 10) {
  let clock = new Date('2030-01-01T00:00:00Z').getTime()
  const users = new FakeUserRepository()
  const user = await users.create({ id: '01a21226-ca21-7191-8cfb-01f1e5441dc5', email: 'a@example.com', username: 'ada', password_hash: 'x', role: 'user' })
  const refreshTokens = new FakeRefreshTokens()
  const reuses: ReuseEvent[] = []
  const sessions = createSessionService({
    refreshTokens,
    users,
    accessTokens: createTokenService((claims) => `signed:${claims.sub}:${claims.role}`, 900),
    refreshTtlSeconds: 3600,
    reuseGraceSeconds: graceSeconds,
    onReuse: (event) => { reuses.push(event) },
    now: () => new Date(clock)
  })
  const tick = (seconds: number): void => { clock += seconds * 1000 }
  return { users, user, refreshTokens, sessions, reuses, tick }
}

const client = { userAgent: 'x'.repeat(600), ip: '10.0.0.1' }

t.test('start issues an access token and a refresh token stored only as a hash', async (t) => {
  const { sessions, user, refreshTokens } = await setup()
  const tokens = await sessions.start(user, client)
  t.match(tokens, { access_token: `signed:${user.id}:user`, token_type: 'Bearer', expires_in: 900, refresh_expires_in: 3600 })
  t.equal(refreshTokens.rows.length, 1)
  t.not(refreshTokens.rows[0]?.token_hash, tokens.refresh_token)
  t.match(refreshTokens.rows[0]?.token_hash, /^[0-9a-f]{64}$/)
  t.equal(refreshTokens.rows[0]?.user_agent?.length, 512, 'client details are capped')
})

t.test('a client without user agent or address is stored as such', async (t) => {
  const { sessions, user, refreshTokens } = await setup()
  await sessions.start(user, { userAgent: undefined, ip: undefined })
  t.match(refreshTokens.rows[0], { user_agent: null, ip: null })
})

t.test('an expired refresh token is refused', async (t) => {
  const { sessions, user, tick } = await setup()
  const { refresh_token: token } = await sessions.start(user, client)
  tick(3601)
  await t.rejects(sessions.refresh(token, client), an(InvalidRefreshTokenError))
})

t.test('reuse inside the grace window gets a sibling; after it, the family is revoked and reported', async (t) => {
  const { sessions, user, reuses, tick } = await setup(10)
  const { refresh_token: first } = await sessions.start(user, client)
  const { refresh_token: second } = await sessions.refresh(first, client)
  tick(5)
  const sibling = await sessions.refresh(first, client)
  t.not(sibling.refresh_token, second)
  tick(6)
  await t.rejects(sessions.refresh(first, client), an(InvalidRefreshTokenError))
  t.match(reuses, [{ userId: user.id, client: { ip: '10.0.0.1' } }])
  await t.rejects(sessions.refresh(second, client), an(InvalidRefreshTokenError), 'every token of the family is revoked')
  await t.rejects(sessions.refresh(sibling.refresh_token, client), an(InvalidRefreshTokenError))
})

t.test('with no grace window, a second use at the very same instant is reuse', async (t) => {
  const { sessions, user, reuses } = await setup(0)
  const { refresh_token: first } = await sessions.start(user, client)
  await sessions.refresh(first, client)
  await t.rejects(sessions.refresh(first, client), an(InvalidRefreshTokenError))
  t.equal(reuses.length, 1)
})

t.test('a revoked token inside the grace window is still refused', async (t) => {
  const { sessions, user } = await setup(10)
  const { refresh_token: first } = await sessions.start(user, client)
  await sessions.refresh(first, client)
  await sessions.logout(first)
  await t.rejects(sessions.refresh(first, client), an(InvalidRefreshTokenError))
})

t.test('a token whose user is gone is refused', async (t) => {
  const { sessions, user, users } = await setup()
  const { refresh_token: token } = await sessions.start(user, client)
  await users.delete(user.id)
  await t.rejects(sessions.refresh(token, client), an(InvalidRefreshTokenError))
})

t.test('a user deleted while a login or refresh is in flight gets no token: invalid credentials, invalid refresh token', async (t) => {
  const { sessions, user, refreshTokens } = await setup()
  const { refresh_token: token } = await sessions.start(user, client)
  refreshTokens.userGone = true
  await t.rejects(sessions.start(user, client), an(InvalidCredentialsError))
  await t.rejects(sessions.refresh(token, client), an(InvalidRefreshTokenError))
  t.equal(refreshTokens.rows.length, 1, 'nothing was issued')
})

t.test('a rotation whose parent was revoked meanwhile (password change, logout-all) issues nothing', async (t) => {
  const { sessions, user, refreshTokens } = await setup()
  const { refresh_token: token } = await sessions.start(user, client)
  // The revocation lands between the consume and the new token's insert.
  const consume = refreshTokens.consume.bind(refreshTokens)
  refreshTokens.consume = async (hash, now) => {
    const row = await consume(hash, now)
    await refreshTokens.revokeAllForUser(user.id, now)
    return row
  }
  await t.rejects(sessions.refresh(token, client), an(InvalidRefreshTokenError))
  t.equal(refreshTokens.rows.length, 1, 'nothing was issued')
})

t.test('revoking a session that is not the user\'s is NotFound', async (t) => {
  const { sessions, user, refreshTokens } = await setup()
  await sessions.start(user, client)
  const family = String(refreshTokens.rows[0]?.family_id)
  await t.rejects(sessions.revoke('01a21226-0000-7000-8000-000000000000', family), an(NotFoundError))
  await sessions.revoke(user.id, family)
  await t.rejects(sessions.revoke(user.id, family), an(NotFoundError), 'already ended')
})
