/**
 * Found by the robustness fuzzer: a YAML config with an unresolved alias (`*!`) or an alias bomb made the
 * yaml library throw a ReferenceError, which escaped as a crash with a stack trace instead of exit 2.
 */
import { describe, expect, it } from 'vitest'
import { parseConfigText } from '../../src/config/config-file.js'
import { ConfigError } from '../../src/errors.js'

describe('regression: YAML aliases in config files', () => {
  it('an unresolved alias is a ConfigError naming the file', () => {
    expect(() => parseConfigText('*!', 'g.yaml')).toThrow(ConfigError)
    expect(() => parseConfigText('heartbeat: *nope', 'g.yaml')).toThrow(
      /^config g\.yaml: invalid YAML: /,
    )
  })

  it('an alias bomb is refused, not expanded', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]']
    for (let i = 1; i < 8; i++) {
      const prev = String.fromCharCode(96 + i)
      const name = String.fromCharCode(97 + i)
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`)
    }
    expect(() => parseConfigText(levels.join('\n'), 'bomb.yaml')).toThrow(ConfigError)
  })
})
