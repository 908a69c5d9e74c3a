/**
 * The IdP's pages and their handlers: the login form (our own, not devInteractions), the consent
 * prompt (answered without a screen), sign-out and error pages.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { InteractionDetails, Provider, ProviderContext } from './oidc.js'
import { describeError, escapeHtml, page, readBody, sendHtml } from './respond.js'
import type { IdpUser } from './types.js'

export type InteractionHandler = (req: IncomingMessage, res: ServerResponse, uid: string) => Promise<void>

export function makeInteractionHandlers (
  provider: Provider,
  findUserByLogin: (login: string) => IdpUser | undefined,
  listUsers: () => IdpUser[]
): InteractionHandler {
  return async (req, res, uid) => {
    let details: InteractionDetails
    try {
      details = await provider.interactionDetails(req, res)
    } catch (err) {
      // Missing/expired interaction cookie (e.g. the login page was reloaded after finishing).
      sendHtml(res, 400, page('Sign-in expired', `<h1>Sign-in expired</h1><p role="alert">${escapeHtml(describeError(err))}. Go back to the application and sign in again.</p>`))
      return
    }
    if (details.uid !== uid) {
      sendHtml(res, 400, page('Sign-in mismatch', '<h1>Sign-in mismatch</h1><p role="alert">This sign-in page does not belong to the current sign-in. Start again from the application.</p>'))
      return
    }
    const promptName = details.prompt.name
    const clientId = String(details.params.client_id ?? '')

    if (promptName === 'consent') {
      // Only reachable with an explicit prompt=consent: admin consent means no screen.
      const grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined
      const accountId = details.session?.accountId
      if (!accountId) throw new Error('consent prompt without a signed-in account')
      const g = grant ?? new provider.Grant({ accountId, clientId })
      const d = details.prompt.details
      if (d.missingOIDCScope?.length) g.addOIDCScope(d.missingOIDCScope.join(' '))
      if (d.missingOIDCClaims?.length) g.addOIDCClaims(d.missingOIDCClaims)
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
        if (scopes.length) g.addResourceScope(indicator, scopes.join(' '))
      }
      await provider.interactionFinished(req, res, { consent: { grantId: await g.save() } }, { mergeWithLastSubmission: true })
      return
    }
    if (promptName !== 'login' && promptName !== 'select_account') {
      sendHtml(res, 400, page('Unsupported prompt', `<h1>Unsupported prompt</h1><p role="alert">${escapeHtml(promptName)}</p>`))
      return
    }

    const loginHint = typeof details.params.login_hint === 'string' ? details.params.login_hint : ''
    if (req.method === 'GET' || req.method === 'HEAD') {
      sendHtml(res, 200, loginPage({ uid, clientId, username: loginHint, users: listUsers() }))
      return
    }
    if (req.method !== 'POST') {
      sendHtml(res, 405, page('Method not allowed', '<h1>Method not allowed</h1>'), { Allow: 'GET, POST' })
      return
    }

    const form = new URLSearchParams(await readBody(req, 64 * 1024))
    const username = form.get('username') ?? ''
    const password = form.get('password') ?? ''
    const user = username ? findUserByLogin(username) : undefined
    if (!user || user.password !== password) {
      // 401 (not 200) so scripted clients can tell a rejected login from a fresh form.
      sendHtml(res, 401, loginPage({ uid, clientId, username, users: listUsers(), error: 'Your account or password is incorrect.' }))
      return
    }
    if (user.assigned === false) {
      // Entra: "AADSTS50105: Your administrator has configured the application ... to block
      // users unless they are specifically granted ('assigned') access to the application."
      await provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: `AADSTS50105: Your administrator has configured the application ${clientId} to block users unless they are specifically granted ('assigned') access to the application. The signed in user '${user.preferredUsername}' is blocked because they are not a direct member of a group with access, nor had access directly assigned by an administrator.`
      }, { mergeWithLastSubmission: false })
      return
    }
    const result: Record<string, unknown> = { login: { accountId: user.oid, amr: ['pwd'] } }
    if (promptName === 'select_account') result.select_account = {}
    // 303 to the provider's resume URL; it then redirects to the client with the code.
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false })
  }
}

/** What signing in as this user shows, in a few words (the demo's gateway requires ChatUser). */
function describeUser (user: IdpUser): string {
  const roles = user.roles ?? []
  const groups = user.groups ?? []
  const has = roles.length > 0 ? `app role${roles.length === 1 ? '' : 's'} ${roles.join(', ')}` : 'no app role'
  const member = groups.length > 0 ? `, ${groups.length} group${groups.length === 1 ? '' : 's'}` : ''
  if (user.assigned === false) return 'not assigned to the application: Entra-style refusal (AADSTS50105) before the gateway is reached'
  const outcome = roles.length > 0 ? 'let in where one of these roles is required' : 'refused where a role is required: shows the access-denied page'
  return `${has}${member}: ${outcome}`
}

function loginPage (opts: { uid: string; clientId: string; username: string; users: IdpUser[]; error?: string }): string {
  const action = `/interaction/${encodeURIComponent(opts.uid)}`
  const error = opts.error
    ? `<p id="login-error" class="error" role="alert">${escapeHtml(opts.error)}</p>`
    : ''
  const describedBy = opts.error ? ' aria-describedby="login-error" aria-invalid="true"' : ''
  return page('Sign in to your account', `
  <h1>Sign in</h1>
  <p>to continue to <strong>${escapeHtml(opts.clientId)}</strong></p>
  ${error}
  <form id="login-form" method="post" action="${escapeHtml(action)}" autocomplete="on">
    <p>
      <label for="username">Username</label><br>
      <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required${opts.username ? '' : ' autofocus'} value="${escapeHtml(opts.username)}"${describedBy}>
    </p>
    <p>
      <label for="password">Password</label><br>
      <input id="password" name="password" type="password" autocomplete="current-password" required${opts.username ? ' autofocus' : ''}${describedBy}>
    </p>
    <p><button type="submit" id="sign-in">Sign in</button></p>
  </form>
  <section id="demo-users" aria-labelledby="demo-users-title">
    <h2 id="demo-users-title">Accounts of this development IdP</h2>
    <p class="note">A stand-in for Microsoft Entra ID: no real account works here.</p>
    <table>
      <thead><tr><th scope="col">Username / password</th><th scope="col">What you will see</th></tr></thead>
      <tbody>
${opts.users.map(u => `        <tr><td><code>${escapeHtml(u.username)}</code> / <code>${escapeHtml(u.password)}</code><br><span class="note">${escapeHtml(u.name)}</span></td><td>${escapeHtml(describeUser(u))}</td></tr>`).join('\n')}
      </tbody>
    </table>
  </section>`)
}

/**
 * RP-initiated logout page. oidc-provider passes a form with the xsrf token; we add
 * `logout=yes` (sign out of the whole IdP session, as Entra does) and a visible button, all
 * inside the form, so a scripted client can just submit the form as is.
 */
export async function logoutSource (ctx: ProviderContext, form: string): Promise<void> {
  const completed = form.replace(
    '</form>',
    '<input type="hidden" name="logout" value="yes"/><button type="submit" id="sign-out" autofocus>Sign out</button></form>'
  )
  ctx.type = 'html'
  ctx.body = page('Sign out', `<h1>Sign out</h1><p>Sign out of the development identity provider?</p>${completed}`)
}

export async function postLogoutSuccessSource (ctx: ProviderContext): Promise<void> {
  ctx.type = 'html'
  ctx.body = page('Signed out', '<h1 id="signed-out">You signed out of your account</h1><p>It\'s a good idea to close all browser windows.</p>')
}

export async function renderError (ctx: ProviderContext, out: Record<string, unknown>): Promise<void> {
  ctx.type = 'html'
  const rows = Object.entries(out)
    .map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(String(v))}</dd>`)
    .join('')
  ctx.body = page('Sign-in error', `<h1>Sorry, but we're having trouble signing you in.</h1><dl id="error">${rows}</dl>`)
}
