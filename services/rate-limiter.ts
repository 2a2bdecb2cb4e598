/** Fixed-window attempt counters. `resetMs` is how long until the key's window ends. */
export interface RateLimiter {
  /** Counts one attempt and returns the count in the current window, this one included. */
  hit: (key: string) => Promise<{ count: number, resetMs: number }>
  /** The count so far, without adding to it. */
  peek: (key: string) => Promise<{ count: number, resetMs: number }>
  reset: (key: string) => Promise<void>
}

// Past this many keys, expired windows are swept before a new key is added, so memory stays bounded
// by the number of distinct keys active within one window.
const SWEEP_AT = 10_000

/** Counters in this process only: right for one replica, or as the fallback when Redis is down. */
export function createMemoryRateLimiter (windowMs: number, now: () => number = Date.now): RateLimiter {
  const windows = new Map<string, { count: number, resetAt: number }>()
  const current = (key: string): { count: number, resetAt: number } | undefined => {
    const entry = windows.get(key)
    if (entry !== undefined && entry.resetAt <= now()) {
      windows.delete(key)
      return undefined
    }
    return entry
  }
  return {
    async hit (key) {
      let entry = current(key)
      if (entry === undefined) {
        if (windows.size >= SWEEP_AT) for (const k of [...windows.keys()]) current(k)
        entry = { count: 0, resetAt: now() + windowMs }
        windows.set(key, entry)
      }
      entry.count++
      return { count: entry.count, resetMs: entry.resetAt - now() }
    },
    async peek (key) {
      const entry = current(key)
      return entry === undefined ? { count: 0, resetMs: 0 } : { count: entry.count, resetMs: entry.resetAt - now() }
    },
    async reset (key) {
      windows.delete(key)
    }
  }
}
