// The doctor finds each planted fault with a line that names the fix, and passes a clean
// configuration against the real test IdP, the demo upstream and a real Redis.
import t from 'tap'
import http from 'node:http'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AddressInfo } from 'node:net'
import { startIdp, DEMO_USERS, DEFAULT_TENANT_ID } from '../../dev/idp.js'
import { DEV_CLIENT_ID } from '../../dev/client-id.js'
import { startUpstream } from '../../dev/upstream.js'
import { freePort, startRedis } from '../helpers/redis.js'
import { flattenReport } from '../helpers/doctor.js'
import { runDoctor, secretValues } from '../../src/doctor/run.js'
import { formatFinding, hasErrors, renderReport, type Finding } from '../../src/doctor/findings.js'
import { checkAuthorization, checkGraphScopes, checkLogoutUrls, checkRedirectUri, clockFindings, discoveryFindings, checkVariables } from '../../src/doctor/checks.js'
import { httpGet } from '../../src/doctor/probes.js'
import { IDENTITY_HEADERS } from '../../src/proxy/headers.js'

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const CLIENT_ID = DEV_CLIENT_ID
const CLIENT_SECRET = 'doctor-client-secret-value-0123456789'
const SESSION_SECRET = 'doctor-session-secret-0123456789-abcdefghij'
const GATEWAY = 'http://localhost:3080'
const OTHER_TENANT = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d'

const idp = await startIdp({
  clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${GATEWAY}/oauth/openid/callback`], post_logout_redirect_uris: [`${GATEWAY}/`, `${GATEWAY}/oauth2/signed_out`] }],
  users: DEMO_USERS
})
const upstream = await startUpstream()
t.teardown(async () => { await upstream.close(); await idp.close() })

function cleanEnv (): Record<string, string> {
  return {
    OPENID_ISSUER: idp.issuer + '/', // the guide's form, with a trailing slash
    OPENID_CLIENT_ID: CLIENT_ID,
    OPENID_CLIENT_SECRET: CLIENT_SECRET,
    OPENID_SESSION_SECRET: SESSION_SECRET,
    DOMAIN_SERVER: GATEWAY,
    UPSTREAM_URL: upstream.url
  }
}

const lines = (findings: Finding[], env: Record<string, string>): string[] => findings.map(f => formatFinding(f, secretValues(env)))
const only = (findings: Finding[], level: Finding['level']): Finding[] => findings.filter(f => f.level === level)
const flatten = flattenReport

/** A stand-in IdP serving only a discovery document, with a chosen issuer and Date header. */
async function fakeIdp (opts: { path: string, issuer: (origin: string) => string, dateOffsetMs?: number }): Promise<{ issuer: string, close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const origin = `http://${req.headers.host ?? ''}`
    if (req.url !== `${opts.path}/.well-known/openid-configuration`) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}')
      return
    }
    res.setHeader('date', new Date(Date.now() + (opts.dateOffsetMs ?? 0)).toUTCString())
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({
      issuer: opts.issuer(origin),
      authorization_endpoint: `${origin}${opts.path}/authorize`,
      token_endpoint: `${origin}${opts.path}/token`,
      jwks_uri: `${origin}${opts.path}/keys`,
      end_session_endpoint: `${origin}${opts.path}/logout`
    }))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    issuer: `http://127.0.0.1:${port}${opts.path}`,
    close: async () => { server.closeAllConnections(); server.close(); await once(server, 'close') }
  }
}

/** The CLI as the image runs it, in an empty directory (so no stray .env is read). */
async function runCli (env: Record<string, string>, dotenv?: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'doctor-cli-'))
  try {
    if (dotenv !== undefined) await writeFile(join(dir, '.env'), dotenv)
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'src', 'doctor.ts')], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const [code] = await once(child, 'exit') as [number | null]
    return { code, stdout, stderr }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

t.test('a clean configuration against the real IdP, upstream and Redis: no error, no warning', async t => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const env = { ...cleanEnv(), SESSION_STORE: 'redis', REDIS_URL: redis.url, OPENID_USE_END_SESSION_ENDPOINT: 'true' }
  const findings = await runDoctor(env)
  const out = lines(findings, env)
  t.same(only(findings, 'ERROR'), [], 'no ERROR')
  t.same(only(findings, 'WARN'), [], 'no WARN')
  t.ok(out.includes('OK configuration loads: every variable present and well-formed — nothing to do'))
  t.ok(out.some(l => l.startsWith(`OK the issuer's discovery document ${idp.issuer}/.well-known/openid-configuration is reachable and names issuer ${idp.issuer}`)))
  t.ok(out.some(l => l.startsWith(`OK redirect URI to register in Entra: ${GATEWAY}/oauth/openid/callback — `)), 'the redirect URI, exactly')
  t.ok(out.some(l => l.startsWith(`OK after sign-out Entra sends users to ${GATEWAY}/oauth2/signed_out (the gateway's own signed-out page) — register it as a redirect URI`)), 'the post-logout redirect URI to register')
  t.ok(out.some(l => l.startsWith("OK this host's clock agrees with the IdP's")))
  t.ok(out.some(l => l.startsWith(`OK the upstream ${upstream.url}/health answers (HTTP 200)`)))
  t.ok(out.some(l => l.startsWith(`OK Redis at ${redis.url} answers PING`)))
  const headers = out.find(l => l.startsWith('OK identity headers the upstream receives'))
  for (const h of IDENTITY_HEADERS) t.match(headers?.toLowerCase() ?? '', h, `lists ${h}`)
  for (const l of out) t.match(l, /^(OK|WARN|ERROR) \S.* — \S.*$/, 'one line: level, what, — fix')

  const cli = await runCli(env)
  t.equal(cli.code, 0, 'the CLI exits 0')
  t.equal(cli.stdout, renderReport(findings, secretValues(env)), 'and prints the same findings, wrapped')
  for (const line of cli.stdout.split('\n')) t.ok([...line].length <= 80, `fits 80 columns: ${line}`)
  t.match(cli.stdout, /\n\nall \d+ checks passed\n$/, 'a summary line last')
  t.match(flatten(cli.stdout), `OK redirect URI to register in Entra: ${GATEWAY}/oauth/openid/callback — add it exactly`, 'read back, the same finding')
  t.equal(cli.stderr.replace(/oidc-provider WARNING[^\n]*\n?/, ''), '', 'nothing on stderr')
})

t.test('missing secret: an ERROR naming the variable and how to make one; the rest is still checked', async t => {
  const env = cleanEnv()
  delete (env as Record<string, string | undefined>).OPENID_SESSION_SECRET
  const findings = await runDoctor(env)
  const out = lines(findings, env)
  t.ok(out.includes('ERROR OPENID_SESSION_SECRET is not set — set it to a random string of at least 32 characters, e.g. the output of `openssl rand -hex 32`'), out.join('\n'))
  t.ok(out.some(l => l.startsWith("OK the issuer's discovery document")), 'the IdP is still checked')
  t.ok(out.some(l => l.startsWith(`OK redirect URI to register in Entra: ${GATEWAY}/oauth/openid/callback`)), 'the redirect URI is still printed')
  t.ok(out.some(l => l.startsWith('OK the upstream')), 'the upstream is still checked')

  const cli = await runCli(env)
  t.equal(cli.code, 1, 'the CLI exits 1 on an ERROR')
  t.match(flatten(cli.stdout), /^ERROR OPENID_SESSION_SECRET is not set — .*openssl rand -hex 32/m)
  t.match(cli.stdout, /\n\n1 error, 0 warnings: fix the errors first/, 'the summary says what to do first')
  t.notMatch(cli.stdout, CLIENT_SECRET, 'the client secret is never printed')

  const short = { ...cleanEnv(), OPENID_SESSION_SECRET: 'short-secret' }
  const shortOut = lines(await runDoctor(short), short)
  t.ok(shortOut.some(l => /^ERROR OPENID_SESSION_SECRET is too short: OPENID_SESSION_SECRET must be at least 16 characters .* — generate one with `openssl rand -hex 32`$/.test(l)), shortOut.join('\n'))
  t.notOk(shortOut.some(l => l.includes('short-secret')), 'a malformed secret is not echoed either')

  const shortish = { ...cleanEnv(), OPENID_SESSION_SECRET: 'twenty-characters-!!' }
  const shortishOut = lines(await runDoctor(shortish), shortish)
  t.ok(shortishOut.some(l => /^WARN OPENID_SESSION_SECRET is shorter than 32 characters: accepted, .* — generate one with `openssl rand -hex 32`$/.test(l)), shortishOut.join('\n'))
  t.notOk(shortishOut.some(l => l.startsWith('ERROR')), 'accepted')
})

t.test("LibreChat's settings: what the gateway says at start, the doctor says too", async t => {
  const env = { ...cleanEnv(), OPENID_ADMIN_ROLE: 'Admin', OPENID_USE_PKCE: 'false', OPENID_CLOCK_TOLERANCE: '30' }
  const out = lines(await runDoctor(env, { now: () => Date.now() + 45_000 }), env)
  t.ok(out.some(l => l.startsWith('OK OPENID_ADMIN_ROLE is not used by the gateway (LibreChat still reads it) — LibreChat maps it')), out.join('\n'))
  t.ok(out.some(l => l.startsWith('OK OPENID_USE_PKCE=false is not followed — the gateway always sends PKCE (S256)')), 'PKCE is always on')
  t.ok(out.some(l => /^ERROR this host's clock is ahead of the IdP by (44|45|46) s, beyond the gateway's 30 s tolerance \(OPENID_CLOCK_TOLERANCE\)/.test(l)), 'the clock is judged against OPENID_CLOCK_TOLERANCE')
  t.ok(out.some(l => l.startsWith(`OK sign-out ends at ${GATEWAY}/oauth2/signed_out (the gateway's own signed-out page) — with OPENID_USE_END_SESSION_ENDPOINT=true`)), 'the signed-out page, without end-session')
})

t.test('.env in the working directory is read, and the environment wins over it', async t => {
  const env = cleanEnv()
  delete (env as Record<string, string | undefined>).OPENID_SESSION_SECRET
  const cli = await runCli(env, `OPENID_SESSION_SECRET=${SESSION_SECRET}\nDOMAIN_SERVER=http://localhost:9999\n`)
  t.equal(cli.code, 0, cli.stdout)
  t.match(flatten(cli.stdout), `OK redirect URI to register in Entra: ${GATEWAY}/oauth/openid/callback`, 'DOMAIN_SERVER from the environment, not .env')
  t.notMatch(cli.stdout, SESSION_SECRET)
})

t.test('wrong issuer', async t => {
  t.test('a tenant the IdP does not have (HTTP 404 for its discovery document)', async t => {
    const env = { ...cleanEnv(), OPENID_ISSUER: `${idp.origin}/${OTHER_TENANT}/v2.0` }
    const errors = only(await runDoctor(env), 'ERROR')
    t.equal(errors.length, 1, lines(errors, env).join('\n'))
    t.match(errors[0]?.what, `the issuer's discovery document ${idp.origin}/${OTHER_TENANT}/v2.0/.well-known/openid-configuration answered HTTP 404`)
    t.match(errors[0]?.fix, /set OPENID_ISSUER to https:\/\/login\.microsoftonline\.com\/<tenant-id>\/v2\.0/)
  })

  t.test('an issuer nobody answers for', async t => {
    const port = await freePort()
    const env = { ...cleanEnv(), OPENID_ISSUER: `http://127.0.0.1:${port}/${DEFAULT_TENANT_ID}/v2.0` }
    const errors = only(await runDoctor(env), 'ERROR')
    t.equal(errors.length, 1)
    t.match(errors[0]?.what, `discovery document http://127.0.0.1:${port}/${DEFAULT_TENANT_ID}/v2.0/.well-known/openid-configuration is unreachable: nothing listens on 127.0.0.1:${port}`)
    // The issuer's form is fine: only the network is at fault, and the advice says so.
    t.match(errors[0]?.fix, `make sure this host can reach 127.0.0.1:${port} over HTTPS`)
    t.notMatch(errors[0]?.fix, /set OPENID_ISSUER/, 'the issuer advice is not repeated')
  })

  t.test('a discovery document naming another issuer', async t => {
    const fake = await fakeIdp({ path: `/${DEFAULT_TENANT_ID}/v2.0`, issuer: origin => `${origin}/${OTHER_TENANT}/v2.0` })
    t.teardown(fake.close)
    const env = { ...cleanEnv(), OPENID_ISSUER: fake.issuer }
    const errors = only(await runDoctor(env), 'ERROR')
    t.equal(errors.length, 1, lines(errors, env).join('\n'))
    const other = fake.issuer.replace(DEFAULT_TENANT_ID, OTHER_TENANT)
    t.match(errors[0]?.what, `the discovery document's issuer is ${other} but OPENID_ISSUER is ${fake.issuer}`)
    t.equal(errors[0]?.fix, `set OPENID_ISSUER to ${other}`)
  })

  t.test("Entra's multi-tenant template is called out", async t => {
    const fake = await fakeIdp({ path: '/common/v2.0', issuer: origin => `${origin}/{tenantid}/v2.0` })
    t.teardown(fake.close)
    const env = { ...cleanEnv(), OPENID_ISSUER: fake.issuer, OPENID_ALLOWED_TENANTS: DEFAULT_TENANT_ID }
    const findings = await runDoctor(env)
    const multi = findings.find(f => f.what.includes('multi-tenant'))
    t.equal(multi?.level, 'WARN')
    t.match(multi?.what, '{tenantid}')
    t.match(multi?.fix, 'https://login.microsoftonline.com/<tenant-id>/v2.0')
  })

  t.test("Entra's v1 issuer: the fix is the v2.0 endpoint", async t => {
    const findings = discoveryFindings({ issuer: `https://login.microsoftonline.com/${DEFAULT_TENANT_ID}`, useEndSessionEndpoint: false }, {
      url: `https://login.microsoftonline.com/${DEFAULT_TENANT_ID}/.well-known/openid-configuration`,
      status: 200,
      body: JSON.stringify({ issuer: `https://sts.windows.net/${DEFAULT_TENANT_ID}/` }),
      sentAt: 0,
      receivedAt: 0
    })
    t.equal(findings[0]?.level, 'ERROR')
    t.equal(findings[0]?.fix, `that is Entra's v1 endpoint: set OPENID_ISSUER to https://login.microsoftonline.com/${DEFAULT_TENANT_ID}/v2.0`)
  })

  t.test("Entra's answer for an unknown tenant", async t => {
    const findings = discoveryFindings({ issuer: `https://login.microsoftonline.com/${OTHER_TENANT}/v2.0`, useEndSessionEndpoint: false }, {
      url: `https://login.microsoftonline.com/${OTHER_TENANT}/v2.0/.well-known/openid-configuration`,
      status: 400,
      body: JSON.stringify({ error: 'invalid_tenant', error_description: `AADSTS90002: Tenant '${OTHER_TENANT}' not found.` }),
      sentAt: 0,
      receivedAt: 0
    })
    t.match(findings[0]?.what, 'answered HTTP 400 (AADSTS90002): no such tenant')
  })
})

t.test('unregistered callback shape', async t => {
  t.test('OPENID_CALLBACK_URL is a URL, not a path', async t => {
    const env = { ...cleanEnv(), OPENID_CALLBACK_URL: 'https://chat.example.com/oauth/openid/callback' }
    const findings = await runDoctor(env)
    const about = findings.filter(f => f.what.includes('OPENID_CALLBACK_URL'))
    t.equal(about.length, 1, 'one line about it')
    t.equal(about[0]?.level, 'ERROR')
    t.match(about[0]?.fix, 'set OPENID_CALLBACK_URL to a path such as /oauth/openid/callback')
    t.notOk(findings.some(f => f.what.startsWith('redirect URI to register')), 'no redirect URI is made up')
    t.ok(hasErrors(findings))
  })

  t.test('http:// on a host that is not localhost', async t => {
    const env = { ...cleanEnv(), DOMAIN_SERVER: 'http://chat.example.com' }
    const findings = await runDoctor(env)
    t.ok(findings.some(f => f.level === 'OK' && f.what === 'redirect URI to register in Entra: http://chat.example.com/oauth/openid/callback'))
    const http = findings.find(f => f.level === 'WARN' && f.what.includes('Entra accepts http:// redirect URIs only for localhost'))
    t.ok(http, 'a warning')
    t.match(http?.fix, 'set DOMAIN_SERVER=https://chat.example.com')
  })

  t.test('loopback hosts may use http://', async t => {
    for (const origin of ['http://localhost:3080', 'http://127.0.0.1:3080']) {
      t.same(checkRedirectUri({ publicOrigin: origin, callbackPath: '/cb', useEndSessionEndpoint: false, postLogoutRedirectUri: undefined }).map(f => f.level), ['OK'], origin)
    }
    for (const bad of ['oauth/openid/callback', '//evil.example/cb', '/cb?x=1', '/c b']) {
      t.equal(checkRedirectUri({ publicOrigin: GATEWAY, callbackPath: bad, useEndSessionEndpoint: false, postLogoutRedirectUri: undefined })[0]?.level, 'ERROR', bad)
    }
  })
})

t.test('the logout URLs to register at the IdP', async t => {
  const findings = checkLogoutUrls({ publicOrigin: 'https://chat.example.com' })
  t.equal(findings[0]?.what, 'front-channel logout URL to register in Entra: https://chat.example.com/oauth2/front_channel_logout')
  t.match(findings[0]?.fix, /Front-channel logout URL.*optional claim sid/)
  t.match(findings[1]?.what, 'https://chat.example.com/oauth2/back_channel_logout')
  const http = checkLogoutUrls({ publicOrigin: 'http://chat.example.com' })
  t.ok(http.some(f => f.level === 'WARN' && /only https/.test(f.what)), 'Entra takes only https')
  t.notOk(checkLogoutUrls({ publicOrigin: 'http://localhost:3080' }).some(f => f.level === 'WARN'))
})

t.test('unreachable upstream', async t => {
  const port = await freePort()
  const env = { ...cleanEnv(), UPSTREAM_URL: `http://127.0.0.1:${port}` }
  const errors = only(await runDoctor(env), 'ERROR')
  t.equal(errors.length, 1)
  t.equal(errors[0]?.what, `the upstream http://127.0.0.1:${port}/health is unreachable: nothing listens on 127.0.0.1:${port} (connection refused)`)
  t.match(errors[0]?.fix, /set UPSTREAM_URL to where it listens/)

  const cli = await runCli(env)
  t.equal(cli.code, 1)
  t.match(flatten(cli.stdout), /^ERROR the upstream .* is unreachable: .* — start the app, or set UPSTREAM_URL/m)

  // A port HTTP clients refuse (9, "discard"): whether anything listens there is said plainly.
  const blocked = only(await runDoctor({ ...cleanEnv(), UPSTREAM_URL: 'http://127.0.0.1:9' }), 'ERROR')
  t.equal(blocked[0]?.what, 'the upstream http://127.0.0.1:9/health is unreachable: nothing listens on 127.0.0.1:9 (and HTTP clients never connect to that port anyway: use another)')
})

t.test('each route\'s upstream is reached like UPSTREAM_URL, and one that is down is named', async t => {
  const port = await freePort()
  const env = { ...cleanEnv(), ROUTES: `/admin=http://127.0.0.1:${port}, rag.example.com=${upstream.url} health=/health` }
  const findings = await runDoctor(env)
  const errors = only(findings, 'ERROR')
  t.equal(errors.length, 1)
  t.equal(errors[0]?.what, `the upstream of the route /admin http://127.0.0.1:${port}/health is unreachable: nothing listens on 127.0.0.1:${port} (connection refused)`)
  t.match(errors[0]?.fix, /correct the route \/admin \(ROUTES or the rules file's routes\)/)
  const out = lines(findings, env)
  t.ok(out.some(l => l.startsWith(`OK the upstream of the route rag.example.com ${upstream.url}/health answers (HTTP 200)`)))
  t.ok(out.some(l => l.startsWith(`OK the upstream ${upstream.url}/health answers`)), 'UPSTREAM_URL still checked')

  const bad = only(await runDoctor({ ...cleanEnv(), ROUTES: '/admin=admin-panel:3000' }), 'ERROR')
  t.equal(bad.length, 1, 'a refused route is reported, not probed')
  t.match(bad[0]?.what, /^ROUTES entry "\/admin=admin-panel:3000": the upstream "admin-panel:3000" must start with http:\/\/ or https:\/\//)
})

t.test('unreachable Redis, and its password is never printed', async t => {
  const port = await freePort()
  const env = { ...cleanEnv(), SESSION_STORE: 'redis', REDIS_URL: `redis://:hunter2-redis-pass@127.0.0.1:${port}/0` }
  const findings = await runDoctor(env)
  const out = lines(findings, env)
  const redis = out.filter(l => l.includes('Redis at'))
  t.equal(redis.length, 1)
  t.match(redis[0], /^ERROR Redis at redis:\/\/\*\*\*@127\.0\.0\.1:\d+\/0 is unreachable: connection refused .* — start Redis, or set REDIS_URL/)
  t.notOk(out.some(l => l.includes('hunter2')), 'no password anywhere')
})

t.test('skewed clock', async t => {
  t.test("an IdP whose Date header is 10 minutes ahead: ERROR beyond the gateway's tolerance", async t => {
    const fake = await fakeIdp({ path: `/${DEFAULT_TENANT_ID}/v2.0`, issuer: origin => `${origin}/${DEFAULT_TENANT_ID}/v2.0`, dateOffsetMs: 10 * 60_000 })
    t.teardown(fake.close)
    const env = { ...cleanEnv(), OPENID_ISSUER: fake.issuer }
    const findings = await runDoctor(env)
    const errors = only(findings, 'ERROR')
    t.equal(errors.length, 1, lines(findings, env).join('\n'))
    t.match(errors[0]?.what, /^this host's clock is behind the IdP by (599|600|601) s, beyond the gateway's 300 s tolerance/)
    t.match(errors[0]?.fix, /sync this host's clock with NTP/)
  })

  t.test('an injected local clock 90 s fast against the real IdP: WARN', async t => {
    const findings = await runDoctor(cleanEnv(), { now: () => Date.now() + 90_000 })
    const clock = findings.filter(f => f.what.includes('clock'))
    t.equal(clock.length, 1)
    t.equal(clock[0]?.level, 'WARN')
    t.match(clock[0]?.what, /ahead of the IdP by (89|90|91) s/)
  })

  t.test('thresholds', async t => {
    const at = (skewSeconds: number): string | undefined => clockFindings({
      url: 'x', status: 200, date: new Date(1_800_000_000_000).toUTCString(), sentAt: 1_800_000_000_000 + skewSeconds * 1000, receivedAt: 1_800_000_000_000 + skewSeconds * 1000
    })[0]?.level
    t.equal(at(0), 'OK')
    t.equal(at(60), 'OK')
    t.equal(at(61), 'WARN')
    t.equal(at(-300), 'WARN')
    t.equal(at(-301), 'ERROR')
    t.equal(clockFindings({ url: 'x', status: 200, sentAt: 0, receivedAt: 0 })[0]?.level, 'WARN', 'no Date header')
  })
})

t.test('Graph scopes and what they need consented', async t => {
  const findings = checkGraphScopes({ OPENID_GRAPH_SCOPES: 'User.Read, People.Read,GroupMember.Read.All, https://graph.microsoft.com/User.ReadBasic.All' })
  const admin = findings.find(f => f.level === 'WARN' && f.what.startsWith('Graph scopes that need admin consent'))
  t.equal(admin?.what, 'Graph scopes that need admin consent: GroupMember.Read.All')
  t.match(admin?.fix, 'Grant admin consent')
  const user = findings.find(f => f.level === 'OK')
  t.equal(user?.what, 'Graph scopes users may consent to themselves: User.Read, People.Read, User.ReadBasic.All')

  const typo = checkGraphScopes({ OPENID_GRAPH_SCOPES: 'User.Reed' })
  t.equal(typo[0]?.level, 'WARN')
  t.match(typo[0]?.what, 'User.Reed')
  const foreign = checkGraphScopes({ OPENID_GRAPH_SCOPES: 'User.Read,https://contoso.sharepoint.com/AllSites.Read' })
  t.ok(foreign.some(f => f.level === 'ERROR' && f.what.includes('https://contoso.sharepoint.com/AllSites.Read')))
  t.same(checkGraphScopes({}).map(f => f.level), ['OK'])
  // Read from the environment directly, whether or not the gateway's configuration knows it yet.
  const viaRun = await runDoctor({ ...cleanEnv(), OPENID_GRAPH_SCOPES: 'User.Read,User.Read.All' })
  t.ok(viaRun.some(f => f.what === 'Graph scopes that need admin consent: User.Read.All'))
})

/**
 * The real probe for loopback URLs; anything else is recorded and answered as this machine
 * would (no DNS), so a test never reaches Entra and can tell whether the doctor tried to.
 */
function offlineGet (): { get: typeof httpGet, outside: string[] } {
  const outside: string[] = []
  const get: typeof httpGet = async (url, opts) => {
    if (new URL(url).hostname === '127.0.0.1') return await httpGet(url, opts)
    outside.push(url)
    return { url, error: 'host name not found (DNS)', sentAt: Date.now(), receivedAt: Date.now() }
  }
  return { get, outside }
}

t.test("the guide's placeholders come first, each with its fix, and are not probed", async t => {
  const env = {
    ...cleanEnv(),
    OPENID_CLIENT_ID: 'Your Application (client) ID',
    OPENID_ISSUER: 'https://login.microsoftonline.com/Your Directory (tenant ID)/v2.0/'
  }
  const { get, outside } = offlineGet()
  const findings = await runDoctor(env, { get })
  const out = lines(findings, env)
  t.match(out[0], /^ERROR OPENID_ISSUER contains spaces, so it still holds the guide's placeholder — set it to https:\/\/login\.microsoftonline\.com\/<tenant-id>\/v2\.0 with the Directory \(tenant\) ID/, out.join('\n'))
  t.match(out[1], /^ERROR OPENID_CLIENT_ID contains spaces, so it still holds the guide's placeholder — copy the Application \(client\) ID from the app registration's Overview page in Entra/)
  t.equal(only(findings, 'ERROR').length, 2, 'nothing else is wrong')
  t.same(outside, [], 'the placeholder issuer is not probed')
  t.notOk(out.some(l => /DNS|discovery document/.test(l)), 'no network finding hides the fix')
  t.ok(out.findIndex(l => l.startsWith('OK the upstream')) > 1, 'the rest is still checked, after the placeholders')
})

t.test('a tenant that is not a GUID or a domain is its own finding, before any network finding', async t => {
  const env = { ...cleanEnv(), OPENID_ISSUER: 'https://login.microsoftonline.com/Contoso/v2.0' }
  const { get, outside } = offlineGet()
  const findings = await runDoctor(env, { get })
  const errors = only(findings, 'ERROR')
  t.equal(errors.length, 1, lines(findings, env).join('\n'))
  t.equal(findings[0], errors[0], 'it comes first')
  t.match(errors[0]?.what, 'OPENID_ISSUER must name the Directory (tenant) ID after login.microsoftonline.com/ (got "Contoso")')
  t.match(errors[0]?.fix, /^set it to https:\/\/login\.microsoftonline\.com\/<tenant-id>\/v2\.0 with the Directory \(tenant\) ID from the app registration's Overview page/)
  t.same(outside, [], 'and it is not probed')

  // A verified domain name is a tenant Entra knows: configuration loads, and the issuer is probed.
  const near = { ...cleanEnv(), OPENID_ISSUER: 'https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0' }
  const probe = offlineGet()
  const nearFindings = await runDoctor(near, { get: probe.get })
  t.equal(nearFindings[0]?.what, 'configuration loads: every variable present and well-formed')
  t.same(probe.outside, ['https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration'])
})

t.test('a client id that is not a GUID is an ERROR, whatever the issuer', async t => {
  const env = { ...cleanEnv(), OPENID_CLIENT_ID: 'gateway-test-client' }
  const errors = only(await runDoctor(env), 'ERROR')
  t.equal(errors.length, 1)
  t.equal(errors[0]?.what, 'OPENID_CLIENT_ID must be a GUID, as every Application (client) ID is')
  t.match(errors[0]?.fix, "copy the Application (client) ID from the app registration's Overview page in Entra")
})

t.test('likely mistakes loadConfig cannot see', async t => {
  const env = { ...cleanEnv(), OPENID_CLIENT_SECRET: '2f1e4a7b-9c3d-4e5f-8a6b-7c8d9e0f1a2b', OPENID_ISUER: 'x' }
  const { findings } = checkVariables(env)
  const out = lines(findings, env)
  t.ok(out.some(l => l.startsWith("WARN OPENID_CLIENT_SECRET looks like a GUID: that is the secret's ID, not its value")))
  t.notOk(out.some(l => l.includes('2f1e4a7b-9c3d')), 'without printing it')
  t.ok(out.includes('WARN OPENID_ISUER is not a variable the gateway reads — did you mean OPENID_ISSUER?'))
})

t.test('formatting never lets a secret through', async t => {
  const env = { OPENID_CLIENT_SECRET: 'abc-very-secret', REDIS_URL: 'redis://:p%40ss-word@r:6379' }
  const line = formatFinding({ level: 'ERROR', what: 'saw abc-very-secret and p@ss-word and p%40ss-word', fix: 'line\nbreak' }, secretValues(env))
  t.equal(line, 'ERROR saw *** and *** and *** — line break')
})

t.test('who may sign in, in Entra\'s terms: app roles are not groups, and a display name is not a Value', async t => {
  const none = checkAuthorization({})
  t.equal(none.length, 1)
  t.match(none[0]?.what, 'every account of the tenant that signs in is let in')
  const role = checkAuthorization({ OPENID_REQUIRED_ROLE: 'ChatUser,Admin' })
  t.match(role[0]?.what, 'a user needs the app role ChatUser or Admin')
  t.match(role[0]?.fix, /App registrations → App roles .* Enterprise applications → Users and groups; a group's name is not a role/)
  t.equal(role.length, 1, 'no warning for proper Values')
  const spaced = checkAuthorization({ OPENID_REQUIRED_ROLE: 'Chat Users' }).filter(f => f.level === 'WARN')
  t.match(spaced[0]?.what, 'has a space: app role Values cannot, so this looks like a display name')
  const guid = checkAuthorization({ OPENID_REQUIRED_ROLE: '6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d' }).filter(f => f.level === 'WARN')
  t.match(guid[0]?.fix, 'a group object ID in OPENID_REQUIRED_GROUPS')
  const named = checkAuthorization({ OPENID_REQUIRED_GROUPS: 'Chat Users' }).filter(f => f.level === 'WARN')
  t.match(named[0]?.what, 'groups are matched by object ID, never by name')
})

t.test('the summary line counts errors and warnings and says what comes first', async t => {
  const f = (level: Finding['level']): Finding => ({ level, what: 'x', fix: 'y' })
  t.match(renderReport([f('ERROR'), f('ERROR'), f('WARN'), f('OK')]), /\n\n2 errors, 1 warning: fix the errors first/)
  t.match(renderReport([f('WARN'), f('OK')]), /\n\nno errors, 1 warning: the gateway can run; read the warnings before going live\n$/)
  t.match(renderReport([f('OK'), f('OK')]), /\n\nall 2 checks passed\n$/)
  const long = renderReport([{ level: 'ERROR', what: 'word '.repeat(60), fix: 'fix '.repeat(60) }], [], 80)
  for (const line of long.split('\n')) t.ok([...line].length <= 80, 'wrapped to 80 columns')
})
