// All checks, in the order an operator fixes things: the variables, the IdP and the outbound
// route to it, the redirect URI to register, the upstream and Redis, Graph consent, and what the upstream will receive.
import { checkAuthorization, checkClientCredential, checkEgress, checkForwardedHeaders, checkGraphScopes, checkLogoutUrls, checkRedirectUri, checkRedis, checkUpstream, checkVariables, idpFindings, probeIdp, settingsFrom, type NetworkOptions } from './checks.js'
import type { Finding } from './findings.js'
import { createDirect, createEgress } from '../egress/egress.js'

export async function runDoctor (env: NodeJS.ProcessEnv, opts: NetworkOptions = {}): Promise<Finding[]> {
  const variables = checkVariables(env)
  const settings = settingsFrom(variables.sections)
  // The IdP is asked as the gateway asks it (through the outbound proxy), the upstream directly.
  const egress = createEgress(settings.egress)
  const direct = createDirect()
  const network: NetworkOptions = { egressFetch: egress.fetch, directFetch: direct.fetch, ...opts }
  // The network checks run side by side; their findings keep their place in the report.
  const [discovery, upstream, redis] = await Promise.all([
    probeIdp(settings, network),
    checkUpstream(settings, network),
    checkRedis(settings, network)
  ]).finally(async () => { await Promise.all([egress.close(), direct.close()]) })
  return [
    ...variables.findings,
    ...checkClientCredential(settings),
    ...idpFindings(settings, discovery),
    ...checkEgress(settings, env, discovery),
    ...checkRedirectUri(settings),
    ...checkLogoutUrls(settings),
    ...upstream,
    ...redis,
    ...checkAuthorization(env),
    ...checkGraphScopes(env, settings.scope),
    ...checkForwardedHeaders(settings)
  ]
}

/** Values that must never appear in the output, whichever check produced the text. */
export function secretValues (env: NodeJS.ProcessEnv): string[] {
  const secrets: string[] = []
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value.trim() === '') continue
    if (/SECRET|PASSWORD|PRIVATE|SIGNING_KEY|TOKEN$/i.test(name)) {
      secrets.push(value.trim(), ...value.split(',').map(v => v.trim()).filter(v => v.length >= 8))
    }
  }
  // Passwords inside URLs: Redis's and an outbound proxy's.
  for (const name of ['REDIS_URL', 'PROXY', 'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy']) {
    const url = env[name]?.trim()
    if (url === undefined || url === '') continue
    try {
      const password = decodeURIComponent(new URL(url).password)
      if (password !== '') secrets.push(password, encodeURIComponent(password))
    } catch {}
  }
  // Longest first, so a value containing another is masked whole.
  return [...new Set(secrets)].sort((a, b) => b.length - a.length)
}
