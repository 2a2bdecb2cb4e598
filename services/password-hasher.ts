import { hash, verify, type Algorithm } from '@node-rs/argon2'
import { HashingError } from './errors.js'
import type { PasswordHasher } from './ports.js'

/** OWASP's first recommended argon2id setting (Password Storage Cheat Sheet): 19 MiB, 2 passes, 1 lane. */
export const OWASP_ARGON2ID = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const

// Algorithm is a const enum, which isolated modules cannot read; 2 is its Argon2id member.
const ARGON2ID = 2 as Algorithm

export interface Argon2Options { memoryCost: number, timeCost: number, parallelism: number }

/**
 * argon2id through @node-rs/argon2, whose prebuilt binary ships in its npm package. Its async
 * functions run on the libuv thread pool, so hashing never blocks the event loop.
 */
export function createArgon2Hasher (options: Argon2Options = OWASP_ARGON2ID): PasswordHasher {
  const params = { ...options, algorithm: ARGON2ID }
  return {
    async hash (password) {
      try {
        return await hash(password, params)
      } catch (err) {
        throw new HashingError('Password hashing failed', { cause: err })
      }
    },
    async verify (passwordHash, password) {
      try {
        return await verify(passwordHash, password)
      } catch {
        // A malformed stored hash cannot match any password; treat it as a mismatch, not a 500.
        return false
      }
    }
  }
}
