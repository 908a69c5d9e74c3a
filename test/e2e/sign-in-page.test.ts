// The sign-in page (OPENID_AUTO_REDIRECT=false) and the links that start a sign-in: each keeps the
// path the user wanted, and no page title repeats the application's name.
import t from 'tap'
import { Browser, parseForms, signIn, submitForm } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'

const titleOf = (html: string): string | undefined => /<title>([^<]*)<\/title>/.exec(html)?.[1]
const hrefOf = (html: string, text: string): string | undefined => {
  for (const m of html.matchAll(/<a [^>]*href="([^"]*)"[^>]*>([\s\S]*?)<\/a>/g)) {
    if ((m[2] ?? '').includes(text)) return (m[1] ?? '').replace(/&amp;/g, '&')
  }
  return undefined
}

t.test('OPENID_AUTO_REDIRECT=false: /oauth2/sign_in shows the page too, and its button returns to the path', async t => {
  const stack = await startStack({ env: { OPENID_AUTO_REDIRECT: 'false' } })
  t.teardown(() => stack.close())
  const browser = new Browser()

  const deep = await browser.request(`${stack.url}/c/abc?x=1&y=2`)
  t.equal(deep.status, 401, 'a protected page answers with the sign-in page')
  const deepHtml = await deep.text()
  t.equal(titleOf(deepHtml), 'Sign in to LibreChat', 'the title names the app once')
  t.equal(hrefOf(deepHtml, 'Continue with Microsoft'), '/oauth2/start?rd=%2Fc%2Fabc%3Fx%3D1%26y%3D2')

  const page = await browser.request(`${stack.url}/oauth2/sign_in?rd=${encodeURIComponent('/c/abc?x=1&y=2')}`)
  t.equal(page.status, 200, '/oauth2/sign_in is the sign-in page itself')
  const html = await page.text()
  t.match(html, 'id="sign-in"')
  const start = hrefOf(html, 'Continue with Microsoft')
  t.equal(start, '/oauth2/start?rd=%2Fc%2Fabc%3Fx%3D1%26y%3D2', 'the button keeps the path and query')
  t.equal(hrefOf(html, 'Use a different account'), '/oauth2/start?rd=%2Fc%2Fabc%3Fx%3D1%26y%3D2&prompt=select_account')

  // The button starts the flow and the user lands where they wanted to go.
  const { response, chain } = await signIn(browser, `${stack.url}${start ?? ''}`, 'alice', 'alice')
  t.equal(response.status, 200)
  t.equal(chain.at(-1), `${stack.url}/c/abc?x=1&y=2`, 'back on the deep link, query and all')

  // An explicit prompt is an action, not a page: straight to the IdP.
  const pick = await new Browser().request(`${stack.url}/oauth2/sign_in?prompt=select_account`)
  t.equal(pick.status, 302)
  t.equal(new URL(pick.headers.get('location') ?? '').searchParams.get('prompt'), 'select_account')
})

t.test('OPENID_AUTO_REDIRECT=true (default): /oauth2/sign_in and /oauth2/start both go to the IdP', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  for (const route of ['/oauth2/sign_in', '/oauth2/start']) {
    const res = await new Browser().request(`${stack.url}${route}?rd=%2Fc%2Fx`)
    t.equal(res.status, 302, route)
    t.ok((res.headers.get('location') ?? '').startsWith(stack.idp.origin), `${route} → the IdP`)
  }
})

t.test('"Use a different account" on the refusal goes back to the refused path', async t => {
  const stack = await startStack({ env: { OPENID_REQUIRED_ROLE: 'ChatUser' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  const { response } = await signIn(browser, `${stack.url}/c/abc?x=1&y=2`, 'bob', 'bob')
  t.equal(response.status, 403)
  const html = await response.text()
  t.equal(titleOf(html), 'Access denied · LibreChat')
  const other = hrefOf(html, 'Use a different account')
  t.equal(other, '/oauth2/start?prompt=select_account&rd=%2Fc%2Fabc%3Fx%3D1%26y%3D2', 'the link keeps path and query')

  // Following it: the IdP asks which account, alice signs in, and lands on the path bob wanted.
  const first = await browser.follow(`${stack.url}${other ?? ''}`)
  const pageUrl = first.chain.at(-1) ?? ''
  t.ok(pageUrl.startsWith(stack.idp.origin), 'at the IdP')
  const form = parseForms(await first.response.text(), pageUrl).find(f => 'username' in f.fields)
  t.ok(form, "the IdP's account form")
  if (form === undefined) return
  let result = await submitForm(browser, form, { username: 'alice', password: 'alice' })
  // oidc-provider ends bob's IdP session before alice's starts, with a form its page submits
  // by script: submitted here as the browser would.
  const switchForm = parseForms(await result.response.text(), result.chain.at(-1) ?? '').find(f => f.action.endsWith('/session/end/confirm'))
  if (switchForm !== undefined) result = await submitForm(browser, switchForm)
  t.equal(result.response.status, 200)
  t.equal(result.chain.at(-1), `${stack.url}/c/abc?x=1&y=2`, 'alice lands where bob was refused')
})
