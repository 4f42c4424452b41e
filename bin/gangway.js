#!/usr/bin/env node
// Before anything else is loaded: SIGUSR1 would open Node's inspector on 127.0.0.1:9229 (code execution
// for any local user) and SIGUSR2 would end the process at once. A listener turns both off; the daemon
// logs them once it runs (src/commands/signals.ts). To debug on purpose: `node --inspect bin/gangway.js`
// (docs/operations.md, "Signals").
process.on('SIGUSR1', ignoreSignal)
process.on('SIGUSR2', ignoreSignal)
function ignoreSignal() {}

const { main } = await import('../dist/commands/cli.js')
process.exitCode = await main(process.argv.slice(2))
