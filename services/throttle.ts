import { createHash } from 'node:crypto'
import { TooManyRequestsError } from './errors.js'
import type { RateLimiter } from './rate-limiter.js'

export interface ThrottleLimits {
  loginFailuresPerAccount: number
  loginFailuresPerIp: number
  signupsPerIp: number
}

export type Throttle = ReturnType<typeof createThrottle>

// Keys carry a hash, not the address itself: counters in Redis should not be a list of emails.
const account = (email: string): string => `login:acct:${createHash('sha256').update(email.trim().toLowerCase()).digest('base64url')}`
const ip = (address: string): string => `login:ip:${address}`

/**
 * Brute-force limits: failed logins per account and per client IP, signups per IP. Counting only
 * failures means a user who knows their password is never slowed down by their own successes.
 */
export function createThrottle (limiter: RateLimiter, limits: ThrottleLimits) {
  async function refuseOver (key: string, limit: number): Promise<void> {
    const { count, resetMs } = await limiter.peek(key)
    if (count >= limit) throw TooManyRequestsError.after(resetMs / 1000)
  }
  return {
    async assertLoginAllowed (email: string, clientIp: string): Promise<void> {
      await refuseOver(ip(clientIp), limits.loginFailuresPerIp)
      await refuseOver(account(email), limits.loginFailuresPerAccount)
    },
    async recordLoginFailure (email: string, clientIp: string): Promise<void> {
      await Promise.all([limiter.hit(account(email)), limiter.hit(ip(clientIp))])
    },
    /** A success clears the account's failures, so a few typos do not add up over the day. */
    async recordLoginSuccess (email: string): Promise<void> {
      await limiter.reset(account(email))
    },
    async assertSignupAllowed (clientIp: string): Promise<void> {
      const { count, resetMs } = await limiter.hit(`signup:ip:${clientIp}`)
      if (count > limits.signupsPerIp) throw TooManyRequestsError.after(resetMs / 1000)
    }
  }
}
