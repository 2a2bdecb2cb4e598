import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import type { PasswordHasher } from '../services/ports.js'
import { limitHashing } from '../services/hashing-limit.js'
import { createArgon2Hasher } from '../services/password-hasher.js'
import { createSessionService, type SessionService } from '../services/session-service.js'
import { createTokenService, type TokenService } from '../services/token-service.js'
import { createUserService, type UserService } from '../services/user-service.js'

declare module 'fastify' {
  interface FastifyInstance {
    users: UserService
    tokens: TokenService
    sessions: SessionService
  }
}

export interface ServicesOptions {
  config: Config
  /** Defaults to argon2id with OWASP parameters; tests may pass a cheaper one. */
  hasher?: PasswordHasher
}

/** Wires the domain services to the repositories and the signer, and creates the first admin if configured. */
export default fp<ServicesOptions>(async function services (app, { config, hasher = createArgon2Hasher() }) {
  const users = createUserService(app.userRepository, limitHashing(hasher, config.passwordHashing))
  const tokens = createTokenService((claims) => app.jwt.sign(claims), config.jwt.accessTokenTtlSeconds)
  app.decorate('users', users)
  app.decorate('tokens', tokens)
  app.decorate('sessions', createSessionService({
    refreshTokens: app.refreshTokenRepository,
    users: app.userRepository,
    accessTokens: tokens,
    refreshTtlSeconds: config.sessions.refreshTokenTtlSeconds,
    reuseGraceSeconds: config.sessions.reuseGraceSeconds,
    onReuse: (event) => {
      app.metrics.refreshReuse.inc()
      // A security event: someone presented a refresh token that had already been exchanged.
      app.log.warn({ event: 'refresh_token_reuse', userId: event.userId, sessionId: event.familyId, tokenId: event.tokenId, ip: event.client.ip, userAgent: event.client.userAgent }, 'refresh token reuse: session revoked')
    }
  }))

  if (config.admin !== undefined) {
    const outcome = await users.ensureAdmin(config.admin.email, config.admin.password)
    app.log.info({ outcome }, 'admin account checked')
  }
}, { name: 'services', dependencies: ['db', 'auth', 'metrics'] })
