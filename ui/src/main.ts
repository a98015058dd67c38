/**
 * The Portcullis compliance console: a single page app served by Portcullis at /ui/ behind the
 * system authorization policy. It talks only to its own origin (/v1/console/*, /v1/audit/*);
 * all code and styles are bundled (no CDN, no inline script: CSP script-src 'self').
 */
import { html } from 'htm/preact'
import type { ComponentChildren } from 'preact'
import { render } from 'preact'
import { useEffect, useRef } from 'preact/hooks'
import { AccessPage } from './pages/access.js'
import { DecisionsPage } from './pages/decisions.js'
import { DetailPage } from './pages/detail.js'
import { IntegrityPage } from './pages/integrity.js'
import { OverviewPage } from './pages/overview.js'
import { ReplayPage } from './pages/replay.js'
import { href, useRoute, type Route } from './route.js'

const NAV: Array<[string, string]> = [['decisions', 'Decisions'], ['overview', 'Overview'], ['integrity', 'Integrity'], ['access', 'Access review'], ['replay', 'Replay']]

function Page ({ route }: { route: Route }): ComponentChildren {
  switch (route.page) {
    case 'decision': return html`<${DetailPage} stream=${route.args[0] ?? ''} seq=${route.args[1] ?? ''} />`
    case 'overview': return html`<${OverviewPage} route=${route} />`
    case 'integrity': return html`<${IntegrityPage} />`
    case 'access': return html`<${AccessPage} route=${route} />`
    case 'replay': return html`<${ReplayPage} />`
    default: return html`<${DecisionsPage} route=${route} />`
  }
}

function App (): ComponentChildren {
  const route = useRoute()
  const main = useRef<HTMLElement>(null)
  const current = route.page === 'decision' ? 'decisions' : route.page
  useEffect(() => {
    const label = NAV.find(([p]) => p === current)?.[1] ?? 'Decision'
    document.title = `${label} · Portcullis console`
  }, [current])
  // move focus to the page on navigation (not on first load) so keyboard and screen reader
  // users land on it
  const first = useRef(true)
  useEffect(() => {
    if (first.current) { first.current = false; return }
    main.current?.focus({ preventScroll: true })
  }, [route.page, route.args.join('/')])
  return html`
    <a class="skip" href="#main" onClick=${(e: Event) => { e.preventDefault(); main.current?.focus() }}>Skip to content</a>
    <header class="top">
      <span class="brand">Portcullis <span class="muted">compliance console</span></span>
      <nav aria-label="Console pages"><ul>
        ${NAV.map(([p, label]) => html`<li><a href=${href(p)} aria-current=${current === p ? 'page' : undefined}>${label}</a></li>`)}
      </ul></nav>
    </header>
    <main id="main" ref=${main} tabindex="-1"><${Page} route=${route} /></main>`
}

const root = document.getElementById('app')
if (root !== null) render(html`<${App} />`, root)
