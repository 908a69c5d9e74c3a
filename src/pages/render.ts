// The gateway's few HTML pages: server-rendered, no scripts, no external assets, and every
// message says what happened and what to do next. Values are always escaped.

export function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)
}

export interface Branding {
  /** GATEWAY_TITLE: the application's name, shown on every page. */
  title: string
  /** Served by the gateway itself (no external assets). */
  logoUrl: string | undefined
}

export interface PageOptions {
  title: string
  /** Already-escaped HTML for the body. */
  body: string
  /** Shown small, for the helpdesk: an IdP error code, a request id. */
  detail?: string
}

export const STYLESHEET = `
:root{color-scheme:light dark;--fg:#1b1b1f;--bg:#f6f7f9;--card:#fff;--accent:#0b5cad;--muted:#555}
@media (prefers-color-scheme:dark){:root{--fg:#eceff4;--bg:#14161a;--card:#1e2127;--accent:#7fb3ff;--muted:#b5bac4}}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{width:min(32rem,calc(100% - 2rem));margin:12vh auto;padding:2rem;background:var(--card);border-radius:12px;box-shadow:0 2px 12px #0002}
h1{font-size:1.4rem;margin-top:0}a,button.link{color:var(--accent)}
.button,button{display:inline-block;font:inherit;padding:.6rem 1.2rem;border-radius:8px;border:0;background:var(--accent);color:var(--card);text-decoration:none;cursor:pointer}
.button:focus-visible,button:focus-visible,a:focus-visible{outline:3px solid var(--fg);outline-offset:2px}
.actions{display:flex;gap:1rem;flex-wrap:wrap;align-items:center;margin-top:1.5rem}
.detail{margin-top:2rem;font-size:.85rem;color:var(--muted)}
.admin{font-size:.92rem;color:var(--muted);border-left:3px solid var(--accent);padding-left:.75rem}
.brand{display:flex;align-items:center;gap:.6rem;margin-bottom:1rem;color:var(--muted);font-weight:600}
.brand img{height:2rem;width:auto}.button img{height:1.2em;vertical-align:-.2em;margin-right:.5em}
@media (max-width:30rem){main{margin:1rem auto;padding:1.25rem}}
`

export function renderPage (opts: PageOptions, brand: Branding = { title: 'LibreChat', logoUrl: undefined }): string {
  const detail = opts.detail !== undefined ? `<p class="detail">${escapeHtml(opts.detail)}</p>` : ''
  const logo = brand.logoUrl !== undefined ? `<img src="${escapeHtml(brand.logoUrl)}" alt="">` : ''
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(opts.title.includes(brand.title) ? opts.title : `${opts.title} · ${brand.title}`)}</title><link rel="stylesheet" href="/oauth2/assets/gateway.css"><link rel="icon" href="data:,"></head>
<body><main><div class="brand">${logo}<span>${escapeHtml(brand.title)}</span></div><h1>${escapeHtml(opts.title)}</h1>${opts.body}${detail}</main></body></html>`
}

/** Headers of the gateway's own JSON answers: they are about one user, so never cached. */
export const JSON_NO_STORE = { 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8' }

/** Security headers for every page the gateway renders itself. */
export function pageHeaders (formActionOrigins: string[]): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': `default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' ${formActionOrigins.join(' ')}; frame-ancestors 'none'; base-uri 'none'`,
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff'
  }
}
