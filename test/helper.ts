import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { Test } from 'tap'
import { buildApp, type BuildOptions } from '../app.js'
import { loadConfig, type Config } from '../config.js'
import { createArgon2Hasher } from '../services/password-hasher.js'

/** Real argon2id, at a cost that keeps the suite quick; the OWASP parameters have their own test. */
export const testHasher = createArgon2Hasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 })

export const backend = process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== '' ? 'postgres' : 'pglite'

/**
 * A fresh, empty database for one test: a new PostgreSQL database on the server DATABASE_URL names
 * (dropped in teardown), or an in-memory PGlite when DATABASE_URL is unset.
 */
export async function freshDatabaseUrl (t: Test): Promise<string | undefined> {
  const adminUrl = process.env.DATABASE_URL
  if (backend === 'pglite' || adminUrl === undefined) return undefined
  const name = `gatehouse_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  try {
    await admin.query(`create database ${name}`)
  } finally {
    await admin.end()
  }
  t.teardown(async () => {
    const dropper = new pg.Client({ connectionString: adminUrl })
    await dropper.connect()
    try {
      await dropper.query(`drop database if exists ${name} with (force)`)
    } finally {
      await dropper.end()
    }
  })
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/** Configuration as the tests want it: quiet, in-memory, a fixed secret; `env` overrides any variable. */
export function testConfig (env: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    PGLITE_DATA_DIR: 'memory://',
    JWT_SECRET: 'test-secret-that-is-at-least-32-characters-long',
    // Tests sign many users up from one address; the throttling tests set their own limits.
    SIGNUP_MAX_PER_IP: '1000000',
    LOGIN_MAX_FAILURES_PER_IP: '1000000',
    // A busy CI machine must not make tests shed load; the load-shedding tests set their limits.
    LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
    LOAD_SHED_EVENT_LOOP_UTILIZATION: '0',
    ...env
  }).config
}

export interface BuildTestOptions extends BuildOptions {
  env?: Record<string, string>
}

/** A ready app on its own fresh database, closed when the test ends. */
export async function build (t: Test, options: BuildTestOptions = {}): Promise<FastifyInstance> {
  const url = await freshDatabaseUrl(t)
  const config = testConfig({ ...(url !== undefined && { DATABASE_URL: url }), ...options.env })
  const app = await buildApp(config, { hasher: testHasher, ...options })
  t.teardown(async () => { await app.close() })
  await app.ready()
  return app
}

let counter = 0
/** Distinct, valid signup fields; `over` replaces any of them. */
export function newUser (over: Partial<{ email: string, username: string, password: string }> = {}) {
  counter++
  const tag = `${process.pid}_${counter}`
  return { email: `user${tag}@example.com`, username: `user${tag}`, password: `password-${tag}`, ...over }
}

export interface SignedUp {
  id: string
  email: string
  username: string
  password: string
  token: string
  auth: { authorization: string }
}

/** Signs a new user up and logs them in. */
export async function signUp (app: FastifyInstance, over: Parameters<typeof newUser>[0] = {}): Promise<SignedUp> {
  const fields = newUser(over)
  const created = await app.inject({ method: 'POST', url: '/api/users', payload: fields })
  if (created.statusCode !== 201) throw new Error(`signup failed: ${created.statusCode} ${created.body}`)
  const token = await loginToken(app, fields.email, fields.password)
  return { ...fields, id: created.json<{ id: string }>().id, token, auth: { authorization: `Bearer ${token}` } }
}

export async function loginToken (app: FastifyInstance, email: string, password: string): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email, password } })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return res.json<{ access_token: string }>().access_token
}

export const ADMIN = { email: 'admin@example.com', password: 'admin-password-1' }
export const ADMIN_ENV = { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password }

/** Asserts an RFC 9457 problem response with the given status and code; returns its body. */
export function assertProblem (t: Test, res: LightMyRequestResponse, status: number, code: string): Record<string, unknown> {
  t.equal(res.statusCode, status, `status ${status}`)
  t.match(res.headers['content-type'], /^application\/problem\+json/, 'problem+json content type')
  const body = res.json<Record<string, unknown>>()
  t.equal(body.code, code, `code ${code}`)
  t.equal(body.status, status, 'status in the body')
  t.type(body.title, 'string')
  t.type(body.detail, 'string')
  t.match(body.type, /^urn:gatehouse:problem:/)
  t.match(body.instance, /^urn:gatehouse:request:/)
  return body
}
