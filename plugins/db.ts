import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { openDatabase, type DatabaseHandle } from '../db/connection.js'
import { migrateToLatest } from '../db/migrator.js'
import type { QueryObserver } from '../db/query-observer.js'
import { createRefreshTokenRepository } from '../db/refresh-token-repository.js'
import { createUserRepository } from '../db/user-repository.js'
import type { RefreshTokenRepository, UserRepository } from '../services/ports.js'

declare module 'fastify' {
  interface FastifyInstance {
    database: DatabaseHandle
    userRepository: UserRepository
    refreshTokenRepository: RefreshTokenRepository
  }
}

/** Opens the database (PostgreSQL pool or embedded PGlite), migrates it if configured, closes it on shutdown. */
export default fp<{ config: Config['database'], observeQuery?: QueryObserver | undefined }>(async function db (app, { config, observeQuery }) {
  // The message and SQLSTATE only: the error carries the whole pg client object.
  const handle = await openDatabase(config, (err) => { app.log.warn({ err: err.message, code: (err as { code?: unknown }).code }, 'database connection lost') }, observeQuery)
  if (config.migrateOnStart) {
    try {
      const results = await migrateToLatest(handle.db)
      for (const r of results) app.log.info({ migration: r.migrationName, status: r.status }, 'migration')
    } catch (err) {
      // The plugin never finished loading, so onClose will not run: release the pool here.
      await handle.db.destroy()
      throw err
    }
  }
  app.log.info({ backend: handle.backend }, 'database ready')
  app.addHook('onClose', async () => { await handle.db.destroy() })
  app.decorate('database', handle)
  app.decorate('userRepository', createUserRepository(handle.db))
  app.decorate('refreshTokenRepository', createRefreshTokenRepository(handle.db))
}, { name: 'db' })
