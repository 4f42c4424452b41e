/**
 * Found by review: `gangway client --stdio` wrote the target's bytes to stdout with no 'error' listener, so
 * a reader that went away (`gangway client --stdio … | head -c 10`, an ssh that exits while its
 * ProxyCommand still writes) crashed the client with an unhandled EPIPE and a stack trace. A closed stdout
 * now ends the tunnel quietly, like a local socket that closes.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { BIN } from '../cli/gangway-process.js'
import { createDisposer } from '../helpers/disposer.js'
import { startTcpServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'

const d = createDisposer()
afterEach(() => d.run())

describe('regression: gangway client --stdio when stdout closes', () => {
  it('ends without an unhandled EPIPE', async () => {
    // A target that sends far more than the reader takes (bounded: 64 MiB, then it ends).
    const target = await startTcpServer((socket) => {
      socket.on('error', () => {})
      const block = Buffer.alloc(1 << 20, 97)
      let sent = 0
      const write = (): void => {
        while (sent < 64) {
          sent++
          if (!socket.write(block)) return void socket.once('drain', write)
        }
        socket.end()
      }
      write()
    })
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const child = spawn(process.execPath, [BIN, 'client', '--stdio', '--url', server.url()], {
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    d.add(() => void child.kill('SIGKILL'))
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.stdin.on('error', () => {})
    await once(child.stdout, 'data') // the tunnel is up and delivering
    child.stdout.destroy() // the reader goes away, as `| head -c 10` does
    const [code] = (await once(child, 'close')) as [number | null]
    expect(stderr).not.toMatch(/EPIPE|Unhandled|at /)
    expect(code).toBe(0)
  }, 20_000)
})
