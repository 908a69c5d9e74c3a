// The deployment files, read as Docker and Compose would read them (no Docker engine runs here):
// docker-compose.yml, Dockerfile, .dockerignore and config/.env.example.
import t from 'tap'
import { parse as parseDotenv } from 'dotenv'
import { knownVariables, loadConfig, ConfigError } from '../../src/config.js'
import {
  all, dependsOf, dockerIgnore, environmentOf, envFilesOf, execForm, interpolate, loadCompose,
  networksOf, parseCopy, parseDockerfile, parseEnv, parseEnvExample, read, type ComposeService
} from '../helpers/deploy.js'
import { loadCompose as loadModel, validateCompose } from '../helpers/compose-merge.js'

const known = new Set(knownVariables())
const compose = loadCompose()
const services = compose.services
const LIBRECHAT = ['api', 'mongodb', 'meilisearch', 'vectordb', 'rag_api']
/** A name that says "this holds a secret". */
const SECRET_NAME = /SECRET|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|(^|_)(KEY|IV|TOKEN)$/i

/** Compose's duration format (`15s`, `1m30s`, `500ms`) in seconds. */
function composeDuration (text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)]
  if (parts.length === 0 || parts.map(p => p[0]).join('') !== text) throw new Error(`not a compose duration: ${text}`)
  const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001, us: 0.000001 }
  return parts.reduce((sum, p) => sum + Number(p[1]) * (unit[p[2] as string] as number), 0)
}

const isInternal = (network: string): boolean => compose.networks?.[network]?.internal === true
const membersOf = (network: string): string[] => Object.keys(services).filter(s => networksOf(services[s] as ComposeService).includes(network))
const svc = (name: string): ComposeService => {
  const s = services[name]
  if (s === undefined) throw new Error(`docker-compose.yml has no service "${name}"`)
  return s
}

t.test('docker-compose.yml: services, ports, networks', async t => {
  t.ok(compose.services !== null && typeof compose.services === 'object', 'parses as YAML with services')
  for (const name of ['gateway', 'redis', ...LIBRECHAT]) t.ok(services[name], `has service ${name}`)
  // The images LibreChat's own docker-compose.yml runs (its registry, not the retired ghcr.io names).
  t.match(svc('api').image, /^registry\.librechat\.ai\/librechat-ai\/librechat-dev:/, "api is LibreChat's published image")
  t.match(svc('rag_api').image, /^registry\.librechat\.ai\/librechat-ai\/librechat-rag-api-dev-lite:/, "rag_api is LibreChat's RAG API image")
  t.match(svc('vectordb').image, /^pgvector\/pgvector:/, 'vectordb is pgvector, as in LibreChat\'s file')
  t.match(svc('meilisearch').image, /^getmeili\/meilisearch:v1\.35\.1$/, 'meilisearch at LibreChat\'s version (its data format is tied to it)')
  t.match(svc('mongodb').image, /^mongo:8\.0/, 'mongo 8.0, as in LibreChat\'s file')
  t.match(svc('redis').image, /^redis:7/, 'redis 7')
  t.equal(svc('gateway').build, '.', 'the gateway is built from this Dockerfile')

  for (const [name, s] of Object.entries(services)) {
    t.not(s.network_mode, 'host', `${name}: not on the host network`)
    if (name === 'gateway') continue
    t.same(s.ports ?? [], [], `${name}: publishes no port`)
  }
  const ports = (svc('gateway').ports ?? []).map(String)
  t.same(ports, ['3080:3080'], 'the gateway publishes exactly 3080:3080')

  const declared = Object.keys(compose.networks ?? {})
  for (const [name, s] of Object.entries(services)) {
    for (const n of networksOf(s)) t.ok(declared.includes(n), `${name}: network ${n} is declared (no implicit default network)`)
  }
  // The data services and Redis live on internal networks only.
  for (const name of ['mongodb', 'meilisearch', 'vectordb', 'redis']) {
    const nets = networksOf(svc(name))
    t.ok(nets.length > 0 && nets.every(isInternal), `${name}: only on internal networks (${nets.join(', ')})`)
  }
  // LibreChat meets the gateway on an internal network; its only other way is an egress network
  // it alone is on (outbound calls to AI providers and Entra), with nothing published.
  const apiNets = networksOf(svc('api'))
  const shared = apiNets.filter(n => networksOf(svc('gateway')).includes(n))
  t.ok(shared.length > 0 && shared.every(isInternal), `api and gateway share internal network(s) only (${shared.join(', ')})`)
  for (const n of apiNets.filter(n => !isInternal(n))) {
    t.same(membersOf(n), ['api'], `api's non-internal network "${n}" is for egress: api alone is on it`)
  }
  // The gateway's own non-internal network(s): no LibreChat service on them.
  for (const n of networksOf(svc('gateway')).filter(n => !isInternal(n))) {
    t.same(membersOf(n).filter(m => LIBRECHAT.includes(m) || m === 'redis'), [], `public network "${n}": no LibreChat service or Redis on it`)
  }
  // The RAG API reaches its embeddings provider on an egress network of its own.
  for (const n of networksOf(svc('rag_api')).filter(n => !isInternal(n))) {
    t.same(membersOf(n), ['rag_api'], `rag_api's non-internal network "${n}" is for egress: rag_api alone is on it`)
  }
  t.ok(networksOf(svc('rag_api')).some(n => networksOf(svc('api')).includes(n) && isInternal(n)), 'api reaches rag_api on an internal network')
  // MongoDB runs without auth (as in LibreChat's compose): the gateway cannot reach it.
  for (const name of ['mongodb', 'meilisearch', 'vectordb', 'rag_api']) {
    t.same(networksOf(svc(name)).filter(n => networksOf(svc('gateway')).includes(n)), [], `${name} shares no network with the gateway`)
  }
})

t.test('docker-compose.yml: valid Compose, with the images of LibreChat\'s own file', async t => {
  const vars = { DOMAIN_SERVER: 'https://chat.example.com', MEILI_MASTER_KEY: 'k', POSTGRES_PASSWORD: 'p' }
  t.same(validateCompose(loadModel(read('docker-compose.yml'), vars)), [], "valid against the Compose specification's JSON schema")
  const theirs = loadModel(read('test/fixtures/librechat/docker-compose.yml'), { PORT: '3080', UID: '1000', GID: '1000' }).services as Record<string, ComposeService>
  for (const name of LIBRECHAT) t.equal(svc(name).image, theirs[name]?.image, `${name}: the image LibreChat's docker-compose.yml runs`)
})

t.test('docker-compose.yml: health checks and start order', async t => {
  for (const [name, s] of Object.entries(services)) {
    const test = s.healthcheck?.test
    t.ok(test !== undefined && s.healthcheck?.disable !== true, `${name}: has a healthcheck`)
    const cmd = Array.isArray(test) ? test : [String(test)]
    t.not(cmd[0], 'NONE', `${name}: healthcheck not disabled`)
    for (const dep of dependsOf(s)) {
      t.ok(services[dep.name], `${name} depends on an existing service ${dep.name}`)
      t.equal(dep.condition, 'service_healthy', `${name} -> ${dep.name}: condition service_healthy`)
    }
  }
  t.same(dependsOf(svc('gateway')).map(d => d.name).sort(), ['api', 'redis'], 'the gateway waits for redis and api')
  t.same(dependsOf(svc('api')).map(d => d.name).sort(), ['meilisearch', 'mongodb', 'rag_api'], 'api waits for mongodb, meilisearch and the RAG API')
  t.same(dependsOf(svc('rag_api')).map(d => d.name), ['vectordb'], 'the RAG API waits for its database')
  t.match(JSON.stringify(svc('rag_api').healthcheck?.test), /:8000\/health/, "rag_api health check: the RAG API's /health")
  t.match(JSON.stringify(svc('vectordb').healthcheck?.test), /pg_isready/, 'vectordb health check: pg_isready')
  t.match(JSON.stringify(svc('gateway').healthcheck?.test), /127\.0\.0\.1:3080\/healthz/, 'gateway health check: /healthz')
  t.match(JSON.stringify(svc('api').healthcheck?.test), /:3080\/health\b/, "api health check: LibreChat's /health")
  t.match(JSON.stringify(svc('meilisearch').healthcheck?.test), /:7700\/health/, 'meilisearch health check: /health')
  t.match(JSON.stringify(svc('redis').healthcheck?.test), /redis-cli.*ping/, 'redis health check: redis-cli ping')
})

t.test('docker-compose.yml: settings', async t => {
  const gw = svc('gateway')
  const env = environmentOf(gw)
  t.ok(envFilesOf(gw).includes('.env'), 'gateway: env_file .env')
  t.ok(envFilesOf(svc('api')).includes('.env'), 'api: env_file .env')
  for (const name of Object.keys(env)) t.ok(known.has(name), `gateway environment: ${name} is a setting the gateway knows (knownVariables())`)
  t.notOk('TRUSTED_PROXIES' in env, 'TRUSTED_PROXIES unset: the gateway is the edge')
  t.equal(env.SESSION_STORE, 'redis')
  t.equal(env.HOST, '0.0.0.0')
  t.equal(env.PORT ?? '3080', '3080')

  // The addresses the gateway is given are services on a network it shares with them.
  const reach = (url: string, label: string): void => {
    const u = new URL(url)
    const target = services[u.hostname]
    t.ok(target, `${label} names a compose service (${u.hostname})`)
    if (target === undefined) return
    const common = networksOf(target).filter(n => networksOf(gw).includes(n))
    t.ok(common.length > 0, `${label}: the gateway and ${u.hostname} share a network`)
  }
  reach(env.UPSTREAM_URL ?? '', 'UPSTREAM_URL')
  t.equal(new URL(env.UPSTREAM_URL ?? '').port, '3080', 'UPSTREAM_URL: LibreChat listens on 3080')
  reach(env.REDIS_URL ?? '', 'REDIS_URL')

  // What LibreChat needs behind the gateway.
  const api = environmentOf(svc('api'))
  const vars = { DOMAIN_SERVER: 'https://chat.example.com', MEILI_MASTER_KEY: 'k' }
  t.equal(interpolate(api.DOMAIN_SERVER ?? '', vars), 'https://chat.example.com', "api DOMAIN_SERVER = the gateway's DOMAIN_SERVER")
  t.equal(interpolate(api.DOMAIN_CLIENT ?? '', vars), 'https://chat.example.com', "api DOMAIN_CLIENT = the gateway's DOMAIN_SERVER")
  t.throws(() => interpolate(api.DOMAIN_SERVER ?? '', {}), /DOMAIN_SERVER/, 'compose refuses to start without DOMAIN_SERVER')
  t.equal(api.OPENID_AUTO_REDIRECT, 'true')
  t.equal(api.TRUST_PROXY, '1')
  t.equal(api.HOST, '0.0.0.0', 'LibreChat listens beyond localhost (its default)')
  t.equal(api.PORT ?? '3080', '3080')
  t.match(api.MONGO_URI, /^mongodb:\/\/mongodb:27017\//)
  t.equal(api.MEILI_HOST, 'http://meilisearch:7700')
  t.equal(api.RAG_API_URL, 'http://rag_api:8000', "LibreChat's RAG API, on the port rag_api listens on")
  t.equal(environmentOf(svc('rag_api')).RAG_PORT, '8000')
  t.equal(environmentOf(svc('rag_api')).DB_HOST, 'vectordb')
  t.throws(() => interpolate(environmentOf(svc('vectordb')).POSTGRES_PASSWORD ?? '', {}), /POSTGRES_PASSWORD/, 'vectordb refuses to start without a password (LibreChat\'s file ships a fixed one)')
  const meili = environmentOf(svc('meilisearch'))
  t.equal(meili.MEILI_NO_ANALYTICS, 'true')
  t.throws(() => interpolate(meili.MEILI_MASTER_KEY ?? '', {}), /MEILI_MASTER_KEY/, 'meilisearch refuses to start without a master key')

  // Secrets come from .env, never from the compose file.
  for (const [name, s] of Object.entries(services)) {
    for (const [k, v] of Object.entries(environmentOf(s))) {
      if (SECRET_NAME.test(k)) t.match(v, /^\$\{[A-Z_]+(:?[-?][^}]*)?\}$/, `${name}: ${k} comes from .env by interpolation, not a literal`)
    }
  }
  const volumes = Object.keys(compose.volumes ?? {})
  for (const [name, mount] of [['mongodb', '/data/db'], ['meilisearch', '/meili_data'], ['vectordb', '/var/lib/postgresql/data'], ['redis', '/data']]) {
    const mounts = ((svc(name as string).volumes ?? []) as string[]).map(String)
    t.ok(mounts.some(m => m.endsWith(':' + mount) && volumes.includes(m.split(':')[0] as string)), `${name}: named volume on ${mount}`)
  }
})

t.test('Dockerfile', async t => {
  const stages = parseDockerfile(read('Dockerfile'))
  t.ok(stages.length >= 2, 'multi-stage')
  for (const s of stages) t.match(s.image, /^node:24(-|$)/, `stage ${s.name ?? s.index}: official Node 24 LTS image (${s.image})`)
  const final = stages[stages.length - 1]
  const build = stages[0]
  if (final === undefined || build === undefined) return

  const runs = (s: typeof final): string => all(s, 'RUN').map(i => i.args).join('\n')
  t.match(runs(build), /\bnpm ci\b/, 'build stage: npm ci')
  t.match(runs(build), /\bnpm run build\b/, 'build stage: npm run build')
  t.match(runs(final), /\bnpm ci\b[^\n]*--omit=dev/, 'final stage: production dependencies only')
  t.notMatch(runs(final), /npm run build|\bnpm (i|install)\b/, 'final stage: no build, no install outside the lock file')
  const fromBuild = all(final, 'COPY').map(i => parseCopy(i.args)).filter(c => c.from !== undefined)
  t.ok(fromBuild.some(c => c.sources.some(src => /\/dist\/?$/.test(src))), 'final stage: dist/ copied from the build stage')

  const users = all(final, 'USER').map(i => i.args)
  const user = users[users.length - 1]
  t.ok(user !== undefined && !/^(root|0)(:|$)/.test(user), `final stage runs as a non-root user (${String(user)})`)
  t.equal(user, 'node', 'the image\'s unprivileged node user')
  const env = Object.assign({}, ...all(final, 'ENV').map(i => parseEnv(i.args))) as Record<string, string>
  t.equal(env.NODE_ENV, 'production', 'NODE_ENV=production')
  t.ok(all(final, 'EXPOSE').some(i => /\b3080\b/.test(i.args)), 'EXPOSE 3080')
  const hc = all(final, 'HEALTHCHECK')
  t.equal(hc.length, 1, 'one HEALTHCHECK')
  t.match(hc[0]?.args, /\/healthz/, 'HEALTHCHECK on /healthz')
  t.match(hc[0]?.args, /CMD \["node"/, 'HEALTHCHECK uses node (no curl in slim images)')
  const cmds = all(final, 'CMD')
  t.same(execForm(cmds[cmds.length - 1]?.args ?? ''), ['node', 'dist/server.js'], 'CMD ["node","dist/server.js"]')

  for (const s of stages) {
    for (const ins of s.instructions) {
      if (ins.keyword === 'ADD') t.fail(`line ${ins.line}: ADD (use COPY; no remote sources)`)
      if (ins.keyword === 'COPY') {
        const c = parseCopy(ins.args)
        for (const src of c.sources) {
          t.notMatch(src, /(^|\/)\.env/, `line ${ins.line}: does not copy ${src}`)
          if (c.from === undefined) t.notOk(src === '.' || src === './' || src.includes('*'), `line ${ins.line}: copies named files, not "${src}"`)
        }
      }
      if (ins.keyword === 'ARG' || ins.keyword === 'ENV') {
        const names = ins.keyword === 'ENV' ? Object.keys(parseEnv(ins.args)) : [ins.args.split('=')[0] as string]
        for (const n of names) t.notMatch(n, SECRET_NAME, `line ${ins.line}: ${ins.keyword} ${n} does not look like a secret`)
      }
      if (ins.keyword === 'RUN') t.notMatch(ins.args, /--mount=type=secret|\.env\b/, `line ${ins.line}: RUN touches no secret or .env`)
    }
  }
})

t.test('.dockerignore', async t => {
  const ignored = dockerIgnore(read('.dockerignore'))
  for (const p of ['.env', '.env.local', '.env.production', 'config/.env', 'config/.env.example', 'node_modules/fastify/package.json',
    'dev/node_modules/x/index.js', 'dist/server.js', '.git/HEAD', 'coverage/index.html', '.tap/report.json', 'test-artifacts/a.png', 'test/e2e/proxy.test.ts']) {
    t.ok(ignored(p), `excludes ${p}`)
  }
  // Everything the Dockerfile copies from the context must be in it.
  for (const s of parseDockerfile(read('Dockerfile'))) {
    for (const ins of all(s, 'COPY')) {
      const c = parseCopy(ins.args)
      if (c.from !== undefined) continue
      for (const src of c.sources) t.notOk(ignored(src), `keeps ${src} (COPY on line ${ins.line})`)
    }
  }
  t.notOk(ignored('src/server.ts'), 'keeps src/server.ts')
})

t.test('config/.env.example documents every setting', async t => {
  const text = read('config/.env.example')
  const entries = parseEnvExample(text)
  const gatewaySide = entries.filter(e => e.section === 'shared' || e.section === 'gateway')
  const documented = new Set(gatewaySide.map(e => e.name))
  t.same(entries.filter(e => e.section === undefined).map(e => e.name), [], 'every variable sits in a [shared], [gateway] or [librechat] section')
  for (const name of known) t.ok(documented.has(name), `${name} is documented in the [shared] or [gateway] section`)
  for (const e of gatewaySide) t.ok(known.has(e.name), `${e.name} (line ${e.line}, [${String(e.section)}]) is a setting the gateway knows`)
  for (const e of entries.filter(e => e.section === 'librechat')) {
    t.notOk(known.has(e.name), `${e.name} (line ${e.line}) is LibreChat-only: the gateway does not read it (else move it to [shared])`)
  }
  for (const e of entries) t.ok(e.comment !== undefined && e.comment.length > 10, `${e.name} has a one-line comment above it`)
  const names = entries.map(e => e.name)
  t.same(names.filter((n, i) => names.indexOf(n) !== i), [], 'no variable twice')
  // The guide's settings come first.
  const firstGateway = entries.findIndex(e => e.section === 'gateway')
  t.ok(entries.slice(0, firstGateway).every(e => e.section === 'shared'), 'the [shared] section (the guide) comes first')
  for (const name of ['DOMAIN_SERVER', 'DOMAIN_CLIENT', 'OPENID_CLIENT_ID', 'OPENID_CLIENT_SECRET', 'OPENID_ISSUER', 'OPENID_SESSION_SECRET', 'OPENID_SCOPE', 'OPENID_CALLBACK_URL']) {
    t.ok(entries.some(e => e.name === name && e.active && e.section === 'shared'), `${name} is set in [shared]`)
  }
  for (const name of ['ALLOW_SOCIAL_LOGIN', 'ALLOW_SOCIAL_REGISTRATION', 'CREDS_KEY', 'CREDS_IV', 'JWT_SECRET', 'JWT_REFRESH_SECRET', 'MEILI_MASTER_KEY', 'POSTGRES_PASSWORD']) {
    t.ok(entries.some(e => e.name === name && e.active && e.section === 'librechat'), `LibreChat's ${name} is in [librechat]`)
  }
  // No real secret ships in the example.
  for (const e of entries) {
    if (SECRET_NAME.test(e.name) && e.name !== 'OPENAI_API_KEY') t.equal(e.value, '', `${e.name} is left empty`)
  }
})

t.test('config/.env.example as .env with the compose environment: only the secrets are missing', async t => {
  const dotenv = parseDotenv(read('config/.env.example'))
  const composeEnv = environmentOf(svc('gateway'))
  const env = { ...dotenv, ...Object.fromEntries(Object.entries(composeEnv).map(([k, v]) => [k, interpolate(v, dotenv)])) }
  let err: unknown
  try { loadConfig(env) } catch (e) { err = e }
  t.ok(err instanceof ConfigError, 'loadConfig refuses the unfilled example')
  const named = (err as ConfigError).problems.map(p => /^([A-Z_]+)/.exec(p)?.[1]).sort()
  t.same(named, ['OPENID_CLIENT_ID', 'OPENID_CLIENT_SECRET', 'OPENID_ISSUER', 'OPENID_SESSION_SECRET'], 'exactly the values to fill in are reported')
  const filled = {
    ...env,
    OPENID_CLIENT_ID: '00000000-0000-0000-0000-000000000001',
    OPENID_CLIENT_SECRET: 'x'.repeat(40),
    OPENID_ISSUER: 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000002/v2.0/',
    OPENID_SESSION_SECRET: 'y'.repeat(64)
  }
  const config = loadConfig(filled)
  // Past stop_grace_period Docker kills the gateway; it cuts open streams at its own deadline
  // and allows itself one more second to close, which must both fit.
  const grace = composeDuration(String(svc('gateway').stop_grace_period ?? '10s'))
  t.ok(config.shutdownTimeoutSeconds + 1 < grace, `stop_grace_period (${grace} s) is above SHUTDOWN_TIMEOUT_SECONDS + 1 (${config.shutdownTimeoutSeconds + 1} s)`)
  t.equal(config.upstreamUrl, 'http://api:3080')
  t.equal(config.sessionStore, 'redis')
  t.equal(config.redirectUri, 'http://localhost:3080/oauth/openid/callback', 'the redirect URI to register: DOMAIN_SERVER + OPENID_CALLBACK_URL')
})
