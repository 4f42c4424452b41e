/**
 * Which of a token's route options apply to a target the client named (issue 13, finding 4 and its
 * guard): one function decides, and every route option is in its table.
 */
import { describe, expect, it } from 'vitest'
import {
  clientNamedTarget,
  optionsForClientNamedTarget,
  ROUTE_OPTION_SCOPE,
} from '../../src/auth/named-target.js'
import type { RouteOptions } from '../../src/config/routes.js'

const EVERY_OPTION: Required<RouteOptions> = {
  tls: { ca: '/ca.pem', cert: '/client.pem', key: '/client.key', servername: 'db', insecure: true },
  connectTimeoutMs: 1,
  idleTimeoutMs: 2,
  highWaterMarkBytes: 3,
  textPolicy: 'reject',
  maxConnections: 4,
  maxBytes: 5,
  login: { protocol: 'redis', passwordFile: '/route.pass' },
  maxDurationMs: 6,
}

describe('optionsForClientNamedTarget', () => {
  it.each([
    ['tls', 'dropped'],
    ['login', 'dropped'],
    ['connectTimeoutMs', 'dropped'],
    ['idleTimeoutMs', 'dropped'],
    ['highWaterMarkBytes', 'dropped'],
    ['textPolicy', 'dropped'],
    ['maxConnections', 'kept'],
    ['maxBytes', 'kept'],
    ['maxDurationMs', 'kept'],
  ] as const)('%s is %s', (key, fate) => {
    const one = { [key]: EVERY_OPTION[key] } as RouteOptions
    const applied = optionsForClientNamedTarget(one)
    if (fate === 'kept') expect(applied).toEqual(one)
    else expect(applied).toEqual({})
  })

  it('the table covers every route option, and nothing else passes', () => {
    expect(Object.keys(ROUTE_OPTION_SCOPE).sort()).toEqual(Object.keys(EVERY_OPTION).sort())
    expect(optionsForClientNamedTarget(EVERY_OPTION)).toEqual({
      maxConnections: 4,
      maxBytes: 5,
      maxDurationMs: 6,
    })
    const unknown = { ...EVERY_OPTION, proxyProtocol: 'v2' } as RouteOptions
    expect(optionsForClientNamedTarget(unknown)).toEqual({
      maxConnections: 4,
      maxBytes: 5,
      maxDurationMs: 6,
    })
    expect(optionsForClientNamedTarget(undefined)).toEqual({})
  })
})

describe('clientNamedTarget', () => {
  it.each([
    ['/?address=db:5432', 'db:5432'],
    ['/?target=db:5432', 'db:5432'],
    ['/?address=a:1&target=b:2', 'a:1'],
    ['/?address=&target=b:2', 'b:2'],
    ['/?address=', undefined],
    ['/', undefined],
    ['/?token=x', undefined],
  ])('%s → %s', (url, named) => {
    expect(clientNamedTarget(url)).toBe(named)
  })
})
