/** The request bodies every benchmark run sends (the same for OPA, the ceilings and Portcullis). */
export type Inputs = 'unique' | 'repeated' | 'noIdentity'

export const frontend = 'spiffe://example.org/ns/shop/sa/frontend'

/** Body `i` of a run: unique inputs differ in every request; repeated ones never do. */
export function bodyOf (inputs: Inputs, i: number): string {
  switch (inputs) {
    case 'unique': return JSON.stringify({ input: { identity: { spiffe_id: frontend }, service: 'orders', method: 'GET', path: `/orders/${i}` } })
    case 'repeated': return JSON.stringify({ input: { identity: { spiffe_id: frontend }, service: 'orders', method: 'GET', path: '/orders/42' } })
    case 'noIdentity': return JSON.stringify({ input: { service: 'orders', method: 'GET', path: '/orders/42' } })
  }
}
