/** The demo directory, and looking users up in an IdP's directory. */
import type { IdpUser } from './types.js'

/** Every value is deep-frozen: copy before changing (startIdp copies for you). */
export const DEMO_USERS: IdpUser[] = deepFreeze([
  {
    username: 'alice',
    password: 'alice',
    oid: '3b8e6f0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
    name: 'Alice Zoë Ångström',
    email: 'alice@contoso.example',
    preferredUsername: 'alice@contoso.example',
    roles: ['ChatUser'],
    groups: ['6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d', 'c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f'],
  },
  {
    username: 'bob',
    password: 'bob',
    oid: '9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a',
    name: 'Bob Æsir Øvergård',
    email: 'bob@contoso.example',
    preferredUsername: 'bob@contoso.example',
  },
])

/** A user of the tenant who is not assigned to the app: Entra refuses her with AADSTS50105. */
export const UNASSIGNED_USER: IdpUser = deepFreeze({
  username: 'carol',
  password: 'carol',
  oid: '0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f',
  name: 'Carol Unassigned',
  email: 'carol@contoso.example',
  preferredUsername: 'carol@contoso.example',
  assigned: false
})

/** An administrator of LibreChat: its app role ADMIN (the admin panel's routes require it) and ChatUser. */
export const ADMIN_USER: IdpUser = deepFreeze({
  username: 'dana',
  password: 'dana',
  oid: '7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d',
  name: 'Dana Admin',
  email: 'dana@contoso.example',
  preferredUsername: 'dana@contoso.example',
  roles: ['ChatUser', 'ADMIN']
})

/** The user whose object id (the oidc-provider accountId) is `oid`. */
export function findUserByOid (users: Map<string, IdpUser>, oid: unknown): IdpUser | undefined {
  for (const user of users.values()) if (user.oid === oid) return user
  return undefined
}

/** The user who signs in as `login` (username or preferred username, case-insensitively). */
export function findUserByLogin (users: Map<string, IdpUser>, login: string): IdpUser | undefined {
  const wanted = login.trim().toLowerCase()
  for (const user of users.values()) {
    if (user.username.toLowerCase() === wanted || user.preferredUsername.toLowerCase() === wanted) return user
  }
  return undefined
}

function deepFreeze<T> (value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}
