/**
 * @module targets/login/index
 * The login protocols by name (a closed map, picked by a route's `login.protocol`).
 */
import type { LoginProtocol } from '../../config/login-spec.js'
import type { LoginModule } from './login.js'
import { postgresLogin } from './postgres.js'
import { redisLogin } from './redis.js'
import { vncLogin } from './vnc.js'

export const LOGIN_MODULES: Readonly<Record<LoginProtocol, LoginModule>> = {
  postgres: postgresLogin,
  redis: redisLogin,
  vnc: vncLogin,
}
