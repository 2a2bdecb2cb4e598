import type { Role } from '../db/schema.js'

/** The claims Gatehouse puts in an access token besides iat, exp, iss and aud, which the signer adds. */
export interface AccessClaims {
  sub: string
  role: Role
}

/** Signs claims into a compact JWT; in the app, @fastify/jwt configured with the pinned algorithm. */
export type SignAccessToken = (claims: AccessClaims) => string

export interface AccessToken {
  access_token: string
  token_type: 'Bearer'
  expires_in: number
}

export interface TokenService {
  issueAccessToken: (user: { id: string, role: Role }) => AccessToken
}

export function createTokenService (sign: SignAccessToken, ttlSeconds: number): TokenService {
  return {
    issueAccessToken (user) {
      return { access_token: sign({ sub: user.id, role: user.role }), token_type: 'Bearer', expires_in: ttlSeconds }
    }
  }
}
