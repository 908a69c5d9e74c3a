/** A small per-provider in-memory adapter for oidc-provider (the built-in one warns on every start). */

interface StoredEntry {
  payload: Record<string, unknown>;
  expiresAt: number; // epoch ms; Infinity when no expiry
}

export interface MemoryStorage {
  /** The `adapter` option of oidc-provider. */
  adapterFactory: (model: string) => object;
  /** Deletes the stored `model` entries whose payload matches; returns their ids (token values). */
  destroyWhere(model: string, match: (payload: Record<string, unknown>) => boolean): string[];
}

/**
 * oidc-provider's adapter contract (find/upsert/consume/destroy/findByUid/findByUserCode/
 * revokeByGrantId). Expiry is checked on read; the map is swept every few hundred writes so a
 * long demo does not grow without bound.
 *
 * `keepRotatedRefreshTokens`: `consume` leaves refresh tokens unmarked, so oidc-provider still
 * rotates them but never sees a reuse (Entra's behaviour: old refresh tokens stay valid).
 */
export function createMemoryStorage (opts: { keepRotatedRefreshTokens: boolean }): MemoryStorage {
  const entries = new Map<string, StoredEntry>()
  const byGrant = new Map<string, Set<string>>()
  const bySessionUid = new Map<string, string>()
  const byUserCode = new Map<string, string>()
  let writes = 0

  const live = (key: string): StoredEntry | undefined => {
    const entry = entries.get(key)
    if (entry && entry.expiresAt <= Date.now()) {
      entries.delete(key)
      return undefined
    }
    return entry
  }
  const sweep = (): void => {
    const now = Date.now()
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key)
    for (const [grantId, keys] of byGrant) {
      for (const key of keys) if (!entries.has(key)) keys.delete(key)
      if (keys.size === 0) byGrant.delete(grantId)
    }
    for (const [uid, id] of bySessionUid) if (!entries.has(`Session:${id}`)) bySessionUid.delete(uid)
    for (const [code, id] of byUserCode) if (!entries.has(`DeviceCode:${id}`)) byUserCode.delete(code)
  }

  const destroyWhere = (model: string, match: (payload: Record<string, unknown>) => boolean): string[] => {
    const ids: string[] = []
    const prefix = `${model}:`
    for (const [key, entry] of entries) {
      if (key.startsWith(prefix) && match(entry.payload)) {
        entries.delete(key)
        ids.push(key.slice(prefix.length))
      }
    }
    return ids
  }

  const adapterFactory = (model: string) => {
    const key = (id: string) => `${model}:${id}`
    return {
      async upsert (id: string, payload: Record<string, unknown>, expiresIn?: number) {
        const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity
        entries.set(key(id), { payload, expiresAt })
        if (typeof payload.grantId === 'string') {
          let keys = byGrant.get(payload.grantId)
          if (!keys) byGrant.set(payload.grantId, (keys = new Set()))
          keys.add(key(id))
        }
        if (model === 'Session' && typeof payload.uid === 'string') bySessionUid.set(payload.uid, id)
        if (typeof payload.userCode === 'string') byUserCode.set(payload.userCode, id)
        if (++writes % 500 === 0) sweep()
      },
      async find (id: string) {
        return live(key(id))?.payload
      },
      async findByUid (uid: string) {
        const id = bySessionUid.get(uid)
        return id ? live(`Session:${id}`)?.payload : undefined
      },
      async findByUserCode (userCode: string) {
        const id = byUserCode.get(userCode)
        return id ? live(key(id))?.payload : undefined
      },
      async consume (id: string) {
        if (model === 'RefreshToken' && opts.keepRotatedRefreshTokens) return
        const entry = live(key(id))
        if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000)
      },
      async destroy (id: string) {
        entries.delete(key(id))
      },
      async revokeByGrantId (grantId: string) {
        const keys = byGrant.get(grantId)
        if (!keys) return
        for (const k of keys) {
          if (k.startsWith(`${model}:`)) {
            entries.delete(k)
            keys.delete(k)
          }
        }
        if (keys.size === 0) byGrant.delete(grantId)
      },
    }
  }
  return { adapterFactory, destroyWhere }
}
