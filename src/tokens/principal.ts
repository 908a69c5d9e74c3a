// Reading a signed-in user's principal from a fresh token set, at sign-in and at every
// refresh, so both read authorization the same way: the ID token's claims, groups from Graph
// on overage (with the user's own delegated token), roles from the token the rule names.
import { decodeJwt } from 'jose'
import type { Configuration } from 'openid-client'
import type { GatewayConfig } from '../config.js'
import type { Claims } from '../principal/claims.js'
import { resolvePrincipal, type Principal, type StringPool } from '../principal/principal.js'
import { fetchUserInfoClaims } from '../oidc/flow.js'
import { transitiveGroupIds, type GraphOptions } from '../graph/client.js'
import { revocationOf, type TokenJar } from './jar.js'

export interface ReadDeps {
  config: Pick<GatewayConfig, 'requiredRole' | 'graphScopes' | 'graphApiUrl' | 'claimNames'>
  oidc: Configuration
  jar: TokenJar
  graph: GraphOptions
  /** Shares tenant, role and group strings between the principals this process holds. */
  pool?: StringPool
}

/** A delegated Graph token: the sign-in token when it targets Graph, else one redeemed for Graph. */
export async function graphToken (deps: Pick<ReadDeps, 'config' | 'jar'>): Promise<string> {
  const signIn = deps.jar.set.accessToken
  if (deps.config.graphScopes.length > 0 && signIn !== undefined) return signIn
  return (await deps.jar.forScopes([`${deps.config.graphApiUrl}/.default`], 60)).accessToken
}

export async function readPrincipal (deps: ReadDeps, claims: Claims, signedInAt: number): Promise<Principal> {
  const accessToken = deps.jar.set.accessToken ?? ''
  return await resolvePrincipal(claims, deps.config.requiredRole, {
    overageGroups: async () => {
      let token: string
      try {
        token = await graphToken(deps)
      } catch (err) {
        if (revocationOf(err) !== undefined) throw err
        throw new Error(`graph token: ${(err as Error).message}`)
      }
      try {
        return await transitiveGroupIds(deps.graph, token)
      } catch (err) {
        if (revocationOf(err) !== undefined) throw err
        throw new Error(`graph: ${(err as Error).message}`)
      }
    },
    // A revoked session is not a Graph outage: it ends the session instead of refusing for now.
    fatal: (err) => revocationOf(err) !== undefined,
    accessTokenClaims: () => {
      try {
        return decodeJwt(accessToken) as Claims
      } catch {
        return {} // an opaque access token carries no roles: the rule then denies
      }
    },
    userInfoClaims: async () => await fetchUserInfoClaims(deps.oidc, accessToken, typeof claims.sub === 'string' ? claims.sub : '')
  }, signedInAt, deps.pool, Date.now(), deps.config.claimNames)
}
