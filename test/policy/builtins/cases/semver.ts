import { table, type Group } from './types.js'

const versions = ['1.0.0', 'v1.0.0', '1.0', '1.0.0.0', '01.0.0', '+1.0.0', '-1.0.0', '1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta.2',
  '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0+build.1', '1.0.0-rc.1+build.1', '1.0.0-', '1.0.0+', '1.0.0-a..b', '1.0.0-ä', '9223372036854775807.0.0',
  '9223372036854775808.0.0', '1.0.0-01', 'vv1.0.0', ' 1.0.0', '1.0.0-alpha-1', '1.2.3-0A.is.legal']

export const semverGroup = (): Group => ({
  name: 'semver',
  tables: [
    table('semver.is_valid', [...versions.map((v) => [v]), [1], [null], [['1.0.0']]]),
    table('semver.compare', [
      ...versions.flatMap((a, i) => [[a, versions[(i + 1) % versions.length]], [a, '1.0.0-beta.2'], [a, a]]),
      // Not ['1.0.0-99999999999999999999', '1.0.0-99999999999999999998']: both clamp to MaxInt64 in OPA's Atoi and its comparison loop never ends.
      ['1.0.0-alpha', '1.0.0-alpha.1'], ['1.0.0-rc.1+a', '1.0.0-rc.1+b'], [1, '1.0.0'],
    ]),
  ],
})
