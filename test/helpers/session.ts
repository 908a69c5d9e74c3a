// Reading and editing a stored session directly, to stand in for the passage of time
// (an access token about to expire, a re-check that is due) without sleeping.
import type { Session } from 'fastify'
import type { GatewayStore } from '../../src/session/store.js'
import type { Browser } from './browser.js'

export function sessionId (browser: Browser, origin: string, cookieName: string): string {
  const value = decodeURIComponent(browser.cookie(origin, cookieName) ?? '')
  return value.slice(0, value.lastIndexOf('.'))
}

export async function readSession (store: GatewayStore, id: string): Promise<Record<string, any> | null> {
  return await new Promise((resolve, reject) => store.get(id, (err, s) => err != null ? reject(err) : resolve(s as unknown as Record<string, any> | null)))
}

export async function writeSession (store: GatewayStore, id: string, data: Record<string, any>): Promise<void> {
  await new Promise<void>((resolve, reject) => store.set(id, data as unknown as Session, err => err != null ? reject(err) : resolve()))
}

/** Applies `change` to the stored session of this browser. */
export async function editSession (store: GatewayStore, browser: Browser, origin: string, cookieName: string, change: (s: Record<string, any>) => void): Promise<void> {
  const id = sessionId(browser, origin, cookieName)
  const s = await readSession(store, id)
  if (s === null) throw new Error('no stored session for this browser')
  change(s)
  await writeSession(store, id, s)
}
