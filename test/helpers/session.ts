// Reading and editing a stored session directly, to stand in for the passage of time
// (an access token about to expire, a re-check that is due) without sleeping.
import type { GatewayStore } from '../../src/session/store.js'
import type { Browser } from './browser.js'

export function sessionId (browser: Browser, origin: string, cookieName: string): string {
  const value = decodeURIComponent(browser.cookie(origin, cookieName) ?? '')
  return value.slice(0, value.lastIndexOf('.'))
}

/** The stored session's data (a copy: edit it and write it back). */
export async function readSession (store: GatewayStore, id: string): Promise<Record<string, any> | null> {
  const stored = await store.get(id)
  return stored === undefined ? null : structuredClone(stored.data) as Record<string, any>
}

export async function writeSession (store: GatewayStore, id: string, data: Record<string, any>): Promise<void> {
  const stored = await store.get(id)
  await store.set(id, { data, expiresAt: stored?.expiresAt ?? Date.now() + 3600_000 })
}

/** Applies `change` to the stored session of this browser. */
export async function editSession (store: GatewayStore, browser: Browser, origin: string, cookieName: string, change: (s: Record<string, any>) => void): Promise<void> {
  const id = sessionId(browser, origin, cookieName)
  const s = await readSession(store, id)
  if (s === null) throw new Error('no stored session for this browser')
  change(s)
  await writeSession(store, id, s)
}
