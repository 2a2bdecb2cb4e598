import { availableParallelism } from 'node:os'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../../config.js'

const SECRET = 'a-jwt-secret-of-at-least-32-characters!'

/** The ConfigError loadConfig throws for `env`; fails the test if it does not throw one. */
function configError (t: Test, env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  t.fail('expected a ConfigError')
  return new ConfigError([])
}

t.test('an empty environment gives the documented defaults', async (t) => {
  const { config } = loadConfig({})
  t.same({ ...config, jwt: { ...config.jwt, secret: '(random)' } }, {
    nodeEnv: 'development',
    port: 3000,
    host: '0.0.0.0',
    logLevel: 'info',
    bodyLimit: 16_384,
    trustProxy: false,
    corsOrigins: [],
    database: {
      url: undefined,
      pgliteDataDir: './data/pglite',
      poolSize: 10,
      statementTimeoutMs: 5000,
      connectionTimeoutMs: 2000,
      preparedStatements: true,
      migrateOnStart: true
    },
    jwt: { secret: '(random)', issuer: 'gatehouse', audience: 'gatehouse', accessTokenTtlSeconds: 900 },
    admin: undefined,
    redisUrl: undefined,
    http: { requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 72_000 },
    shutdown: { delayMs: 0, timeoutMs: 10_000 },
    loadShedding: { eventLoopDelayMs: 1000, eventLoopUtilization: 0.98, heapUsedBytes: 0, dbWaiting: 0 },
    tracing: { endpoint: undefined, serviceName: 'gatehouse' },
    metricsToken: undefined,
    sessions: { refreshTokenTtlSeconds: 2_592_000, reuseGraceSeconds: 10 },
    throttle: { windowSeconds: 900, loginFailuresPerAccount: 10, loginFailuresPerIp: 50, signupsPerIp: 20 },
    passwordHashing: { concurrency: Math.max(1, availableParallelism() - 1), maxQueued: 200 }
  })
})

t.test('reads every variable, converting numbers and booleans', async (t) => {
  const { config, warnings } = loadConfig({
    NODE_ENV: 'production',
    PORT: '8080',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'debug',
    DATABASE_URL: 'postgres://gatehouse:pw@db:5432/gatehouse',
    PGLITE_DATA_DIR: 'memory://',
    DB_POOL_SIZE: '25',
    DB_STATEMENT_TIMEOUT_MS: '1500',
    DB_CONNECTION_TIMEOUT_MS: '750',
    DB_PREPARED_STATEMENTS: 'false',
    MIGRATE_ON_START: 'false',
    JWT_SECRET: SECRET,
    JWT_ISSUER: 'issuer.example',
    JWT_AUDIENCE: 'audience.example',
    ACCESS_TOKEN_TTL: '60',
    CORS_ORIGINS: 'https://a.example, https://b.example ,,',
    ADMIN_EMAIL: 'admin@example.com',
    ADMIN_PASSWORD: 'admin-password',
    BODY_LIMIT: '2048',
    TRUST_PROXY: 'true',
    REFRESH_TOKEN_TTL: '3600',
    REFRESH_REUSE_GRACE_SECONDS: '0',
    THROTTLE_WINDOW_SECONDS: '60',
    LOGIN_MAX_FAILURES_PER_ACCOUNT: '3',
    LOGIN_MAX_FAILURES_PER_IP: '7',
    SIGNUP_MAX_PER_IP: '2',
    PASSWORD_HASH_CONCURRENCY: '3',
    PASSWORD_HASH_QUEUE: '10',
    REDIS_URL: 'rediss://:pw@cache:6380/0',
    REQUEST_TIMEOUT_MS: '20000',
    HEADERS_TIMEOUT_MS: '5000',
    KEEP_ALIVE_TIMEOUT_MS: '65000',
    SHUTDOWN_DELAY_MS: '3000',
    SHUTDOWN_TIMEOUT_MS: '15000',
    LOAD_SHED_EVENT_LOOP_DELAY_MS: '500',
    LOAD_SHED_EVENT_LOOP_UTILIZATION: '0.9',
    LOAD_SHED_HEAP_USED_MB: '512',
    LOAD_SHED_DB_WAITING: '20',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4318',
    OTEL_SERVICE_NAME: 'gatehouse-eu',
    METRICS_TOKEN: 'a-metrics-token-of-16+'
  })
  t.same(warnings, [])
  t.same(config, {
    nodeEnv: 'production',
    port: 8080,
    host: '127.0.0.1',
    logLevel: 'debug',
    bodyLimit: 2048,
    trustProxy: true,
    corsOrigins: ['https://a.example', 'https://b.example'],
    database: {
      url: 'postgres://gatehouse:pw@db:5432/gatehouse',
      pgliteDataDir: 'memory://',
      poolSize: 25,
      statementTimeoutMs: 1500,
      connectionTimeoutMs: 750,
      preparedStatements: false,
      migrateOnStart: false
    },
    jwt: { secret: SECRET, issuer: 'issuer.example', audience: 'audience.example', accessTokenTtlSeconds: 60 },
    admin: { email: 'admin@example.com', password: 'admin-password' },
    redisUrl: 'rediss://:pw@cache:6380/0',
    http: { requestTimeoutMs: 20_000, headersTimeoutMs: 5000, keepAliveTimeoutMs: 65_000 },
    shutdown: { delayMs: 3000, timeoutMs: 15_000 },
    loadShedding: { eventLoopDelayMs: 500, eventLoopUtilization: 0.9, heapUsedBytes: 512 * 1024 * 1024, dbWaiting: 20 },
    tracing: { endpoint: 'http://otel-collector:4318', serviceName: 'gatehouse-eu' },
    metricsToken: 'a-metrics-token-of-16+',
    sessions: { refreshTokenTtlSeconds: 3600, reuseGraceSeconds: 0 },
    throttle: { windowSeconds: 60, loginFailuresPerAccount: 3, loginFailuresPerIp: 7, signupsPerIp: 2 },
    passwordHashing: { concurrency: 3, maxQueued: 10 }
  })
})

t.test('caps the headers timeout at the request timeout', async (t) => {
  const { config } = loadConfig({ REQUEST_TIMEOUT_MS: '5000', HEADERS_TIMEOUT_MS: '60000' })
  t.same(config.http, { requestTimeoutMs: 5000, headersTimeoutMs: 5000, keepAliveTimeoutMs: 72_000 })
})

t.test('accepts 1 and 0 as booleans', async (t) => {
  t.equal(loadConfig({ TRUST_PROXY: '1' }).config.trustProxy, true)
  t.equal(loadConfig({ TRUST_PROXY: '0' }).config.trustProxy, false)
  t.equal(loadConfig({ MIGRATE_ON_START: '1' }).config.database.migrateOnStart, true)
  t.equal(loadConfig({ MIGRATE_ON_START: '0' }).config.database.migrateOnStart, false)
})

t.test('accepts postgresql:// as well as postgres:// URLs', async (t) => {
  t.equal(loadConfig({ DATABASE_URL: 'postgresql://db/gatehouse' }).config.database.url, 'postgresql://db/gatehouse')
})

t.test('treats an empty variable as unset', async (t) => {
  const { config } = loadConfig({ PORT: '', HOST: '', NODE_ENV: '', TRUST_PROXY: '', DATABASE_URL: '', ADMIN_EMAIL: '', ADMIN_PASSWORD: '' })
  t.equal(config.port, 3000)
  t.equal(config.host, '0.0.0.0')
  t.equal(config.nodeEnv, 'development')
  t.equal(config.trustProxy, false)
  t.equal(config.database.url, undefined)
  t.equal(config.admin, undefined)
})

t.test('treats an empty JWT_SECRET as unset, so production refuses it', async (t) => {
  const err = configError(t, { NODE_ENV: 'production', JWT_SECRET: '' })
  t.same(err.problems, ['JWT_SECRET: required when NODE_ENV=production (at least 32 characters)'])
})

t.test('reports every bad variable in one error, one line each, naming it', async (t) => {
  const err = configError(t, {
    NODE_ENV: 'staging',
    PORT: 'eighty',
    LOG_LEVEL: 'loud',
    DB_POOL_SIZE: '0',
    ACCESS_TOKEN_TTL: '86401',
    MIGRATE_ON_START: 'yes',
    ADMIN_EMAIL: 'a@',
    BODY_LIMIT: '10',
    LOAD_SHED_EVENT_LOOP_UTILIZATION: '1.5'
  })
  t.same(err.problems, [
    'NODE_ENV: must be one of development, production, test (got "staging")',
    'PORT: must be an integer from 0 to 65535 (got "eighty")',
    'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
    'DB_POOL_SIZE: must be an integer from 1 to 200 (got "0")',
    'MIGRATE_ON_START: must be one of true, false, 1, 0 (got "yes")',
    'ACCESS_TOKEN_TTL: must be an integer from 30 to 86400 (got "86401")',
    'ADMIN_EMAIL: must be a string of at least 3 characters (got "a@")',
    'BODY_LIMIT: must be an integer from 1024 to 1048576 (got "10")',
    'LOAD_SHED_EVENT_LOOP_UTILIZATION: must be a number from 0 to 1 (got "1.5")',
    'ADMIN_EMAIL, ADMIN_PASSWORD: set both to create the first admin, or neither'
  ])
  t.equal(err.name, 'ConfigError')
  t.equal(err.message, `invalid configuration:\n${err.problems.map((p) => `  ${p}`).join('\n')}`)
})

t.test('never echoes a secret variable\'s value', async (t) => {
  const secrets = {
    JWT_SECRET: 'hunter2-too-short',
    ADMIN_PASSWORD: 'sh0rt!',
    DATABASE_URL: 'mysql://root:s3cr3t-pass@db/gatehouse',
    REDIS_URL: 'memcached://:r3dis-pass@cache',
    METRICS_TOKEN: 'tiny-t0ken'
  }
  const err = configError(t, { ...secrets, ADMIN_EMAIL: 'admin@example.com' })
  t.same(err.problems, [
    'DATABASE_URL: must match ^postgres(ql)?:// (value hidden)',
    'JWT_SECRET: must be a string of at least 32 characters (value hidden)',
    'ADMIN_PASSWORD: must be a string of at least 8 and at most 128 characters (value hidden)',
    'REDIS_URL: must match ^rediss?:// (value hidden)',
    'METRICS_TOKEN: must be a string of at least 16 characters (value hidden)'
  ])
  for (const [name, value] of Object.entries(secrets)) {
    t.notOk(err.message.includes(value), `the ${name} value is not in the message`)
  }
  t.notOk(err.message.includes('s3cr3t'), 'nor the password inside DATABASE_URL')
  t.notOk(err.message.includes('r3dis'), 'nor the password inside REDIS_URL')
})

t.test('names a plain string variable given something that is not a string', async (t) => {
  // A caller-built environment can hold anything; the message still names the variable.
  const err = configError(t, { CORS_ORIGINS: { origins: ['x'] } as unknown as string })
  t.same(err.problems, ['CORS_ORIGINS: must be a string of  characters (got {"origins":["x"]})'])
})

t.test('refuses ADMIN_EMAIL without ADMIN_PASSWORD, and the reverse', async (t) => {
  const problem = 'ADMIN_EMAIL, ADMIN_PASSWORD: set both to create the first admin, or neither'
  t.same(configError(t, { ADMIN_EMAIL: 'admin@example.com' }).problems, [problem])
  t.same(configError(t, { ADMIN_PASSWORD: 'admin-password' }).problems, [problem])
})

t.test('refuses production without JWT_SECRET', async (t) => {
  t.same(configError(t, { NODE_ENV: 'production' }).problems, [
    'JWT_SECRET: required when NODE_ENV=production (at least 32 characters)'
  ])
})

t.test('outside production, a missing JWT_SECRET becomes a random one, with a warning', async (t) => {
  const first = loadConfig({ NODE_ENV: 'development' })
  const second = loadConfig({ NODE_ENV: 'test' })
  t.ok(first.config.jwt.secret.length >= 32, 'at least 32 characters')
  t.ok(second.config.jwt.secret.length >= 32, 'at least 32 characters')
  t.not(first.config.jwt.secret, second.config.jwt.secret, 'a different secret each time')
  t.same(first.warnings, ['JWT_SECRET is not set: using a random secret, so tokens die with this process and other replicas reject them'])
  t.same(second.warnings, first.warnings)
})

t.test('reads process.env when given no environment', async (t) => {
  const saved = process.env.PORT
  t.teardown(() => {
    if (saved === undefined) delete process.env.PORT
    else process.env.PORT = saved
  })
  process.env.PORT = '4321'
  t.equal(loadConfig().config.port, 4321)
})

t.test('integers must be written as plain digits', async (t) => {
  for (const port of ['3000.5', '0x50', '1e3', '-1']) {
    const err = configError(t, { PORT: port })
    t.same(err.problems, [`PORT: must be an integer from 0 to 65535 (got "${port}")`], port)
  }
  t.equal(loadConfig({ PORT: ' 8080 ' }).config.port, 8080, 'surrounding spaces are fine')
})

t.test('cross-variable rules are reported alongside bad variables', async (t) => {
  const err = configError(t, { PORT: 'x', NODE_ENV: 'production' })
  t.same(err.problems.map((p) => p.split(':')[0]), ['PORT', 'JWT_SECRET'])
})
