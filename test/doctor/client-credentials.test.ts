// The doctor on a certificate or a federated token instead of a client secret: the file, the
// key, the thumbprint the gateway sends (and the portal's SHA-1 to compare it with), the
// certificate's expiry; the token file's issuer, subject and expiry.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { X509Certificate, createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT, generateKeyPair } from 'jose'
import { DEV_CLIENT_ID } from '../../dev/client-id.js'
import { checkClientCredential, checkVariables, settingsFrom } from '../../src/doctor/checks.js'
import { formatFinding, type Finding } from '../../src/doctor/findings.js'
import { secretValues } from '../../src/doctor/run.js'

const dir = mkdtempSync(join(tmpdir(), 'doctor-credentials-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function certificateFile (name: string, days: number, password?: string): { path: string, der: Buffer } {
  const key = join(dir, `${name}.key`)
  const cert = join(dir, `${name}.crt`)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-keyout', key, '-out', cert, '-days', String(days), '-subj', `/CN=${name}`,
    ...(password !== undefined ? ['-passout', `pass:${password}`] : ['-nodes'])], { stdio: 'ignore' })
  const path = join(dir, `${name}.pem`)
  writeFileSync(path, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'))
  return { path, der: new X509Certificate(readFileSync(cert)).raw }
}

const base = {
  OPENID_ISSUER: 'https://login.microsoftonline.com/5f1c2b3a-7d4e-4c8b-9a6f-0e1d2c3b4a59/v2.0',
  OPENID_CLIENT_ID: DEV_CLIENT_ID,
  OPENID_SESSION_SECRET: 'doctor-session-secret-0123456789-abcdefghij',
  DOMAIN_SERVER: 'https://chat.example.com',
  UPSTREAM_URL: 'http://127.0.0.1:3080'
}
const report = (env: Record<string, string>, now?: Date): string[] => {
  const variables = checkVariables(env)
  const findings: Finding[] = [...variables.findings, ...checkClientCredential(settingsFrom(variables.sections), now)]
  return findings.map(f => formatFinding(f, secretValues(env)))
}

t.test('a certificate: its key, the thumbprints to compare with the portal, its expiry', async t => {
  const { path, der } = certificateFile('doctor-good', 365, 'doctor-password')
  const env = { ...base, OPENID_CLIENT_CERTIFICATE_PATH: path, OPENID_CLIENT_CERTIFICATE_PASSWORD: 'doctor-password' }
  const out = report(env)
  const sha1 = createHash('sha1').update(der).digest('hex').toUpperCase()
  const s256 = createHash('sha256').update(der).digest('base64url')
  t.ok(out.some(l => l.startsWith(`OK OPENID_CLIENT_CERTIFICATE_PATH: ${path} holds the certificate CN=doctor-good and its RSA 2048-bit private key`)), out.join('\n'))
  t.ok(out.includes(`OK the certificate's thumbprint is ${sha1} (SHA-1); assertions carry x5t#S256 ${s256} — compare the SHA-1 with the Thumbprint column under App registrations → Certificates & secrets → Certificates; not listed there: upload the certificate (AADSTS700027 otherwise)`), out.join('\n'))
  t.ok(out.some(l => /^OK the certificate is valid until \d{4}-\d\d-\d\d/.test(l)))
  t.notOk(out.some(l => l.startsWith('ERROR') || l.startsWith('WARN')), out.join('\n'))
  t.notOk(out.join('\n').includes('doctor-password'))

  const later = report(env, new Date(Date.now() + 350 * 86_400_000))
  t.ok(later.some(l => /^WARN the certificate expires on \d{4}-\d\d-\d\d, in 1[45] days — upload its successor/.test(l)), 'within 30 days: a warning')
  const after = report(env, new Date(Date.now() + 400 * 86_400_000))
  t.ok(after.some(l => /^ERROR the certificate expired on \d{4}-\d\d-\d\d — make a new certificate/.test(l)), 'expired: an error')
})

t.test('a certificate that cannot be used: one ERROR, naming the variable', async t => {
  const { path } = certificateFile('doctor-locked', 365, 'right')
  const out = report({ ...base, OPENID_CLIENT_CERTIFICATE_PATH: path, OPENID_CLIENT_CERTIFICATE_PASSWORD: 'wrong' })
  t.same(out.filter(l => l.startsWith('ERROR')), [`ERROR OPENID_CLIENT_CERTIFICATE_PASSWORD does not decrypt the private key in ${path} — set it to the password the key was exported with`])
  const missing = report({ ...base, OPENID_CLIENT_CERTIFICATE_PATH: join(dir, 'nothing.pem') })
  t.equal(missing.filter(l => l.startsWith('ERROR')).length, 1, missing.join('\n'))
  t.match(missing.find(l => l.startsWith('ERROR')), /^ERROR OPENID_CLIENT_CERTIFICATE_PATH names .*nothing\.pem, which cannot be read \(ENOENT\) — point it at the PEM file/)
})

t.test('a federated token file: readable, a JWT, its issuer and subject, its expiry', async t => {
  const { privateKey } = await generateKeyPair('RS256')
  const mint = async (exp: number): Promise<string> => await new SignJWT({}).setProtectedHeader({ alg: 'RS256' })
    .setIssuer('https://oidc.aks.example/cluster/').setSubject('system:serviceaccount:chat:entra-gateway').setAudience('api://AzureADTokenExchange')
    .setIssuedAt().setExpirationTime(exp).sign(privateKey)
  const file = join(dir, 'token')
  writeFileSync(file, await mint(Math.floor(Date.now() / 1000) + 3600))
  const env = { ...base, AZURE_FEDERATED_TOKEN_FILE: file }
  const out = report(env)
  t.ok(out.some(l => l.startsWith('OK AZURE_FEDERATED_TOKEN_FILE holds a token of issuer https://oidc.aks.example/cluster/, subject system:serviceaccount:chat:entra-gateway — the app registration needs a federated credential')), out.join('\n'))
  t.ok(out.some(l => l.startsWith('OK the federated token is valid until')))
  t.notOk(out.some(l => l.startsWith('ERROR') || l.startsWith('WARN')), out.join('\n'))

  writeFileSync(file, await mint(Math.floor(Date.now() / 1000) - 60))
  t.ok(report(env).some(l => /^ERROR the federated token expired at .* — the platform must keep the file fresh/.test(l)), 'expired: an error')
  writeFileSync(file, 'not a token')
  t.same(report(env).filter(l => l.startsWith('ERROR')), [`ERROR AZURE_FEDERATED_TOKEN_FILE: ${file} does not hold a JWT — it must hold the token the platform issues for the workload (on AKS, the projected service account token)`])
})
