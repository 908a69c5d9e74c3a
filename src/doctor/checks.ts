// The doctor's checks. Each takes what it needs (settings, a probe's result, the clock) and
// returns findings; the few that need the network take the probe as an injectable option, so
// tests call every check directly. Nothing here prints, and no secret value is ever put in a
// finding.
import {
  DEFAULT_CALLBACK, DEFAULT_CLOCK_TOLERANCE_SECONDS, EnvReader, GUID, isLoopbackHost, joinSections, knownVariables, noticesOf, parseSections,
  parseTokens, problemsOf, SIGNED_OUT_PATH, describeRedis, type ConfigSections, type EgressSettings, type GatewayConfig, type Notice, type RedisSettings
} from '../config.js'
import { CertificateFileError, FederatedTokenError, loadCertificateFile, readFederatedToken, type ClientCredentialSettings } from '../config/client-credential.js'
import { egressRoute, showProxy, type EgressFetch } from '../egress/egress.js'
import { IDENTITY_HEADERS } from '../proxy/headers.js'
import { error, ok, redactUrl, warn, type Finding } from './findings.js'
import { httpGet, redisPing, redisPingNode, type HttpProbe, type ProbeOptions, type RedisProbe } from './probes.js'
import { BACK_CHANNEL_LOGOUT_PATH, FRONT_CHANNEL_LOGOUT_PATH } from '../oidc/logout.js'

/** Clock skew above this is worth a warning; above the gateway's tolerance (OPENID_CLOCK_TOLERANCE) sign-ins fail. */
export const CLOCK_WARN_SECONDS = 60

/**
 * What the checks look at: the values of the gateway's own section parsers. A section with
 * problems still has best-effort values, so everything that can still be checked is, except
 * what was refused: a refused issuer or upstream is not probed (a placeholder issuer's fix is
 * not buried under a DNS error).
 */
export interface DoctorSettings {
  /** OPENID_ISSUER without a trailing slash; undefined when missing, not a URL or refused. */
  issuer: string | undefined
  clientId: string | undefined
  /** DOMAIN_SERVER's origin; undefined when missing or not a URL. */
  publicOrigin: string | undefined
  /** OPENID_CALLBACK_URL as configured (possibly malformed). */
  callbackPath: string
  useEndSessionEndpoint: boolean
  postLogoutRedirectUri: string | undefined
  /** OPENID_CLOCK_TOLERANCE. */
  clockToleranceSeconds: number
  upstreamUrl: string | undefined
  upstreamHealthPath: string
  /** Each route's upstream, as parsed (a refused route is not among them, so not probed). */
  routes: Array<{ name: string, upstreamUrl: string, healthPath: string }>
  sessionStore: string
  /** Where Redis is, when SESSION_STORE=redis and it parsed. */
  redis: RedisSettings | undefined
  trustedProxies: string[]
  /** OPENID_SCOPE, split. */
  scope: string[]
  /** The outbound proxy settings (best effort: a malformed proxy variable is left out). */
  egress: EgressSettings['egress']
  graphApiUrl: string
  /** OPENID_IMAGE_URL, when the pages fetch it (no GATEWAY_LOGO_FILE). */
  imageUrl: string | undefined
  /** The client's credential besides a secret (a certificate, a federated token file). */
  clientCredential: ClientCredentialSettings
  /** Variables the configuration refused (their own findings say why). */
  refused: ReadonlySet<string>
}

const given = (v: string): string | undefined => v === '' ? undefined : v

export function settingsFrom (sections: ConfigSections): DoctorSettings {
  const refused = new Set(problemsOf(sections).map(p => p.variable))
  const idp = sections.identityProvider.values
  const upstream = sections.upstream.values
  const session = sections.session.values
  return {
    issuer: refused.has('OPENID_ISSUER') ? undefined : given(idp.issuer),
    clientId: given(idp.clientId),
    publicOrigin: given(idp.publicOrigin),
    callbackPath: idp.callbackPath,
    useEndSessionEndpoint: idp.useEndSessionEndpoint,
    postLogoutRedirectUri: given(idp.postLogoutRedirectUri),
    clockToleranceSeconds: idp.clockToleranceSeconds,
    upstreamUrl: refused.has('UPSTREAM_URL') ? undefined : given(upstream.upstreamUrl),
    upstreamHealthPath: upstream.upstreamHealthPath,
    routes: sections.authorization.values.routes.all.map(r => ({ name: r.name, upstreamUrl: r.upstreamUrl, healthPath: r.healthPath })),
    sessionStore: session.sessionStore,
    redis: session.redis,
    trustedProxies: upstream.trustedProxies,
    scope: idp.scope.split(' ').filter(Boolean),
    egress: sections.egress.values.egress,
    graphApiUrl: sections.tokens.values.graphApiUrl,
    imageUrl: sections.pages.values.logoFile === undefined ? sections.pages.values.imageUrl : undefined,
    clientCredential: idp.clientCredential,
    refused
  }
}

// ---------------------------------------------------------------------------------------------
// The client's credential: a certificate, or a federated token file
// ---------------------------------------------------------------------------------------------

/** A certificate this close to its end is worth a warning (Entra refuses it once expired). */
export const CERTIFICATE_WARN_DAYS = 30

/**
 * The certificate: the file and key (a problem there is already a finding of its own), the
 * thumbprints the gateway sends, to compare with the portal's, and the expiry. The federated
 * token: readable, a JWT, not expired, and what the federated credential must match.
 */
export function checkClientCredential (settings: Pick<DoctorSettings, 'clientCredential' | 'refused'>, now: Date = new Date()): Finding[] {
  const c = settings.clientCredential
  if (c.kind === 'certificate') {
    let loaded
    try {
      loaded = loadCertificateFile(c)
    } catch (err) {
      // The same reading as at start: the variables' findings already say what is wrong.
      if (err instanceof CertificateFileError) return settings.refused.has(err.variable) ? [] : [problemFinding(err.message)]
      throw err
    }
    const bits = loaded.key.asymmetricKeyDetails?.modulusLength
    const days = Math.floor((loaded.notAfter.getTime() - now.getTime()) / 86_400_000)
    const until = loaded.notAfter.toISOString().slice(0, 10)
    const findings = [
      ok(`${c.variable}: ${c.path} holds the certificate ${loaded.certificate.subject.replace(/\n/g, ', ')} and its RSA${bits !== undefined ? ` ${bits}-bit` : ''} private key`, 'the gateway signs its client assertions with it (PS256)'),
      ok(`the certificate's thumbprint is ${loaded.sha1Hex} (SHA-1); assertions carry x5t#S256 ${loaded.x5tS256}`,
        'compare the SHA-1 with the Thumbprint column under App registrations → Certificates & secrets → Certificates; not listed there: upload the certificate (AADSTS700027 otherwise)')
    ]
    // Expired is refused at start too: then the variables' findings already carry the error.
    if (days < 0 && settings.refused.has(c.variable)) return findings
    if (days < 0) findings.push(error(`the certificate expired on ${until}`, 'make a new certificate, upload it to the app registration, and put it in the file (the gateway reads it again without a restart)'))
    else if (days < CERTIFICATE_WARN_DAYS) findings.push(warn(`the certificate expires on ${until}, in ${days} day${days === 1 ? '' : 's'}`, 'upload its successor to the app registration now, then replace the file (the gateway reads it again without a restart)'))
    else findings.push(ok(`the certificate is valid until ${until}`, 'renew it before then'))
    return findings
  }
  if (c.kind === 'federated') {
    if (settings.refused.has('AZURE_FEDERATED_TOKEN_FILE')) return []
    let token: string
    try {
      token = readFederatedToken(c.tokenFile)
    } catch (err) {
      if (err instanceof FederatedTokenError) return [problemFinding(err.message)]
      throw err
    }
    let claims: Record<string, unknown>
    try {
      claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
    } catch {
      return [error(`AZURE_FEDERATED_TOKEN_FILE: ${c.tokenFile} does not hold a JWT`, 'it must hold the token the platform issues for the workload (on AKS, the projected service account token)')]
    }
    const aud = Array.isArray(claims.aud) ? claims.aud.map(String) : [String(claims.aud)]
    const findings = [ok(`AZURE_FEDERATED_TOKEN_FILE holds a token of issuer ${String(claims.iss)}, subject ${String(claims.sub)}`,
      'the app registration needs a federated credential (Certificates & secrets → Federated credentials) with exactly this issuer and subject (AADSTS70021 otherwise)')]
    if (!aud.includes('api://AzureADTokenExchange')) findings.push(warn(`the federated token's audience is ${aud.join(', ')}, not api://AzureADTokenExchange`, 'Entra expects api://AzureADTokenExchange: set it as the projected token\'s audience, or the federated credential\'s audience to this one'))
    const exp = typeof claims.exp === 'number' ? claims.exp : undefined
    if (exp === undefined || exp * 1000 <= now.getTime()) {
      findings.push(error(`the federated token ${exp === undefined ? 'has no expiry' : `expired at ${new Date(exp * 1000).toISOString()}`}`, 'the platform must keep the file fresh: on AKS, the workload identity webhook\'s projected token is renewed by the kubelet; check the pod\'s volume projection'))
    } else {
      findings.push(ok(`the federated token is valid until ${new Date(exp * 1000).toISOString()}`, 'the gateway reads the file again before each token request, so the platform\'s renewals are picked up'))
    }
    return findings
  }
  return []
}

// ---------------------------------------------------------------------------------------------
// Variables
// ---------------------------------------------------------------------------------------------

/** Problems with these variables are reported by a dedicated check, with an Entra-specific fix. */
const REPORTED_ELSEWHERE = ['OPENID_CALLBACK_URL']

/** A ConfigError problem ("NAME is not set: do this." / "NAME must be …") as a finding. */
export function problemFinding (problem: string): Finding {
  const text = problem.replace(/\.$/, '')
  const name = /^([A-Z][A-Z0-9_]*|[a-z]+_proxy)\b/.exec(text)?.[0] ?? 'configuration'
  const notSet = /^([A-Z][A-Z0-9_]*) is not set: (.*)$/.exec(text)
  if (notSet !== null) return error(`${notSet[1] ?? name} is not set`, notSet[2] ?? `set ${name}`)
  // "NAME must be …; do this" carries its own fix after the semicolon.
  const semicolon = text.indexOf('; ')
  if (semicolon !== -1) return error(text.slice(0, semicolon), text.slice(semicolon + 2))
  return error(text, `correct ${name} in the environment or .env`)
}

/** A start-up notice as a finding: a warning stays a WARN, an info line is an OK. */
export function noticeFinding (notice: Notice): Finding {
  const text = notice.message.replace(/\.$/, '')
  const split = text.indexOf(': ') !== -1 && notice.level === 'info' ? text.indexOf(': ') : text.indexOf('; ')
  const what = split === -1 ? text : text.slice(0, split)
  const fix = split === -1 ? 'nothing to do unless that is not what you want' : text.slice(split + 2)
  return notice.level === 'warn' ? warn(what, fix) : ok(what, fix)
}

export interface VariablesResult {
  /** The configuration, when it loads. */
  config: GatewayConfig | undefined
  /** Every section as parsed, the settings of the other checks come from. */
  sections: ConfigSections
  findings: Finding[]
}

/** Parses the configuration exactly as the gateway does and turns every problem into a finding. */
export function checkVariables (env: NodeJS.ProcessEnv): VariablesResult {
  const findings: Finding[] = []
  let sections: ConfigSections
  let config: GatewayConfig | undefined
  try {
    sections = parseSections(env)
  } catch (err) {
    findings.push(error(`configuration could not be read: ${(err as Error).message}`, 'fix the setting it names in the environment or .env'))
    // Nothing of it is probed: an empty environment's sections name no issuer and no upstream.
    return { config, sections: parseSections({}), findings: [...findings, ...checkLikelyMistakes(env)] }
  }
  const problems = problemsOf(sections)
  if (problems.length === 0) {
    config = joinSections(sections)
    findings.push(ok('configuration loads: every variable present and well-formed', 'nothing to do'))
  }
  for (const problem of problems) {
    if (REPORTED_ELSEWHERE.includes(problem.variable)) continue
    findings.push(problemFinding(problem.message))
  }
  // What the gateway says at start about settings it reads differently from LibreChat, or not at all.
  findings.push(...noticesOf(sections, env).map(noticeFinding))
  findings.push(...checkLikelyMistakes(env))
  return { config, sections, findings }
}

/**
 * Mistakes loadConfig cannot see: a secret's id pasted instead of its value, misspelt names.
 * (A client id that is not a GUID, or a placeholder, loadConfig itself refuses.)
 */
export function checkLikelyMistakes (env: NodeJS.ProcessEnv): Finding[] {
  const findings: Finding[] = []
  const secret = new EnvReader(env).str('OPENID_CLIENT_SECRET')
  if (secret !== undefined && GUID.test(secret)) {
    findings.push(warn('OPENID_CLIENT_SECRET looks like a GUID: that is the secret\'s ID, not its value (sign-in then fails with AADSTS7000215)',
      'in Entra → App registrations → Certificates & secrets, copy the secret\'s Value column (shown once, when created; make a new one if it is hidden)'))
  }
  const known = knownVariables()
  for (const name of Object.keys(env)) {
    if (known.includes(name) || !/^(OPENID|DOMAIN|UPSTREAM|SESSION|REDIS|TRUSTED)_/.test(name)) continue
    const near = known.find(k => editDistance(k, name) <= 2)
    if (near !== undefined) findings.push(warn(`${name} is not a variable the gateway reads`, `did you mean ${near}?`))
  }
  return findings
}

function editDistance (a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length] ?? 3
}

// ---------------------------------------------------------------------------------------------
// The IdP: discovery document, issuer, clock
// ---------------------------------------------------------------------------------------------

export function discoveryUrl (issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`
}

/** Reads the discovery probe: reachable, JSON, and naming the configured issuer. */
export function discoveryFindings (settings: Pick<DoctorSettings, 'issuer' | 'useEndSessionEndpoint'>, probe: HttpProbe): Finding[] {
  const issuer = settings.issuer as string
  const fixIssuer = 'set OPENID_ISSUER to https://login.microsoftonline.com/<tenant-id>/v2.0 with the Directory (tenant) ID from the app registration\'s Overview page in Entra'
  if (probe.error !== undefined) {
    // The issuer's form was already checked (a placeholder never gets this far): only the way
    // there is at fault, so the advice is about the network, not the value.
    const host = new URL(probe.url).host
    return [error(`the issuer's discovery document ${probe.url} is unreachable: ${probe.error}`,
      `make sure this host can reach ${host} over HTTPS: its DNS, the firewall, and, where outbound traffic must pass a proxy, HTTPS_PROXY (and NO_PROXY)`)]
  }
  let doc: Record<string, unknown> | undefined
  try {
    const parsed: unknown = JSON.parse(probe.body ?? '')
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) doc = parsed as Record<string, unknown>
  } catch {}
  if (probe.status !== 200) {
    const description = typeof doc?.error_description === 'string' ? doc.error_description : ''
    const aadsts = /AADSTS\d+/.exec(description)?.[0]
    const tenantUnknown = aadsts === 'AADSTS90002' || doc?.error === 'invalid_tenant'
    return [error(`the issuer's discovery document ${probe.url} answered HTTP ${probe.status ?? '?'}${aadsts !== undefined ? ` (${aadsts})` : ''}${tenantUnknown ? ': no such tenant' : ''}`, fixIssuer)]
  }
  if (doc === undefined || typeof doc.issuer !== 'string') {
    return [error(`${probe.url} is not an OpenID Connect discovery document (no "issuer" in it)`, 'OPENID_ISSUER must be the issuer URL itself, e.g. https://login.microsoftonline.com/<tenant-id>/v2.0')]
  }
  const findings: Finding[] = []
  const metaIssuer = doc.issuer.replace(/\/+$/, '')
  if (metaIssuer.includes('{tenantid}')) {
    findings.push(warn(`OPENID_ISSUER ${issuer} is a multi-tenant endpoint: its metadata names the template ${doc.issuer}, so users of any tenant (and with "common", personal Microsoft accounts) can sign in`,
      'use your own tenant: https://login.microsoftonline.com/<tenant-id>/v2.0; if other organizations must sign in, list their tenant ids in OPENID_ALLOWED_TENANTS'))
  } else if (metaIssuer !== issuer) {
    const v1 = /^https:\/\/sts\.windows\.net\//.test(metaIssuer)
    findings.push(error(`the discovery document's issuer is ${doc.issuer} but OPENID_ISSUER is ${issuer}: every sign-in would be refused`,
      v1 ? `that is Entra's v1 endpoint: set OPENID_ISSUER to ${issuer}/v2.0` : `set OPENID_ISSUER to ${metaIssuer}`))
  } else {
    findings.push(ok(`the issuer's discovery document ${probe.url} is reachable and names issuer ${doc.issuer}`, 'nothing to do'))
  }
  if (settings.useEndSessionEndpoint && typeof doc.end_session_endpoint !== 'string') {
    findings.push(warn('OPENID_USE_END_SESSION_ENDPOINT=true but the IdP has no end_session_endpoint: sign-out ends only the gateway session',
      'set OPENID_USE_END_SESSION_ENDPOINT=false, or use an IdP that offers RP-initiated logout'))
  }
  return findings
}

/**
 * Clock skew against the IdP's Date header. The header has one-second resolution and the
 * answer took a while, so the local time compared is the middle of the exchange.
 */
export function clockFindings (probe: HttpProbe, toleranceSeconds = DEFAULT_CLOCK_TOLERANCE_SECONDS): Finding[] {
  if (probe.error !== undefined) return []
  const remote = probe.date !== undefined ? Date.parse(probe.date) : NaN
  if (Number.isNaN(remote)) {
    return [warn(`the IdP sent no usable Date header, so clock skew could not be checked (${probe.url})`, 'make sure this host keeps time with NTP (timedatectl set-ntp true, or chrony)')]
  }
  const local = (probe.sentAt + probe.receivedAt) / 2
  const skew = Math.round((local - remote) / 1000)
  const size = Math.abs(skew)
  const how = skew > 0 ? `ahead of the IdP by ${size} s` : `behind the IdP by ${size} s`
  const fix = 'sync this host\'s clock with NTP (timedatectl set-ntp true, or chrony; in a container, the host\'s clock)'
  if (size > toleranceSeconds) return [error(`this host's clock is ${how}, beyond the gateway's ${toleranceSeconds} s tolerance (OPENID_CLOCK_TOLERANCE): ID tokens will be refused as not yet valid or expired`, fix)]
  if (size > Math.min(CLOCK_WARN_SECONDS, toleranceSeconds)) return [warn(`this host's clock is ${how} (the gateway tolerates ${toleranceSeconds} s, OPENID_CLOCK_TOLERANCE)`, fix)]
  return [ok(`this host's clock agrees with the IdP's (${size <= 1 ? 'within a second' : how})`, 'nothing to do')]
}

export interface NetworkOptions extends ProbeOptions {
  /** How the IdP is asked: the egress fetch built from the settings (runDoctor makes it). */
  egressFetch?: EgressFetch
  /** How the upstream is asked: always directly. */
  directFetch?: EgressFetch
  /** Replaces the HTTP probe (tests). */
  get?: typeof httpGet
  /** Replaces the Redis probe (tests). */
  ping?: (target: RedisSettings | string, opts: ProbeOptions) => Promise<RedisProbe>
  /** Replaces the probe of one listed sentinel or cluster node (tests). */
  pingNode?: typeof redisPingNode
}

/** The discovery document, asked for as the gateway asks: through the outbound proxy when one applies. */
export async function probeIdp (settings: DoctorSettings, opts: NetworkOptions = {}): Promise<HttpProbe | undefined> {
  if (settings.issuer === undefined) return undefined // the variables check already said why
  const get = opts.get ?? httpGet
  const url = discoveryUrl(settings.issuer)
  const probe = await get(url, { fetch: opts.egressFetch ?? (fetch as EgressFetch), timeoutMs: opts.timeoutMs ?? 5000, now: opts.now, maxBody: 256 * 1024 })
  const route = egressRoute(settings.egress, url)
  // An error through the proxy may be the proxy's: say which one was used.
  if (probe.error !== undefined && route.kind === 'proxy') return { ...probe, error: `${probe.error} (through the outbound proxy ${showProxy(route.proxy)})` }
  return probe
}

export function idpFindings (settings: DoctorSettings, probe: HttpProbe | undefined): Finding[] {
  return probe === undefined ? [] : [...discoveryFindings(settings, probe), ...clockFindings(probe, settings.clockToleranceSeconds)]
}

export async function checkIdp (settings: DoctorSettings, opts: NetworkOptions = {}): Promise<Finding[]> {
  return idpFindings(settings, await probeIdp(settings, opts))
}

// ---------------------------------------------------------------------------------------------
// Outbound proxy
// ---------------------------------------------------------------------------------------------

const PROXY_VARIABLES = [['https_proxy', 'HTTPS_PROXY'], ['http_proxy', 'HTTP_PROXY'], ['no_proxy', 'NO_PROXY']] as const

/**
 * Which proxy each outbound destination will use: the IdP's endpoints (from the discovery
 * document when it was read), Graph, OPENID_IMAGE_URL, and the upstream, which never uses one.
 */
export function checkEgress (settings: DoctorSettings, env: NodeJS.ProcessEnv, discovery?: HttpProbe): Finding[] {
  const egress = settings.egress
  const findings: Finding[] = []
  const r = new EnvReader(env)
  for (const [lower, upper] of PROXY_VARIABLES) {
    const a = r.str(lower)
    const b = r.str(upper)
    if (a !== undefined && b !== undefined && a !== b) {
      findings.push(warn(`${lower} and ${upper} are both set and differ: the lower-case ${lower} is used`, 'unset one of them, or give both the same value'))
    }
  }
  const proxy = r.str('PROXY')
  if (proxy !== undefined && (r.str('HTTPS_PROXY') ?? r.str('https_proxy') ?? r.str('HTTP_PROXY') ?? r.str('http_proxy')) !== undefined) {
    findings.push(ok('PROXY is set: it is used for every outbound destination, before HTTPS_PROXY and HTTP_PROXY (as LibreChat uses it); NO_PROXY still applies', 'unset PROXY to route by HTTPS_PROXY/HTTP_PROXY instead'))
  }
  for (const entry of egress.noProxy) {
    if (entry.hostname.includes('/')) {
      findings.push(warn(`NO_PROXY entry ${entry.hostname} is an address range, which is never matched (only host names, .domains and host:port are)`, 'list the hosts or domains to reach directly by name or address'))
    }
  }
  if (egress.https === undefined && egress.http === undefined) {
    findings.push(ok('no outbound proxy is set (HTTPS_PROXY, HTTP_PROXY, PROXY): the IdP, Graph and OPENID_IMAGE_URL are called directly',
      'where outbound traffic must pass an egress proxy, set HTTPS_PROXY=http://proxy.example.com:3128 (and NO_PROXY for hosts reached directly)'))
    return findings
  }

  // The IdP's endpoints, grouped by origin: one line per host the gateway calls.
  const calls = new Map<string, string[]>()
  const add = (what: string, url: string | undefined): void => {
    if (url === undefined) return
    let origin: string
    try { origin = new URL(url).origin } catch { return }
    calls.set(origin, [...(calls.get(origin) ?? []), what])
  }
  if (settings.issuer !== undefined) add('IdP discovery', discoveryUrl(settings.issuer))
  const doc = metadataOf(discovery)
  add('JWKS', doc.jwks_uri)
  add('token endpoint', doc.token_endpoint)
  add('UserInfo', doc.userinfo_endpoint)
  add('Microsoft Graph', settings.graphApiUrl)
  add('OPENID_IMAGE_URL', settings.imageUrl)
  for (const [origin, what] of calls) {
    const route = egressRoute(egress, origin)
    const host = new URL(origin).hostname
    // A proxy elsewhere reaches its own loopback, not this host's (one on this host, such as
    // a local authenticating proxy, does reach it).
    if (route.kind === 'proxy' && isLoopbackHost(host) && !isLoopbackHost(new URL(route.proxy.url).hostname)) {
      findings.push(warn(`outbound: ${what.join(', ')} at ${origin} would go through the proxy ${showProxy(route.proxy)}, which cannot reach this host's loopback`,
        `add ${host} to NO_PROXY (loopback is not excluded automatically)`))
    } else {
      findings.push(ok(`outbound: ${what.join(', ')} at ${origin} → ${route.kind === 'proxy' ? `through the proxy ${showProxy(route.proxy)}` : `directly (${route.why})`}`,
        route.kind === 'proxy' ? 'the proxy must allow it (CONNECT for https)' : 'nothing to do'))
    }
  }
  if (settings.upstreamUrl !== undefined) {
    findings.push(ok(`the upstream ${redactUrl(settings.upstreamUrl)} is always reached directly, never through the outbound proxy`, 'nothing to do'))
  }
  return findings
}

function metadataOf (probe: HttpProbe | undefined): Record<string, string | undefined> {
  if (probe?.status !== 200) return {}
  try {
    const doc: unknown = JSON.parse(probe.body ?? '')
    if (doc === null || typeof doc !== 'object') return {}
    const d = doc as Record<string, unknown>
    const str = (k: string): string | undefined => typeof d[k] === 'string' ? d[k] : undefined
    return { jwks_uri: str('jwks_uri'), token_endpoint: str('token_endpoint'), userinfo_endpoint: str('userinfo_endpoint') }
  } catch {
    return {}
  }
}

// ---------------------------------------------------------------------------------------------
// Redirect URI
// ---------------------------------------------------------------------------------------------

export function isCallbackPath (path: string): boolean {
  return path.startsWith('/') && !path.startsWith('//') && !/[?#\s\\]/.test(path)
}

/** The redirect URI to register in Entra, printed exactly, and whether Entra will take it. */
export function checkRedirectUri (settings: Pick<DoctorSettings, 'publicOrigin' | 'callbackPath' | 'useEndSessionEndpoint' | 'postLogoutRedirectUri'>): Finding[] {
  const findings: Finding[] = []
  if (!isCallbackPath(settings.callbackPath)) {
    findings.push(error(`OPENID_CALLBACK_URL "${settings.callbackPath}" is not a path, so no redirect URI can be built`,
      `set OPENID_CALLBACK_URL to a path such as ${DEFAULT_CALLBACK} (no scheme, host or query): the redirect URI is DOMAIN_SERVER + that path, and must be registered in Entra exactly`))
    return findings
  }
  if (settings.publicOrigin === undefined) return findings // DOMAIN_SERVER's own problem is reported with the variables
  const redirectUri = settings.publicOrigin + settings.callbackPath
  const origin = new URL(settings.publicOrigin)
  findings.push(ok(`redirect URI to register in Entra: ${redirectUri}`,
    'add it exactly (scheme, host, port, path; no trailing slash) under App registrations → Authentication → Web → Redirect URIs; a mismatch fails sign-in with AADSTS50011'))
  if (origin.protocol === 'http:' && !isLoopbackHost(origin.hostname)) {
    findings.push(warn(`the redirect URI ${redirectUri} is http:// on ${origin.hostname}: Entra accepts http:// redirect URIs only for localhost`,
      `serve the gateway over https (e.g. behind a TLS-terminating proxy) and set DOMAIN_SERVER=https://${origin.host}`))
  }
  if (settings.postLogoutRedirectUri !== undefined) {
    const own = settings.postLogoutRedirectUri === settings.publicOrigin + SIGNED_OUT_PATH ? " (the gateway's own signed-out page)" : ''
    findings.push(settings.useEndSessionEndpoint
      ? ok(`after sign-out Entra sends users to ${settings.postLogoutRedirectUri}${own}`,
        'register it as a redirect URI of the app registration too (Authentication → Web → Redirect URIs), or Entra stops at its own signed-out page')
      : ok(`sign-out ends at ${settings.postLogoutRedirectUri}${own}`,
        'with OPENID_USE_END_SESSION_ENDPOINT=true Entra sends users there: register it as a redirect URI of the app registration then'))
  }
  return findings
}

/** The logout URLs to register, so that a sign-out at Microsoft ends the gateway's sessions too. */
export function checkLogoutUrls (settings: Pick<DoctorSettings, 'publicOrigin'>): Finding[] {
  if (settings.publicOrigin === undefined) return []
  const front = settings.publicOrigin + FRONT_CHANNEL_LOGOUT_PATH
  const findings = [ok(`front-channel logout URL to register in Entra: ${front}`,
    'set it under App registrations → Authentication → Front-channel logout URL, and add the optional claim sid to the ID token (Token configuration → Add optional claim → ID → sid), so that signing out of Microsoft ends the gateway session too')]
  const origin = new URL(settings.publicOrigin)
  if (origin.protocol === 'http:' && !isLoopbackHost(origin.hostname)) {
    findings.push(warn(`the front-channel logout URL ${front} is http://: Entra accepts only https:// there`,
      `serve the gateway over https and set DOMAIN_SERVER=https://${origin.host}`))
  }
  findings.push(ok(`back-channel logout URL (IdPs that have it; Entra does not): ${settings.publicOrigin + BACK_CHANNEL_LOGOUT_PATH}`,
    'register it as the client\'s backchannel_logout_uri at an IdP with OpenID back-channel logout'))
  return findings
}

// ---------------------------------------------------------------------------------------------
// Upstream and Redis
// ---------------------------------------------------------------------------------------------

/** `route`: the prefix or host of a route, whose upstream this is; undefined: UPSTREAM_URL's. */
export function upstreamFindings (probe: HttpProbe, route?: string): Finding[] {
  const which = route === undefined ? 'the upstream' : `the upstream of the route ${route}`
  const fix = route === undefined
    ? 'start the app, or set UPSTREAM_URL to where it listens as seen from the gateway (LibreChat in docker compose: http://api:3080)'
    : `start it, or correct the route ${route} (ROUTES or the rules file's routes) to where it listens as seen from the gateway (LibreChat's compose: http://admin-panel:3000, http://rag_api:8000)`
  if (probe.error !== undefined) return [error(`${which} ${redactUrl(probe.url)} is unreachable: ${probe.error}`, fix)]
  const status = probe.status ?? 0
  if (status >= 500) return [error(`${which} ${redactUrl(probe.url)} answered HTTP ${status}`, `look at the upstream's own logs; the gateway reports it as ${route === undefined ? 'not ready' : 'degraded'} until it answers`)]
  if (status === 404) {
    return [warn(`${which} answered 404 at its health path ${redactUrl(probe.url)}`, route === undefined
      ? 'set UPSTREAM_HEALTH_PATH to a path the upstream answers without signing in (LibreChat: /health)'
      : `give the route ${route} a health path it answers without signing in (health=/path in ROUTES, health_path in the rules file)`)]
  }
  return [ok(`${which} ${redactUrl(probe.url)} answers (HTTP ${status})`, 'nothing to do; keep it reachable only through the gateway')]
}

/** UPSTREAM_URL's upstream and each route's, side by side, reported in that order. */
export async function checkUpstream (settings: DoctorSettings, opts: NetworkOptions = {}): Promise<Finding[]> {
  const get = opts.get ?? httpGet
  const probe = async (url: string): Promise<HttpProbe> => await get(url, { fetch: opts.directFetch ?? (fetch as EgressFetch), timeoutMs: opts.timeoutMs ?? 3000, now: opts.now, accept: '*/*' })
  const [main, ...routes] = await Promise.all([
    settings.upstreamUrl === undefined ? undefined : probe(settings.upstreamUrl + settings.upstreamHealthPath),
    ...settings.routes.map(async r => await probe(r.upstreamUrl + r.healthPath))
  ])
  return [
    ...(main === undefined ? [] : upstreamFindings(main)),
    ...routes.flatMap((p, i) => p === undefined ? [] : upstreamFindings(p, settings.routes[i]?.name))
  ]
}

export async function checkRedis (settings: DoctorSettings, opts: NetworkOptions = {}): Promise<Finding[]> {
  const redis = settings.redis
  if (settings.sessionStore !== 'redis' || redis === undefined) return []
  const ping = opts.ping ?? redisPing
  const timeoutMs = opts.timeoutMs ?? 2000
  const t = redis.target
  const shown = t.kind === 'url' ? redactUrl(t.url) : describeRedis(redis)
  const where = t.kind === 'url' ? 'REDIS_URL' : t.kind === 'sentinel' ? 'REDIS_SENTINELS and REDIS_SENTINEL_NAME' : 'REDIS_CLUSTER_NODES'
  // Each listed sentinel or node on its own: the set may work while one of them is wrong.
  const listed = t.kind === 'sentinel' ? t.sentinels : t.kind === 'cluster' ? t.nodes : []
  const pingNode = opts.pingNode ?? redisPingNode
  const auth = t.kind === 'sentinel' ? { password: t.sentinelPassword } : { username: redis.username, password: redis.password }
  const [probe, ...each] = await Promise.all([
    ping(t.kind === 'url' ? t.url : redis, { timeoutMs }),
    ...listed.map(async h => await pingNode(h.host, h.port, auth, { timeoutMs, tls: redis.tls }))
  ])
  const what = t.kind === 'sentinel' ? 'sentinel' : 'cluster node'
  const variable = t.kind === 'sentinel' ? 'REDIS_SENTINELS' : 'REDIS_CLUSTER_NODES'
  const perNode = each.flatMap((p, i) => {
    if (p?.error === undefined) return []
    const h = listed[i] as { host: string, port: number }
    const fix = p.error.startsWith('authentication failed')
      ? (t.kind === 'sentinel' ? 'set REDIS_SENTINEL_PASSWORD to the sentinels\' requirepass' : 'set REDIS_USERNAME/REDIS_PASSWORD to an ACL user of the cluster')
      : `start it, or remove it from ${variable}`
    return [warn(`the ${what} ${h.host}:${h.port} in ${variable} does not answer PING: ${p.error}`, fix)]
  })
  if (probe?.error === undefined) return [ok(`Redis at ${shown} answers PING`, 'nothing to do'), ...perNode]
  if (t.kind === 'sentinel') {
    // The sentinels' own refusals and a name they do not know are said plainly, once.
    if (each.length > 0 && each.every(p => p?.error?.startsWith('authentication failed') === true)) {
      return [error(`the sentinels in REDIS_SENTINELS refused REDIS_SENTINEL_PASSWORD: ${each[0]?.error ?? ''}`, 'set REDIS_SENTINEL_PASSWORD to the sentinels\' requirepass (unset it if they have none)')]
    }
    if (/No such master with that name/i.test(probe.error)) {
      return [error(`the sentinels watch no master named "${t.name}"`, 'set REDIS_SENTINEL_NAME to the name in their `sentinel monitor <name> …` (SENTINEL MASTERS lists them)'), ...perNode]
    }
  }
  // A Cluster client that cannot sign in only says it could not load the slots; the nodes say why.
  const refusal = probe.error.startsWith('authentication failed') ? probe.error : t.kind === 'cluster' ? each.find(p => p?.error?.startsWith('authentication failed') === true)?.error : undefined
  if (refusal !== undefined) {
    const fix = t.kind === 'url'
      ? 'put the password in REDIS_URL as redis://:<password>@host:6379/0 (or redis://<user>:<password>@… with ACLs)'
      : 'set REDIS_PASSWORD (and REDIS_USERNAME for an ACL user)' + (t.kind === 'sentinel' ? '; the sentinels\' own password is REDIS_SENTINEL_PASSWORD' : '')
    return [error(`Redis at ${shown} refused the credentials: ${refusal}`, fix), ...(t.kind === 'cluster' ? [] : perNode)]
  }
  return [error(`Redis at ${shown} is unreachable: ${probe.error}`, `start Redis, or set ${where} to where it listens (e.g. ${t.kind === 'url' ? 'redis://redis:6379/0' : t.kind === 'sentinel' ? 'sentinel-1:26379,sentinel-2:26379,sentinel-3:26379 and the master\'s name' : 'redis-1:6379,redis-2:6379,redis-3:6379'}); SESSION_STORE=memory needs none`), ...perNode]
}

// ---------------------------------------------------------------------------------------------
// Graph scopes
// ---------------------------------------------------------------------------------------------

/**
 * Delegated Microsoft Graph permissions and whether they need an administrator's consent
 * (Microsoft Graph permissions reference, "AdminConsentRequired" for the delegated kind).
 */
export const GRAPH_DELEGATED_ADMIN_CONSENT: Readonly<Record<string, boolean>> = {
  'User.Read': false,
  'User.ReadWrite': false,
  'User.ReadBasic.All': false,
  'User.Read.All': true,
  'User.ReadWrite.All': true,
  'People.Read': false,
  'People.Read.All': true,
  'GroupMember.Read.All': true,
  'GroupMember.ReadWrite.All': true,
  'Group.Read.All': true,
  'Group.ReadWrite.All': true,
  'Directory.Read.All': true,
  'Directory.ReadWrite.All': true,
  'Directory.AccessAsUser.All': true,
  'Application.Read.All': true,
  'Member.Read.Hidden': true,
  'Mail.Read': false,
  'Mail.ReadBasic': false,
  'Mail.Send': false,
  'Calendars.Read': false,
  'Calendars.ReadWrite': false,
  'Contacts.Read': false,
  'Files.Read': false,
  'Files.Read.All': false,
  'Files.ReadWrite': false,
  'Files.ReadWrite.All': false,
  'Sites.Read.All': false,
  'Sites.ReadWrite.All': false,
  'Presence.Read': false,
  'Presence.Read.All': false,
  'Chat.Read': false,
  'Team.ReadBasic.All': false,
  'Channel.ReadBasic.All': false,
  'Tasks.Read': false,
  'Notes.Read': false,
  'MailboxSettings.Read': false,
  openid: false,
  profile: false,
  email: false,
  offline_access: false
}

const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access'])

/**
 * OPENID_GRAPH_SCOPES (comma- or space-separated names, optionally with the Graph prefix) and
 * what each needs consented. Read by the gateway's own tokens section, whether or not the rest
 * of the configuration loads: the doctor says what a setting will need before it is used.
 */
export function checkGraphScopes (env: NodeJS.ProcessEnv, scope: readonly string[] = []): Finding[] {
  const tokens = parseTokens(env, { scope: '' }).values
  const graphBase = (tokens.graphApiUrl + '/').toLowerCase()
  if (tokens.graphScopes.length === 0) return [ok('no Microsoft Graph scopes requested (OPENID_GRAPH_SCOPES is empty)', 'nothing to consent')]
  const byLower = new Map(Object.keys(GRAPH_DELEGATED_ADMIN_CONSENT).map(k => [k.toLowerCase(), k]))
  const admin: string[] = []
  const user: string[] = []
  const unknown: string[] = []
  const foreign: string[] = []
  // Full scope URLs: the section has put the Graph origin before each bare name.
  for (const entry of tokens.graphScopes) {
    if (!entry.toLowerCase().startsWith(graphBase)) { foreign.push(entry); continue }
    const name = entry.slice(graphBase.length)
    const canonical = byLower.get(name.toLowerCase())
    if (canonical === undefined) unknown.push(name)
    else if (GRAPH_DELEGATED_ADMIN_CONSENT[canonical] === true) admin.push(canonical)
    else user.push(canonical)
  }
  const findings: Finding[] = []
  const where = 'Entra → App registrations → <your app> → API permissions'
  if (admin.length > 0) {
    findings.push(warn(`Graph scopes that need admin consent: ${admin.join(', ')}`,
      `a Global or Privileged Role Administrator must add them as delegated Microsoft Graph permissions in ${where} and press "Grant admin consent"; until then users see "Need admin approval" (AADSTS90094) or token requests fail with AADSTS65001`))
  }
  if (user.length > 0) {
    findings.push(ok(`Graph scopes users may consent to themselves: ${user.join(', ')}`,
      `add them as delegated permissions in ${where}; grant admin consent anyway so nobody sees a consent prompt, and so tenants that restrict user consent do not block sign-in`))
  }
  if (unknown.length > 0) {
    findings.push(warn(`OPENID_GRAPH_SCOPES names scopes this doctor does not know: ${unknown.join(', ')}`,
      'check the spelling against the Microsoft Graph permissions reference; a scope Graph does not have fails sign-in with AADSTS650053'))
  }
  if (foreign.length > 0) {
    findings.push(error(`OPENID_GRAPH_SCOPES holds scopes of another resource than ${graphBase}: ${foreign.join(', ')}`,
      'one access token targets one resource (AADSTS70011 / AADSTS28000): keep only Graph permissions in OPENID_GRAPH_SCOPES'))
  }
  const otherResource = scope.filter(s => !OIDC_SCOPES.has(s) && (s.includes('://') || s.includes('/')) && !s.toLowerCase().startsWith(graphBase.toLowerCase()))
  if (otherResource.length > 0) {
    findings.push(warn(`OPENID_SCOPE asks for another resource (${otherResource.join(', ')}) alongside Graph scopes`,
      'one token request can target only one resource (AADSTS28000): request Graph scopes and your API\'s scopes separately'))
  }
  return findings
}

// ---------------------------------------------------------------------------------------------
// Forwarded headers
// ---------------------------------------------------------------------------------------------

const headerCase = (name: string): string => name.split('-').map(p => p.charAt(0).toUpperCase() + p.slice(1)).join('-')

export function checkForwardedHeaders (settings: Pick<DoctorSettings, 'trustedProxies'>): Finding[] {
  const findings: Finding[] = [
    ok(`identity headers the upstream receives for a signed-in user: ${IDENTITY_HEADERS.map(headerCase).join(', ')} (non-ASCII values as RFC 8187 UTF-8''…)`,
      'same-named headers sent by clients are removed; keep the upstream reachable only through the gateway, since it trusts these headers')
  ]
  const trusted = settings.trustedProxies
  if (trusted.some(p => p === '0.0.0.0/0' || p === '::/0')) {
    findings.push(warn(`TRUSTED_PROXIES (${trusted.join(', ')}) trusts every address: any client can claim to be any address, pretend the connection was https, and, with forward-auth (/oauth2/auth), name the request it wants judged`,
      'list only the addresses of your reverse proxy or load balancer, e.g. 10.0.0.0/8'))
  } else if (trusted.length > 0) {
    findings.push(ok(`the gateway believes what a proxy in front says about the client (its address, https, the host, and for /oauth2/auth the request it asks about) only from ${trusted.join(', ')}; from anyone else it uses the connection itself`,
      'nothing to do if that is the address of your reverse proxy or load balancer (in Docker: the address the proxy connects from on the gateway\'s network, not 127.0.0.1)'))
  } else {
    findings.push(ok('no proxy in front is trusted (TRUSTED_PROXIES is empty): the gateway logs the connection\'s own address and ignores what clients say about themselves',
      'behind a reverse proxy, set TRUSTED_PROXIES to its address, so the real client address is logged and, with forward-auth, per-path rules see the request it names'))
  }
  return findings
}

// ---------------------------------------------------------------------------------------------
// Who may sign in
// ---------------------------------------------------------------------------------------------

/** What the role and group requirements mean in Entra's terms, and the usual mix-ups. */
export function checkAuthorization (env: NodeJS.ProcessEnv): Finding[] {
  const r = new EnvReader(env)
  const roles = r.list('OPENID_REQUIRED_ROLE')
  const groups = r.list('OPENID_REQUIRED_GROUPS')
  const findings: Finding[] = []
  if (roles.length === 0 && groups.length === 0) {
    findings.push(ok('every account of the tenant that signs in is let in (no OPENID_REQUIRED_ROLE, no OPENID_REQUIRED_GROUPS)',
      'to admit only some people, create an app role (App registrations → App roles), assign it to them in Enterprise applications → Users and groups, and set OPENID_REQUIRED_ROLE to its value'))
    return findings
  }
  if (roles.length > 0) {
    findings.push(ok(`a user needs the app role ${roles.join(' or ')} (the "roles" claim)`,
      'app roles are defined under App registrations → App roles (use the role\'s Value, case-sensitive) and given to people or groups under Enterprise applications → Users and groups; a group\'s name is not a role, and a new assignment counts from the user\'s next sign-in'))
    for (const role of roles) {
      if (GUID.test(role)) {
        findings.push(warn(`OPENID_REQUIRED_ROLE holds a GUID (${role}): that looks like a group's object ID or a role's ID, not a role's Value`,
          'put the app role\'s Value (e.g. ChatUser) here, or a group object ID in OPENID_REQUIRED_GROUPS'))
      } else if (/\s/.test(role)) {
        findings.push(warn(`OPENID_REQUIRED_ROLE "${role}" has a space: app role Values cannot, so this looks like a display name`,
          'use the role\'s Value column from App registrations → App roles'))
      }
    }
  }
  if (groups.length > 0) {
    findings.push(ok(`a user must be in one of ${groups.length} group${groups.length === 1 ? '' : 's'} (OPENID_REQUIRED_GROUPS, by object ID)`,
      'the app registration must emit group IDs (Token configuration → Add groups claim); past 200 groups Entra sends none and the gateway asks Microsoft Graph (GroupMember.Read.All)'))
    for (const group of groups) {
      if (!GUID.test(group)) findings.push(warn(`OPENID_REQUIRED_GROUPS "${group}" is not a GUID: groups are matched by object ID, never by name`, 'copy the group\'s Object ID from Entra ID → Groups'))
    }
  }
  return findings
}
