// The gateway's whole configuration: read from the environment once, validated once, typed.
// Each section (src/config/) is parsed by its own small parser over the shared readers, and
// returns its values and its problems apart, so the doctor checks what parsed and reports the
// rest. loadConfig joins them, or throws every problem at once.
import { parseAuthorization, type AuthorizationSettings } from './config/authorization.js'
import { parseEgress, type EgressSettings } from './config/egress.js'
import { parseIdentityProvider, type IdentityProviderSettings } from './config/identity-provider.js'
import { parseObservability, type ObservabilitySettings } from './config/observability.js'
import { parsePages, type PagesSettings } from './config/pages.js'
import { unusedOpenIdNotices } from './config/librechat.js'
import { parseProcess, type ProcessSettings } from './config/process.js'
import type { Notice, Problem, Section } from './config/readers.js'
import { parseSession, type SessionSettings } from './config/session.js'
import { parseTokens, type TokenSettings } from './config/tokens.js'
import { parseUpstream, type UpstreamSettings } from './config/upstream.js'

export { EnvReader, GUID, isLoopbackHost, type Notice, type Problem, type Section } from './config/readers.js'
export {
  DEFAULT_CALLBACK, DEFAULT_CLOCK_TOLERANCE_SECONDS, isEntraTenantSegment, isMicrosoftLoginHost, MSA_TENANT_ID, SIGNED_OUT_PATH,
  type IdentityProviderSettings, type TokenEndpointAuthMethod
} from './config/identity-provider.js'
export { parseTokens } from './config/tokens.js'
export type { SessionSettings, SessionStoreKind } from './config/session.js'
export { describeRedis, type HostPort, type RedisSettings, type RedisTarget } from './config/redis.js'
export type { ProcessSettings } from './config/process.js'
export type { AuthorizationSettings } from './config/authorization.js'
export type { TokenSettings } from './config/tokens.js'
export type { UpstreamSettings } from './config/upstream.js'
export type { PagesSettings } from './config/pages.js'
export type { ObservabilitySettings } from './config/observability.js'
export type { EgressProxy, EgressSettings, NoProxyEntry } from './config/egress.js'
export type { RequiredRole, TokenKind } from './policy/required-role.js'

/** Flat, as every consumer reads it: the sections' values side by side. */
export interface GatewayConfig extends IdentityProviderSettings, SessionSettings, AuthorizationSettings,
  TokenSettings, UpstreamSettings, PagesSettings, ObservabilitySettings, EgressSettings, ProcessSettings {
  /** Said once at start (buildApp logs them): settings read differently from LibreChat, or not used. */
  notices: readonly Notice[]
}

export interface ConfigSections {
  identityProvider: Section<IdentityProviderSettings>
  session: Section<SessionSettings>
  upstream: Section<UpstreamSettings>
  observability: Section<ObservabilitySettings>
  authorization: Section<AuthorizationSettings>
  tokens: Section<TokenSettings>
  pages: Section<PagesSettings>
  egress: Section<EgressSettings>
  process: Section<ProcessSettings>
}

export class ConfigError extends Error {
  readonly problems: string[]
  constructor (problems: string[]) {
    super(problems.join('\n'))
    this.name = 'ConfigError'
    this.problems = problems
  }
}

/**
 * Every section, parsed whatever the others hold; a section that depends on another (cookies
 * on DOMAIN_SERVER, tenants on the issuer) takes that one's best-effort values.
 */
export function parseSections (env: NodeJS.ProcessEnv = process.env): ConfigSections {
  const identityProvider = parseIdentityProvider(env)
  const upstream = parseUpstream(env)
  const tokens = parseTokens(env, identityProvider.values)
  const authorization = parseAuthorization(env, identityProvider.values, tokens.values)
  const session = parseSession(env, identityProvider.values, authorization.values)
  return {
    identityProvider,
    // The cookies' reach depends on the host routes: which sites a browser can sign in on.
    session,
    upstream,
    observability: parseObservability(env, upstream.values),
    authorization,
    tokens,
    pages: parsePages(env),
    egress: parseEgress(env),
    process: parseProcess(env, session.values)
  }
}

/** Every problem of every section, in the order the sections are listed. */
export function problemsOf (sections: ConfigSections): Problem[] {
  return Object.values(sections).flatMap((s: Section<unknown>) => s.problems)
}

/**
 * What the gateway says once at start about its settings: each section's notices, then every
 * OPENID_* variable in `env` it does not read (a LibreChat .env holds many).
 */
export function noticesOf (sections: ConfigSections, env: NodeJS.ProcessEnv): Notice[] {
  return [
    ...Object.values(sections).flatMap((s: Section<unknown>) => s.notices),
    ...unusedOpenIdNotices(env, knownVariables())
  ]
}

/** The configuration the sections make together; meaningful only when none has a problem. */
export function joinSections (s: ConfigSections, notices: readonly Notice[] = []): GatewayConfig {
  return {
    notices,
    ...s.identityProvider.values,
    ...s.session.values,
    ...s.upstream.values,
    ...s.observability.values,
    ...s.authorization.values,
    ...s.tokens.values,
    ...s.pages.values,
    ...s.egress.values,
    ...s.process.values
  }
}

/**
 * Reads and validates the configuration. Every problem found is reported at once, one line
 * each, naming the variable and what is expected; secrets are never echoed back.
 */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const sections = parseSections(env)
  const problems = problemsOf(sections)
  if (problems.length > 0) throw new ConfigError(problems.map(p => p.message))
  return joinSections(sections, noticesOf(sections, env))
}

/**
 * Every variable the gateway reads, found by running the parsers themselves over an
 * environment that records each name asked for (so the list cannot drift from the code).
 * Every read in a section parser is unconditional for this reason.
 */
export function knownVariables (): string[] {
  const seen = new Set<string>()
  const env = new Proxy({}, { get (_target, key) { if (typeof key === 'string') seen.add(key); return undefined } })
  parseSections(env as NodeJS.ProcessEnv)
  return [...seen].sort()
}
