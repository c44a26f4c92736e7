// plaid-sync operator dashboard: no dependencies, no build step.
// Reads /api/admin/status, /api/admin/dashboard/series and /api/admin/attention
// from the same origin (the browser's basic-auth login carries over) and
// draws the charts as inline SVG.
'use strict';

const REFRESH_MS = 15000;
const SVG_NS = 'http://www.w3.org/2000/svg';
const $ = (selector) => document.querySelector(selector);

// ---------- formatting ----------

function duration(seconds) {
  if (seconds == null || !isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' min';
  const h = Math.floor(m / 60);
  if (h < 48) return h + ' h ' + (m % 60) + ' min';
  return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
}

function ago(iso) {
  if (!iso) return 'never';
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  return seconds >= 0 ? duration(seconds) + ' ago' : 'in ' + duration(-seconds);
}

function count(n) {
  return n == null ? '–' : Number(n).toLocaleString('en-US');
}

function percent(ratio) {
  if (ratio == null) return '–';
  const p = ratio * 100;
  return (p > 0 && p < 0.1 ? p.toFixed(2) : p.toFixed(1)) + ' %';
}

function el(tag, attributes, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  if (text != null) node.textContent = text;
  return node;
}

// ---------- data ----------

// Requests go to location.origin, never to a URL relative to the page: when
// the page was opened as http://user:TOKEN@host:8081/dashboard, a relative URL
// carries those credentials and fetch() refuses to construct the request.
// The browser keeps sending the basic-auth login it cached for this origin.
async function getJson(path, options) {
  const url = new URL(path, location.origin);
  const response = await fetch(url, Object.assign({ credentials: 'same-origin', cache: 'no-store' }, options));
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const message = body && body.message ? body.message : response.status + ' ' + response.statusText;
    const error = new Error(message);
    error.status = response.status;
    error.body = body;
    throw error;
  }
  return body;
}

function showError(message) {
  const banner = $('#error');
  banner.hidden = !message;
  banner.textContent = message || '';
}

// ---------- tiles ----------

function tile(id, state, value, detail) {
  const node = $('#tile-' + id);
  node.dataset.state = state;
  node.querySelector('.value').textContent = value;
  node.querySelector('.detail').textContent = detail;
}

function renderTiles(status) {
  const overall = $('#overall');
  overall.dataset.state = status.state;
  overall.textContent = status.state === 'green' ? 'all good' : status.state === 'amber' ? 'look soon' : 'act now';
  $('#updated').textContent = 'as of ' + new Date(status.generated_at).toLocaleTimeString();

  const lag = status.sync_lag;
  tile('lag', lag.state, lag.items ? duration(lag.p95_seconds) : '–',
    lag.items ? 'max ' + duration(lag.max_seconds) + ' · ' + count(lag.items) + ' items' : 'no items expected fresh');

  const hooks = status.webhooks;
  tile('webhooks', hooks.state, count(hooks.last_hour),
    count(hooks.last_24h) + ' in 24 h · ' + percent(hooks.duplicate_ratio_24h) + ' duplicates · last ' +
    ago(hooks.last_received_at));

  const failures = status.failures;
  tile('failures', failures.state, percent(failures.ratio),
    count(failures.failed) + ' failed of ' + count(failures.items) + ' items');

  const reauth = status.reauth;
  tile('reauth', reauth.state, count(reauth.count),
    reauth.count ? 'oldest waiting ' + duration(reauth.oldest_age_seconds) : 'nobody waiting');

  const billing = status.billing;
  const next = billing.next_cleanup_due_at ? 'next removal ' + ago(billing.next_cleanup_due_at) : 'none scheduled';
  tile('billing', billing.state, count(billing.pending_cleanup),
    'pending cleanup · ' + next + ' · ' + count(billing.removed) + ' removed · ' + count(billing.removals_failed) +
    ' removals failed, ' + count(billing.removals_retrying) + ' retrying');
}

// ---------- charts ----------

const WIDTH = 360;
const HEIGHT = 110;
const PAD = { left: 4, right: 4, top: 14, bottom: 14 };

function svgNode(tag, attributes, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text != null) node.textContent = text;
  return node;
}

// lines: [{ name, cls, color, values: [number|null] }]; gaps where null.
function drawChart(id, lines, format, hours) {
  const figure = $('#chart-' + id);
  const svg = figure.querySelector('svg');
  svg.replaceChildren();
  const n = Math.max(...lines.map((l) => l.values.length), 1);
  const max = Math.max(0, ...lines.flatMap((l) => l.values.filter((v) => v != null)));
  const top = max > 0 ? max * 1.1 : 1;
  const x = (i) => PAD.left + (n === 1 ? 0 : (i / (n - 1)) * (WIDTH - PAD.left - PAD.right));
  const y = (v) => HEIGHT - PAD.bottom - (v / top) * (HEIGHT - PAD.top - PAD.bottom);

  svg.appendChild(svgNode('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(0), y2: y(0), stroke: '#d0d7de', 'stroke-width': 1 }));
  svg.appendChild(svgNode('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(max), y2: y(max), stroke: '#eaeef2', 'stroke-width': 1, 'stroke-dasharray': '3 3' }));
  svg.appendChild(svgNode('text', { x: PAD.left, y: 10 }, 'max ' + format(max)));
  svg.appendChild(svgNode('text', { x: PAD.left, y: HEIGHT - 2 }, '−' + hours + ' h'));
  svg.appendChild(svgNode('text', { x: WIDTH - PAD.right, y: HEIGHT - 2, 'text-anchor': 'end' }, 'now'));

  for (const line of lines) {
    let segment = [];
    const flush = () => {
      if (segment.length === 1) {
        const [px, py] = segment[0];
        svg.appendChild(svgNode('circle', { cx: px, cy: py, r: 1.8, fill: line.color }));
      } else if (segment.length > 1) {
        svg.appendChild(svgNode('polyline', {
          points: segment.map(([px, py]) => px.toFixed(1) + ',' + py.toFixed(1)).join(' '),
          fill: 'none', stroke: line.color, 'stroke-width': 1.5, 'stroke-linejoin': 'round',
          'vector-effect': 'non-scaling-stroke',
        }));
      }
      segment = [];
    };
    line.values.forEach((v, i) => (v == null ? flush() : segment.push([x(i), y(v)])));
    flush();
  }

  const legend = figure.querySelector('.legend');
  legend.replaceChildren(...lines.map((line) => {
    const total = line.total != null ? ' ' + line.total : '';
    const item = el('span', {}, line.name + total);
    item.prepend(el('span', { class: 'swatch ' + line.cls }));
    return item;
  }));
}

function sum(values) {
  return values.reduce((a, b) => a + (b || 0), 0);
}

function renderCharts(series) {
  const step = series.step_minutes;
  const hours = Math.round((series.buckets * step) / 60);
  const c = series.counters;
  const perMinute = (values) => values.map((v) => v / step);
  const zeros = new Array(series.buckets).fill(0);
  const add = (...arrays) => zeros.map((_, i) => sum(arrays.map((a) => (a || zeros)[i])));
  const rate = (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(2)) + '/min';

  drawChart('webhooks', [
    { name: 'new', cls: 'webhook', color: '#0969da', values: perMinute(c.webhook || zeros), total: count(sum(c.webhook || [])) },
    { name: 'duplicate', cls: 'duplicate', color: '#8250df', values: perMinute(c.webhook_duplicate || zeros), total: count(sum(c.webhook_duplicate || [])) },
  ], rate, hours);

  const failed = add(c.sync_failed, c.sync_needs_reauth, c.sync_error);
  drawChart('syncs', [
    { name: 'synced', cls: 'synced', color: '#1a7f37', values: perMinute(c.sync_synced || zeros), total: count(sum(c.sync_synced || [])) },
    { name: 'retry', cls: 'retry', color: '#d4a72c', values: perMinute(c.sync_retry || zeros), total: count(sum(c.sync_retry || [])) },
    { name: 'failed / reauth / error', cls: 'failed', color: '#cf222e', values: perMinute(failed), total: count(sum(failed)) },
  ], rate, hours);

  const g = series.gauges;
  drawChart('lag', [
    { name: 'max', cls: 'lag-max', color: '#cf222e', values: g.lag_max_seconds || [] },
    { name: 'p95', cls: 'lag-p95', color: '#0969da', values: g.lag_p95_seconds || [] },
  ], duration, hours);
}

// ---------- attention ----------

const REASONS = { failed: 'failed', needs_reauth: 'needs reauth', pending_cleanup: 'pending cleanup' };

const SYNC_QUEUE = 'plaid-sync.sync-item';

function jobLink(jobId) {
  return el('a', { href: '/queues/' + SYNC_QUEUE, title: 'Open the queue on the job board' }, jobId);
}

// Follows a queued job on the board's API until it ends (or for 2 minutes).
async function follow(jobId, statusNode) {
  for (let i = 0; i < 60; i++) {
    try {
      const task = await getJson('/api/v1/queues/' + SYNC_QUEUE + '/tasks/' + encodeURIComponent(jobId));
      const status = task && task.ctx ? task.ctx.status : null;
      if (status) {
        statusNode.textContent = status;
        statusNode.dataset.status = status;
        if (['Done', 'Failed', 'Killed'].includes(status)) return;
      }
    } catch (_) { /* not visible yet, or pruned */ }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

// "Recent actions": kept across refreshes (the item usually leaves the list
// once its sync is requested: a failed item becomes sync_needed).
function logAction(item, answer, error) {
  const list = $('#actions');
  const entry = el('li', { 'data-item-id': item.item_id });
  entry.append(el('span', { class: 'muted' }, new Date().toLocaleTimeString() + ' '), 'sync of ' + item.item_id + ': ');
  if (error) {
    entry.dataset.result = 'error';
    entry.append(el('span', { class: 'action-error' }, error.message));
  } else {
    entry.dataset.result = answer.result;
    entry.dataset.jobId = answer.job_id || '';
    entry.append(answer.result === 'enqueued' ? 'queued job ' : 'already queued as job ');
    if (answer.job_id) {
      entry.append(jobLink(answer.job_id), ' ');
      const status = el('span', { class: 'job-status' }, 'Pending');
      entry.append(status);
      follow(answer.job_id, status);
    }
  }
  list.prepend(entry);
  $('#actions-section').hidden = false;
}

async function syncNow(item, row, button) {
  button.disabled = true;
  button.textContent = 'queuing…';
  try {
    const answer = await getJson('/api/admin/items/' + encodeURIComponent(item.item_id) + '/sync', {
      method: 'POST',
      // The operator listener takes state changes as JSON only (cross-site guard).
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    button.textContent = 'queued';
    row.querySelector('td.job').replaceChildren(jobLink(answer.job_id || '–'));
    logAction(item, answer, null);
  } catch (error) {
    button.textContent = 'sync now';
    button.disabled = false;
    logAction(item, null, error);
  }
}

function renderAttention(answer) {
  const body = $('#attention tbody');
  body.replaceChildren();
  for (const item of answer.items) {
    const row = el('tr', { 'data-reason': item.reason, 'data-item-id': item.item_id });
    row.append(
      el('td', { class: 'reason' }, REASONS[item.reason] || item.reason),
      el('td', { title: 'plaid_items.id ' + item.id }, item.item_id),
      el('td', {}, String(item.user_id)),
      el('td', {}, item.institution_id || '–'),
      el('td', { title: item.since || '' }, item.reason === 'pending_cleanup' ? 'removal ' + ago(item.since) : ago(item.since)),
      el('td', { class: 'error' }, [item.last_error_code, item.last_sync_error].filter(Boolean).join(': ') || '–'),
    );
    const cell = el('td', { class: 'job' });
    if (item.pending_job_id) cell.append(jobLink(item.pending_job_id)); else cell.textContent = '–';
    row.append(cell);
    const action = el('td');
    const button = el('button', { type: 'button', class: 'sync-now' }, 'sync now');
    if (item.sync_status === 'needs_reauth') {
      button.disabled = true;
      button.title = 'Waiting for the user to re-authenticate (Link update mode): a sync cannot succeed before that.';
    } else {
      button.addEventListener('click', () => syncNow(item, row, button));
    }
    action.append(button);
    row.append(action);
    body.append(row);
  }
  $('#attention-empty').hidden = answer.items.length > 0;
  $('#attention-count').textContent = answer.items.length ? '(' + answer.items.length + ')' : '';
}

// ---------- loop ----------

async function refresh() {
  const results = await Promise.allSettled([
    getJson('/api/admin/status').then(renderTiles),
    getJson('/api/admin/dashboard/series?hours=24&step=5').then(renderCharts),
    getJson('/api/admin/attention?limit=50').then(renderAttention),
  ]);
  const failed = results.find((r) => r.status === 'rejected');
  showError(failed ? 'Could not refresh: ' + failed.reason.message : '');
  document.body.dataset.loaded = 'true';
}

refresh();
setInterval(refresh, REFRESH_MS);
