// Gangway status page: polls the admin API once a second with the admin token (kept in sessionStorage,
// never in the URL) and renders the live tunnels; "Close" asks the daemon to close one tunnel (4410).
// With shared state (--state-redis), "Revoke token" revokes the token of a tunnel on every node, after a
// confirmation; the outcome line then offers "Undo" (DELETE /api/revoke) for a mis-click. The page only
// ever handles the token's fingerprint, never a token.
// Charts (status-charts.js) draw the polled totals over the last minutes: throughput, open tunnels, refusals.
import { COLORS, WINDOW_MS, createHistory, drawBars, drawLines } from './status-charts.js'

const POLL_MS = 1000
const history = createHistory()
const $ = (id) => document.getElementById(id)
let token = sessionStorage.getItem('gangway-admin-token') ?? ''
let timer
/** The fingerprint the confirmation dialog is asking about. */
let pendingRevoke

$('login').addEventListener('submit', (event) => {
  event.preventDefault()
  token = $('token').value.trim()
  sessionStorage.setItem('gangway-admin-token', token)
  refresh()
})

$('tunnels').addEventListener('click', async (event) => {
  const revoke = event.target.closest('button[data-fingerprint]')
  if (revoke) {
    askRevoke(revoke.dataset.fingerprint)
    return
  }
  const button = event.target.closest('button[data-id]')
  if (!button) return
  button.disabled = true
  await fetch(`/api/tunnels/${button.dataset.id}/close`, { method: 'POST', headers: auth() })
  refresh()
})

/** Revoking is not undone by a click: the operator confirms in a modal dialog first. */
function askRevoke(print) {
  pendingRevoke = print
  $('confirm-text').textContent =
    `Revoke token ${print}? Its tunnels on every node close now (4410) and the token is refused ` +
    'from then on, until the revocation expires.'
  const dialog = $('confirm-revoke')
  dialog.returnValue = ''
  dialog.showModal()
}

$('confirm-revoke').addEventListener('close', () => {
  const print = pendingRevoke
  pendingRevoke = undefined
  if ($('confirm-revoke').returnValue === 'revoke' && print) void revokeToken(print)
})

async function revokeToken(print) {
  try {
    const res = await fetch('/api/revoke', {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': 'application/json' },
      body: JSON.stringify({ fingerprint: print }),
    })
    const body = await res.json().catch(() => ({}))
    if (res.ok) {
      const until = body.ttl === 0 ? 'for good' : `for ${body.ttl} s`
      outcome(
        `Token ${body.revoked} revoked ${until}; ${body.notified} process(es) notified.`,
        false,
        body.revoked,
      )
    } else {
      outcome(`Revoking token ${print} failed (${res.status}): ${body.error ?? 'no answer'}`, true)
    }
  } catch {
    outcome(`Revoking token ${print} failed: the daemon does not answer.`, true)
  }
  refresh()
}

$('outcome').addEventListener('click', (event) => {
  const undo = event.target.closest('button[data-undo]')
  if (!undo) return
  undo.disabled = true
  void undoRevoke(undo.dataset.undo)
})

/** Ends a revocation on every node: the token is accepted again (its closed tunnels stay closed). */
async function undoRevoke(print) {
  try {
    const res = await fetch('/api/revoke', {
      method: 'DELETE',
      headers: { ...auth(), 'Content-Type': 'application/json' },
      body: JSON.stringify({ fingerprint: print }),
    })
    const body = await res.json().catch(() => ({}))
    if (!res.ok) {
      const why = `(${res.status}): ${body.error ?? 'no answer'}`
      outcome(`Undoing the revocation of token ${print} failed ${why}`, true, print)
    } else if (body.wasRevoked) {
      outcome(
        `Revocation of token ${print} undone; ${body.notified} process(es) notified. ` +
          'The token is accepted again; its closed tunnels reconnect on their own or not at all.',
      )
    } else {
      outcome(
        `Token ${print} was no longer revoked (expired or undone elsewhere): nothing to undo.`,
      )
    }
  } catch {
    outcome(
      `Undoing the revocation of token ${print} failed: the daemon does not answer.`,
      true,
      print,
    )
  }
}

/** Shows `text`; with `undoFingerprint`, an "Undo" button that ends that token's revocation. */
function outcome(text, bad = false, undoFingerprint) {
  $('outcome').textContent = text
  if (undoFingerprint) {
    const undo = document.createElement('button')
    undo.className = 'undo'
    undo.dataset.undo = undoFingerprint
    undo.title = `Undo the revocation of token ${undoFingerprint} on every node`
    undo.textContent = 'Undo'
    $('outcome').append(' ', undo)
  }
  $('outcome').className = bad ? 'bad' : ''
  $('outcome').hidden = false
}

function auth() {
  return { Authorization: `Bearer ${token}` }
}

async function refresh() {
  clearTimeout(timer)
  if (token === '') return
  try {
    const res = await fetch('/api/tunnels', { headers: auth(), cache: 'no-store' })
    if (res.status === 401) {
      state('The admin token was not accepted.', true)
      return // stop polling until a new token is entered
    }
    const data = await res.json()
    render(data)
    state(
      `${data.draining ? 'Draining' : 'Live'}: ${data.tunnels.length} tunnel(s) open, updated ${new Date(data.now).toLocaleTimeString()}`,
      data.draining,
    )
  } catch {
    state('The daemon does not answer (stopped?). Retrying…', true)
  }
  timer = setTimeout(refresh, POLL_MS)
}

function state(text, bad = false) {
  $('state').textContent = text
  $('state').className = bad ? 'bad' : ''
}

function render(data) {
  renderIdentity(data)
  renderTunnels(data)
  renderRoutes(data)
  renderCharts(data)
}

/** Which node and version answer: with several nodes behind one name, the operator knows which one. */
function renderIdentity({ node, version }) {
  $('identity').textContent = `Node ${node ?? '?'} · Gangway ${version ?? '?'}`
}

function renderTunnels({ now, tunnels, sharedState }) {
  // By id, whatever order the daemon lists them in: a row never moves under the operator's pointer.
  const sorted = [...tunnels].sort((a, b) => a.id - b.id)
  const rows = sorted.map((t) =>
    row(
      [
        t.id,
        t.client,
        t.target,
        t.route,
        t.token ?? '—',
        bytes(t.bytesUp),
        bytes(t.bytesDown),
        age(now - t.openedAt),
      ],
      5,
      t.id,
      sharedState === true ? t.token : undefined,
    ),
  )
  replace($('tunnels'), rows, 9)
}

function renderRoutes({ routes }) {
  const routeRows = Object.entries(routes).map(([name, r]) =>
    row([name, r.active, r.closed, bytes(r.bytesUp), bytes(r.bytesDown)], 1),
  )
  replace($('routes'), routeRows, 5)
}

/** Adds this poll to the history and redraws the three charts (with their numbers as data attributes). */
function renderCharts({ now, tunnels, routes, refusals }) {
  let up = 0
  let down = 0
  for (const r of Object.values(routes)) {
    up += r.bytesUp
    down += r.bytesDown
  }
  history.add({ t: now, up, down, open: tunnels.length, refusals: refusals ?? {} })

  const rates = history.throughput()
  const inWindow = history.bytes()
  const last = rates[rates.length - 1] ?? { up: 0, down: 0 }
  const throughput = $('chart-throughput')
  Object.assign(throughput.dataset, {
    samples: String(history.samples.length),
    upBytes: String(inWindow.up),
    downBytes: String(inWindow.down),
    upRate: String(Math.round(last.up)),
    downRate: String(Math.round(last.down)),
  })
  throughput.setAttribute(
    'aria-label',
    `Throughput over the last ${minutes()} min: ${bytes(inWindow.up)} up, ${bytes(inWindow.down)} down; ` +
      `now ${bytes(Math.round(last.up))}/s up, ${bytes(Math.round(last.down))}/s down`,
  )
  drawLines(throughput, {
    now,
    format: (v) => `${bytes(Math.round(v))}/s`,
    minTop: 1024,
    series: [
      { name: 'up', color: COLORS.up, points: rates.map((p) => ({ t: p.t, v: p.up })) },
      {
        name: 'down',
        color: COLORS.down,
        dashed: true,
        points: rates.map((p) => ({ t: p.t, v: p.down })),
      },
    ],
  })

  const openPoints = history.samples.map((s) => ({ t: s.t, v: s.open }))
  const most = Math.max(0, ...openPoints.map((p) => p.v))
  const open = $('chart-open')
  Object.assign(open.dataset, { open: String(tunnels.length), max: String(most) })
  open.setAttribute(
    'aria-label',
    `Open tunnels over the last ${minutes()} min: ${tunnels.length} now, at most ${most}`,
  )
  drawLines(open, {
    now,
    format: (v) => String(Math.round(v)),
    minTop: 2,
    series: [{ name: 'open', color: COLORS.open, points: openPoints }],
  })

  const refused = history.refusals()
  const chart = $('chart-refusals')
  chart.dataset.refusals = JSON.stringify(refused)
  const entries = Object.entries(refused)
  chart.setAttribute(
    'aria-label',
    `Refusals over the last ${minutes()} min by reason: ` +
      (entries.length === 0 ? 'none' : entries.map(([r, n]) => `${r} ${n}`).join(', ')),
  )
  drawBars(chart, { entries, empty: `no refusals in the last ${minutes()} min` })
}

function minutes() {
  return Math.round(WINDOW_MS / 60_000)
}

/** A table row; cells from index `numericFrom` on are right-aligned numbers. */
function row(cells, numericFrom, closeId, revokeFingerprint) {
  const tr = document.createElement('tr')
  cells.forEach((value, i) => {
    const td = document.createElement('td')
    td.textContent = String(value) // text only: client-controlled strings are never parsed as HTML
    if (i >= numericFrom) td.className = 'num'
    tr.append(td)
  })
  if (closeId !== undefined) {
    const td = document.createElement('td')
    const button = document.createElement('button')
    button.className = 'close'
    button.dataset.id = String(closeId)
    button.textContent = 'Close'
    td.append(button)
    if (revokeFingerprint) {
      const revoke = document.createElement('button')
      revoke.className = 'revoke'
      revoke.dataset.fingerprint = revokeFingerprint
      revoke.title = `Revoke token ${revokeFingerprint} on every node`
      revoke.textContent = 'Revoke token'
      td.append(revoke)
    }
    tr.append(td)
  }
  return tr
}

function replace(tbody, rows, columns) {
  if (rows.length === 0) {
    tbody.innerHTML = `<tr><td class="empty" colspan="${columns}">none</td></tr>`
    return
  }
  tbody.replaceChildren(...rows)
}

function bytes(n) {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(2)} GiB`
}

function age(ms) {
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

refresh()
