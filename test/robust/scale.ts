/**
 * How hard the robustness suite pushes. `npm test` (and CI) run it at the "ci" scale, which fits in the
 * suite's time budget; `npm run test:robust` sets GANGWAY_ROBUST=full for the figures in docs/robustness.md.
 */
export const FULL = process.env['GANGWAY_ROBUST'] === 'full'

/** Picks the CI or the full-scale value. */
export function scale<T>(ci: T, full: T): T {
  return FULL ? full : ci
}
