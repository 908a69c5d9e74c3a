// Entra's AADSTS codes that people actually meet at sign-in, in plain words: what happened for
// the user, what fixes it for the administrator, and whether trying again can help. The code
// itself stays visible in small print for the helpdesk. Pure data and one lookup.

export interface EntraExplanation {
  /** `AADSTS50105`, or the OAuth error when Entra gave no code. */
  code: string
  /** For the person signing in: what happened, in one or two plain sentences. */
  user: string
  /** For whoever runs the app registration: the fix. */
  admin: string
  /** Trying again can succeed without anyone changing anything. */
  retry: boolean
  /** Another account may succeed (offer "Use a different account"). */
  otherAccount: boolean
}

type Entry = Omit<EntraExplanation, 'code'>

const REVOKED: Entry = {
  user: 'Your sign-in has expired or was revoked, for example after a password change. Please sign in again.',
  admin: 'Nothing to fix: the refresh grant was revoked or expired (password change, sign-out everywhere, or a token lifetime policy).',
  retry: true,
  otherAccount: false
}

const CODES = new Map<number, Entry>([
  [50105, {
    user: 'Your account has not been given access to this application.',
    admin: 'Assign the user, or a group they belong to, to the application in Entra ID → Enterprise applications → (this app) → Users and groups.',
    retry: false,
    otherAccount: true
  }],
  [50011, {
    user: 'The sign-in service refused to send you back to this address, so the sign-in cannot finish.',
    admin: 'The redirect URI (DOMAIN_SERVER + OPENID_CALLBACK_URL) is not registered exactly: add it under App registrations → Authentication → Web → Redirect URIs (`npm run doctor` prints it).',
    retry: false,
    otherAccount: false
  }],
  [50020, {
    user: 'Your account is not part of the organization that runs this application.',
    admin: 'Invite the user as a guest to the tenant, or let the account\'s tenant in (a multi-tenant app registration and OPENID_ALLOWED_TENANTS).',
    retry: false,
    otherAccount: true
  }],
  [50076, {
    user: 'Your organization requires multi-factor authentication for this application. Sign in again and complete the extra step.',
    admin: 'Nothing to fix: a Conditional Access policy asks for MFA here.',
    retry: true,
    otherAccount: false
  }],
  [50079, {
    user: 'Your organization requires you to set up multi-factor authentication first. Set it up at https://aka.ms/mfasetup, then sign in again.',
    admin: 'Nothing to fix unless the user cannot register MFA: check the registration policy.',
    retry: true,
    otherAccount: false
  }],
  [53003, {
    user: 'Your organization\'s access policy blocked this sign-in, for example because of your device, app or location.',
    admin: 'A Conditional Access policy blocked it: the user\'s sign-in log in Entra ID names the policy.',
    retry: false,
    otherAccount: false
  }],
  [65001, {
    user: 'This application has not been approved for use in your organization yet.',
    admin: 'Grant consent: App registrations → API permissions → "Grant admin consent" (for OPENID_GRAPH_SCOPES too).',
    retry: false,
    otherAccount: false
  }],
  [700016, {
    user: 'The sign-in service does not know this application.',
    admin: 'OPENID_CLIENT_ID names no app registration in the tenant of OPENID_ISSUER: check the Application (client) ID and the Directory (tenant) ID.',
    retry: false,
    otherAccount: false
  }],
  [7000215, {
    user: 'The sign-in service refused this application\'s own credentials, so no one can sign in right now.',
    admin: 'OPENID_CLIENT_SECRET is wrong: use the client secret\'s Value (not its Secret ID) from App registrations → Certificates & secrets.',
    retry: false,
    otherAccount: false
  }],
  [7000222, {
    user: 'The sign-in service refused this application\'s own credentials, so no one can sign in right now.',
    admin: 'The client secret expired: create a new one under App registrations → Certificates & secrets and put its Value in OPENID_CLIENT_SECRET.',
    retry: false,
    otherAccount: false
  }],
  [700027, {
    user: 'The sign-in service refused this application\'s own credentials, so no one can sign in right now.',
    admin: 'The certificate the gateway signs with (OPENID_CLIENT_CERTIFICATE_PATH) is not registered on the app registration: upload it under App registrations → Certificates & secrets → Certificates, and compare its Thumbprint with the one `npm run doctor` prints.',
    retry: false,
    otherAccount: false
  }],
  [70021, {
    user: 'The sign-in service refused this application\'s own credentials, so no one can sign in right now.',
    admin: 'No federated credential of the app registration matches the token in AZURE_FEDERATED_TOKEN_FILE: add one under App registrations → Certificates & secrets → Federated credentials with the token\'s issuer and subject (on AKS: the cluster\'s OIDC issuer URL and system:serviceaccount:<namespace>:<name>) and audience api://AzureADTokenExchange.',
    retry: false,
    otherAccount: false
  }],
  [90015, {
    user: 'The sign-in request was too long for the sign-in service.',
    admin: 'A request to Entra passed its URL length limit: report it with the request id (fewer scopes or a shorter return path help).',
    retry: false,
    otherAccount: false
  }],
  [700054, {
    user: 'The application is not set up to sign people in yet.',
    admin: 'Enable ID tokens: App registrations → Authentication → "ID tokens (used for implicit and hybrid flows)".',
    retry: false,
    otherAccount: false
  }],
  [500011, {
    user: 'The application asked for access to a service your organization does not have.',
    admin: 'A requested resource is not in the tenant: check OPENID_GRAPH_SCOPES, OPENID_AUDIENCE and the API\'s Application ID URI, and grant consent.',
    retry: false,
    otherAccount: false
  }],
  [50058, {
    user: 'The sign-in service needs you to sign in yourself.',
    admin: 'Nothing to fix: a silent sign-in found no signed-in user.',
    retry: true,
    otherAccount: false
  }],
  [50059, {
    user: 'The sign-in service could not tell which organization your account belongs to.',
    admin: 'Use the tenant\'s own issuer (its Directory (tenant) ID) in OPENID_ISSUER, or sign in with an organizational account.',
    retry: true,
    otherAccount: true
  }],
  [50173, REVOKED],
  [70043, REVOKED],
  [700082, REVOKED],
  [70008, REVOKED]
])

const ACCESS_DENIED: Entry = {
  user: 'The sign-in was cancelled or declined.',
  admin: 'Nothing to fix unless users cannot consent: then grant admin consent for the app\'s permissions.',
  retry: true,
  otherAccount: true
}

/** The AADSTS number in an error description (`AADSTS50105: ...`), if any. */
export function aadstsCode (description: string | undefined): number | undefined {
  const m = /AADSTS(\d+)/.exec(description ?? '')
  return m === null ? undefined : Number(m[1])
}

/** What to tell people about an IdP error; undefined when it is not one we can explain better. */
export function explainEntraError (error: string | undefined, description: string | undefined): EntraExplanation | undefined {
  const number = aadstsCode(description)
  const known = number !== undefined ? CODES.get(number) : undefined
  if (known !== undefined) return { code: `AADSTS${number as number}`, ...known }
  if (error === 'access_denied') return { code: number !== undefined ? `AADSTS${number}` : error, ...ACCESS_DENIED }
  return undefined
}
