// openmyst node UI: progressive enhancement of the server-rendered pages.
// Every value shown comes from a documented Tequilapi route (see
// /openapi.json); the session is the HttpOnly cookie of POST /auth/session,
// and requests that change state carry the page's CSRF token.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : '';
  const page = document.body.dataset.page;

  // ---- API access -------------------------------------------------------
  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    const opts = { method: method, credentials: 'same-origin', headers: {} };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    if (method !== 'GET' && csrf) opts.headers['X-CSRF-Token'] = csrf;
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      throw new APIError(0, 'unreachable', 'the node did not answer (' + e.message + '); is myst daemon running?');
    }
    const text = await resp.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!resp.ok) {
      const e = data && data.error;
      let msg = e && e.message ? e.message : resp.status + ' ' + resp.statusText;
      if (e && e.fields) {
        msg += ' (' + Object.entries(e.fields).map(([k, v]) => k + ': ' + v).join('; ') + ')';
      }
      if (resp.status === 401 && page !== 'login') {
        location.assign('/ui/login');
      }
      throw new APIError(resp.status, e ? e.code : '', msg);
    }
    return data;
  }

  function showError(err, what) {
    const el = $('error');
    el.textContent = (what ? what + ': ' : '') + err.message;
    el.hidden = false;
  }
  function clearError() {
    const el = $('error');
    el.hidden = true;
    el.textContent = '';
  }
  function setText(id, v) {
    const el = $(id);
    if (el) el.textContent = v;
  }

  // ---- formatting -------------------------------------------------------
  const WEI = 10n ** 18n;
  // myst formats a wei decimal string as MYST, exactly.
  function myst(wei) {
    if (wei === undefined || wei === null || wei === '') return '–';
    let a = BigInt(wei);
    const neg = a < 0n;
    if (neg) a = -a;
    const frac = (a % WEI).toString().padStart(18, '0').replace(/0+$/, '');
    return (neg ? '-' : '') + (a / WEI).toString() + (frac ? '.' + frac : '');
  }
  function bytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = Number(n), i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v.toString() : v.toFixed(2)) + ' ' + u[i];
  }
  function duration(s) {
    s = Math.floor(Number(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (h ? h + 'h ' : '') + (h || m ? m + 'm ' : '') + sec + 's';
  }
  function short(addr) {
    return addr && addr.length > 14 ? addr.slice(0, 8) + '…' + addr.slice(-6) : addr;
  }

  // ---- live events --------------------------------------------------------
  function events(handlers) {
    const es = new EventSource('/events');
    for (const [type, fn] of Object.entries(handlers)) {
      es.addEventListener(type, (ev) => {
        try { fn(JSON.parse(ev.data)); } catch (e) { showError(e, 'live update'); }
      });
    }
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        // The stream was refused (session expired?): check and go to login.
        api('GET', '/identities').catch(() => {});
      }
    };
    return es;
  }

  // ---- pages --------------------------------------------------------------
  function initLogout() {
    const b = $('logout');
    if (!b) return;
    b.addEventListener('click', async () => {
      try {
        await api('DELETE', '/auth/session');
        location.assign('/ui/login');
      } catch (e) { showError(e, 'log out'); }
    });
  }

  function initLogin() {
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearError();
      const btn = $('login-submit');
      btn.disabled = true;
      try {
        await api('POST', '/auth/session', { username: 'myst', password: $('password').value });
        $('password').value = '';
        location.assign('/ui/provider');
      } catch (e) {
        showError(e, 'log in');
        $('password').focus();
      } finally {
        btn.disabled = false;
      }
    });
  }

  function initSettings() {
    $('password-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearError();
      const cur = $('current-password'), n1 = $('new-password'), n2 = $('new-password2');
      if (n1.value !== n2.value) {
        showError(new Error('the two new passwords differ'), 'change password');
        return;
      }
      try {
        await api('PUT', '/auth/password', { current_password: cur.value, new_password: n1.value });
        cur.value = n1.value = n2.value = '';
        setText('password-status', 'Password changed; every session was logged out. Log in again with the new password.');
        setTimeout(() => location.assign('/ui/login'), 1500);
      } catch (e) { showError(e, 'change password'); }
    });
  }

  // Provider page.
  function initProvider() {
    let provider = '';
    let earnings = null;
    const rows = new Map();

    function renderSession(s) {
      let tr = rows.get(s.id);
      if (!tr) {
        tr = document.createElement('tr');
        tr.dataset.session = s.id;
        for (let i = 0; i < 5; i++) tr.appendChild(document.createElement('td'));
        tr.cells[0].className = 'mono';
        rows.set(s.id, tr);
        const body = $('sessions');
        const empty = body.querySelector('tr.empty');
        if (empty) empty.remove();
        body.appendChild(tr);
      }
      tr.cells[0].textContent = short(s.consumer);
      tr.cells[0].title = s.consumer;
      tr.cells[1].textContent = duration(s.duration_seconds);
      tr.cells[2].textContent = bytes(s.bytes);
      tr.cells[3].textContent = String(s.invoices);
      tr.cells[4].textContent = myst(s.earned);
      setText('live-count', String(rows.size));
    }
    function removeSession(s) {
      const tr = rows.get(s.id);
      if (tr) { tr.remove(); rows.delete(s.id); }
      setText('live-count', String(rows.size));
      if (rows.size === 0) {
        $('sessions').innerHTML = '<tr class="empty"><td colspan="5">No running sessions.</td></tr>';
      }
    }
    function renderEarnings(e) {
      earnings = e;
      setText('earned', myst(e.earned) + ' MYST');
      setText('settled', myst(e.settled) + ' MYST');
      setText('unsettled', myst(e.unsettled) + ' MYST');
      $('settle-preview').disabled = BigInt(e.unsettled || '0') <= 0n;
      if (!provider && e.identity) { provider = e.identity; loadIdentity(); }
    }

    async function loadIdentity() {
      setText('identity', provider);
      try {
        const a = await api('GET', '/identities/' + provider + '/account');
        setText('registration', a.registered ? 'registered (hermes ' + short(a.hermes) + ')' : 'not registered');
        setText('beneficiary', a.beneficiary || provider);
      } catch (e) {
        setText('registration', 'unknown: ' + e.message);
      }
      loadProposal();
    }
    async function loadProposal() {
      try {
        const ps = await api('GET', '/proposals?provider_id=' + encodeURIComponent(provider));
        if (!ps || ps.length === 0) {
          setText('service-status', 'not announced (no proposal on the network yet)');
          return;
        }
        const p = ps[0];
        setText('service-status', 'on: announced (proposal seq ' + p.seq + ')');
        setText('location', [p.location.country, p.location.city, p.location.ip_type].filter(Boolean).join(', '));
        setText('access', p.access && p.access.kind ? p.access.kind : 'public');
        setText('price-hour', myst(p.price.per_hour) + ' MYST');
        setText('price-gib', myst(p.price.per_gib) + ' MYST');
        if (!$('new-price-hour').value) $('new-price-hour').value = myst(p.price.per_hour);
        if (!$('new-price-gib').value) $('new-price-gib').value = myst(p.price.per_gib);
      } catch (e) { showError(e, 'read the proposal'); }
    }

    async function load() {
      try {
        renderEarnings(await api('GET', '/earnings'));
      } catch (e) {
        if (e.status === 404) {
          setText('service-status', 'off: this daemon serves no provider (start it with --provider.serve)');
        } else if (e.status === 503) {
          setText('service-status', 'starting: ' + e.message);
        } else {
          showError(e, 'read earnings');
        }
      }
      if (!provider) {
        try {
          const l = await api('GET', '/identities');
          const d = (l.identities || []).find((i) => i.default) || (l.identities || [])[0];
          if (d) { provider = d.id; loadIdentity(); } else { setText('identity', 'no identity yet'); }
        } catch (e) { showError(e, 'read identities'); }
      }
      try {
        const l = await api('GET', '/provider/sessions');
        for (const s of l.sessions) renderSession(s);
      } catch (e) {
        if (e.status !== 404 && e.status !== 503) showError(e, 'read sessions');
      }
    }

    $('price-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearError();
      setText('price-status', 'Publishing the new proposal…');
      try {
        await api('PUT', '/provider/price', { per_hour: $('new-price-hour').value.trim(), per_gib: $('new-price-gib').value.trim() });
        setText('price-status', 'New price published.');
        setTimeout(loadProposal, 300);
      } catch (e) {
        setText('price-status', '');
        showError(e, 'change price');
      }
    });
    $('settle-preview').addEventListener('click', async () => {
      clearError();
      try {
        renderEarnings(await api('GET', '/earnings'));
      } catch (e) { showError(e, 'read earnings'); return; }
      const e = earnings;
      setText('settle-payout', myst(e.settle_payout));
      setText('settle-hermes-fee', myst(e.settle_hermes_fee));
      setText('settle-fee-bps', (Number(e.hermes_fee_bps) / 100).toFixed(2) + '%');
      setText('settle-tx-fee', myst(e.settle_transactor_fee));
      $('settle-confirm').hidden = false;
      $('settle-go').focus();
    });
    $('settle-cancel').addEventListener('click', () => { $('settle-confirm').hidden = true; });
    $('settle-go').addEventListener('click', async () => {
      clearError();
      $('settle-go').disabled = true;
      setText('settle-status', 'Settling on chain… (waiting for the transaction to be mined)');
      try {
        const r = await api('POST', '/settle');
        setText('settle-status', 'Settled: transaction ' + r.tx + ', cumulative ' + myst(r.amount) + ' MYST.');
        $('settle-confirm').hidden = true;
        renderEarnings(await api('GET', '/earnings'));
      } catch (e) {
        setText('settle-status', '');
        showError(e, 'settle');
      } finally {
        $('settle-go').disabled = false;
      }
    });

    load();
    events({
      'session-started': renderSession,
      'session-updated': renderSession,
      'session-ended': removeSession,
      'earnings': renderEarnings,
    });
  }

  // Consumer page.
  function initConsumer() {
    let connected = false;
    function renderConnection(ev) {
      connected = ev.connected && ev.status && ev.status.running;
      const s = ev.status || {};
      setText('conn-state', ev.connected ? (s.running ? 'connected' : 'ended: ' + (s.error || 'session over')) : 'not connected');
      setText('conn-provider', ev.connected ? s.provider : '–');
      setText('conn-country', ev.connected ? s.country || '–' : '–');
      setText('conn-socks', ev.connected ? s.socks : '–');
      setText('conn-duration', ev.connected ? duration(s.duration_seconds) : '–');
      setText('conn-rx', ev.connected ? bytes(s.rx_bytes) : '–');
      setText('conn-tx', ev.connected ? bytes(s.tx_bytes) : '–');
      setText('conn-spent', ev.connected ? myst(s.spent) + ' MYST' : '–');
      setText('conn-rate', ev.connected ? myst(s.rate_per_hour) + ' MYST/hour' : '–');
      $('disconnect').disabled = !ev.connected;
      for (const b of document.querySelectorAll('button.connect')) b.disabled = !!ev.connected;
    }
    async function loadConnection() {
      try {
        renderConnection({ connected: true, status: await api('GET', '/connection') });
      } catch (e) {
        if (e.status === 404) renderConnection({ connected: false });
        else showError(e, 'read the connection');
      }
    }
    async function connect(providerID) {
      clearError();
      setText('conn-status', 'Connecting to ' + short(providerID) + '… (session setup and first payment)');
      for (const b of document.querySelectorAll('button.connect')) b.disabled = true;
      try {
        const s = await api('PUT', '/connection', { provider_id: providerID });
        renderConnection({ connected: true, status: s });
        setText('conn-status', 'Connected.');
      } catch (e) {
        setText('conn-status', '');
        showError(e, 'connect');
        loadConnection();
      }
    }
    async function loadProposals() {
      clearError();
      const q = new URLSearchParams();
      const country = $('f-country').value.trim().toUpperCase();
      if (country) q.set('country', country);
      if ($('f-iptype').value) q.set('ip_type', $('f-iptype').value);
      if ($('f-max-hour').value.trim()) q.set('max_price_hour', $('f-max-hour').value.trim());
      if ($('f-max-gib').value.trim()) q.set('max_price_gib', $('f-max-gib').value.trim());
      const body = $('proposals');
      try {
        const ps = await api('GET', '/proposals' + (q.toString() ? '?' + q : ''));
        body.textContent = '';
        if (!ps.length) {
          body.innerHTML = '<tr class="empty"><td colspan="6">No proposal matches.</td></tr>';
          return;
        }
        for (const p of ps) {
          const tr = document.createElement('tr');
          tr.dataset.provider = p.provider_id;
          const cells = [short(p.provider_id), p.location.country, p.location.ip_type, myst(p.price.per_hour), myst(p.price.per_gib)];
          for (const c of cells) {
            const td = document.createElement('td');
            td.textContent = c;
            tr.appendChild(td);
          }
          tr.cells[0].className = 'mono';
          tr.cells[0].title = p.provider_id;
          const td = document.createElement('td');
          const b = document.createElement('button');
          b.type = 'button';
          b.className = 'connect';
          b.textContent = 'Connect';
          b.setAttribute('aria-label', 'Connect to ' + p.provider_id);
          b.disabled = connected;
          b.addEventListener('click', () => connect(p.provider_id));
          td.appendChild(b);
          tr.appendChild(td);
          body.appendChild(tr);
        }
      } catch (e) { showError(e, 'read proposals'); }
    }
    $('filter-form').addEventListener('submit', (ev) => { ev.preventDefault(); loadProposals(); });
    $('disconnect').addEventListener('click', async () => {
      clearError();
      setText('conn-status', 'Disconnecting… (final payment)');
      try {
        await api('DELETE', '/connection');
        renderConnection({ connected: false });
        setText('conn-status', 'Disconnected.');
      } catch (e) {
        setText('conn-status', '');
        showError(e, 'disconnect');
      }
    });
    loadConnection();
    loadProposals();
    events({ connection: renderConnection });
  }

  document.addEventListener('DOMContentLoaded', () => {
    initLogout();
    switch (page) {
      case 'login': initLogin(); break;
      case 'settings': initSettings(); break;
      case 'provider': initProvider(); break;
      case 'consumer': initConsumer(); break;
    }
  });
})();
