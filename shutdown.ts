export interface ShutdownOptions {
  /** Stops the server and releases its resources (Fastify's app.close). */
  close: () => Promise<void>
  exit: (code: number) => void
  log: { info: (obj: object, msg: string) => void, warn: (obj: object, msg: string) => void, error: (obj: object, msg: string) => void }
  /** After this long the process exits 1 even if requests are still running. */
  deadlineMs: number
}

/**
 * The signal handler: the first signal closes gracefully (in-flight requests finish) and exits 0,
 * or 1 if closing fails or overruns the deadline; a second signal exits at once.
 */
export function createShutdown ({ close, exit, log, deadlineMs }: ShutdownOptions): (signal: string) => void {
  let closing = false
  return (signal) => {
    if (closing) {
      log.warn({ signal }, 'second signal: exiting now')
      exit(1)
      return
    }
    closing = true
    log.info({ signal }, 'shutting down')
    const deadline = setTimeout(() => {
      log.error({ deadlineMs }, 'shutdown deadline passed: exiting')
      exit(1)
    }, deadlineMs)
    deadline.unref()
    close().then(() => {
      clearTimeout(deadline)
      exit(0)
    }, (err: unknown) => {
      clearTimeout(deadline)
      log.error({ err }, 'shutdown failed')
      exit(1)
    })
  }
}
