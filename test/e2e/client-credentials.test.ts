// Client credentials without a shared secret: a certificate (private_key_jwt as Entra specifies
// it, an encrypted key, rotation without restart, an unregistered certificate) and a federated
// token file (AKS workload identity), end to end against the local IdP, which checks them the
// way Entra does. And the start-up errors, one line each naming the variable.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { createHash, X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose'
import { Browser, signIn } from '../helpers/browser.js'
import { CLIENT_ID, startStack, type Stack } from '../helpers/stack.js'
import { editSession } from '../helpers/session.js'
import { ENTRA_FEDERATION_AUDIENCE } from '../../dev/idp.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import { clientAuthentication } from '../../src/oidc/client-auth.js'

const dir = mkdtempSync(join(tmpdir(), 'client-credentials-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

interface Cert { certPem: string, pem: string, sha1Hex: string }
let serial = 0
/** A self-signed RSA certificate and its key in one PEM, as an app registration's certificate. */
function makeCertificate (opts: { password?: string, days?: number } = {}): Cert {
  const n = ++serial
  const key = join(dir, `key-${n}.pem`)
  const cert = join(dir, `cert-${n}.pem`)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-keyout', key, '-out', cert, '-days', String(opts.days ?? 365), '-subj', `/CN=entra-gateway-test-${n}`,
    ...(opts.password !== undefined ? ['-passout', `pass:${opts.password}`] : ['-nodes'])], { stdio: 'ignore' })
  const certPem = readFileSync(cert, 'utf8')
  return { certPem, pem: certPem + readFileSync(key, 'utf8'), sha1Hex: new X509Certificate(certPem).fingerprint.replaceAll(':', '') }
}

/** Replaces a file at once, as Kubernetes swaps a mounted secret: never half-written. */
function replaceFile (path: string, content: string): void {
  const next = `${path}.next`
  writeFileSync(next, content)
  renameSync(next, path)
}

const json = { accept: 'application/json' }
const xhr = { ...json, 'x-requested-with': 'XMLHttpRequest', 'sec-fetch-site': 'same-origin' }
const SHAREPOINT = 'https://contoso.sharepoint.com/AllSites.Read'
const TOKEN_ENV = { SHAREPOINT_PICKER_SHAREPOINT_SCOPE: SHAREPOINT, SHAREPOINT_PICKER_GRAPH_SCOPE: 'Files.Read.All', ENABLE_SHAREPOINT_FILEPICKER: 'true', SHAREPOINT_BASE_URL: 'https://contoso.sharepoint.com' }
const text = (html: string): string => html.replace(/<[^>]+>/g, ' ').replace(/&#39;/g, "'").replace(/\s+/g, ' ')

/** A token for another resource: a token-endpoint call of its own (refresh grant). */
async function resourceToken (browser: Browser, stack: Stack): Promise<Response> {
  return await browser.request(`${stack.url}/oauth2/token?scope=${encodeURIComponent(SHAREPOINT)}`, { headers: xhr })
}
/** A refresh of the sign-in token, made due by moving the access token's expiry near. */
async function refresh (browser: Browser, stack: Stack): Promise<number> {
  await editSession(stack.store, browser, stack.url, stack.config.cookieName, s => { s.accessExp = Math.floor(Date.now() / 1000) + 10 })
  return (await browser.request(`${stack.url}/headers`, { headers: json })).status
}

t.test('the assertion as Entra specifies it: PS256, x5t#S256 and x5t, aud = token endpoint, iss = sub = client id', async t => {
  const cert = makeCertificate()
  const path = join(dir, 'assertion.pem')
  writeFileSync(path, cert.pem)
  const auth = clientAuthentication({ clientSecret: '', tokenEndpointAuthMethod: 'private_key_jwt', clientCredential: { kind: 'certificate', path, variable: 'OPENID_CLIENT_CERTIFICATE_PATH', password: undefined, passwordVariable: 'OPENID_CLIENT_CERTIFICATE_PASSWORD' } })
  const as = { issuer: 'https://login.example/t/v2.0', token_endpoint: 'https://login.example/t/oauth2/v2.0/token' }
  const body = new URLSearchParams()
  await auth(as, { client_id: CLIENT_ID }, body, new Headers())
  t.equal(body.get('client_assertion_type'), 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer')
  t.equal(body.get('client_id'), CLIENT_ID)
  t.notOk(body.has('client_secret'))
  const assertion = body.get('client_assertion') ?? ''
  const der = new X509Certificate(cert.certPem).raw
  t.same(decodeProtectedHeader(assertion), {
    alg: 'PS256',
    typ: 'JWT',
    'x5t#S256': createHash('sha256').update(der).digest('base64url'),
    x5t: createHash('sha1').update(der).digest('base64url')
  })
  const claims = decodeJwt(assertion)
  t.equal(claims.aud, as.token_endpoint, 'one audience: the token endpoint')
  t.equal(claims.iss, CLIENT_ID)
  t.equal(claims.sub, CLIENT_ID)
  t.match(claims.jti, /^[0-9a-f-]{36}$/)
  t.equal(typeof claims.nbf, 'number')
  t.ok((claims.exp ?? 0) - (claims.nbf ?? 0) <= 600, 'short-lived')
  const again = new URLSearchParams()
  await auth(as, { client_id: CLIENT_ID }, again, new Headers())
  t.not(decodeJwt(again.get('client_assertion') ?? '').jti, claims.jti, 'a new jti each time')
})

t.test('a certificate: sign-in, refresh and a per-resource token, with no secret sent', async t => {
  const cert = makeCertificate()
  const path = join(dir, 'gateway.pem')
  writeFileSync(path, cert.pem)
  const stack = await startStack({ env: { OPENID_CLIENT_SECRET: undefined, OPENID_CLIENT_CERTIFICATE_PATH: path, ...TOKEN_ENV } })
  t.teardown(() => stack.close())
  stack.idp.addClientCertificate(CLIENT_ID, cert.certPem)
  const browser = new Browser()
  const { response } = await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  t.equal(response.status, 200, 'signed in')
  t.equal(stack.idp.tokenAuthMethods.private_key_jwt, 1, 'the code was redeemed with the certificate')
  t.equal(await refresh(browser, stack), 200)
  t.equal(stack.idp.tokenRequests.refresh_token, 1, 'refreshed')
  t.equal(stack.idp.tokenAuthMethods.private_key_jwt, 2, 'with the certificate')
  const sp = await resourceToken(browser, stack)
  t.equal(sp.status, 200)
  t.equal(decodeJwt((await sp.json() as { access_token: string }).access_token).aud, 'https://contoso.sharepoint.com')
  t.equal(stack.idp.tokenAuthMethods.private_key_jwt, 3, 'the per-resource token too')
  t.equal((stack.idp.tokenAuthMethods.client_secret_post ?? 0) + (stack.idp.tokenAuthMethods.client_secret_basic ?? 0), 0, 'never a secret')
  t.ok(stack.logs.some(l => l.event === 'client_certificate_loaded' && l.thumbprint === cert.sha1Hex), 'the log names the thumbprint in use')
  t.notMatch(stack.rawLogs(), 'PRIVATE KEY')
})

t.test('an encrypted key with its password (Azure Identity\'s names accepted)', async t => {
  const cert = makeCertificate({ password: 'correct horse battery' })
  const path = join(dir, 'encrypted.pem')
  writeFileSync(path, cert.pem)
  t.match(cert.pem, 'ENCRYPTED PRIVATE KEY')
  const stack = await startStack({ env: { OPENID_CLIENT_SECRET: undefined, AZURE_CLIENT_CERTIFICATE_PATH: path, AZURE_CLIENT_CERTIFICATE_PASSWORD: 'correct horse battery' } })
  t.teardown(() => stack.close())
  stack.idp.addClientCertificate(CLIENT_ID, cert.certPem)
  const { response } = await signIn(new Browser(), `${stack.url}/`, 'alice', 'alice')
  t.equal(response.status, 200)
  t.equal(stack.idp.tokenAuthMethods.private_key_jwt, 1)
  t.notMatch(stack.rawLogs(), 'correct horse', 'the password is never logged')
})

t.test('rotation: a new certificate in the file is used by the next token call, without a restart', async t => {
  const first = makeCertificate()
  const second = makeCertificate()
  const path = join(dir, 'rotating.pem')
  writeFileSync(path, first.pem)
  const stack = await startStack({ env: { OPENID_CLIENT_SECRET: undefined, OPENID_CLIENT_CERTIFICATE_PATH: path, ...TOKEN_ENV } })
  t.teardown(() => stack.close())
  stack.idp.addClientCertificate(CLIENT_ID, first.certPem)
  const browser = new Browser()
  t.equal((await signIn(browser, `${stack.url}/`, 'alice', 'alice')).response.status, 200)

  replaceFile(path, second.pem)
  const refused = await resourceToken(browser, stack)
  t.equal(refused.status, 502, 'the new certificate is sent at once; the IdP does not know it yet')
  t.equal((await refused.json() as { idp_error: string }).idp_error, 'AADSTS700027')

  stack.idp.addClientCertificate(CLIENT_ID, second.certPem)
  t.equal((await resourceToken(browser, stack)).status, 200, 'uploaded to the app registration: accepted')
  t.ok(stack.logs.some(l => l.event === 'client_certificate_rotated' && l.thumbprint === second.sha1Hex))

  replaceFile(path, 'half a file')
  t.equal(await refresh(browser, stack), 200, 'a broken file: the last good certificate goes on signing')
  t.ok(stack.logs.some(l => l.event === 'client_certificate_unreadable' && l.using === second.sha1Hex))
})

t.test('an unregistered certificate: sign-in fails with AADSTS700027, explained', async t => {
  const cert = makeCertificate()
  const path = join(dir, 'unregistered.pem')
  writeFileSync(path, cert.pem)
  const stack = await startStack({ env: { OPENID_CLIENT_SECRET: undefined, OPENID_CLIENT_CERTIFICATE_PATH: path } })
  t.teardown(() => stack.close())
  stack.idp.addClientCertificate(CLIENT_ID, makeCertificate().certPem)
  const { response } = await signIn(new Browser(), `${stack.url}/`, 'alice', 'alice')
  t.equal(response.status, 400)
  const said = text(await response.text())
  t.match(said, "The sign-in service refused this application's own credentials")
  t.match(said, 'For your administrator: The certificate the gateway signs with (OPENID_CLIENT_CERTIFICATE_PATH) is not registered on the app registration')
  t.match(said, /Code AADSTS700027 \(token_error\)/)
  t.notMatch(said, 'Try signing in again')
  const line = stack.logs.find(l => l.event === 'sign_in_failed')
  t.equal(line?.idpError, 'AADSTS700027')
  t.match(line?.idpDescription, `Thumbprint of key used by client: '${cert.sha1Hex}'`, "Microsoft's words name the thumbprint sent")
})

const FEDERATED_ISSUER = 'https://oidc.prod-aks.azure.example/5f1c2b3a/cluster/'
const SUBJECT = 'system:serviceaccount:chat:entra-gateway'

t.test('workload identity federation: the token file is read before each use', async t => {
  const { privateKey, publicKey } = await generateKeyPair('RS256')
  const jwk = { ...await exportJWK(publicKey), kid: 'k1', alg: 'RS256', use: 'sig' }
  const mint = async (subject: string): Promise<string> => await new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuer(FEDERATED_ISSUER).setSubject(subject).setAudience(ENTRA_FEDERATION_AUDIENCE)
    .setIssuedAt().setExpirationTime('1h').sign(privateKey)
  const tokenFile = join(dir, 'azure-identity-token')
  writeFileSync(tokenFile, await mint(SUBJECT))
  // As the AKS webhook injects it: AZURE_CLIENT_ID stands in for OPENID_CLIENT_ID.
  const stack = await startStack({ env: { OPENID_CLIENT_SECRET: undefined, OPENID_CLIENT_ID: undefined, AZURE_CLIENT_ID: CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE: tokenFile, ...TOKEN_ENV } })
  t.teardown(() => stack.close())
  stack.idp.addFederatedCredential(CLIENT_ID, { issuer: FEDERATED_ISSUER, subject: SUBJECT, jwks: { keys: [jwk] } })
  const browser = new Browser()
  t.equal((await signIn(browser, `${stack.url}/`, 'alice', 'alice')).response.status, 200, 'signed in')
  t.equal(stack.idp.tokenAuthMethods.federated, 1)

  replaceFile(tokenFile, await mint('system:serviceaccount:other:app'))
  const refused = await resourceToken(browser, stack)
  t.equal(refused.status, 502, 'the new content is what was sent')
  t.equal((await refused.json() as { idp_error: string }).idp_error, 'AADSTS70021')

  replaceFile(tokenFile, await mint(SUBJECT))
  t.equal((await resourceToken(browser, stack)).status, 200, 'a fresh token of the right subject: accepted')
  t.equal(await refresh(browser, stack), 200, 'and a refresh')
  t.equal(stack.idp.tokenAuthMethods.federated, 3)
  t.equal((stack.idp.tokenAuthMethods.client_secret_post ?? 0) + (stack.idp.tokenAuthMethods.client_secret_basic ?? 0), 0, 'never a secret')
})

t.test('a federated token no credential matches: sign-in fails with AADSTS70021, explained', async t => {
  const { privateKey } = await generateKeyPair('RS256')
  const tokenFile = join(dir, 'unmatched-token')
  writeFileSync(tokenFile, await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setIssuer(FEDERATED_ISSUER).setSubject(SUBJECT)
    .setAudience(ENTRA_FEDERATION_AUDIENCE).setIssuedAt().setExpirationTime('1h').sign(privateKey))
  const stack = await startStack({ env: { OPENID_CLIENT_SECRET: undefined, AZURE_FEDERATED_TOKEN_FILE: tokenFile } })
  t.teardown(() => stack.close())
  const { response } = await signIn(new Browser(), `${stack.url}/`, 'alice', 'alice')
  t.equal(response.status, 400)
  const said = text(await response.text())
  t.match(said, 'For your administrator: No federated credential of the app registration matches the token in AZURE_FEDERATED_TOKEN_FILE')
  t.match(said, /Code AADSTS70021/)
  t.match(stack.logs.find(l => l.event === 'sign_in_failed')?.idpDescription, `Assertion Subject: '${SUBJECT}'`)
})

t.test('start-up errors: one line each, naming the variable', async t => {
  const good = makeCertificate()
  const goodPath = join(dir, 'config-good.pem')
  writeFileSync(goodPath, good.pem)
  const locked = makeCertificate({ password: 'right-password' })
  const lockedPath = join(dir, 'config-locked.pem')
  writeFileSync(lockedPath, locked.pem)
  const tokenFile = join(dir, 'config-token')
  writeFileSync(tokenFile, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln')
  const base = { OPENID_ISSUER: 'https://login.microsoftonline.com/5f1c2b3a-7d4e-4c8b-9a6f-0e1d2c3b4a59/v2.0', OPENID_CLIENT_ID: CLIENT_ID, OPENID_SESSION_SECRET: 'x'.repeat(40), DOMAIN_SERVER: 'https://chat.example.com', UPSTREAM_URL: 'http://127.0.0.1:3080' }
  const problems = (env: Record<string, string>): string[] => {
    try {
      loadConfig({ ...base, ...env })
      return []
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      return err.problems
    }
  }
  t.same(problems({ OPENID_CLIENT_SECRET: 's3cret-value', OPENID_CLIENT_CERTIFICATE_PATH: goodPath }),
    ['OPENID_CLIENT_SECRET and OPENID_CLIENT_CERTIFICATE_PATH are set together: the gateway authenticates with exactly one credential; unset all but the one the app registration should accept.'])
  t.same(problems({ OPENID_CLIENT_CERTIFICATE_PATH: goodPath, AZURE_FEDERATED_TOKEN_FILE: tokenFile }),
    ['OPENID_CLIENT_CERTIFICATE_PATH and AZURE_FEDERATED_TOKEN_FILE are set together: the gateway authenticates with exactly one credential; unset all but the one the app registration should accept.'])
  t.same(problems({}),
    ['OPENID_CLIENT_SECRET is not set: set it to a client secret value of the app registration, or use a certificate (OPENID_CLIENT_CERTIFICATE_PATH) or a federated token (AZURE_FEDERATED_TOKEN_FILE) instead.'])
  const missing = join(dir, 'no-such.pem')
  t.same(problems({ OPENID_CLIENT_CERTIFICATE_PATH: missing }),
    [`OPENID_CLIENT_CERTIFICATE_PATH names ${missing}, which cannot be read (ENOENT); point it at the PEM file holding the certificate and its private key, readable by the gateway.`])
  t.same(problems({ OPENID_CLIENT_CERTIFICATE_PATH: lockedPath, OPENID_CLIENT_CERTIFICATE_PASSWORD: 'wrong-password' }),
    [`OPENID_CLIENT_CERTIFICATE_PASSWORD does not decrypt the private key in ${lockedPath}; set it to the password the key was exported with.`])
  t.same(problems({ OPENID_CLIENT_CERTIFICATE_PATH: lockedPath }),
    [`OPENID_CLIENT_CERTIFICATE_PASSWORD is not set, but the private key in ${lockedPath} is encrypted; set it to the key's password.`])
  const certOnly = join(dir, 'config-cert-only.pem')
  writeFileSync(certOnly, good.certPem)
  t.same(problems({ OPENID_CLIENT_CERTIFICATE_PATH: certOnly }),
    [`OPENID_CLIENT_CERTIFICATE_PATH: ${certOnly} holds no private key (-----BEGIN PRIVATE KEY-----); it must hold the certificate and its private key, both in PEM.`])
  t.same(problems({ AZURE_FEDERATED_TOKEN_FILE: missing }),
    [`AZURE_FEDERATED_TOKEN_FILE names ${missing}, which cannot be read (ENOENT); on AKS the workload identity webhook mounts it when the pod's service account is labeled azure.workload.identity/use: "true".`])
  t.same(problems({ OPENID_CLIENT_CERTIFICATE_PATH: goodPath, OPENID_TOKEN_ENDPOINT_AUTH_METHOD: 'client_secret_basic' }),
    ['OPENID_TOKEN_ENDPOINT_AUTH_METHOD=client_secret_basic needs OPENID_CLIENT_SECRET, but the gateway authenticates with a certificate: unset it (or set private_key_jwt).'])
  t.same(problems({ OPENID_CLIENT_CERTIFICATE_PATH: goodPath }), [], 'a good certificate alone')
  t.same(problems({ OPENID_CLIENT_CERTIFICATE_PATH: lockedPath, OPENID_CLIENT_CERTIFICATE_PASSWORD: 'right-password' }), [])
  for (const lines of [problems({ OPENID_CLIENT_CERTIFICATE_PATH: lockedPath, OPENID_CLIENT_CERTIFICATE_PASSWORD: 'wrong-password' })]) t.notMatch(lines.join('\n'), 'wrong-password', 'a password is never echoed')

  // AKS's webhook variables alone: the tenant's issuer and the client id come from them.
  const { OPENID_ISSUER: _i, OPENID_CLIENT_ID: _c, ...rest } = base
  const aks = loadConfig({ ...rest, AZURE_TENANT_ID: '5f1c2b3a-7d4e-4c8b-9a6f-0e1d2c3b4a59', AZURE_CLIENT_ID: CLIENT_ID, AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.us/', AZURE_FEDERATED_TOKEN_FILE: tokenFile })
  t.equal(aks.issuer, 'https://login.microsoftonline.us/5f1c2b3a-7d4e-4c8b-9a6f-0e1d2c3b4a59/v2.0')
  t.equal(aks.clientId, CLIENT_ID)
  t.equal(aks.tokenEndpointAuthMethod, 'private_key_jwt')
  const both = loadConfig({ ...base, AZURE_TENANT_ID: '11111111-2222-4333-8444-555555555555', AZURE_FEDERATED_TOKEN_FILE: tokenFile })
  t.equal(both.issuer, base.OPENID_ISSUER, 'OPENID_ISSUER wins')
  t.ok(both.notices.some(n => n.variable === 'AZURE_TENANT_ID' && n.level === 'warn'), 'and a different AZURE_TENANT_ID is said at start')
})

t.test('the IdP refuses a replayed or wrongly addressed assertion, as Entra does', async t => {
  const cert = makeCertificate()
  const path = join(dir, 'idp-checks.pem')
  writeFileSync(path, cert.pem)
  const stack = await startStack({ env: { OPENID_CLIENT_SECRET: undefined, OPENID_CLIENT_CERTIFICATE_PATH: path } })
  t.teardown(() => stack.close())
  stack.idp.addClientCertificate(CLIENT_ID, cert.certPem)
  const oidc = await stack.app.idp.get()
  const tokenEndpoint = oidc.serverMetadata().token_endpoint ?? ''
  const assertionFor = async (as: { issuer: string, token_endpoint: string }): Promise<string> => {
    const body = new URLSearchParams()
    await clientAuthentication(stack.config)(as, { client_id: CLIENT_ID }, body, new Headers())
    return body.get('client_assertion') ?? ''
  }
  const post = async (assertion: string): Promise<{ status: number, body: Record<string, unknown> }> => {
    const res = await fetch(tokenEndpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'nothing', client_id: CLIENT_ID, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }) })
    return { status: res.status, body: await res.json() as Record<string, unknown> }
  }
  const assertion = await assertionFor({ issuer: stack.idp.issuer, token_endpoint: tokenEndpoint })
  t.equal((await post(assertion)).body.error, 'invalid_grant', 'the client is authenticated (the refresh token is what is wrong)')
  const replay = await post(assertion)
  t.equal(replay.status, 401, 'the same assertion again: refused')
  t.match(replay.body.error_description, 'already used')
  const elsewhere = await post(await assertionFor({ issuer: stack.idp.issuer, token_endpoint: stack.idp.issuer }))
  t.equal(elsewhere.status, 401, 'aud must be the token endpoint')
  t.match(elsewhere.body.error_description, /^AADSTS50027/)
})

t.test('a credential file gone after start: the sign-in page says so, and the log names the file', async t => {
  const cert = makeCertificate()
  const path = join(dir, 'vanishing.pem')
  writeFileSync(path, cert.pem)
  const stack = await startStack({ env: { OPENID_CLIENT_SECRET: undefined, OPENID_CLIENT_CERTIFICATE_PATH: path } })
  t.teardown(() => stack.close())
  stack.idp.addClientCertificate(CLIENT_ID, cert.certPem)
  rmSync(path)
  const { response } = await signIn(new Browser(), `${stack.url}/`, 'alice', 'alice')
  t.equal(response.status, 400)
  const said = text(await response.text())
  t.match(said, "This application's own credentials could not be read, so no one can sign in right now.")
  t.notMatch(said, 'Try signing in again')
  const line = stack.logs.find(l => l.event === 'sign_in_failed')
  t.equal(line?.reason, 'client_credential')
  t.match(line?.detail, `OPENID_CLIENT_CERTIFICATE_PATH names ${path}, which cannot be read (ENOENT)`)
  t.equal(stack.idp.tokenRequests.authorization_code, 0, 'nothing was sent without a credential')
})
