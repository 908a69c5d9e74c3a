// The Kubernetes manifests (deploy/kubernetes) and the Helm chart (deploy/helm/entra-gateway),
// built and rendered here as kustomize and Helm would (no cluster, no kustomize or helm binary:
// test/helpers/kubernetes.ts), validated against the Kubernetes schemas, checked against the
// gateway's own settings and routes, and compared with each other.
import t from 'tap'
import path from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { knownVariables, loadConfig, ConfigError } from '../../src/config.js'
import { parseUpstream } from '../../src/config/upstream.js'
import { GUID } from '../../src/config/readers.js'
import { ROOT, read, loadCompose } from '../helpers/deploy.js'
import { helmTemplate, kustomize, podContainers, unknownFields, type K8sObject } from '../helpers/kubernetes.js'
import { MODELS } from '../helpers/kubernetes-models.js'
import { startStack } from '../helpers/stack.js'
import { startRedis } from '../../dev/redis-server.js'

type Plain = Record<string, any>
const K8S = path.join(ROOT, 'deploy/kubernetes')
const CHART = path.join(ROOT, 'deploy/helm/entra-gateway')
const RELEASE = { name: 'entra-gateway', namespace: 'librechat' }
const known = new Set(knownVariables())
/** A name that says "this holds a secret" (as in compose.test.ts). */
const SECRET_NAME = /SECRET|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|(^|_)(KEY|IV|TOKEN)$/i
/** Set in the container by Kubernetes or Azure, not by these manifests' authors: documented, not the gateway's. */
const PLATFORM_VARIABLES = new Set(['AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_AUTHORITY_HOST', 'AZURE_FEDERATED_TOKEN_FILE'])
const pkgVersion = (JSON.parse(read('package.json')) as { version: string }).version

const base = kustomize(path.join(K8S, 'base'))
const example = kustomize(path.join(K8S, 'overlays/example'))
const withRedis = kustomize(path.join(K8S, 'overlays/with-redis'))

const find = (objects: K8sObject[], kind: string, name = 'entra-gateway'): Plain => {
  const o = objects.find(x => x.kind === kind && x.metadata.name === name)
  if (o === undefined) throw new Error(`no ${kind}/${name}`)
  return o
}
const configOf = (objects: K8sObject[]): Record<string, string> => find(objects, 'ConfigMap').data
const gatewayContainer = (objects: K8sObject[]): Plain => {
  const c = podContainers(find(objects, 'Deployment') as K8sObject).find(x => x.name === 'gateway')
  if (c === undefined) throw new Error('no container "gateway"')
  return c
}
const podSpec = (o: Plain): Plain => o.spec.template.spec

// The chart with the values that say what the example overlay says.
const exampleValues = {
  image: { repository: String(gatewayContainer(example).image).split(':')[0], tag: String(gatewayContainer(example).image).split(':')[1] },
  config: configOf(example),
  workloadIdentity: { enabled: true, clientId: find(example, 'ServiceAccount').metadata.annotations['azure.workload.identity/client-id'] }
}
const helmDefault = helmTemplate(CHART, RELEASE).objects
const helmExample = helmTemplate(CHART, RELEASE, exampleValues).objects

const OUTPUTS: Array<[string, K8sObject[]]> = [
  ['kustomize base', base], ['overlays/example', example], ['overlays/with-redis', withRedis],
  ['helm (defaults)', helmDefault], ['helm (the example\'s values)', helmExample]
]

// The Secret's keys, as docs/kubernetes.md tells the operator to create it.
const docs = read('docs/kubernetes.md')
const secretCommands = [...docs.matchAll(/kubectl create secret generic entra-gateway --namespace \S+((?:[^\n]*\\\n)*[^\n]*)/g)]
const secretKeysOf = (cmd: RegExpMatchArray): string[] => [...(cmd[1] as string).matchAll(/--from-literal=([A-Z_]+)=/g)].map(m => m[1] as string)
const SECRET_VALUES: Record<string, string> = {
  OPENID_CLIENT_SECRET: 'x'.repeat(40),
  OPENID_SESSION_SECRET: 'y'.repeat(64),
  REDIS_URL: 'redis://:password@entra-gateway-redis-master:6379/0'
}
const secretEnv = (): Record<string, string> => Object.fromEntries(secretKeysOf(secretCommands[0] as RegExpMatchArray).map(k => [k, SECRET_VALUES[k] ?? 'set']))
/** The gateway's configuration from these objects' ConfigMap and the Secret; the base's empty placeholders take the example's values. */
const effectiveConfig = (objects: K8sObject[]): ReturnType<typeof loadConfig> => {
  const own = Object.fromEntries(Object.entries(configOf(objects)).filter(([, v]) => v !== ''))
  return loadConfig({ ...configOf(example), ...own, ...secretEnv() })
}

t.test('every object validates against the Kubernetes schemas and has no unknown field', async t => {
  for (const [label, objects] of OUTPUTS) {
    for (const o of objects) {
      const Model = (MODELS as Record<string, (new (data: unknown) => { validate: () => void }) | undefined>)[`${o.apiVersion}/${o.kind}`]
      t.ok(Model, `${label}: ${o.apiVersion} ${o.kind} is a kind the test knows`)
      if (Model === undefined) continue
      t.doesNotThrow(() => new Model(o).validate(), `${label}: ${o.kind}/${o.metadata.name} is valid`)
      t.same(unknownFields(o), [], `${label}: ${o.kind}/${o.metadata.name} has only fields its kind has`)
    }
  }
  // The checks are not no-ops.
  const broken = structuredClone(find(base, 'Deployment'))
  podSpec(broken).containers[0].ports[0].containerPort = 'http'
  const Deployment = MODELS['apps/v1/Deployment']
  t.throws(() => new Deployment(broken as never).validate(), 'a string containerPort is refused by the schema')
  const misspelt = structuredClone(find(base, 'Deployment'))
  podSpec(misspelt).containers[0].readinesProbe = podSpec(misspelt).containers[0].readinessProbe
  t.same(unknownFields(misspelt as K8sObject), ['Deployment/entra-gateway.spec.template.spec.containers[0].readinesProbe'], 'a misspelt field is found')
})

t.test('the base: its objects, and how they refer to each other', async t => {
  t.same(base.map(o => `${o.kind}/${o.metadata.name}`).sort(),
    ['ConfigMap/entra-gateway', 'Deployment/entra-gateway', 'PodDisruptionBudget/entra-gateway', 'Service/entra-gateway', 'ServiceAccount/entra-gateway'])
  for (const [label, objects] of OUTPUTS) {
    t.notOk(objects.some(o => o.kind === 'Secret'), `${label}: no Secret (the operator creates it; no secret value in git)`)
    const dep = find(objects, 'Deployment')
    const labels = dep.spec.template.metadata.labels as Record<string, string>
    const selects = (selector: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v)
    t.equal(dep.spec.replicas, 2, `${label}: 2 replicas`)
    t.ok(selects(dep.spec.selector.matchLabels), `${label}: the Deployment selects its own pods`)
    t.ok(selects(find(objects, 'Service').spec.selector), `${label}: the Service selects the gateway's pods`)
    t.ok(selects(find(objects, 'PodDisruptionBudget').spec.selector.matchLabels), `${label}: the PDB selects the gateway's pods`)
    t.equal(find(objects, 'PodDisruptionBudget').spec.maxUnavailable, 1, `${label}: PDB maxUnavailable 1`)
    t.equal(podSpec(dep).serviceAccountName, find(objects, 'ServiceAccount').metadata.name, `${label}: the pods run as the ServiceAccount`)
    const spread = podSpec(dep).topologySpreadConstraints as Plain[]
    t.ok(spread.some(c => c.topologyKey === 'kubernetes.io/hostname' && selects(c.labelSelector.matchLabels)), `${label}: replicas spread across nodes`)
    const envFrom = gatewayContainer(objects).envFrom as Plain[]
    t.same(envFrom.map(e => e.configMapRef?.name ?? `secret:${String(e.secretRef?.name)}`), ['entra-gateway', 'secret:entra-gateway'], `${label}: environment from the ConfigMap, then the Secret (its values win)`)
    t.notOk(envFrom.some(e => e.secretRef?.optional === true || e.configMapRef?.optional === true), `${label}: neither is optional (no pod without them)`)
    t.equal(podSpec(dep).enableServiceLinks, false, `${label}: no <SERVICE>_PORT variables from other Services (a Service named "metrics" would set METRICS_PORT)`)
  }
})

t.test('probes: the gateway\'s paths, on the gateway\'s port', async t => {
  const defaultPort = parseUpstream({}).values.port
  t.equal(defaultPort, 3080, 'PORT defaults to 3080 (src/config/upstream.ts)')
  const readyTimeoutMs = Number(/const CHECK_TIMEOUT_MS = (\d+)/.exec(read('src/routes/health.ts'))?.[1])
  t.ok(readyTimeoutMs > 0, `/readyz checks each dependency within ${readyTimeoutMs} ms (src/routes/health.ts)`)
  for (const [label, objects] of OUTPUTS) {
    const c = gatewayContainer(objects)
    const config = effectiveConfig(objects)
    const portOf = (name: unknown): number => (c.ports as Plain[]).find(p => p.name === name)?.containerPort
    t.equal(portOf('http'), config.port, `${label}: the container port "http" is PORT (${config.port})`)
    t.equal(configOf(objects).PORT, String(defaultPort), `${label}: PORT is the gateway's default`)
    t.equal(c.startupProbe?.httpGet?.path, '/healthz', `${label}: startup probe on /healthz`)
    t.equal(c.livenessProbe?.httpGet?.path, '/healthz', `${label}: liveness probe on /healthz`)
    t.equal(c.readinessProbe?.httpGet?.path, '/readyz', `${label}: readiness probe on /readyz`)
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      t.equal(portOf(c[probe].httpGet.port), config.port, `${label}: ${probe} asks PORT`)
    }
    t.ok(c.readinessProbe.timeoutSeconds * 1000 > readyTimeoutMs, `${label}: the readiness timeout (${String(c.readinessProbe.timeoutSeconds)} s) lets /readyz's own checks time out first`)
    t.ok(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold >= 30, `${label}: the startup probe allows 30 s or more`)
    const svc = find(objects, 'Service').spec.ports as Plain[]
    t.same(svc.map(p => p.targetPort), ['http'], `${label}: the Service sends to the container port "http" only`)
  }
})

t.test('the probes\' paths answer 200 on a gateway started with the ConfigMap\'s settings', async t => {
  const redis = await startRedis()
  t.teardown(redis.stop)
  // The ConfigMap's settings, less the placeholders and the listener (the stack's own free port).
  const env = Object.fromEntries(Object.entries(configOf(base)).filter(([k, v]) => v !== '' && !['PORT', 'HOST', 'METRICS_PORT'].includes(k)))
  t.equal(env.SESSION_STORE, 'redis')
  const stack = await startStack({ env: { ...env, REDIS_URL: redis.url } })
  t.teardown(stack.close)
  const c = gatewayContainer(base)
  for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
    const res = await fetch(stack.url + String(c[probe].httpGet.path))
    t.equal(res.status, 200, `${probe} ${String(c[probe].httpGet.path)}: 200`)
    await res.body?.cancel()
  }
  const ready = await (await fetch(stack.url + String(c.readinessProbe.httpGet.path))).json() as { status: string, checks: Record<string, string> }
  t.equal(ready.status, 'ready')
  t.equal(ready.checks.session_store, 'ok', 'with Redis, as the ConfigMap says')
})

t.test('shutdown: the grace period covers preStop and the gateway\'s own deadline', async t => {
  for (const [label, objects] of OUTPUTS) {
    const config = effectiveConfig(objects)
    t.equal(config.shutdownTimeoutSeconds, parseUpstream({}).values.shutdownTimeoutSeconds, `${label}: SHUTDOWN_TIMEOUT_SECONDS is the gateway's default (${config.shutdownTimeoutSeconds})`)
    const c = gatewayContainer(objects)
    const cmd = c.lifecycle?.preStop?.exec?.command as string[]
    t.equal(cmd[0], 'sleep', `${label}: preStop sleeps (the endpoints go while the pod still serves)`)
    const preStop = Number(cmd[1])
    const grace = podSpec(find(objects, 'Deployment')).terminationGracePeriodSeconds as number
    // The gateway cuts open streams at its deadline and allows itself one more second to close.
    t.ok(grace > preStop + config.shutdownTimeoutSeconds + 1, `${label}: terminationGracePeriodSeconds (${grace}) > preStop (${preStop}) + SHUTDOWN_TIMEOUT_SECONDS (${config.shutdownTimeoutSeconds}) + 1`)
  }
})

t.test('security context: non-root, read-only, nothing extra', async t => {
  for (const [label, objects] of OUTPUTS) {
    for (const w of objects.filter(o => o.kind === 'Deployment' || o.kind === 'StatefulSet')) {
      const name = `${label}: ${w.kind}/${w.metadata.name}`
      const pod = podSpec(w)
      t.equal(pod.securityContext?.runAsNonRoot, true, `${name}: runAsNonRoot`)
      t.ok(Number.isInteger(pod.securityContext?.runAsUser) && pod.securityContext.runAsUser > 0, `${name}: a numeric non-root runAsUser (the kubelet cannot check a user name)`)
      t.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${name}: seccomp RuntimeDefault`)
      t.equal(pod.automountServiceAccountToken, false, `${name}: no API token`)
      for (const key of ['hostNetwork', 'hostPID', 'hostIPC']) t.notOk(pod[key], `${name}: no ${key}`)
      for (const c of podContainers(w)) {
        const sc = c.securityContext as Plain | undefined
        t.equal(sc?.allowPrivilegeEscalation, false, `${name} ${String(c.name)}: allowPrivilegeEscalation false`)
        t.equal(sc?.readOnlyRootFilesystem, true, `${name} ${String(c.name)}: readOnlyRootFilesystem`)
        t.same(sc?.capabilities, { drop: ['ALL'] }, `${name} ${String(c.name)}: every capability dropped, none added`)
        t.notOk(sc?.privileged, `${name} ${String(c.name)}: not privileged`)
        t.notOk(sc?.runAsUser === 0, `${name} ${String(c.name)}: no root override`)
        const res = c.resources as Plain | undefined
        t.ok(res?.requests?.cpu !== undefined && res?.requests?.memory !== undefined, `${name} ${String(c.name)}: CPU and memory requests`)
        t.ok(res?.limits?.memory !== undefined, `${name} ${String(c.name)}: a memory limit`)
      }
    }
    // The Dockerfile's user is `node`, uid 1000 in the official Node images.
    t.equal(podSpec(find(objects, 'Deployment')).securityContext.runAsUser, 1000, `${label}: the gateway runs as the image's node user (1000)`)
  }
  t.match(read('Dockerfile'), /^USER node$/m, 'the image\'s user is node')
})

t.test('environment: settings the gateway knows, secrets only in the Secret', async t => {
  t.equal(secretCommands.length, 2, 'docs/kubernetes.md creates the Secret entra-gateway (with Bitnami\'s Redis, and with components/redis)')
  for (const cmd of secretCommands) {
    t.same(secretKeysOf(cmd).sort(), ['OPENID_CLIENT_SECRET', 'OPENID_SESSION_SECRET', 'REDIS_URL'], 'the Secret holds the two secrets and REDIS_URL (with the Redis password)')
  }
  for (const [label, objects] of OUTPUTS) {
    const data = configOf(objects)
    for (const [k, v] of Object.entries(data)) {
      t.ok(known.has(k), `${label}: ConfigMap ${k} is a setting the gateway knows (knownVariables())`)
      t.notMatch(k, SECRET_NAME, `${label}: ConfigMap ${k} is not a secret's name`)
      t.equal(typeof v, 'string', `${label}: ConfigMap ${k} is a string`)
      t.notMatch(v, /:\/\/[^/@\s]*:[^/@\s]+@/, `${label}: ConfigMap ${k} holds no URL with a password`)
    }
    for (const k of Object.keys(secretEnv())) t.notOk(k in data, `${label}: ${k} is not in the ConfigMap`)
    for (const w of objects.filter(o => o.kind === 'Deployment')) {
      for (const c of podContainers(w)) {
        for (const e of (c.env as Plain[] | undefined) ?? []) {
          t.ok(known.has(e.name) || PLATFORM_VARIABLES.has(e.name), `${label}: env ${String(e.name)} is a gateway setting or a documented platform one`)
        }
      }
    }
  }
  // The base, with the Secret: exactly the four placeholders are reported, each on its own line.
  let err: unknown
  try { loadConfig({ ...configOf(base), ...secretEnv() }) } catch (e) { err = e }
  t.ok(err instanceof ConfigError, 'the base alone does not start')
  t.same((err as ConfigError).problems.map(p => /^([A-Z_]+)/.exec(p)?.[1]).sort(), ['DOMAIN_SERVER', 'OPENID_CLIENT_ID', 'OPENID_ISSUER', 'UPSTREAM_URL'], 'exactly the four values to fill in are reported')
  for (const [label, objects] of [['overlays/example', example], ['overlays/with-redis', withRedis], ['helm (the example\'s values)', helmExample]] as const) {
    const config = loadConfig({ ...configOf(objects), ...secretEnv() })
    t.equal(config.sessionStore, 'redis', `${label}: a complete configuration, sessions in Redis`)
    t.equal(config.redirectUri, 'https://chat.example.com/oauth/openid/callback', `${label}: the redirect URI to register`)
  }
})

t.test('Redis: the addresses in the docs are the Services that serve it', async t => {
  const urls = secretCommands.map(cmd => /REDIS_URL="redis:\/\/:\$\{REDIS_PASSWORD\}@([^:"]+):(\d+)\/0"/.exec(cmd[1] as string))
  t.ok(urls.every(u => u !== null), 'each Secret command sets REDIS_URL with the password')
  // Bitnami's chart: release entra-gateway-redis serves <release>-master; its password Secret is <release>.
  t.equal(urls[0]?.[1], 'entra-gateway-redis-master.librechat.svc.cluster.local')
  t.match(docs, /helm install entra-gateway-redis oci:\/\/registry-1\.docker\.io\/bitnamicharts\/redis/, 'the Bitnami chart\'s release is entra-gateway-redis')
  t.match(docs, /kubectl get secret --namespace librechat entra-gateway-redis -o jsonpath='\{\.data\.redis-password\}'/, 'its password: Secret <release>, key redis-password')
  t.match(read('deploy/kubernetes/overlays/example/kustomization.yaml'), /entra-gateway-redis-master\.librechat\.svc\.cluster\.local:6379/, 'the example overlay names the same address')
  // components/redis
  const svc = find(withRedis, 'Service', 'entra-gateway-redis')
  t.equal(urls[1]?.[1], svc.metadata.name, 'with components/redis: its Service')
  t.equal(Number(urls[1]?.[2]), svc.spec.ports[0].port, 'on its port')
  const sts = find(withRedis, 'StatefulSet', 'entra-gateway-redis')
  const redis = podContainers(sts as K8sObject)[0] as Plain
  t.equal(redis.image, loadCompose().services.redis?.image, 'the Redis image docker-compose.yml runs')
  t.same(redis.env, [{ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'entra-gateway-redis', key: 'password' } } }], 'its password from the Secret entra-gateway-redis')
  t.match(docs, /kubectl create secret generic entra-gateway-redis --namespace librechat --from-literal=password=/, 'which the docs create')
  t.match(redis.command.join(' '), /--requirepass "\$REDIS_PASSWORD"/, 'required, read from the environment (not on the command line)')
  t.match(redis.command.join(' '), /--appendonly yes --dir \/data/, 'append-only, on the volume')
  t.same(redis.volumeMounts, [{ name: 'data', mountPath: '/data' }])
  t.equal(sts.spec.volumeClaimTemplates[0].metadata.name, 'data')
  const labels = sts.spec.template.metadata.labels as Record<string, string>
  t.ok(Object.entries(svc.spec.selector as Record<string, string>).every(([k, v]) => labels[k] === v), 'the Service selects the Redis pod')
})

t.test('metrics: the port named, annotated, and off the Service', async t => {
  t.match(read('src/metrics/plugin.ts'), /req\.url !== '\/metrics'/, 'the metrics listener serves /metrics')
  for (const [label, objects] of OUTPUTS) {
    const config = effectiveConfig(objects)
    t.equal(config.metricsPort, 9464, `${label}: METRICS_PORT is set`)
    const port = (gatewayContainer(objects).ports as Plain[]).find(p => p.name === 'metrics')
    t.equal(port?.containerPort, config.metricsPort, `${label}: the container port "metrics" is METRICS_PORT`)
    const ann = find(objects, 'Deployment').spec.template.metadata.annotations as Record<string, string>
    t.same({ scrape: ann['prometheus.io/scrape'], port: ann['prometheus.io/port'], path: ann['prometheus.io/path'] }, { scrape: 'true', port: String(config.metricsPort), path: '/metrics' }, `${label}: Prometheus annotations`)
    t.notOk((find(objects, 'Service').spec.ports as Plain[]).some(p => p.targetPort === 'metrics' || p.targetPort === config.metricsPort || p.port === config.metricsPort), `${label}: the Service does not expose metrics`)
  }
})

t.test('workload identity: as AKS expects, only where asked for', async t => {
  const wired = (objects: K8sObject[]): { clientId: unknown, use: unknown } => ({
    clientId: find(objects, 'ServiceAccount').metadata.annotations?.['azure.workload.identity/client-id'],
    use: find(objects, 'Deployment').spec.template.metadata.labels['azure.workload.identity/use']
  })
  t.same(wired(base), { clientId: undefined, use: undefined }, 'the base: not wired')
  t.same(wired(helmDefault), { clientId: undefined, use: undefined }, 'the chart by default: not wired')
  for (const [label, objects] of [['overlays/example', example], ['helm (the example\'s values)', helmExample]] as const) {
    const w = wired(objects)
    t.equal(w.use, 'true', `${label}: the pod label azure.workload.identity/use: "true"`)
    t.match(w.clientId, GUID, `${label}: the ServiceAccount annotation azure.workload.identity/client-id is a client id`)
    t.equal(w.clientId, configOf(objects).OPENID_CLIENT_ID, `${label}: the app registration's (OPENID_CLIENT_ID)`)
    t.notOk(Object.hasOwn(find(objects, 'Deployment').spec.selector.matchLabels, 'azure.workload.identity/use'), `${label}: the label is not in the selector (it may be added later)`)
  }
  t.match(read('deploy/kubernetes/components/workload-identity/kustomization.yaml'), /issue 13/, 'the component says the gateway\'s use of the token is issue 13')
  t.match(docs, /issue 13/, 'so do the docs')
})

t.test('images and versions', async t => {
  const chart = read('deploy/helm/entra-gateway/Chart.yaml')
  t.match(chart, new RegExp(`^appVersion: "${pkgVersion.replace(/\./g, '\\.')}"$`, 'm'), `the chart's appVersion is the gateway's (${pkgVersion})`)
  t.equal(gatewayContainer(base).image, `entra-gateway:${pkgVersion}`, 'the base runs this version')
  t.equal(gatewayContainer(helmDefault).image, `entra-gateway:${pkgVersion}`, 'so does the chart by default')
  t.equal(gatewayContainer(example).image, `myregistry.azurecr.io/entra-gateway:${pkgVersion}`, 'the example overlay: from a registry')
})

t.test('the Helm chart renders the kustomize base, object for object', async t => {
  const key = (o: K8sObject): string => `${o.kind}/${o.metadata.name}`
  t.same(helmDefault.map(key).sort(), base.map(key).sort(), 'the same kinds and names')
  for (const o of base) {
    const h = helmDefault.find(x => key(x) === key(o))
    t.ok(h !== undefined && isDeepStrictEqual(h, o), `${key(o)}: identical with the defaults`)
    if (h !== undefined && !isDeepStrictEqual(h, o)) t.same(h, o, `${key(o)}: the difference`)
  }
  // With the example's values, the example overlay (which also sets the namespace: helm -n does).
  const strip = (o: K8sObject): K8sObject => ({ ...o, metadata: { ...o.metadata, namespace: undefined } })
  for (const o of example) {
    t.equal(o.metadata.namespace, RELEASE.namespace, `${key(o)}: the overlay's namespace`)
    const h = helmExample.find(x => key(x) === key(o))
    t.ok(h !== undefined && isDeepStrictEqual(strip(h), strip(o)), `${key(o)}: identical with the example's values`)
    if (h !== undefined && !isDeepStrictEqual(strip(h), strip(o))) t.same(strip(h), strip(o), `${key(o)}: the difference`)
  }
})

t.test('the builders refuse what they do not implement', async t => {
  const kustomization = (extra: string): string => `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ${path.join(K8S, 'base/configmap.yaml')}\n${extra}`
  const dir = (files: Parameters<typeof t.testdir>[0]): string => t.testdir(files)
  t.throws(() => kustomize(dir({ 'kustomization.yaml': kustomization('configMapGenerator:\n  - name: x\n') })), /"configMapGenerator" is not supported/)
  t.throws(() => kustomize(dir({ 'kustomization.yaml': kustomization('patches:\n  - target: { kind: ConfigMap }\n    patch: "[]"\n') })), /patches entries must be \{ path \}/)
  t.throws(() => kustomize(dir({
    'kustomization.yaml': kustomization('patches:\n  - path: p.yaml\n'),
    'p.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: entra-gateway\n  finalizers: [a]\n'
  })), /a list in a patch/)
  t.throws(() => kustomize(dir({
    'kustomization.yaml': kustomization('patches:\n  - path: p.yaml\n'),
    'p.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n'
  })), /matches 0 objects/)
  t.throws(() => kustomize(dir({ 'kustomization.yaml': kustomization('images:\n  - name: nginx\n    newTag: "1"\n') })), /matches no container/)
  const chart = (template: string): string => dir({
    'Chart.yaml': 'apiVersion: v2\nname: x\nversion: 0.1.0\nappVersion: "1"\n',
    'values.yaml': 'a: 1\n',
    templates: { 'x.yaml': template }
  })
  t.throws(() => helmTemplate(chart('{{ range .Values.a }}x{{ end }}'), RELEASE), /not supported by this renderer/)
  t.throws(() => helmTemplate(chart('{{ .Values.b }}'), RELEASE), /\.Values\.b is not defined/)
  t.throws(() => helmTemplate(chart('{{ .Values.a | default 2 }}'), RELEASE), /not supported by this renderer/)
  t.throws(() => helmTemplate(chart('{{ if .Values.a }}x'), RELEASE), /unclosed if/)
})
