/**
 * @module bench/naive-relay
 * The WebSocket-to-TCP relay people write in twenty lines, as a baseline: no backpressure (every chunk is
 * written or sent whatever the other side's buffer holds), accept before dialling, default ws options.
 * Usage: node naive-relay.js PORT TARGET_PORT
 */
import net from 'node:net'
import { WebSocketServer } from 'ws'

const port = Number(process.argv[2])
const targetPort = Number(process.argv[3])
const wss = new WebSocketServer({ host: '127.0.0.1', port, backlog: 4096 })
wss.on('connection', (ws) => {
  const tcp = net.connect({ host: '127.0.0.1', port: targetPort })
  ws.on('message', (data) => tcp.write(data as Buffer))
  tcp.on('data', (data) => ws.send(data))
  ws.on('close', () => tcp.destroy())
  tcp.on('close', () => ws.close())
  ws.on('error', () => tcp.destroy())
  tcp.on('error', () => ws.terminate())
})
