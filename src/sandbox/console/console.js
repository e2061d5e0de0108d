// The sandbox console: renders the channel the bot builds (its Block Kit JSON, as Slack would) and turns
// what a person does here into the console server's signed requests to the bot. Vanilla JS, no build.
'use strict';

const $ = (id) => document.getElementById(id);
let state = null;
let me = new URLSearchParams(location.hash.slice(1)).get('as') || null;
let openThread = null;
let shownModal = null;
let drawn = '';

// ── text ────────────────────────────────────────────────────────────────────────────────────────
const EMOJI = {
  hourglass_flowing_sand: '⏳', arrows_counterclockwise: '🔄', ice_cube: '🧊', twisted_rightwards_arrows: '🔀',
  white_check_mark: '✅', octagonal_sign: '🛑', leftwards_arrow_with_hook: '↩️', x: '❌', warning: '⚠️',
  rotating_light: '🚨', lock: '🔒', unlock: '🔓', information_source: 'ℹ️', hourglass: '⌛', tada: '🎉',
  bar_chart: '📊', rocket: '🚀', calendar: '📆', arrow_forward: '▶️', checkered_flag: '🏁', grey_question: '❔', raising_hand: '🙋',
  repeat: '🔁', test_tube: '🧪', wave: '👋', chart_with_upwards_trend: '📈', chart_with_downwards_trend: '📉', key: '🔑', stopwatch: '⏱️',
  heavy_check_mark: '✔️', no_entry: '⛔', arrow_right: '➡️', bell: '🔔', clipboard: '📋', mag: '🔍', boom: '💥',
};
const escapeHtml = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const nameOf = (id) => state?.people.find((p) => p.id === id)?.name || (id === 'U_BOT' ? 'pgcutover' : id);

function formatDate(seconds, format, fallback) {
  const d = new Date(Number(seconds) * 1000);
  if (Number.isNaN(d.getTime())) return fallback;
  return format
    .replace('{date_short_pretty}', d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' }))
    .replace('{date_short}', d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' }))
    .replace('{time_secs}', d.toLocaleTimeString())
    .replace('{time}', d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }));
}

/** Slack's special `<…>` forms: mentions, channels, dates, links. */
function token(inner) {
  if (inner.startsWith('@')) return `<span class="mention">@${escapeHtml(nameOf(inner.slice(1).split('|')[0]))}</span>`;
  if (inner.startsWith('#')) return `<span class="mention">#${escapeHtml(inner.split('|')[1] || inner.slice(1))}</span>`;
  if (inner.startsWith('!date^')) {
    const [spec, fallback = ''] = inner.split('|');
    const [, seconds, format = '{date_short_pretty} {time}'] = spec.split('^');
    return escapeHtml(formatDate(seconds, format, fallback));
  }
  if (inner.startsWith('!')) return `<b>@${escapeHtml(inner.slice(1).split('|')[0])}</b>`;
  const [href, label] = inner.split('|');
  return /^https?:\/\//.test(href) ? `<a href="${escapeHtml(href)}" target="_blank" rel="noopener">${escapeHtml(label || href)}</a>` : escapeHtml(`<${inner}>`);
}

function inline(text) {
  return text
    .replace(/`([^`\n]+)`/g, (_, c) => `\u0001${btoa(unescape(encodeURIComponent(c)))}\u0001`)
    .replace(/(^|[\s(>])\*([^*\n]+)\*(?=$|[\s.,;:!?)<])/g, '$1<b>$2</b>')
    .replace(/(^|[\s(>])_([^_\n]+)_(?=$|[\s.,;:!?)<])/g, '$1<i>$2</i>')
    .replace(/(^|[\s(>])~([^~\n]+)~(?=$|[\s.,;:!?)<])/g, '$1<s>$2</s>')
    .replace(/:([a-z0-9_+-]+):/g, (m, name) => EMOJI[name] || m)
    .replace(/\u0001([^\u0001]*)\u0001/g, (_, b) => `<code>${decodeURIComponent(escape(atob(b)))}</code>`)
    .replace(/\n/g, '<br>');
}

/** Slack mrkdwn to HTML: code blocks, then `<…>` tokens, then the inline marks on escaped text. */
function mrkdwn(text) {
  return String(text ?? '')
    .split(/```/)
    .map((part, i) => {
      if (i % 2 === 1) return `<pre>${escapeHtml(part.replace(/^\n/, ''))}</pre>`;
      const pieces = part.split(/<([^<>]+)>/);
      const tokens = [];
      const escaped = pieces.map((p, j) => (j % 2 === 1 ? (tokens.push(token(p)), `\u0002${tokens.length - 1}\u0002`) : escapeHtml(p))).join('');
      return inline(escaped).replace(/\u0002(\d+)\u0002/g, (_, n) => tokens[Number(n)]);
    })
    .join('');
}

const textObject = (t) => (!t ? '' : t.type === 'plain_text' ? inline(escapeHtml(t.text)) : mrkdwn(t.text));

// ── Block Kit ───────────────────────────────────────────────────────────────────────────────────
function renderBlocks(blocks, where) {
  return blocks
    .map((b) => {
      switch (b.type) {
        case 'header':
          return `<div class="b-header">${textObject(b.text)}</div>`;
        case 'section':
          return `<div class="b-section">${b.text ? `<div>${textObject(b.text)}</div>` : ''}${
            b.fields ? `<div class="b-fields">${b.fields.map((f) => `<div>${textObject(f)}</div>`).join('')}</div>` : ''
          }</div>`;
        case 'context':
          return `<div class="b-context">${(b.elements || []).map((e) => (e.type === 'image' ? '' : textObject(e))).join(' ')}</div>`;
        case 'divider':
          return '<hr class="b-divider">';
        case 'actions':
          return `<div class="b-actions">${(b.elements || [])
            .filter((e) => e.type === 'button')
            .map(
              (e) =>
                `<button class="slack ${e.style || ''}" data-action="${escapeHtml(e.action_id)}" data-ts="${escapeHtml(where?.ts || '')}">${textObject(e.text)}</button>`,
            )
            .join('')}</div>`;
        case 'input':
          return `<label for="modal-input">${textObject(b.label)}</label><input id="modal-input" data-block="${escapeHtml(b.block_id)}" maxlength="${b.element?.max_length || 3000}">`;
        default:
          return `<pre>${escapeHtml(JSON.stringify(b, null, 2))}</pre>`;
      }
    })
    .join('');
}

function renderMessage({ user, body, note, cls = '', extra = '' }) {
  const bot = user === 'U_BOT';
  const name = nameOf(user);
  return `<div class="msg ${cls}"><div class="avatar ${bot ? 'bot' : ''}">${escapeHtml(name[0] || '?')}</div><div>
    <div class="who">${escapeHtml(name)}${bot ? '<span class="app">APP</span>' : ''} ${note ? `<span class="ephemeral-note">${note}</span>` : ''}</div>
    ${body}${extra}</div></div>`;
}

const messageBody = (m) => (m.blocks && m.blocks.length ? renderBlocks(m.blocks, m) : `<div>${mrkdwn(m.text)}</div>`);

// ── the page ────────────────────────────────────────────────────────────────────────────────────
function render() {
  if (!state) return;
  if (!me || !state.people.some((p) => p.id === me)) me = state.people[0].id;
  $('channel-name').textContent = $('channel-title').textContent = state.channel.name;
  $('people').innerHTML = state.people
    .map((p) => `<button data-person="${p.id}" class="${p.id === me ? 'active' : ''}">${escapeHtml(p.name)} <span class="role">${escapeHtml(p.role)}</span></button>`)
    .join('');
  $('about').innerHTML = state.about.map((line) => `<li>${escapeHtml(line)}</li>`).join('');
  // Redrawn only when something changed, so a click never lands on a node being replaced.
  const now = JSON.stringify([me, openThread, state.timeline]);
  if (now !== drawn) {
    drawn = now;
    renderChannel();
    renderThread();
  }
  renderLoad(state.load);
  renderModal();
}

function renderChannel() {
  const box = $('messages');
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const html = [];
  for (const entry of state.timeline) {
    if (entry.kind === 'message') {
      const replies = entry.replies.length
        ? `<button class="replies" data-thread="${entry.ts}">${entry.replies.length} ${entry.replies.length === 1 ? 'reply' : 'replies'}</button>`
        : '';
      html.push(renderMessage({ user: 'U_BOT', body: messageBody(entry), note: entry.edited ? '<span class="edited">(edited)</span>' : '', extra: replies, cls: 'bot-message' }));
      for (const r of entry.replies.filter((x) => x.broadcast)) {
        html.push(renderMessage({ user: 'U_BOT', body: messageBody(r), note: 'replied to a thread' }));
      }
    } else if (entry.kind === 'in_channel' || entry.user === me) {
      const ephemeral = entry.kind === 'ephemeral';
      html.push(renderMessage({ user: 'U_BOT', body: messageBody(entry), note: ephemeral ? 'Only visible to you' : '', cls: ephemeral ? 'ephemeral' : '' }));
    }
  }
  box.innerHTML = html.join('');
  if (atBottom) box.scrollTop = box.scrollHeight;
  if (openThread === null) openThread = state.timeline.find((e) => e.kind === 'message')?.ts ?? null;
}

function renderThread() {
  const parent = state.timeline.find((e) => e.kind === 'message' && e.ts === openThread);
  $('thread').hidden = !parent;
  if (!parent) return;
  const box = $('thread-messages');
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.innerHTML = parent.replies.map((r) => renderMessage({ user: 'U_BOT', body: messageBody(r) })).join('') || '<div class="muted">No replies yet.</div>';
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function formatBytes(n) {
  if (n === null || n === undefined) return 'unknown';
  const units = ['B', 'kB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function renderLoad(load) {
  const complete = load.seconds.slice(0, -1);
  const last = complete.at(-1) || { source: 0, target: 0, other: 0, errors: 0 };
  $('load-rate').textContent = String(last.source + last.target + last.other);
  $('load-source').textContent = String(load.totals.source);
  $('load-target').textContent = String(load.totals.target);
  $('load-errors').textContent = String(load.totals.errors);
  $('load-errors').classList.toggle('bad', load.totals.errors > 0);
  const recent = complete.slice(-3).reduce((a, s) => ({ source: a.source + s.source, target: a.target + s.target }), { source: 0, target: 0 });
  $('load-where').textContent = recent.source + recent.target === 0 ? 'nothing (held or stopped)' : recent.target > recent.source ? 'the target' : 'the source';
  $('load-via').textContent = `· via ${load.via}`;
  $('load-lag').textContent = load.lag.bytes === null ? `unknown (${load.lag.reason})` : `${formatBytes(load.lag.bytes)}${load.lag.seconds === null ? '' : `, ~${load.lag.seconds.toFixed(1)} s`}`;
  $('load-last-error').textContent = load.lastError ? `last error: ${load.lastError}` : '';

  const width = 240;
  const slots = 120;
  const bar = width / slots;
  const series = complete.slice(-slots);
  const peak = Math.max(load.perSecondTarget * 1.5, ...series.map((s) => s.source + s.target + s.other + s.errors));
  const y = (v) => (v / peak) * 58;
  $('load-chart').innerHTML = series
    .map((s, i) => {
      const x = (slots - series.length + i) * bar;
      let top = 60;
      return [['source', s.source + s.other, '#1264a3'], ['target', s.target, '#2eb67d'], ['errors', s.errors, '#e01e5a']]
        .map(([, v, color]) => {
          if (!v) return '';
          const h = y(v);
          top -= h;
          return `<rect x="${x.toFixed(2)}" y="${top.toFixed(2)}" width="${(bar * 0.85).toFixed(2)}" height="${h.toFixed(2)}" fill="${color}"/>`;
        })
        .join('');
    })
    .join('');
  const lags = series.map((s) => s.lagBytes);
  const maxLag = Math.max(1, ...lags.filter((v) => v !== null));
  const points = lags
    .map((v, i) => (v === null ? null : `${((slots - series.length + i) * bar).toFixed(1)},${(38 - (v / maxLag) * 34).toFixed(1)}`))
    .filter(Boolean)
    .join(' ');
  $('lag-chart').innerHTML = points ? `<polyline fill="none" stroke="#1264a3" stroke-width="1.5" points="${points}"/>` : '';
}

// ── dialogs ─────────────────────────────────────────────────────────────────────────────────────
function showDialog({ title, body, submit, danger, cancel = 'Cancel', onSubmit, onCancel }) {
  const overlay = $('overlay');
  overlay.innerHTML = `<div class="dialog" role="dialog" aria-label="${escapeHtml(title)}"><h3>${escapeHtml(title)}</h3><div class="body">${body}</div>
    <div class="foot"><button class="slack" id="dialog-cancel">${escapeHtml(cancel)}</button><button class="slack ${danger ? 'danger' : 'primary'}" id="dialog-submit">${escapeHtml(submit)}</button></div></div>`;
  overlay.hidden = false;
  $('dialog-cancel').onclick = () => {
    overlay.hidden = true;
    onCancel?.();
  };
  $('dialog-submit').onclick = onSubmit;
}

function renderModal() {
  const modal = state.modals.find((m) => m.user === me);
  if (!modal) {
    if (shownModal) $('overlay').hidden = true;
    shownModal = null;
    return;
  }
  if (shownModal?.id === modal.id) {
    const error = $('modal-error');
    if (error) error.textContent = modal.error || '';
    return;
  }
  shownModal = modal;
  const view = modal.view;
  showDialog({
    title: view.title?.text || 'Dialog',
    body: `${renderBlocks(view.blocks || [])}<div class="error" id="modal-error">${escapeHtml(modal.error || '')}</div>`,
    submit: view.submit?.text || 'Submit',
    cancel: view.close?.text || 'Cancel',
    onSubmit: () => post('/api/submit', { user: me, viewId: modal.id, typed: $('modal-input')?.value ?? '' }),
    onCancel: () => post('/api/close', { user: me, viewId: modal.id }),
  });
  $('modal-input')?.focus();
}

function buttonOf(ts, actionId) {
  const entry = state.timeline.find((e) => e.kind === 'message' && e.ts === ts);
  return (entry?.blocks || []).filter((b) => b.type === 'actions').flatMap((b) => b.elements).find((e) => e.action_id === actionId);
}

async function post(path, body) {
  const response = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const answer = await response.json().catch(() => ({}));
  $('composer-note').textContent = answer.error ? `The console: ${answer.error}` : answer.status && answer.status !== 200 ? `The bot answered HTTP ${answer.status}` : '';
  return answer;
}

// ── events ──────────────────────────────────────────────────────────────────────────────────────
document.addEventListener('click', (event) => {
  const target = event.target.closest('button');
  if (!target) return;
  if (target.dataset.person) {
    me = target.dataset.person;
    history.replaceState(null, '', `#as=${me}`);
    shownModal = null;
    $('overlay').hidden = true;
    render();
  } else if (target.dataset.thread) {
    openThread = target.dataset.thread;
    render();
  } else if (target.dataset.action) {
    const { ts, action } = target.dataset;
    const click = () => post('/api/click', { user: me, ts, actionId: action });
    const confirm = buttonOf(ts, action)?.confirm;
    if (!confirm) return void click();
    showDialog({
      title: confirm.title?.text || 'Are you sure?',
      body: `<div>${textObject(confirm.text)}</div>`,
      submit: confirm.confirm?.text || 'Yes',
      cancel: confirm.deny?.text || 'Cancel',
      danger: confirm.style === 'danger',
      onSubmit: () => {
        $('overlay').hidden = true;
        click();
      },
    });
  }
});
$('thread-close').onclick = () => {
  openThread = '';
  render();
};
$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('message-box').value.trim();
  if (!text) return;
  const match = /^\/migrate(?:\s+([\s\S]*))?$/.exec(text);
  if (!match) {
    $('composer-note').textContent = 'Only the bot lives here: type a /migrate command (try /migrate help).';
    return;
  }
  $('message-box').value = '';
  post('/api/command', { user: me, text: (match[1] || '').trim() });
});

function connect() {
  const events = new EventSource('/api/events');
  events.onmessage = (message) => {
    state = JSON.parse(message.data);
    render();
  };
}
connect();
