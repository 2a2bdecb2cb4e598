import { HashingBusyError } from './errors.js'
import type { PasswordHasher } from './ports.js'

export interface HashingLimits {
  /** Hashes computed at once. */
  concurrency: number
  /** Hashes allowed to wait for a slot; past that, HashingBusyError (503). */
  maxQueued: number
}

/**
 * Runs at most `concurrency` hashes at a time. argon2 runs on libuv's thread pool (4 threads by
 * default): a login storm would otherwise keep every core hashing, and the event loop, which
 * answers every other request, would wait for CPU. With one core left free, reads keep their
 * latency and logins queue instead; a queue past `maxQueued` is refused with 503 rather than
 * left to grow until the callers time out.
 */
export function limitHashing (hasher: PasswordHasher, { concurrency, maxQueued }: HashingLimits): PasswordHasher {
  let running = 0
  const queue: Array<() => void> = []
  const limited = <A extends unknown[], R>(work: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    if (running >= concurrency) {
      if (queue.length >= maxQueued) throw new HashingBusyError()
      // The slot is handed over by the hash that finishes, so `running` stays counted.
      await new Promise<void>((resolve) => queue.push(resolve))
    } else {
      running++
    }
    try {
      return await work(...args)
    } finally {
      const next = queue.shift()
      if (next === undefined) running--
      else next()
    }
  }
  return { hash: limited(hasher.hash.bind(hasher)), verify: limited(hasher.verify.bind(hasher)) }
}
