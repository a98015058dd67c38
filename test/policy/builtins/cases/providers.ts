import { ExactNumber } from '../../../../src/policy/builtins/exact-json.js'
import { table, type Group } from './types.js'

const cfg = { aws_service: 's3', aws_access_key: 'AKIDEXAMPLE', aws_secret_access_key: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', aws_region: 'us-east-1' }
const T = 1709210096123456789n

export const providersGroup = (): Group => ({
  name: 'providers',
  tables: [
    table('providers.aws.sign_req', [
      [{ method: 'GET', url: 'https://examplebucket.s3.amazonaws.com/test.txt' }, cfg, T],
      [{ method: 'PUT', url: 'https://examplebucket.s3.amazonaws.com/a%20b/c?x=1&y=2', raw_body: 'hello', headers: { 'Content-Type': 'text/plain', 'User-Agent': 'x' } }, cfg, T],
      [{ method: 'POST', url: 'https://sts.amazonaws.com/', body: { a: [1, '<'] } }, { ...cfg, aws_service: 'sts', aws_session_token: 'tok' }, T],
      [{ method: 'GET', url: 'https://h:8443/p' }, { ...cfg, disable_payload_signing: true }, T], [{ method: 'GET', url: 'https://h/' }, { ...cfg, disable_payload_signing: 'yes' }, T],
      [{ method: 'GET', url: 'https://h/' }, { aws_service: 's3' }, T], [{ method: 'GET', url: 'https://h/' }, { ...cfg, aws_region: 1 }, T], [{ method: 'GET', url: 'https://h/' }, cfg, 1.5],
      [{ method: 'GET' }, cfg, T], [{ method: 'GET', url: 'https://h/', bogus: 1 }, cfg, T], [{ method: 'GET', url: 'https://h/', headers: 'x' }, cfg, T], [{ method: 'GET', url: 'https://h/é' }, cfg, 0],
      ['x', cfg, T],
      // the signing time is read from the number's text: an integer written with an exponent or
      // a fraction is refused, as are values beyond int64 and non-numbers
      [{ method: 'GET', url: 'https://h/' }, cfg, new ExactNumber('-1e9')], [{ method: 'GET', url: 'https://h/' }, cfg, new ExactNumber('1451311705000000000.0')],
      [{ method: 'GET', url: 'https://h/' }, cfg, new ExactNumber('1.4513117e18')], [{ method: 'GET', url: 'https://h/' }, cfg, -1000000000],
      [{ method: 'GET', url: 'https://h/' }, cfg, 9223372036854775808n], [{ method: 'GET', url: 'https://h/' }, cfg, '1'],
    ]),
  ],
})
