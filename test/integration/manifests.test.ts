// Offline validation of the deployment files: deploy/k8s/*.yaml against the Kubernetes API schemas,
// docker-compose.yml against the compose-spec schema, the Dockerfile with a Dockerfile linter, and
// the facts that tie them together (probe paths, shutdown timing, labels, hardening).
//
// Every schema ships inside an npm package from package-lock.json; nothing is fetched at test time:
// - kubernetes-models: validators compiled from the Kubernetes OpenAPI document (v1.33.0 for 4.5.x;
//   5.x needs Node 22). The OpenAPI document does not forbid unknown fields (the API server rejects
//   those in a separate step), so a second, strict pass type-checks each manifest against the same
//   package's generated TypeScript interfaces: an excess property (a misspelled field) is an error
//   there, as with kubeconform -strict or kubectl's strict field validation.
// - dclint: the compose-spec JSON schema (additionalProperties: false) plus a few lint rules.
// - dockerfile-utils / dockerfile-ast: the Dockerfile validator and parser behind VS Code's Docker support.
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import t, { type Test } from 'tap'
import ts from 'typescript'
import { parseAllDocuments } from 'yaml'
import { DCLinter } from 'dclint'
import { DockerfileParser, type Instruction } from 'dockerfile-ast'
import { validate as validateDockerfile } from 'dockerfile-utils'

const root = new URL('../../', import.meta.url).pathname
const k8sDir = join(root, 'deploy', 'k8s')

// Loose shapes for reading manifests; the schema checks are what guarantee the structure.
type Obj = Record<string, any>
interface Manifest { file: string, doc: Obj }

// ---------------------------------------------------------------------------------------------
// Kubernetes: schema validation (kubernetes-models) and strict field check (its TypeScript types)
// ---------------------------------------------------------------------------------------------

/** `apps/v1` + `Deployment` -> `kubernetes-models/apps/v1/Deployment`; the core group is `v1`. */
function modelModule (doc: Obj): string {
  if (typeof doc.apiVersion !== 'string' || typeof doc.kind !== 'string') throw new Error('apiVersion and kind must be strings')
  if (!/^[a-z0-9.]+\/v[0-9a-z]+$|^v[0-9a-z]+$/.test(doc.apiVersion) || !/^[A-Z][A-Za-z0-9]+$/.test(doc.kind)) {
    throw new Error(`not a Kubernetes type: ${doc.apiVersion} ${doc.kind}`)
  }
  return `kubernetes-models/${doc.apiVersion}/${doc.kind}`
}

/** Validates one object against its kind's Kubernetes schema; returns the errors ([] when valid). */
async function schemaErrors (doc: Obj): Promise<string[]> {
  let Model: (new (data: Obj) => { validate: () => void }) | undefined
  try {
    const mod = await import(modelModule(doc)) as Record<string, unknown>
    Model = mod[doc.kind] as typeof Model
  } catch (err) {
    return [`no schema for ${String(doc.apiVersion)} ${String(doc.kind)}: ${(err as Error).message}`]
  }
  if (Model === undefined) return [`no schema for ${String(doc.apiVersion)} ${String(doc.kind)}`]
  try {
    new Model(doc).validate()
    return []
  } catch (err) {
    return [(err as Error).message]
  }
}

/**
 * Type-checks the objects as literals of kubernetes-models' interfaces (IDeployment, IService...),
 * in memory. TypeScript rejects unknown properties at any depth of an object literal and wrong
 * value types, so this catches what the schema pass lets through. Returns one message per problem.
 */
function strictErrors (manifests: Manifest[]): string[] {
  const virtualFile = join(k8sDir, '__strict_check__.ts')
  const owners: Array<{ line: number, file: string }> = []
  let source = ''
  manifests.forEach(({ file, doc }, i) => {
    owners.push({ line: source.split('\n').length - 1, file })
    source += `import type { I${String(doc.kind)} as T${i} } from '${modelModule(doc)}'\n` +
      `export const m${i}: T${i} = ${JSON.stringify(doc, null, 2)}\n`
  })
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts'],
    types: []
  }
  const host = ts.createCompilerHost(options)
  const { getSourceFile, fileExists, readFile } = host
  host.getSourceFile = (name, version, ...rest) => name === virtualFile
    ? ts.createSourceFile(name, source, version)
    : getSourceFile.call(host, name, version, ...rest)
  host.fileExists = (name) => name === virtualFile || fileExists.call(host, name)
  host.readFile = (name) => name === virtualFile ? source : readFile.call(host, name)
  const program = ts.createProgram([virtualFile], options, host)
  const sourceFile = program.getSourceFile(virtualFile)
  if (sourceFile === undefined) return ['the strict check could not load its own source']
  const diagnostics = [...program.getSyntacticDiagnostics(sourceFile), ...program.getSemanticDiagnostics(sourceFile)]
  return diagnostics.map((d) => {
    const line = d.start === undefined ? 0 : sourceFile.getLineAndCharacterOfPosition(d.start).line
    const owner = owners.filter((o) => o.line <= line).at(-1)?.file ?? '?'
    const text = source.split('\n')[line]?.trim() ?? ''
    return `${owner}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')} (at ${text})`
  })
}

function loadYaml (path: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'), { prettyErrors: true })
  const list = Array.isArray(docs) ? docs : [docs]
  for (const d of list) {
    if (d.errors.length > 0) throw new Error(`${relative(root, path)}: ${d.errors.map((e) => e.message).join('; ')}`)
  }
  return list.map((d) => d.toJS() as Obj).filter((d) => d !== null)
}

const yamlFiles = readdirSync(k8sDir).filter((f) => /\.ya?ml$/.test(f)).sort()
const manifests: Manifest[] = yamlFiles
  .filter((f) => f !== 'kustomization.yaml')
  .flatMap((f) => loadYaml(join(k8sDir, f)).map((doc) => ({ file: `deploy/k8s/${f}`, doc })))
const kustomization = loadYaml(join(k8sDir, 'kustomization.yaml'))[0] ?? {}

function one (kind: string): Obj {
  const found = manifests.filter((m) => m.doc.kind === kind && !m.file.endsWith('.example.yaml'))
  if (found.length !== 1) throw new Error(`expected exactly one ${kind} in deploy/k8s, found ${found.length}`)
  return found[0]!.doc
}

t.test('every manifest under deploy/k8s is valid against the Kubernetes schema', async (t) => {
  t.ok(manifests.length >= 6, `found ${manifests.length} manifests`)
  for (const { file, doc } of manifests) {
    t.same(await schemaErrors(doc), [], `${file}: ${String(doc.kind)} ${String(doc.metadata?.name)} matches the ${String(doc.apiVersion)} schema`)
  }
})

t.test('every manifest under deploy/k8s has no unknown field and no mistyped value (strict)', async (t) => {
  t.same(strictErrors(manifests), [], 'no excess properties and no type errors')
})

t.test('the validators reject broken manifests (so the checks above can fail)', async (t) => {
  const broken = (mutate: (d: Obj) => void): Obj => {
    const copy = structuredClone(one('Deployment'))
    mutate(copy)
    return copy
  }
  const portAsObject = broken((d) => { d.spec.template.spec.containers[0].livenessProbe.httpGet.port = { number: 3000 } })
  const errors = await schemaErrors(portAsObject)
  t.equal(errors.length, 1, 'a probe port given as an object is rejected by the schema')
  t.match(errors[0], /livenessProbe\/httpGet\/port/, 'and the error names the field')

  t.not((await schemaErrors(broken((d) => { d.spec.replicas = 'three' }))).length, 0, 'replicas as a string is rejected')
  t.not((await schemaErrors(broken((d) => { delete d.spec.selector }))).length, 0, 'a Deployment without a selector is rejected')
  t.not((await schemaErrors(broken((d) => { d.spec.template.spec.containers[0].resources.limits.memory = '512 MB' }))).length, 0,
    'a malformed quantity is rejected')
  t.not((await schemaErrors({ apiVersion: 'apps/v1', kind: 'Deploymnet', metadata: { name: 'x' } })).length, 0, 'an unknown kind is rejected')

  const misspelled = broken((d) => {
    const c = d.spec.template.spec.containers[0]
    c.readynessProbe = c.readinessProbe
    delete c.readinessProbe
  })
  const strict = strictErrors([{ file: 'broken.yaml', doc: misspelled }])
  t.equal(strict.length, 1, 'a misspelled field is rejected by the strict check')
  t.match(strict[0], /readynessProbe/, 'and the error names the field')
  t.not(strictErrors([{ file: 'broken.yaml', doc: portAsObject }]).length, 0, 'the strict check rejects the object port too')
})

t.test('kustomization lists every manifest except the example Secret, and sets no namespace', async (t) => {
  t.equal(kustomization.apiVersion, 'kustomize.config.k8s.io/v1beta1')
  t.equal(kustomization.kind, 'Kustomization')
  t.notOk('namespace' in kustomization, 'no namespace: the caller picks it with -n')
  const resources = [...(kustomization.resources as string[])].sort()
  const expected = yamlFiles.filter((f) => f !== 'kustomization.yaml' && f !== 'secret.example.yaml')
  t.same(resources, expected, 'resources are exactly the manifest files')
  t.notOk(resources.includes('secret.example.yaml'), 'the example Secret is not applied')
  for (const { file, doc } of manifests) t.notOk('namespace' in (doc.metadata ?? {}), `${file} sets no namespace`)
  const image = (kustomization.images as Obj[]).find((i) => i.name === 'gatehouse')
  t.equal(`gatehouse:${String(image?.newTag)}`, one('Deployment').spec.template.spec.containers[0].image, 'the image override keeps the same tag')
})

t.test('every file explains itself with comments', async (t) => {
  for (const f of [...yamlFiles.map((f) => join(k8sDir, f)), join(root, 'docker-compose.yml')]) {
    const comments = readFileSync(f, 'utf8').split('\n').filter((l) => /^\s*#\s*\S/.test(l)).length
    t.ok(comments >= 2, `${relative(root, f)} has ${comments} comment lines`)
  }
})

t.test('the Deployment: probes, shutdown timing, resources, hardening', async (t) => {
  const deployment = one('Deployment')
  const pod = deployment.spec.template.spec
  const [container] = pod.containers as Obj[]
  if (container === undefined) throw new Error('no container')
  const env = Object.fromEntries((container.env as Obj[]).map((e) => [e.name, e.value ?? e.valueFrom]))

  t.equal(deployment.spec.replicas, 3)
  t.equal(container.image, 'gatehouse:0.1.0')
  t.same(container.ports, [{ name: 'http', containerPort: 3000, protocol: 'TCP' }])

  t.equal(container.livenessProbe?.httpGet?.path, '/health/live', 'liveness probes /health/live')
  t.equal(container.readinessProbe?.httpGet?.path, '/health/ready', 'readiness probes /health/ready')
  t.equal(container.startupProbe?.httpGet?.path, '/health/ready', 'the startup probe waits for readiness')
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    t.equal(container[probe]?.httpGet?.port, 'http', `${probe} uses the named port`)
    t.ok((container.ports as Obj[]).some((p) => p.name === container[probe]?.httpGet?.port), `${probe}'s port is declared by the container`)
  }
  t.match(container.readinessProbe, { periodSeconds: 5, failureThreshold: 2 })
  t.match(container.startupProbe, { periodSeconds: 2, failureThreshold: 30 })

  const preStop = Number(container.lifecycle?.preStop?.sleep?.seconds)
  const delay = Number(env.SHUTDOWN_DELAY_MS) / 1000
  const drain = Number(env.SHUTDOWN_TIMEOUT_MS) / 1000
  t.equal(preStop, 5)
  t.equal(delay, 5)
  t.equal(drain, 25)
  t.ok(pod.terminationGracePeriodSeconds >= preStop + delay + drain,
    `terminationGracePeriodSeconds ${String(pod.terminationGracePeriodSeconds)} >= ${preStop} preStop + ${delay} delay + ${drain} drain`)

  t.same(container.resources, { requests: { cpu: '250m', memory: '192Mi' }, limits: { memory: '512Mi' } }, 'no CPU limit')
  t.match(env, { NODE_ENV: 'production', MIGRATE_ON_START: 'false', LOG_LEVEL: 'info' })
  for (const key of ['DATABASE_URL', 'JWT_SECRET', 'REDIS_URL']) {
    t.same(env[key], { secretKeyRef: { name: 'gatehouse', key } }, `${key} comes from the Secret`)
  }

  const annotations = deployment.spec.template.metadata.annotations
  t.match(annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/path': '/metrics' })
  t.equal(Number(annotations['prometheus.io/port']), container.ports[0].containerPort, 'metrics are scraped on the app port')

  const tmp = (pod.volumes as Obj[]).find((v) => v.emptyDir !== undefined)
  t.ok(tmp, 'an emptyDir volume')
  t.same(container.volumeMounts, [{ name: tmp?.name, mountPath: '/tmp' }], 'mounted at /tmp')

  const spread = (pod.topologySpreadConstraints as Obj[])[0]
  t.equal(spread?.topologyKey, 'kubernetes.io/hostname', 'spread across nodes')
  t.same(spread?.labelSelector.matchLabels, deployment.spec.selector.matchLabels, 'spreading the Deployment\'s own pods')
})

/** The hardening both workloads must share. */
function checkHardening (t: Test, what: string, podSpec: Obj): void {
  t.equal(podSpec.securityContext?.runAsNonRoot, true, `${what}: pod runAsNonRoot`)
  for (const c of podSpec.containers as Obj[]) {
    t.match(c.securityContext, {
      runAsNonRoot: true,
      runAsUser: 1000,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' }
    }, `${what}: container ${String(c.name)} is non-root, read-only, without capabilities`)
    const tmp = (c.volumeMounts as Obj[] | undefined)?.find((m) => m.mountPath === '/tmp')
    t.ok(tmp !== undefined && (podSpec.volumes as Obj[]).some((v) => v.name === tmp.name && v.emptyDir !== undefined),
      `${what}: /tmp is a writable emptyDir`)
  }
}

t.test('the Deployment and the migration Job are hardened alike and use the same image and Secret', async (t) => {
  const deployment = one('Deployment')
  const job = one('Job')
  checkHardening(t, 'Deployment', deployment.spec.template.spec)
  checkHardening(t, 'Job', job.spec.template.spec)

  const [migrate] = job.spec.template.spec.containers as Obj[]
  t.same(migrate?.command, ['node', 'dist/cli.js', 'migrate'])
  t.equal(migrate?.image, deployment.spec.template.spec.containers[0].image, 'same image as the Deployment')
  t.equal(job.spec.backoffLimit, 3)
  t.type(job.spec.ttlSecondsAfterFinished, 'number', 'finished Jobs are cleaned up')
  t.equal(job.spec.template.spec.restartPolicy, 'Never')
  t.notSame(job.spec.template.metadata.labels, deployment.spec.selector.matchLabels, 'migration pods are not selected as API pods')

  // Every Secret key either workload reads exists in the example Secret, which documents the contract.
  const example = manifests.find((m) => m.file.endsWith('secret.example.yaml'))?.doc
  t.equal(example?.kind, 'Secret')
  t.equal(example?.metadata.name, 'gatehouse')
  for (const workload of [deployment, job]) {
    for (const c of workload.spec.template.spec.containers as Obj[]) {
      for (const e of (c.env as Obj[]).filter((e) => e.valueFrom?.secretKeyRef !== undefined)) {
        t.equal(e.valueFrom.secretKeyRef.name, 'gatehouse', `${String(workload.kind)} ${String(e.name)}: Secret gatehouse`)
        t.ok(e.valueFrom.secretKeyRef.key in (example?.stringData ?? {}), `${String(workload.kind)} ${String(e.name)}: key in secret.example.yaml`)
      }
    }
  }
})

t.test('the Service, PDB and HPA point at the Deployment\'s pods', async (t) => {
  const deployment = one('Deployment')
  const selector = deployment.spec.selector.matchLabels
  t.match(deployment.spec.template.metadata.labels, selector, 'the pod template carries the selector labels')

  const service = one('Service')
  t.equal(service.spec.type, 'ClusterIP')
  t.same(service.spec.selector, selector, 'the Service selects the Deployment\'s pods')
  const [port] = service.spec.ports as Obj[]
  t.equal(port?.port, 80)
  t.equal(port?.targetPort, 'http', 'the Service targets the named port')
  t.ok((deployment.spec.template.spec.containers as Obj[]).some((c) => (c.ports as Obj[]).some((p) => p.name === port?.targetPort)),
    'a container declares that port')

  const pdb = one('PodDisruptionBudget')
  t.same(pdb.spec.selector, { matchLabels: selector }, 'the PDB selects the Deployment\'s pods')
  t.ok(pdb.spec.maxUnavailable === 1 || pdb.spec.minAvailable === 2, 'one pod at a time')

  const hpa = one('HorizontalPodAutoscaler')
  t.equal(hpa.apiVersion, 'autoscaling/v2')
  t.same(hpa.spec.scaleTargetRef, { apiVersion: deployment.apiVersion, kind: 'Deployment', name: deployment.metadata.name }, 'the HPA scales the Deployment')
  t.same(hpa.metadata.labels, deployment.metadata.labels, 'with the same labels')
  t.equal(hpa.spec.minReplicas, 3)
  t.equal(hpa.spec.maxReplicas, 10)
  t.equal(hpa.spec.minReplicas, deployment.spec.replicas, 'minReplicas equals the Deployment\'s replicas')
  t.same(hpa.spec.metrics, [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }])
})

// ---------------------------------------------------------------------------------------------
// docker-compose.yml: compose-spec schema (via dclint) and the service wiring
// ---------------------------------------------------------------------------------------------

// Schema validation always runs; of dclint's rules, those that catch mistakes rather than style.
// no-unbound-port-interfaces is off: "3000:3000" (all interfaces) is the intended local setup.
const dclint = new DCLinter({
  quiet: true,
  debug: false,
  exclude: [],
  rules: {
    'no-build-and-image': 2,
    'no-duplicate-container-names': 2,
    'no-duplicate-exported-ports': 2,
    'no-version-field': 2,
    'require-quotes-in-ports': [2, { quoteType: 'double' }],
    'service-container-name-regex': 2,
    'service-image-require-explicit-tag': 2,
    'no-unbound-port-interfaces': 0,
    'no-quotes-in-volumes': 0,
    'require-project-name-field': 0,
    'service-dependencies-alphabetical-order': 0,
    'service-keys-order': 0,
    'service-ports-alphabetical-order': 0,
    'services-alphabetical-order': 0,
    'top-level-properties-order': 0
  }
})
// dclint's bundled .d.ts files do not resolve under NodeNext, so its result type is restated here.
interface ComposeLintResult { messages: Array<{ rule: string, message: string }> }
const lintCompose = (path: string): string[] =>
  (dclint.lintFiles([path], false) as ComposeLintResult[]).flatMap((r) => r.messages).map((m) => `${m.rule}: ${m.message}`)

t.test('docker-compose.yml is valid against the compose-spec schema', async (t) => {
  t.same(lintCompose(join(root, 'docker-compose.yml')), [], 'no schema error and no lint error')
})

t.test('the compose validator rejects broken compose files', async (t) => {
  const good = readFileSync(join(root, 'docker-compose.yml'), 'utf8')
  const dir = t.testdir({
    'misspelled.yml': good.replace('healthcheck:', 'healthchek:'),
    'bad-condition.yml': good.replace('condition: service_healthy', 'condition: service_ready'),
    'bad-type.yml': good.replace('read_only: true', 'read_only: [true]')
  })
  // dclint reports the first schema error only: its path shows it is the planted one.
  const cases = [
    ['misspelled.yml', 'an unknown service key', 'instancePath="/services/app"'],
    ['bad-condition.yml', 'an unknown depends_on condition', 'instancePath="/services/app/depends_on"'],
    ['bad-type.yml', 'a wrongly typed value', 'instancePath="/services/app/read_only"']
  ] as const
  for (const [file, what, path] of cases) {
    const errors = lintCompose(join(dir, file))
    t.ok(errors.some((e) => e.startsWith('invalid-schema') && e.includes(path)), `${what} is rejected: ${errors.join('; ')}`)
  }
})

t.test('compose wires the app to healthy PostgreSQL and Redis', async (t) => {
  const compose = loadYaml(join(root, 'docker-compose.yml'))[0] ?? {}
  const { app, postgres, redis } = compose.services as Record<string, Obj>
  if (app === undefined || postgres === undefined || redis === undefined) throw new Error('services app, postgres and redis are required')

  t.equal(app.build, '.', 'the app is built from the top-level Dockerfile')
  t.same(app.healthcheck.test, ['CMD', 'node', 'dist/cli.js', 'healthcheck'])
  t.same(app.depends_on, { postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } })
  t.match(app.environment, {
    DATABASE_URL: 'postgres://gatehouse:gatehouse@postgres:5432/gatehouse',
    REDIS_URL: 'redis://redis:6379',
    JWT_SECRET: '${JWT_SECRET:?set JWT_SECRET (32+ chars)}', // eslint-disable-line no-template-curly-in-string
    NODE_ENV: 'production'
  })
  t.same(app.ports, ['3000:3000'])
  t.equal(app.restart, 'unless-stopped')
  t.equal(app.read_only, true)
  t.same(app.tmpfs, ['/tmp'])
  t.equal(app.stop_grace_period, '40s')
  t.equal(Number.parseInt(app.stop_grace_period, 10), one('Deployment').spec.template.spec.terminationGracePeriodSeconds,
    'the same shutdown budget as in Kubernetes')

  t.equal(postgres.image, 'postgres:15')
  t.match(postgres.healthcheck.test.join(' '), /pg_isready/)
  const volume = String(postgres.volumes[0]).split(':')[0] ?? ''
  t.ok(volume in (compose.volumes ?? {}), `PostgreSQL data is on the named volume ${volume}`)
  t.equal(redis.image, 'redis:7-alpine')
  t.same(redis.healthcheck.test, ['CMD', 'redis-cli', 'ping'])
})

// ---------------------------------------------------------------------------------------------
// Dockerfile (not edited here): linted by dockerfile-utils, structure read with dockerfile-ast
// ---------------------------------------------------------------------------------------------

const dockerfileErrors = (content: string): string[] =>
  validateDockerfile(content).filter((d) => d.severity === 1).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)

t.test('the Dockerfile passes the Dockerfile validator', async (t) => {
  t.same(dockerfileErrors(readFileSync(join(root, 'Dockerfile'), 'utf8')), [])
})

t.test('the Dockerfile validator rejects a broken Dockerfile', async (t) => {
  t.not(dockerfileErrors('FROM node:24-slim\nEXPOS 3000\n').length, 0, 'an unknown instruction')
  t.not(dockerfileErrors('FROM node:24-slim\nHEALTHCHECK --interval=often CMD true\n').length, 0, 'an invalid duration')
  t.not(dockerfileErrors('FROM\n').length, 0, 'a FROM without an image')
})

t.test('the Dockerfile: multi-stage, non-root, node as PID 1', async (t) => {
  const dockerfile = DockerfileParser.parse(readFileSync(join(root, 'Dockerfile'), 'utf8'))
  const froms = dockerfile.getFROMs()
  t.ok(froms.length >= 2, `multi-stage (${froms.length} FROM lines)`)
  const final = froms.at(-1)
  if (final === undefined) throw new Error('no FROM')
  t.equal(`${String(final.getImageName())}:${String(final.getImageTag())}`, 'node:24-slim', 'the final stage is node:24-slim')

  const startLine = final.getRange().start.line
  const inFinal = (i: Instruction): boolean => i.getRange().start.line > startLine
  const finalStage = dockerfile.getInstructions().filter(inFinal)
  const users = finalStage.filter((i) => i.getKeyword() === 'USER').map((i) => i.getArgumentsContent()?.trim() ?? '')
  const user = users.at(-1)
  t.ok(user !== undefined && !/^(root|0)(:|$)/.test(user), `the final stage runs as a non-root user (${String(user)})`)
  // runAsUser 1000 in deploy/k8s is the node image's `node` user.
  t.equal(user, 'node', 'USER node, uid 1000 in the node image, as runAsUser in deploy/k8s')

  const cmd = dockerfile.getCMDs().filter(inFinal).at(-1)
  const args = cmd?.getJSONStrings().map((a) => a.getJSONValue()) ?? []
  t.ok(args.length > 0, 'CMD is in exec (JSON) form, so no shell sits between the signal and node')
  t.equal(args[0], 'node', 'CMD starts node itself, not npm')
  t.notOk(dockerfile.getENTRYPOINTs().some(inFinal), 'no ENTRYPOINT wraps it')

  const exposed = finalStage.filter((i) => i.getKeyword() === 'EXPOSE').map((i) => Number(i.getArgumentsContent()))
  t.same(exposed, [one('Deployment').spec.template.spec.containers[0].ports[0].containerPort], 'EXPOSE matches the containerPort')
})
