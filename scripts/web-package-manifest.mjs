// The package.json of gangway-web (scripts/build-web-package.mjs writes it), derived from the main one.
// The project's links (repository, homepage, bugs) are copied when the main package.json has them. It has
// none today: there is no public URL yet, and none is made up; the day one is set, both packages carry it.

/** The main package.json fields that name where the project lives, copied as they are. */
export const LINK_FIELDS = ['repository', 'homepage', 'bugs']

/** gangway-web's package.json for the main package.json `main`. */
export function webManifest(main) {
  const links = Object.fromEntries(
    LINK_FIELDS.filter((field) => main[field] !== undefined).map((field) => [field, main[field]]),
  )
  return {
    name: 'gangway-web',
    version: main.version,
    description:
      'A TCP socket for web pages and Node drivers over a Gangway WebSocket gateway: connect(), TunnelWebSocket, a net.Socket-like adapter. Zero dependencies.',
    type: 'module',
    license: main.license,
    ...links,
    sideEffects: false,
    main: './gangway.js',
    types: './gangway.d.ts',
    typesVersions: { '*': { node: ['node/index.d.ts'] } },
    exports: {
      '.': { types: './gangway.d.ts', default: './gangway.js' },
      './node': { types: './node/index.d.ts', default: './node/index.js' },
      './gangway.min.js': './gangway.min.js',
    },
    engines: main.engines,
  }
}
