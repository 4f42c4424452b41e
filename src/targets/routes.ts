/**
 * @module targets/routes
 * The resolver of the config file's static routes (parsed by config/routes.ts): a listed token resolves to
 * its route's target and options. These targets are the operator's own, so the target policy does not
 * apply to them.
 * Knows nothing of WebSockets, carriers or policy.
 */
import { tokenKey, type Route, type Routes } from '../config/routes.js'
import type { Resolution, TargetResolver } from './resolver.js'

/** A resolution for a route (shared by the routes resolver and JWT claims that name a route). */
export function routeResolution(route: Route): Resolution {
  return {
    target: route.target,
    options: route.options,
    trusted: true,
    label: `route:${route.name}`,
    limitKey: `route:${route.name}`,
  }
}

/** Resolves the tokens listed under `routes.<name>.tokens`. */
export function staticRoutes(routes: Routes): TargetResolver {
  const byToken = new Map<string, Route>()
  for (const route of routes.values()) {
    for (const token of route.tokens) byToken.set(tokenKey(token), route)
  }
  return {
    name: 'routes',
    resolve(token) {
      const route = byToken.get(tokenKey(token))
      return Promise.resolve(route === undefined ? null : routeResolution(route))
    },
  }
}
