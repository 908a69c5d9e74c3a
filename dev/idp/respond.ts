/** Responses and page chrome shared by the IdP's own endpoints. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { readBodyBuffer } from '../http.js'

interface KoaLikeError extends Error {
  error?: string;
  error_description?: string;
}

export function page (title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<meta name="color-scheme" content="light dark">
<style>
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1b1b;--muted:#5c5c5c;--line:#d6d6d6;--accent:#0067b8;--error:#a80000}
@media (prefers-color-scheme:dark){:root{--bg:#1b1b1b;--fg:#e8e8e8;--muted:#a8a8a8;--line:#444;--accent:#4ea1f3;--error:#ff8a80}}
body{font-family:system-ui,sans-serif;max-width:30rem;margin:3rem auto;padding:0 1rem;line-height:1.4;background:var(--bg);color:var(--fg)}
input{width:100%;padding:.4rem;font-size:1rem;box-sizing:border-box;background:var(--bg);color:var(--fg);border:1px solid var(--line)}
button{padding:.5rem 1.5rem;font-size:1rem;background:var(--accent);color:#fff;border:0;border-radius:2px}
.error{color:var(--error)}.note{color:var(--muted);font-size:.9rem}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid var(--line);padding:.35rem .4rem;text-align:left;vertical-align:top;font-size:.92rem}
h2{font-size:1.05rem;margin-top:2.5rem}code{overflow-wrap:anywhere}
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`
}

const PAGE_HEADERS = {
  'Cache-Control': 'no-store',
  // No scripts anywhere on these pages. No form-action: Chromium applies it to the redirects
  // that follow a form post, which would block the redirect back to the application.
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
}

export function sendHtml (res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...PAGE_HEADERS, 'Content-Type': 'text/html; charset=utf-8', ...headers })
  res.end(html)
}

export function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers })
  res.end(JSON.stringify(body))
}

export async function readBody (req: IncomingMessage, limit: number): Promise<string> {
  return (await readBodyBuffer(req, limit)).toString('utf8')
}

export function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

export function describeError (err: unknown): string {
  const e = err as KoaLikeError
  return e?.error_description ?? e?.message ?? String(err)
}
