import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { createShutdown } from './shutdown.js'

async function main (): Promise<void> {
  const { config, warnings } = loadConfig()
  const app = await buildApp(config)
  for (const warning of warnings) app.log.warn(warning)

  const shutdown = createShutdown({
    close: async () => {
      // Readiness fails at once; serving goes on for the delay so the load balancer stops sending
      // first; then close: stop accepting, let in-flight requests finish, drop idle keep-alive
      // connections, close the pool and Redis (their onClose hooks).
      app.lifecycle.draining = true
      await new Promise((resolve) => setTimeout(resolve, config.shutdown.delayMs))
      await app.close()
    },
    exit: (code) => process.exit(code),
    log: app.log,
    deadlineMs: config.shutdown.delayMs + config.shutdown.timeoutMs
  })
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)

  await app.listen({ port: config.port, host: config.host })
}

main().catch((err: unknown) => {
  // A ConfigError's message already lists each bad variable; anything else needs its stack.
  process.stderr.write(`gatehouse failed to start: ${err instanceof ConfigError ? err.message : String((err as Error).stack)}\n`)
  process.exit(1)
})
