// deploy/librechat/*.override.yml merged onto LibreChat's own compose files (fixtures under
// test/fixtures/librechat/) the way `docker compose -f theirs -f ours` merges them, then
// validated against the Compose specification's JSON schema: api publishes nothing, the gateway
// and Redis are added, and nothing of LibreChat's is dropped or changed beyond what the
// override says it changes.
import t from 'tap'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { knownVariables } from '../../src/config.js'
import { ROOT, read, environmentOf, type ComposeService } from '../helpers/deploy.js'
import { asMapping, loadCompose, mergeCompose, parseCompose, uniqueKey, validateCompose, Reset, type Model } from '../helpers/compose-merge.js'

/** What LibreChat's .env and the shell give Compose for interpolation in a typical checkout. */
const VARS = { PORT: '3080', UID: '1000', GID: '1000', ENTRA_GATEWAY_DIR: ROOT, DOMAIN_CLIENT: 'https://chat.example.com', MEILI_MASTER_KEY: 'k', ADMIN_PANEL_SESSION_SECRET: 's' }

type Services = Record<string, ComposeService>
const services = (m: Model): Services => m.services as Services

interface Case {
  name: string
  theirs: string
  ours: string
  /** What the override means to change in LibreChat's services, attribute by attribute. */
  intended: Record<string, string[]>
}

const CASES: Case[] = [
  { name: 'docker-compose.yml', theirs: 'test/fixtures/librechat/docker-compose.yml', ours: 'deploy/librechat/compose.override.yml', intended: { api: ['ports', 'environment'] } },
  { name: 'deploy-compose.yml', theirs: 'test/fixtures/librechat/deploy-compose.yml', ours: 'deploy/librechat/deploy-compose.override.yml', intended: { api: ['ports', 'environment'], client: ['volumes', 'depends_on', 'networks'] } }
]

const load = (text: string): Model => loadCompose(text, VARS)
const merged = (c: Case, ours = read(c.ours)): Model => mergeCompose(load(read(c.theirs)), load(ours))
const published = (s: ComposeService | undefined): unknown[] => (s?.ports ?? []) as unknown[]

t.test('the merge follows the Compose specification\'s examples', async t => {
  const m = (a: string, b: string): unknown => mergeCompose(parseCompose(a), parseCompose(b))
  t.same(m('services: {foo: {key1: value1, key2: value2}}', 'services: {foo: {key2: VALUE, key3: value3}}'), { services: { foo: { key1: 'value1', key2: 'VALUE', key3: 'value3' } } }, 'mappings merge')
  t.same(m('services: {foo: {dns: [1.1.1.1]}}', 'services: {foo: {dns: [8.8.8.8]}}'), { services: { foo: { dns: ['1.1.1.1', '8.8.8.8'] } } }, 'sequences append')
  t.same(m('services: {foo: {command: [echo, foo]}}', 'services: {foo: {command: [echo, bar]}}'), { services: { foo: { command: ['echo', 'bar'] } } }, 'command is replaced')
  t.same(m('services: {foo: {volumes: ["foo:/work"]}}', 'services: {foo: {volumes: ["bar:/work"]}}'), { services: { foo: { volumes: ['bar:/work'] } } }, 'volumes merge by target')
  t.same(m('services: {app: {image: myapp, ports: ["8080:80"], environment: {FOO: BAR}}}', 'services: {app: {image: myapp, ports: !reset [], environment: {FOO: !reset null}}}'),
    { services: { app: { image: 'myapp', environment: {} } } }, '!reset removes')
  t.same(m('services: {app: {image: myapp, ports: ["8080:80"]}}', 'services: {app: {ports: !override ["8443:443"]}}'), { services: { app: { image: 'myapp', ports: ['8443:443'] } } }, '!override replaces')
  t.same(m('services: {app: {ports: ["8080:80"]}}', 'services: {app: {ports: ["127.0.0.1:8080:80"]}}'), { services: { app: { ports: ['8080:80', '127.0.0.1:8080:80'] } } }, 'without !reset a port is added, never taken away')
  t.same(m('services: {a: {environment: [A=1, B=2]}}', 'services: {a: {environment: [B=3]}}'), { services: { a: { environment: { A: '1', B: '3' } } } }, 'environment lists merge as mappings')
  t.equal(uniqueKey('ports', '3080:3080'), '|3080|3080|tcp')
  t.equal(uniqueKey('ports', '127.0.0.1:80:8080/udp'), '127.0.0.1|80|8080|udp')
  t.equal(uniqueKey('ports', '[::1]:80:8080'), '[::1]|80|8080|tcp')
  t.equal(uniqueKey('volumes', { type: 'bind', source: './.env', target: '/app/.env' }), '/app/.env')
})

t.test('the schema catches what Compose would refuse', async t => {
  t.same(validateCompose({ services: { a: { image: 'x', ports: ['3080:3080'] } } }), [], 'a valid model passes')
  t.not(validateCompose({ services: { a: { image: 'x', ports: ['not a port'] } } }).length, 0, 'a bad port')
  t.not(validateCompose({ services: { a: { image: 'x', restart_policy: 'always' } } }).length, 0, 'an unknown attribute')
  t.not(validateCompose({ services: { a: { image: 'x', healthcheck: { interval: '30 seconds' } } } }).length, 0, 'a bad duration')
})

for (const c of CASES) {
  t.test(`${c.ours} onto LibreChat's ${c.name}`, async t => {
    const theirs = load(read(c.theirs))
    const model = merged(c)
    t.same(validateCompose(model), [], 'the merged model is valid Compose (the specification\'s JSON schema)')
    t.same(validateCompose(theirs), [], 'so is the fixture on its own')
    t.match(read(c.ours), /Compose 2\.24\.4 or newer/, 'the file says which Compose it needs (!reset)')

    const s = services(model)
    t.ok(published(services(theirs).api).length > 0, 'LibreChat publishes api\'s port')
    t.same(published(s.api), [], 'after the merge api publishes no port')
    t.notOk(JSON.stringify(s.api).includes(Reset.name), 'no marker is left in the model')

    // Nothing of LibreChat's is dropped or changed, except what the override says.
    for (const [name, svc] of Object.entries(services(theirs))) {
      const after = s[name]
      t.ok(after, `${name} is still there`)
      if (after === undefined) continue
      const intended = c.intended[name] ?? []
      for (const [attr, value] of Object.entries(svc)) {
        if (intended.includes(attr)) continue
        t.same(after[attr], value, `${name}.${attr} as LibreChat has it`)
      }
      for (const attr of Object.keys(after)) {
        if (!(attr in svc)) t.ok(intended.includes(attr), `${name}.${attr} is added only where intended`)
      }
      if (intended.includes('environment') && svc.environment !== undefined) {
        const before = asMapping('environment', svc.environment)
        const now = asMapping('environment', after.environment)
        for (const [k, v] of Object.entries(before)) t.equal(now[k], v, `${name}: ${k} kept`)
        t.same(Object.keys(now).filter(k => !(k in before)).sort(), ['OPENID_AUTO_REDIRECT', 'TRUST_PROXY'], `${name}: only LibreChat's login settings added`)
        t.equal(now.OPENID_AUTO_REDIRECT, 'true', 'LibreChat\'s own login goes straight to Entra ID')
      }
      if (intended.includes('depends_on')) {
        const before = asMapping('depends_on', svc.depends_on)
        const now = asMapping('depends_on', after.depends_on)
        for (const k of Object.keys(before)) t.ok(k in now, `${name} still waits for ${k}`)
      }
      if (intended.includes('volumes')) {
        const now = (after.volumes ?? []) as unknown[]
        for (const v of (svc.volumes ?? []) as unknown[]) {
          const target = uniqueKey('volumes', v)
          if (target === '/etc/nginx/conf.d/default.conf') continue
          t.ok(now.some(n => JSON.stringify(n) === JSON.stringify(v)), `${name}: mount ${target} kept`)
        }
      }
    }
    for (const [kind, entries] of Object.entries({ volumes: theirs.volumes, networks: theirs.networks })) {
      for (const [k, v] of Object.entries((entries ?? {}) as Record<string, unknown>)) t.same((model[kind] as Record<string, unknown>)[k], v, `top-level ${kind}.${k} kept`)
    }

    // What is added.
    const gw = s.gateway as ComposeService
    const env = environmentOf(gw)
    t.equal(env.UPSTREAM_URL, 'http://api:3080', 'the gateway proxies to LibreChat\'s api on 3080')
    t.equal(env.SESSION_STORE, 'redis')
    t.equal(env.REDIS_URL, 'redis://redis:6379/0')
    const known = new Set(knownVariables())
    for (const k of Object.keys(env)) t.ok(known.has(k), `gateway environment: ${k} is a setting the gateway knows`)
    t.same(gw.env_file, ['.env'], 'the gateway reads LibreChat\'s .env (the guide\'s settings, same meaning)')
    const context = (gw.build as { context: string }).context
    t.ok(existsSync(path.join(context, 'Dockerfile')), 'built from entra-gateway\'s Dockerfile (ENTRA_GATEWAY_DIR)')
    t.equal(gw.image, 'entra-gateway:local')
    const onDefault = (svc: ComposeService | undefined): boolean => svc?.networks === undefined || 'default' in asMapping('networks', svc.networks)
    t.ok(onDefault(gw) && onDefault(s.api), 'the gateway and api share LibreChat\'s network')
    t.ok(onDefault(s.redis) && onDefault(gw), 'the gateway reaches Redis')

    // Health checks and start order.
    t.match(JSON.stringify(gw.healthcheck?.test), /127\.0\.0\.1:3080\/healthz/, 'gateway health check: /healthz')
    t.match(JSON.stringify(s.redis?.healthcheck?.test), /redis-cli.*ping/, 'redis health check')
    const deps = asMapping('depends_on', gw.depends_on) as Record<string, { condition: string }>
    t.same(Object.keys(deps), ['redis'], 'the gateway waits for Redis only: it and the doctor run while LibreChat is down')
    t.equal(deps.redis?.condition, 'service_healthy')
    for (const [name, svc] of Object.entries(s)) {
      for (const [dep, d] of Object.entries(svc.depends_on === undefined ? {} : asMapping('depends_on', svc.depends_on) as Record<string, { condition?: string }>)) {
        t.ok(s[dep], `${name} depends on an existing service ${dep}`)
        if (d.condition === 'service_healthy') t.ok(s[dep]?.healthcheck !== undefined, `${name} -> ${dep}: service_healthy on a service with a health check`)
      }
    }
    t.match(String(gw.stop_grace_period), /^1[5-9]s$/, 'stop_grace_period above the gateway\'s own shutdown deadline')

    // Without !reset (an older Compose ignores the tag), LibreChat's port would stay: this test would say so.
    const untagged = merged(c, read(c.ours).replace('ports: !reset []', 'ports: []'))
    t.not(published(services(untagged).api).length, 0, 'without !reset api keeps its port (what this test guards against)')
  })
}

t.test('docker-compose.yml: the gateway takes api\'s place on the host', async t => {
  const s = services(merged(CASES[0] as Case))
  t.same(s.gateway?.ports, ['3080:3080'], 'published on LibreChat\'s PORT, where users already go')
  t.same(s['admin-panel']?.ports, ['3000:3000'], 'the admin panel is left as LibreChat publishes it')
  t.notOk('TRUSTED_PROXIES' in environmentOf(s.gateway as ComposeService), 'no proxy trusted: the gateway is the edge')
})

t.test('deploy-compose.yml: nginx stays the edge, in front of the gateway', async t => {
  const model = merged(CASES[1] as Case)
  const s = services(model)
  const i = model
  const si = s
  t.same(s.gateway?.ports, undefined, 'the gateway publishes nothing: nginx is the way in')
  t.same(s.client?.ports, [80, 443].map(p => `${p}:${p}`), 'nginx keeps 80 and 443')
  const mount = ((si.client?.volumes ?? []) as string[]).find(v => uniqueKey('volumes', v) === '/etc/nginx/conf.d/default.conf') ?? ''
  t.equal(mount.split(':')[0], path.join(ROOT, 'deploy/librechat/client/nginx.conf'), 'nginx reads our nginx.conf in place of LibreChat\'s')
  t.equal(((si.client?.volumes ?? []) as string[]).filter(v => uniqueKey('volumes', v) === '/etc/nginx/conf.d/default.conf').length, 1, 'one file on that target (LibreChat\'s replaced, not doubled)')
  const deps = asMapping('depends_on', s.client?.depends_on)
  t.ok('gateway' in deps && 'api' in deps && 'admin-panel' in deps, 'nginx starts after the gateway (it resolves its name at start)')

  // The one address the gateway believes X-Forwarded-* from is nginx's fixed one on gateway-edge.
  const nets = asMapping('networks', si.client?.networks) as Record<string, { ipv4_address?: string } | null>
  const nginxIp = nets['gateway-edge']?.ipv4_address
  t.ok('default' in nets, 'nginx stays on LibreChat\'s network (admin panel)')
  t.equal(environmentOf(si.gateway as ComposeService).TRUSTED_PROXIES, nginxIp, 'TRUSTED_PROXIES is nginx\'s address, and only that')
  const subnet = ((i.networks as Record<string, { ipam: { config: Array<{ subnet: string }> } }>)['gateway-edge']?.ipam.config[0]?.subnet) ?? ''
  const [base, bits] = subnet.split('/')
  const toInt = (ip: string): number => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0)
  const mask = 2 ** 32 - 2 ** (32 - Number(bits))
  t.equal((toInt(nginxIp ?? '0.0.0.0') & mask) >>> 0, (toInt(base ?? '') & mask) >>> 0, `nginx's address ${String(nginxIp)} lies in ${subnet}`)
  const gwNets = asMapping('networks', s.gateway?.networks) as Record<string, { aliases?: string[] } | null>
  t.same(gwNets['gateway-edge']?.aliases, ['entra-gateway'], 'the gateway is `entra-gateway` on gateway-edge only')
  const conf = read('deploy/librechat/client/nginx.conf')
  t.match(conf, /proxy_pass http:\/\/entra-gateway:3080;/, 'nginx proxies to that name, so it connects from its fixed address')
  t.notMatch(conf, /proxy_pass http:\/\/api:/, 'nginx no longer reaches api directly')
  t.match(conf, /proxy_pass http:\/\/admin-panel:3000;/, 'the admin panel stays reachable as in LibreChat\'s file')
  const env = environmentOf(s.api as ComposeService)
  t.equal(env.TRUST_PROXY, '2', 'LibreChat counts two proxies (nginx, the gateway) for the client address')
})
