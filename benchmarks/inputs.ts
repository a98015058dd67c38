/**
 * The request bodies every benchmark run sends (the same for OPA, the ceilings and Portcullis).
 * They carry no input.identity: Portcullis removes a caller-supplied identity (only a verified
 * credential sets it), while OPA would trust it, so bodies with one would not ask both servers
 * the same question. The verified-identity rows send a JWT-SVID instead ('noIdentity' body).
 */
export type Inputs = 'unique' | 'repeated' | 'noIdentity'

export const frontend = 'spiffe://example.org/ns/shop/sa/frontend'

/** Body `i` of a run: unique inputs differ in every request; repeated ones never do. */
export function bodyOf (inputs: Inputs, i: number): string {
  switch (inputs) {
    case 'unique': return JSON.stringify({ input: { service: 'orders', method: 'GET', path: `/orders/${i}` } })
    case 'repeated': return JSON.stringify({ input: { service: 'orders', method: 'GET', path: '/orders/43' } })
    case 'noIdentity': return JSON.stringify({ input: { service: 'orders', method: 'GET', path: '/orders/42' } })
  }
}
