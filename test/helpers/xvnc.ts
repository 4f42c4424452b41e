/**
 * A real VNC server: Debian's TigerVNC `Xvnc` (tigervnc-standalone-server, installed by scripts/test-env.sh),
 * spawned on a free loopback port and a free X display (retrying when another test process took it), with
 * the classic stipple root window (`-retro`) so there is a desktop to draw, and no authentication (or VNC
 * Authentication with a `vncpasswd` file).
 */
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, writeFileSync } from 'node:fs'
import { freePort } from './tcp.js'

export const XVNC_PATH = '/usr/bin/Xvnc'

/** Writes `password` as TigerVNC's obfuscated password file (`vncpasswd -f`), for `-PasswordFile`. */
export function writeVncPasswordFile(file: string, password: string): void {
  const bytes = execFileSync('/usr/bin/vncpasswd', ['-f'], { input: `${password}\n` })
  writeFileSync(file, bytes, { mode: 0o600 })
}

export interface VncServer {
  port: number
  display: number
  close(): Promise<void>
}

/** The first display from `from` on (40-139) with no lock file or socket. */
function freeDisplay(from: number): number {
  for (let i = 0; i < 100; i++) {
    const n = 40 + ((from - 40 + i) % 100)
    if (!existsSync(`/tmp/.X${n}-lock`) && !existsSync(`/tmp/.X11-unix/X${n}`)) return n
  }
  throw new Error('no free X display number in 40-139')
}

/** Test files run in parallel processes: each starts looking at its own display, and retries a taken one. */
let nextDisplay = 40 + (process.pid % 100)
const ATTEMPTS = 10

/** `passwordFile`: a vncpasswd file; the server then asks for VNC Authentication instead of None. */
export async function startXvnc(
  width = 640,
  height = 480,
  options: { passwordFile?: string } = {},
): Promise<VncServer> {
  for (let attempt = 1; ; attempt++) {
    const display = freeDisplay(nextDisplay)
    nextDisplay = display + 1
    try {
      return await spawnXvnc(display, width, height, options)
    } catch (err) {
      // Another process took the display between our check and Xvnc's lock: try the next one.
      if (attempt >= ATTEMPTS || !/already active/.test((err as Error).message)) throw err
    }
  }
}

async function spawnXvnc(
  display: number,
  width: number,
  height: number,
  options: { passwordFile?: string },
): Promise<VncServer> {
  const port = await freePort()
  const args = [`:${display}`, '-rfbport', String(port), '-interface', '127.0.0.1']
  if (options.passwordFile === undefined) args.push('-SecurityTypes', 'None')
  else args.push('-SecurityTypes', 'VncAuth', '-PasswordFile', options.passwordFile)
  args.push('-geometry', `${width}x${height}`, '-depth', '24')
  args.push('-retro', '-nolisten', 'tcp', '-AlwaysShared')
  const child = spawn(XVNC_PATH, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      log += chunk.toString()
      if (/Listening for VNC connections/.test(log)) resolve()
    })
    child.once('exit', (code) => reject(new Error(`Xvnc exited (${code}): ${log}`)))
  })
  return {
    port,
    display,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      await once(child, 'exit')
    },
  }
}

/** True once noVNC's canvas shows the stipple root window: many dark and many light pixels. */
export const DESKTOP_DRAWN = `(() => {
  const c = document.querySelector('#screen canvas')
  if (!c || c.width !== 640) return false
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data
  let dark = 0
  let light = 0
  for (let i = 0; i < px.length; i += 4) {
    if (px[i] < 64) dark++
    else if (px[i] > 192) light++
  }
  return dark > 50000 && light > 50000
})()`
