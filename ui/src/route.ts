/** Hash routing: `#/<page>[/<arg>…][?<params>]`, so the server only serves index.html at /ui/. */
import { useEffect, useState } from 'preact/hooks'

export interface Route { page: string, args: string[], params: URLSearchParams }

export function parseHash (hash: string): Route {
  const h = hash.replace(/^#\/?/, '')
  const q = h.indexOf('?')
  const path = q < 0 ? h : h.slice(0, q)
  const parts = path.split('/').filter((p) => p !== '').map(decodeURIComponent)
  return { page: parts[0] ?? 'decisions', args: parts.slice(1), params: new URLSearchParams(q < 0 ? '' : h.slice(q + 1)) }
}

export function href (page: string, args: string[] = [], params?: URLSearchParams): string {
  const p = params?.toString() ?? ''
  return `#/${[page, ...args].map(encodeURIComponent).join('/')}${p === '' ? '' : `?${p}`}`
}

export function navigate (page: string, args: string[] = [], params?: URLSearchParams): void {
  location.hash = href(page, args, params)
}

export function useRoute (): Route {
  const [route, setRoute] = useState(parseHash(location.hash))
  useEffect(() => {
    const on = (): void => setRoute(parseHash(location.hash))
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  return route
}
