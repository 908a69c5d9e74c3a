// All checks, in the order an operator fixes things: the variables, the IdP, the redirect URI
// to register, the upstream and Redis, Graph consent, and what the upstream will receive.
import { checkForwardedHeaders, checkGraphScopes, checkIdp, checkRedirectUri, checkRedis, checkUpstream, checkVariables, settingsFrom, type NetworkOptions } from './checks.js'
import type { Finding } from './findings.js'

export async function runDoctor (env: NodeJS.ProcessEnv, opts: NetworkOptions = {}): Promise<Finding[]> {
  const variables = checkVariables(env)
  const settings = settingsFrom(variables.sections)
  // The network checks run side by side; their findings keep their place in the report.
  const [idp, upstream, redis] = await Promise.all([
    checkIdp(settings, opts),
    checkUpstream(settings, opts),
    checkRedis(settings, opts)
  ])
  return [
    ...variables.findings,
    ...idp,
    ...checkRedirectUri(settings),
    ...upstream,
    ...redis,
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
  const redis = env.REDIS_URL?.trim()
  if (redis !== undefined && redis !== '') {
    try {
      const password = decodeURIComponent(new URL(redis).password)
      if (password !== '') secrets.push(password, encodeURIComponent(password))
    } catch {}
  }
  // Longest first, so a value containing another is masked whole.
  return [...new Set(secrets)].sort((a, b) => b.length - a.length)
}
