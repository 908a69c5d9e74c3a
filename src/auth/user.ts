// From tokens to the session's user: identity, the values the required-role rule reads,
// groups (from Graph when the token only says there are too many), and the identity headers.
// Used at sign-in and at every refresh/recheck, so both read authorization the same way.
import { decodeJwt } from 'jose'
import type { Configuration } from 'openid-client'
import type { GatewayConfig } from '../config.js'
import { identityFromClaims, claimValues, type Claims, type Identity } from './identity.js'
import { fetchUserInfoClaims } from './oidc.js'
import { identityHeaders } from '../proxy/headers.js'
import { transitiveGroupIds, GraphError, type GraphOptions } from '../graph/client.js'
import type { TokenJar } from '../tokens/jar.js'

export interface SessionUser extends Identity {
  roleValues: string[]
  /** Groups came from Graph because the token carried the overage marker instead. */
  groupsOverage: boolean
  /** Identity headers for the upstream, encoded once here instead of on every request. */
  forward: Record<string, string>
  /** Epoch ms. */
  signedInAt: number
  /** Epoch ms when roles and groups were last read from the IdP (and Graph). */
  checkedAt: number
  /** Why authorization could not be established (Graph down on overage); the gate refuses. */
  authzError?: string
}

/** Entra leaves `groups` out above 200 and says so with `_claim_names.groups` (or `hasgroups`). */
export function hasGroupOverage (claims: Claims): boolean {
  const names = claims._claim_names
  if (names !== null && typeof names === 'object' && 'groups' in names) return true
  return claims.hasgroups === true || claims.hasgroups === 'true'
}

export interface ResolveDeps {
  config: GatewayConfig
  oidc: Configuration
  jar: TokenJar
  graph: GraphOptions
}

/** A delegated Graph token: the sign-in token when it targets Graph, else one redeemed for Graph. */
export async function graphToken (deps: Pick<ResolveDeps, 'config' | 'jar'>): Promise<string> {
  if (deps.config.graphScopes.length > 0) return deps.jar.set.accessToken
  return (await deps.jar.forScopes([`${deps.config.graphApiUrl}/.default`], 60)).accessToken
}

export async function resolveUser (deps: ResolveDeps, claims: Claims, signedInAt: number): Promise<SessionUser> {
  const { config } = deps
  const identity = identityFromClaims(claims)
  let groupsOverage = false
  let authzError: string | undefined
  if (hasGroupOverage(claims)) {
    groupsOverage = true
    try {
      identity.groups = await transitiveGroupIds(deps.graph, await graphToken(deps))
    } catch (err) {
      identity.groups = []
      authzError = err instanceof GraphError ? `graph: ${err.message}` : `graph token: ${(err as Error).message}`
    }
  }

  const rule = config.requiredRole
  let roleValues: string[]
  if (rule === undefined || rule.tokenKind === 'id') {
    const path = rule?.path ?? ['roles']
    // The guide's way of requiring a group (PARAMETER_PATH=groups) must see overage groups too.
    roleValues = path.length === 1 && path[0] === 'groups' ? identity.groups : claimValues(claims, path)
  } else if (rule.tokenKind === 'access') {
    let accessClaims: Claims = {}
    try {
      accessClaims = decodeJwt(deps.jar.set.accessToken) as Claims
    } catch {} // an opaque access token carries no roles: the rule then denies
    roleValues = claimValues(accessClaims, rule.path)
  } else {
    roleValues = claimValues(await fetchUserInfoClaims(deps.oidc, deps.jar.set.accessToken, identity.sub), rule.path)
  }

  const now = Date.now()
  return {
    ...identity,
    roleValues,
    groupsOverage,
    forward: identityHeaders(identity, { maxGroupBytes: config.forwardGroupsMaxBytes, keepGroups: [...config.requiredGroups, ...config.rules.namedGroups] }),
    signedInAt,
    checkedAt: now,
    ...(authzError !== undefined ? { authzError } : {})
  }
}
