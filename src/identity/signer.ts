// X-Forwarded-Identity: a short-lived JWT (ES256) the gateway signs for each user, so the
// upstream can verify who is calling against /oauth2/jwks.json instead of trusting the
// network. Signed once per session for a few minutes, not on every request.
import fp from 'fastify-plugin'
import { SignJWT, exportJWK, generateKeyPair, importJWK, importPKCS8, calculateJwkThumbprint, type JWK, type CryptoKey } from 'jose'
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'
import type { Principal } from '../principal/principal.js'

export const IDENTITY_TOKEN_SECONDS = 300
/** Re-sign when less than this is left, so a forwarded token is never about to expire. */
const RESIGN_MARGIN_SECONDS = 60
const CACHE_MAX = 50_000

export interface IdentitySigner {
  /**
   * The identity JWT for a principal, cached under `cacheKey` (which must change whenever the
   * principal does) until shortly before it expires; undefined until the key is loaded.
   * `groupsTruncated`: X-Forwarded-Groups had to be cut, so the JWT keeps only named groups too.
   * `audience`: the origin of the upstream it is for (a route's, or UPSTREAM_URL's by default),
   * so a token one upstream received is not valid at another.
   */
  tokenFor: (principal: Principal, cacheKey: string, groupsTruncated: boolean, audience?: string) => Promise<string | undefined>
}

declare module 'fastify' {
  interface FastifyInstance {
    identity: IdentitySigner
  }
}

interface SigningKey { privateKey: CryptoKey, publicJwk: JWK, kid: string }

/** IDENTITY_SIGNING_KEY: a PKCS#8 PEM or a JWK (JSON) of a P-256 private key. */
export async function importSigningKey (text: string): Promise<SigningKey> {
  const trimmed = text.trim()
  let privateKey: CryptoKey
  let jwk: JWK
  if (trimmed.startsWith('{')) {
    jwk = JSON.parse(trimmed) as JWK
    privateKey = await importJWK(jwk, 'ES256', { extractable: true }) as CryptoKey
  } else {
    privateKey = await importPKCS8(trimmed.replace(/\\n/g, '\n'), 'ES256', { extractable: true })
    jwk = await exportJWK(privateKey)
  }
  const { d: _d, ...publicJwk } = jwk
  const kid = await calculateJwkThumbprint(publicJwk)
  return { privateKey, publicJwk: { ...publicJwk, kid, alg: 'ES256', use: 'sig' }, kid }
}

async function identityPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const defaultAudience = new URL(config.upstreamUrl).origin
  let key: SigningKey | undefined
  const cache = new Map<string, { jwt: string, exp: number }>()

  app.addHook('onReady', async () => {
    if (config.identitySigningKey !== undefined) {
      key = await importSigningKey(config.identitySigningKey)
      return
    }
    // Generated once and kept (sealed) in the session store, so every replica signs with it.
    const { privateKey } = await generateKeyPair('ES256', { extractable: true })
    const candidate = app.sealer.sealJson(await exportJWK(privateKey), 'identity-signing-key')
    const kept = await app.sessionStoreImpl.putIfAbsent('identity-signing-key:v2', candidate).catch(() => candidate)
    const jwk = app.sealer.openJson(kept, 'identity-signing-key') as JWK | undefined
    key = await importSigningKey(JSON.stringify(jwk ?? await exportJWK(privateKey)))
  })

  const keep = new Set([...config.requiredGroups, ...config.rules.namedGroups])

  async function tokenFor (user: Principal, userKey: string, truncated: boolean, audience = defaultAudience): Promise<string | undefined> {
    if (key === undefined) return undefined
    const now = Math.floor(Date.now() / 1000)
    const cacheKey = audience === defaultAudience ? userKey : `${audience} ${userKey}`
    const hit = cache.get(cacheKey)
    if (hit !== undefined && hit.exp - RESIGN_MARGIN_SECONDS > now) return hit.jwt
    const jwt = await new SignJWT({
      oid: user.oid,
      tid: user.tenantId,
      email: user.email,
      name: user.name,
      preferred_username: user.preferredUsername,
      roles: user.roles,
      groups: truncated ? user.groups.filter(g => keep.has(g)) : user.groups,
      ...(truncated ? { groups_truncated: true } : {})
    })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
      .setSubject(user.sub !== '' ? user.sub : user.userId)
      .setIssuer(config.publicOrigin)
      .setAudience(audience)
      .setIssuedAt(now)
      .setExpirationTime(now + IDENTITY_TOKEN_SECONDS)
      .sign(key.privateKey)
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string)
    cache.set(cacheKey, { jwt, exp: now + IDENTITY_TOKEN_SECONDS })
    return jwt
  }

  app.decorate('identity', { tokenFor })

  app.get('/oauth2/jwks.json', { config: { session: false } }, (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300').send({ keys: key !== undefined ? [key.publicJwk] : [] })
  })
}

export default fp(identityPlugin, { name: 'identity', fastify: '5.x', dependencies: ['session', 'tokens'] })
