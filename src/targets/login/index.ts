/**
 * @module targets/login/index
 * The login protocols by name (a closed map, picked by a route's `login.protocol`).
 */
import type { LoginProtocol } from '../../config/login-spec.js'
import type { LoginModule } from './login.js'
import { redisLogin } from './redis.js'
import { vncLogin } from './vnc.js'

export const LOGIN_MODULES: Readonly<Record<LoginProtocol, LoginModule>> = {
  redis: redisLogin,
  vnc: vncLogin,
}
