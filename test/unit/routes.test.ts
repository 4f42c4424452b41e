import { describe, expect, it } from 'vitest'
import { parseRoutes } from '../../src/config/routes.js'

describe('parseRoutes', () => {
  it('does not quote a bad token back in its error (a reload logs it)', () => {
    const secret = 123456789012345
    expect(() =>
      parseRoutes({ vnc: { target: '127.0.0.1:5900', tokens: [secret] } }, 'config f.yaml: routes'),
    ).toThrow(
      /^config f\.yaml: routes\.vnc\.tokens: expected a token or a list of tokens, each a non-empty string$/,
    )
  })
})
