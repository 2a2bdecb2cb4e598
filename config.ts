import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import type { HashingLimits } from './services/hashing-limit.js'
import { loadSigningKeys, splitPem, type SigningKeys } from './services/signing-keys.js'

const Bool = Type.Union([Type.Literal('true'), Type.Literal('false'), Type.Literal('1'), Type.Literal('0')])

/** The environment Gatehouse reads, with defaults; every variable is documented in .env.example. */
const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0' }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  PGLITE_DATA_DIR: Type.String({ minLength: 1, default: './data/pglite' }),
  DB_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 200, default: 10 }),
  DB_STATEMENT_TIMEOUT_MS: Type.Integer({ minimum: 1, maximum: 600_000, default: 5000 }),
  DB_CONNECTION_TIMEOUT_MS: Type.Integer({ minimum: 1, maximum: 600_000, default: 2000 }),
  DB_PREPARED_STATEMENTS: Type.Optional(Bool),
  MIGRATE_ON_START: Type.Optional(Bool),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  JWT_ALGORITHM: Type.Union([Type.Literal('HS256'), Type.Literal('EdDSA'), Type.Literal('ES256')], { default: 'HS256' }),
  JWT_PRIVATE_KEY: Type.Optional(Type.String({ pattern: '-----BEGIN' })),
  JWT_PUBLIC_KEYS: Type.Optional(Type.String({ pattern: '-----BEGIN' })),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'gatehouse' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'gatehouse' }),
  ACCESS_TOKEN_TTL: Type.Integer({ minimum: 30, maximum: 86_400, default: 900 }),
  CORS_ORIGINS: Type.String({ default: '' }),
  ADMIN_EMAIL: Type.Optional(Type.String({ minLength: 3 })),
  ADMIN_PASSWORD: Type.Optional(Type.String({ minLength: 8, maxLength: 128 })),
  BODY_LIMIT: Type.Integer({ minimum: 1024, maximum: 1_048_576, default: 16_384 }),
  TRUST_PROXY: Type.Optional(Bool),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 30_000 }),
  HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 10_000 }),
  KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 72_000 }),
  SHUTDOWN_DELAY_MS: Type.Integer({ minimum: 0, maximum: 120_000, default: 0 }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 10_000 }),
  LOAD_SHED_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 1000 }),
  LOAD_SHED_EVENT_LOOP_UTILIZATION: Type.Number({ minimum: 0, maximum: 1, default: 0.98 }),
  LOAD_SHED_HEAP_USED_MB: Type.Integer({ minimum: 0, maximum: 65_536, default: 0 }),
  LOAD_SHED_DB_WAITING: Type.Integer({ minimum: 0, maximum: 100_000, default: 0 }),
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://' })),
  OTEL_SERVICE_NAME: Type.String({ minLength: 1, default: 'gatehouse' }),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  REFRESH_TOKEN_TTL: Type.Integer({ minimum: 300, maximum: 31_536_000, default: 2_592_000 }),
  REFRESH_REUSE_GRACE_SECONDS: Type.Integer({ minimum: 0, maximum: 300, default: 10 }),
  THROTTLE_WINDOW_SECONDS: Type.Integer({ minimum: 1, maximum: 86_400, default: 900 }),
  LOGIN_MAX_FAILURES_PER_ACCOUNT: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10 }),
  LOGIN_MAX_FAILURES_PER_IP: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 50 }),
  PASSWORD_HASH_CONCURRENCY: Type.Integer({ minimum: 0, maximum: 256, default: 0 }),
  PASSWORD_HASH_QUEUE: Type.Integer({ minimum: 0, maximum: 100_000, default: 200 }),
  SIGNUP_MAX_PER_IP: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20 })
})
type Env = Static<typeof EnvSchema>
const SECRET_VARIABLES = new Set(['JWT_SECRET', 'JWT_PRIVATE_KEY', 'ADMIN_PASSWORD', 'DATABASE_URL', 'REDIS_URL', 'METRICS_TOKEN'])
export type LogLevel = Env['LOG_LEVEL']

export interface Config {
  nodeEnv: Env['NODE_ENV']
  port: number
  host: string
  logLevel: LogLevel
  bodyLimit: number
  trustProxy: boolean
  corsOrigins: string[]
  database: {
    /** Unset: embedded PGlite in `pgliteDataDir` (`memory://` keeps it in memory). */
    url: string | undefined
    pgliteDataDir: string
    poolSize: number
    statementTimeoutMs: number
    connectionTimeoutMs: number
    /** Named prepared statements (off for a pooler in transaction mode that cannot keep them). */
    preparedStatements: boolean
    migrateOnStart: boolean
  }
  jwt: {
    /** HS256 secret; unused when `keys` is set. */
    secret: string
    /** Asymmetric signing (JWT_ALGORITHM EdDSA or ES256): the signing key and the keys still accepted. */
    keys: SigningKeys | undefined
    issuer: string
    audience: string
    accessTokenTtlSeconds: number
  }
  admin: { email: string, password: string } | undefined
  /** Unset: no Redis (readiness skips it; counters stay in memory). */
  redisUrl: string | undefined
  http: {
    /** Whole request, headers and body, must arrive within this (408 after). */
    requestTimeoutMs: number
    /** Headers must arrive within this: the slowloris guard. */
    headersTimeoutMs: number
    /** Longer than the load balancer's idle timeout, so the LB, not us, closes idle connections. */
    keepAliveTimeoutMs: number
  }
  shutdown: {
    /** After a signal, readiness fails at once but serving goes on this long, so the LB can notice. */
    delayMs: number
    /** In-flight requests get this long to finish before the process exits 1 anyway. */
    timeoutMs: number
  }
  /** 0 disables a limit. Past any, requests (not probes) get 503 with Retry-After. */
  loadShedding: {
    eventLoopDelayMs: number
    eventLoopUtilization: number
    heapUsedBytes: number
    dbWaiting: number
  }
  /** When set, GET /metrics needs `Authorization: Bearer <token>`. */
  metricsToken: string | undefined
  tracing: {
    /** OTLP/HTTP base URL (spans go to `<endpoint>/v1/traces`). Unset: no tracing, nothing loaded for it. */
    endpoint: string | undefined
    serviceName: string
  }
  sessions: {
    refreshTokenTtlSeconds: number
    /** A rotated refresh token used again within this many seconds gets a sibling, not a family revocation. */
    reuseGraceSeconds: number
  }
  /** Brute-force limits, counted per window (in Redis when REDIS_URL is set). */
  /** How many password hashes run at once, and how many may wait (then 503). */
  passwordHashing: HashingLimits
  throttle: {
    windowSeconds: number
    loginFailuresPerAccount: number
    loginFailuresPerIp: number
    signupsPerIp: number
  }
}

export class ConfigError extends Error {
  readonly problems: string[]
  constructor (problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

export interface LoadedConfig {
  config: Config
  /** Things an operator should hear about at start-up, but that do not stop it. */
  warnings: string[]
}

const flag = (value: string | undefined, fallback: boolean): boolean =>
  value === undefined ? fallback : value === 'true' || value === '1'

/** Reads and validates the environment. Throws ConfigError naming every bad variable, one line each. */
export function loadConfig (source: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = source[key]
    // An empty variable (`FOO=` in a .env file) means "not set", as most tooling treats it.
    if (value !== undefined && value !== '') raw[key] = value
  }
  const env = Value.Convert(EnvSchema, Value.Default(EnvSchema, { ...raw })) as Env

  const problems: string[] = []
  // Checked one variable at a time: TypeBox stops reporting after the first type error in an object.
  for (const [name, schema] of Object.entries(EnvSchema.properties)) {
    const value = (env as Record<string, unknown>)[name]
    // Conversion is lenient ("3000.5", "0x50", "1e3" all become numbers); a count must be plain digits.
    const plainInteger = (schema as { type?: unknown }).type !== 'integer' || raw[name] === undefined || /^\d+$/.test(String(raw[name]).trim())
    if (value === undefined || (plainInteger && Value.Check(schema, value))) continue
    const shown = SECRET_VARIABLES.has(name) ? '(value hidden)' : `(got ${JSON.stringify(raw[name])})`
    problems.push(`${name}: ${describe(schema as unknown as Record<string, unknown>)} ${shown}`)
  }
  const warnings: string[] = []
  if ((env.ADMIN_EMAIL === undefined) !== (env.ADMIN_PASSWORD === undefined)) {
    problems.push('ADMIN_EMAIL, ADMIN_PASSWORD: set both to create the first admin, or neither')
  }
  let keys: SigningKeys | undefined
  if (env.JWT_ALGORITHM === 'HS256') {
    if (env.JWT_SECRET === undefined && env.NODE_ENV === 'production') {
      problems.push('JWT_SECRET: required when NODE_ENV=production (at least 32 characters)')
    }
  } else if (env.JWT_PRIVATE_KEY === undefined) {
    problems.push(`JWT_PRIVATE_KEY: required when JWT_ALGORITHM=${env.JWT_ALGORITHM} (a PEM private key)`)
  } else {
    // Environment variables often carry PEM newlines escaped as \n.
    const pem = (value: string): string => value.replaceAll('\\n', '\n')
    try {
      keys = loadSigningKeys(env.JWT_ALGORITHM, pem(env.JWT_PRIVATE_KEY), splitPem(pem(env.JWT_PUBLIC_KEYS ?? '')))
    } catch (err) {
      problems.push(`JWT_PRIVATE_KEY, JWT_PUBLIC_KEYS: ${(err as Error).message}`)
    }
  }
  if (problems.length > 0) throw new ConfigError(problems)

  let secret = env.JWT_SECRET
  if (secret === undefined && keys === undefined) {
    secret = randomBytes(48).toString('base64url')
    warnings.push('JWT_SECRET is not set: using a random secret, so tokens die with this process and other replicas reject them')
  }
  return {
    warnings,
    config: {
      nodeEnv: env.NODE_ENV,
      port: env.PORT,
      host: env.HOST,
      logLevel: env.LOG_LEVEL,
      bodyLimit: env.BODY_LIMIT,
      trustProxy: flag(env.TRUST_PROXY, false),
      corsOrigins: env.CORS_ORIGINS.split(',').map((o) => o.trim()).filter((o) => o !== ''),
      database: {
        url: env.DATABASE_URL,
        pgliteDataDir: env.PGLITE_DATA_DIR,
        poolSize: env.DB_POOL_SIZE,
        statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS,
        connectionTimeoutMs: env.DB_CONNECTION_TIMEOUT_MS,
        preparedStatements: flag(env.DB_PREPARED_STATEMENTS, true),
        migrateOnStart: flag(env.MIGRATE_ON_START, true)
      },
      jwt: {
        // With asymmetric keys no HMAC secret is used; a random one keeps the type simple and is never published.
        secret: secret ?? randomBytes(48).toString('base64url'),
        keys,
        issuer: env.JWT_ISSUER,
        audience: env.JWT_AUDIENCE,
        accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL
      },
      admin: env.ADMIN_EMAIL !== undefined && env.ADMIN_PASSWORD !== undefined
        ? { email: env.ADMIN_EMAIL, password: env.ADMIN_PASSWORD }
        : undefined,
      redisUrl: env.REDIS_URL,
      http: {
        requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
        headersTimeoutMs: Math.min(env.HEADERS_TIMEOUT_MS, env.REQUEST_TIMEOUT_MS),
        keepAliveTimeoutMs: env.KEEP_ALIVE_TIMEOUT_MS
      },
      shutdown: { delayMs: env.SHUTDOWN_DELAY_MS, timeoutMs: env.SHUTDOWN_TIMEOUT_MS },
      loadShedding: {
        eventLoopDelayMs: env.LOAD_SHED_EVENT_LOOP_DELAY_MS,
        eventLoopUtilization: env.LOAD_SHED_EVENT_LOOP_UTILIZATION,
        heapUsedBytes: env.LOAD_SHED_HEAP_USED_MB * 1024 * 1024,
        dbWaiting: env.LOAD_SHED_DB_WAITING
      },
      metricsToken: env.METRICS_TOKEN,
      tracing: { endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: env.OTEL_SERVICE_NAME },
      sessions: { refreshTokenTtlSeconds: env.REFRESH_TOKEN_TTL, reuseGraceSeconds: env.REFRESH_REUSE_GRACE_SECONDS },
      throttle: {
        windowSeconds: env.THROTTLE_WINDOW_SECONDS,
        loginFailuresPerAccount: env.LOGIN_MAX_FAILURES_PER_ACCOUNT,
        loginFailuresPerIp: env.LOGIN_MAX_FAILURES_PER_IP,
        signupsPerIp: env.SIGNUP_MAX_PER_IP
      },
      // 0 means one fewer than the cores, so that a login storm always leaves one for the event loop.
      passwordHashing: { concurrency: env.PASSWORD_HASH_CONCURRENCY || Math.max(1, availableParallelism() - 1), maxQueued: env.PASSWORD_HASH_QUEUE }
    }
  }
}

/** A human sentence for what a variable must be, derived from its schema so the two cannot drift. */
function describe (schema: Record<string, unknown>): string {
  const literals = (schema.anyOf as Array<{ const: string }> | undefined)?.map((s) => s.const)
  if (literals !== undefined) return `must be one of ${literals.join(', ')}`
  if (schema.type === 'integer' || schema.type === 'number') return `must be ${schema.type === 'integer' ? 'an integer' : 'a number'} from ${String(schema.minimum)} to ${String(schema.maximum)}`
  if (typeof schema.pattern === 'string') return `must match ${schema.pattern}`
  const bounds = [
    schema.minLength !== undefined ? `at least ${String(schema.minLength)}` : '',
    schema.maxLength !== undefined ? `at most ${String(schema.maxLength)}` : ''
  ].filter(Boolean).join(' and ')
  return `must be a string of ${bounds} characters`
}
