/**
 * Writes the OpenAPI document the app serves to openapi.json, so client generators and linters
 * work from a committed file that review shows changing. Built in-process on an in-memory
 * database: nothing listens and nothing is kept. test/integration/openapi-file.test.ts fails when
 * the file is stale.
 */
import { writeFile } from 'node:fs/promises'
import { buildApp } from '../app.js'
import { loadConfig } from '../config.js'

const { config } = loadConfig({
  NODE_ENV: 'production',
  LOG_LEVEL: 'silent',
  PGLITE_DATA_DIR: 'memory://',
  // Only so the configuration loads: nothing is signed here.
  JWT_SECRET: 'openapi-generation-only-secret-0123456789'
})
const app = await buildApp(config)
try {
  const res = await app.inject({ url: '/openapi.json' })
  await writeFile(new URL('../openapi.json', import.meta.url), `${JSON.stringify(res.json(), null, 2)}\n`)
} finally {
  await app.close()
}
