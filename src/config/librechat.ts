// LibreChat's own OpenID settings that the gateway does not use (and ALLOW_SOCIAL_LOGIN, which
// the guide names). A LibreChat .env (the same file both read in docker compose) holds them;
// each one set is named at start, once, so that nobody believes the gateway follows it. The list is LibreChat's .env.example and the
// variables its OpenID code reads (api/strategies/openidStrategy.js, openIdJwtStrategy.js,
// api/server/socialLogins.js, AuthController.js).
import type { Notice } from './readers.js'

const ADMIN = 'LibreChat maps it to its own ADMIN role itself; the gateway only admits or refuses (a per-path rule in AUTHZ_RULES_FILE can require a role)'
const ROLE_SYNC = 'LibreChat syncs its own roles with it; the gateway only admits or refuses'
const JWKS = "LibreChat's cache of the IdP's keys for its own token checks; the gateway keeps the keys it fetched itself"
const OBO = "LibreChat's on-behalf-of exchange before calling UserInfo; the gateway calls UserInfo with the sign-in access token"
const OAUTH2 = "LibreChat's plain-OAuth2 mode; the gateway needs OpenID Connect discovery at OPENID_ISSUER"
const DISCOVERY = 'the gateway retries discovery in the background with backoff until the IdP answers (/readyz says not ready meanwhile)'

/** Variable → why the gateway does not use it. */
export const LIBRECHAT_ONLY: ReadonlyMap<string, string> = new Map([
  ['ALLOW_SOCIAL_LOGIN', "it shows LibreChat's own OpenID button; behind the gateway keep it true, so LibreChat's sign-in (with OPENID_AUTO_REDIRECT=true) follows the gateway's without a second prompt"],
  ['OPENID_ADMIN_ROLE', ADMIN],
  ['OPENID_ADMIN_ROLE_PARAMETER_PATH', ADMIN],
  ['OPENID_ADMIN_ROLE_TOKEN_KIND', ADMIN],
  ['OPENID_ROLE_SYNC_CLAIM', ROLE_SYNC],
  ['OPENID_ROLE_SYNC_ROLE_PRIORITY', ROLE_SYNC],
  ['OPENID_ROLE_SYNC_FALLBACK_ROLE', ROLE_SYNC],
  ['OPENID_JWKS_URL_CACHE_ENABLED', JWKS],
  ['OPENID_JWKS_URL_CACHE_TIME', JWKS],
  ['OPENID_ON_BEHALF_FLOW_FOR_USERINFO_REQUIRED', OBO],
  ['OPENID_ON_BEHALF_FLOW_USERINFO_SCOPE', OBO],
  ['OPENID_ON_BEHALF_FLOW_FOR_USERINFRO_REQUIRED', OBO],
  ['OPENID_ON_BEHALF_FLOW_USERINFRO_SCOPE', OBO],
  ['OPENID_REFRESH_AUDIENCE', 'LibreChat sends it when it refreshes its tokens; the gateway refreshes with the sign-in scopes only'],
  ['OPENID_REFRESH_BRIDGE_GRACE_MS', "LibreChat's recovery window for a stale refresh cookie; the gateway keeps refresh tokens server-side"],
  ['OPENID_DISCOVERY_RETRY_ATTEMPTS', DISCOVERY],
  ['OPENID_DISCOVERY_RETRY_DELAY_MS', DISCOVERY],
  ['OPENID_USE_OAUTH2', OAUTH2],
  ['OPENID_AUTHORIZATION_URL', OAUTH2],
  ['OPENID_TOKEN_URL', OAUTH2],
  ['OPENID_USERINFO_URL', OAUTH2]
])

/**
 * One info line per OPENID_* variable set (non-empty) in `env` that the gateway does not read,
 * and per other one listed above: LibreChat's own with the reason, any other as unknown.
 * `known` is knownVariables().
 */
export function unusedOpenIdNotices (env: NodeJS.ProcessEnv, known: readonly string[]): Notice[] {
  const notices: Notice[] = []
  for (const name of Object.keys(env).sort()) {
    if ((!name.startsWith('OPENID_') && !LIBRECHAT_ONLY.has(name)) || known.includes(name)) continue
    if ((env[name] ?? '').trim() === '') continue
    const why = LIBRECHAT_ONLY.get(name)
    notices.push({
      variable: name,
      level: 'info',
      message: why !== undefined
        ? `${name} is not used by the gateway (LibreChat still reads it): ${why}.`
        : `${name} is not a setting of the gateway and is not used by it; check the name against the README if it was meant for the gateway.`
    })
  }
  return notices
}
