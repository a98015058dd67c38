import { table, type Group } from './types.js'

const uris = ['https://user:pw@example.com:8080/a%20b/c?x=1&y=2#frag', 'http://[::1]:80/x', 'http://[::1]/x', 'mailto:a@b', 'urn:isbn:0451450523', '/relative/path?q', 'rel/path',
  'a:b/c', '1http://x', ':foo', '//host/path', '///triple', 'http://host:port/', 'http://host:80x/', 'http://[::1/', 'http://exa mple.com/', 'http://h/%zz', 'http://h/p#%zz',
  'http://h/a%2Fb', 'http://h/é', 'HTTP://Example.COM/Path', 'http://h?', 'http://h/?#', 'spiffe://example.org/ns/default/sa/web', 'http://h/\u0001', '*', '?only=query', '#frag',
  'http://h:/', 'http://user@h', 'http://us er@h', 'file:///etc/hosts', 'http://h/a;b=c', 'http://%41.com/']

export const uriGroup = (): Group => ({
  name: 'uri',
  tables: [
    table('uri.parse', [...uris.map((u) => [u]), [''], [1]]),
    table('uri.is_valid', [...uris.map((u) => [u]), [''], [1], [null]]),
  ],
})
