import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import type { PasswordHasher } from '../services/ports.js'
import { createArgon2Hasher } from '../services/password-hasher.js'
import { createTokenService, type TokenService } from '../services/token-service.js'
import { createUserService, type UserService } from '../services/user-service.js'

declare module 'fastify' {
  interface FastifyInstance {
    users: UserService
    tokens: TokenService
  }
}

export interface ServicesOptions {
  config: Config
  /** Defaults to argon2id with OWASP parameters; tests may pass a cheaper one. */
  hasher?: PasswordHasher
}

/** Wires the domain services to the repositories and the signer, and creates the first admin if configured. */
export default fp<ServicesOptions>(async function services (app, { config, hasher = createArgon2Hasher() }) {
  const users = createUserService(app.userRepository, hasher)
  app.decorate('users', users)
  app.decorate('tokens', createTokenService((claims) => app.jwt.sign(claims), config.jwt.accessTokenTtlSeconds))

  if (config.admin !== undefined) {
    const outcome = await users.ensureAdmin(config.admin.email, config.admin.password)
    app.log.info({ outcome }, 'admin account checked')
  }
}, { name: 'services', dependencies: ['db', 'auth'] })
