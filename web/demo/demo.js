// Gangway demo page: a chat client whose only transport is a WebSocket to the daemon that served it.
// The daemon turns that WebSocket into a TCP connection to the chat service; bytes pass unchanged.
// No build step: this file is served as is, and imports the Gangway browser library from the daemon.

import { connect as connectSocket } from '/gangway.js'

/** Gangway's close codes (copied from src/protocol.ts: a page cannot import TypeScript). */
const CLOSE_CODES = {
  1000: 'normal: the chat service ended the connection',
  1001: 'going away: Gangway is shutting down',
  1002: 'protocol error',
  1003: 'text messages are rejected by this Gangway',
  1006: 'abnormal: the connection dropped without a close frame',
  1007: 'invalid UTF-8 in a text message',
  1009: 'message too big',
  1011: 'the TCP connection to the chat service failed',
  4408: 'idle timeout',
  4429: 'too many connections',
  4502: 'the chat service refused the TCP connection',
  4503: 'the chat service is unreachable',
  4504: 'timed out connecting to the chat service',
}

/** Most lines kept in the log; older ones are removed so a long session stays light. */
const MAX_LOG_LINES = 500

const $ = (id) => document.getElementById(id)
const ui = {
  status: $('status'),
  up: $('bytes-up'),
  down: $('bytes-down'),
  log: $('log'),
  form: $('send-form'),
  line: $('line'),
  send: $('send'),
  reconnect: $('reconnect'),
}

/**
 * The transport, in one place: a TCP socket through Gangway's browser library, loaded from the daemon that
 * served this page (`/gangway.js`). `opened` means the chat service's TCP connection is up; a failure is
 * a TunnelError whose `closeCode` is the daemon's close code.
 */
function openTransport(url, { onOpen, onBytes, onClose }) {
  const socket = connectSocket('', { url })
  const writer = socket.writable.getWriter()
  socket.opened
    .then(async () => {
      onOpen()
      const reader = socket.readable.getReader()
      for (let read = await reader.read(); !read.done; read = await reader.read())
        onBytes(read.value)
    })
    .catch(() => {}) // the reason arrives through `closed`
    .then(() => socket.closed)
    .then(
      () => onClose(1000, ''),
      (err) => onClose(err.closeCode, err.reason || err.code),
    )
  return {
    send: (bytes) => writer.write(bytes).catch(() => {}),
    close: () => socket.close(),
  }
}

let connection = null
let bytesUp = 0
let bytesDown = 0

function connect() {
  const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/`
  const decoder = new TextDecoder('utf-8')
  let partial = ''
  bytesUp = 0
  bytesDown = 0
  showCounters()
  setStatus('connecting', `Connecting to ${url} …`)
  const current = openTransport(url, {
    onOpen() {
      if (connection !== current) return
      setStatus('open', 'Open: TCP connected through Gangway')
      setInputEnabled(true)
      ui.line.focus()
    },
    onBytes(bytes) {
      if (connection !== current) return
      bytesDown += bytes.byteLength
      showCounters()
      const lines = (partial + decoder.decode(bytes, { stream: true })).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) appendLine(line.replace(/\r$/, ''))
    },
    onClose(code, reason) {
      if (connection !== current) return
      if (partial !== '') appendLine(partial)
      const meaning = CLOSE_CODES[code] ?? 'unknown code'
      setStatus('closed', `Closed: ${code} (${meaning})${reason ? `: ${reason}` : ''}`)
      setInputEnabled(false)
    },
  })
  connection = current
}

function sendLine(text) {
  if (!connection || text === '') return
  const bytes = new TextEncoder().encode(text + '\n')
  connection.send(bytes)
  bytesUp += bytes.byteLength
  showCounters()
}

function appendLine(text) {
  const item = document.createElement('li')
  const speaker = /^([^\s:*][^\s:]*): /.exec(text)
  if (text.startsWith('* ')) {
    item.className = 'system'
    item.textContent = text.slice(2)
  } else if (speaker) {
    const name = document.createElement('b')
    name.textContent = speaker[1]
    item.append(name, text.slice(speaker[1].length))
  } else {
    item.textContent = text
  }
  ui.log.append(item)
  while (ui.log.childElementCount > MAX_LOG_LINES) ui.log.firstElementChild.remove()
  ui.log.scrollTop = ui.log.scrollHeight
}

function setStatus(state, text) {
  ui.status.dataset.state = state
  ui.status.textContent = text
}

function setInputEnabled(enabled) {
  ui.line.disabled = !enabled
  ui.send.disabled = !enabled
}

function showCounters() {
  ui.up.textContent = bytesUp.toLocaleString('en')
  ui.down.textContent = bytesDown.toLocaleString('en')
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault()
  sendLine(ui.line.value)
  ui.line.value = ''
})

ui.reconnect.addEventListener('click', () => {
  const previous = connection
  connection = null
  previous?.close()
  setInputEnabled(false)
  connect()
})

connect()
