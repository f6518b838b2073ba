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
    constructor(status, code, message, fields) {
      super(message);
      this.status = status;
      this.code = code;
      // fields maps request fields to what is wrong with them.
      this.fields = fields || {};
    }
  }

  // inflight counts the requests waiting for an answer (for tests that
  // must not act while the page is about to change).
  let inflight = 0;
  async function api(method, path, body) {
    inflight++;
    try {
      return await request(method, path, body);
    } finally {
      inflight--;
    }
  }
  async function request(method, path, body) {
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
      throw new APIError(resp.status, e ? e.code : '', msg, e && e.fields);
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
  // publicIPNote says how the provider's claimed exit address was
  // checked: confirmed by the network's STUN server through the tunnel,
  // matching the tunnel's peer, or unconfirmed (with the address STUN
  // saw, if any).
  function publicIPNote(s) {
    if (s.public_ip_check === 'confirmed_by_stun') return ' (confirmed by STUN)';
    if (s.public_ip_check === 'matches_tunnel_peer') return '';
    return ' (unconfirmed: ' + (s.public_ip_check || '') + (s.public_ip_seen ? ', seen ' + s.public_ip_seen : '') + ')';
  }
  // pathText says how a session's datagrams travel (GET /connection,
  // GET /sessions: static, direct or relay).
  function pathText(p) {
    const words = { static: 'static (provider endpoint)', direct: 'direct (ICE, through NATs)', relay: 'relay (TURN)' };
    return p ? words[p] || p : '–';
  }
  function short(addr) {
    return addr && addr.length > 14 ? addr.slice(0, 8) + '…' + addr.slice(-6) : addr;
  }

  // ---- quality score and access policy ---------------------------------
  // A provider's score comes with each item of GET /proposals and from
  // GET /quality/{id} (docs/quality.md); its access policy is part of its
  // signed proposal.
  // qualityText is a score as "0.72 (3 reports)".
  function qualityText(q) {
    if (!q) return '–';
    if (!q.reports) return 'no reports yet';
    return q.value.toFixed(2) + ' (' + q.reports + (q.reports === 1 ? ' report' : ' reports') + ')';
  }
  // qualityDetail says what a score is made of.
  function qualityDetail(q) {
    if (!q || !q.reports) return 'no payment-backed quality report counted yet (an unknown provider scores 0.25)';
    return 'success rate ' + Math.round(q.success_rate * 100) + '%, median connect ' +
      (q.median_connect_ms ? q.median_connect_ms + ' ms' : '–') + ', median throughput ' +
      (q.median_throughput ? bytes(q.median_throughput) + '/s' : '–');
  }
  // accessText is a proposal's access policy in words.
  function accessText(a) {
    if (!a || !a.kind || a.kind === 'public') return 'public';
    const n = (a.allow || []).length;
    return 'allow-list (' + n + (n === 1 ? ' identity' : ' identities') + ')';
  }

  // ---- history and charts ----------------------------------------------
  // Periods: how many buckets back from now and how a time maps to one.
  const PERIODS = {
    hour: { n: 24, start: (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate(), d.getHours()), step: (d, k) => new Date(d.getFullYear(), d.getMonth(), d.getDate(), d.getHours() - k), label: (d) => String(d.getHours()).padStart(2, '0') + ':00' },
    day: { n: 30, start: (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()), step: (d, k) => new Date(d.getFullYear(), d.getMonth(), d.getDate() - k), label: (d) => (d.getMonth() + 1) + '-' + d.getDate() },
    month: { n: 12, start: (d) => new Date(d.getFullYear(), d.getMonth(), 1), step: (d, k) => new Date(d.getFullYear(), d.getMonth() - k, 1), label: (d) => d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0') },
  };
  // buckets sums value(s) of each session into the period's buckets by
  // session start, oldest first.
  function buckets(sessions, period, value) {
    const p = PERIODS[period];
    const now = p.start(new Date());
    const out = [];
    const index = new Map();
    for (let k = p.n - 1; k >= 0; k--) {
      const d = p.step(now, k);
      index.set(d.getTime(), out.length);
      out.push({ label: p.label(d), value: 0 });
    }
    for (const s of sessions) {
      const i = index.get(p.start(new Date(s.start)).getTime());
      if (i !== undefined) out[i].value += value(s);
    }
    return out;
  }
  const weiToMYST = (w) => Number(BigInt(w || '0')) / 1e18;
  // chartMYST formats a float MYST value with 3 significant digits.
  const chartMYST = (v) => (v === 0 ? '0' : v.toPrecision(3)) + ' MYST';
  // barChart draws bs into el as an SVG bar chart.
  function barChart(el, bs, fmt, what) {
    const W = 640, H = 170, top = 16, bottom = 22, left = 4;
    const max = Math.max(0, ...bs.map((b) => b.value));
    const bw = (W - left) / bs.length;
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('role', 'img');
    const total = bs.reduce((a, b) => a + b.value, 0);
    svg.setAttribute('aria-label', what + ': ' + fmt(total) + ' in total, at most ' + fmt(max) + ' in one period');
    const add = (tag, attrs, text) => {
      const e = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text !== undefined) e.textContent = text;
      svg.appendChild(e);
      return e;
    };
    add('line', { class: 'axis', x1: left, x2: W, y1: H - bottom, y2: H - bottom });
    add('text', { x: left, y: 11 }, 'max ' + fmt(max));
    const every = Math.ceil(bs.length / 8);
    bs.forEach((b, i) => {
      const h = max > 0 ? (H - top - bottom) * (b.value / max) : 0;
      const r = add('rect', { class: 'bar', x: left + i * bw + 1, y: H - bottom - h, width: Math.max(1, bw - 2), height: h });
      const title = document.createElementNS(ns, 'title');
      title.textContent = b.label + ': ' + fmt(b.value);
      r.appendChild(title);
      if (i % every === 0) add('text', { x: left + i * bw + 1, y: H - 6 }, b.label);
    });
    el.textContent = '';
    el.appendChild(svg);
  }
  // fillTable replaces the rows of tbody body with one row per item, its
  // cells the texts cells(item) returns (decorate(tr, item), if given,
  // then dresses the row), or with one row saying empty across cols
  // columns when there are no items.
  function fillTable(body, items, cols, empty, cells, decorate) {
    body.textContent = '';
    if (!items.length) {
      body.innerHTML = '<tr class="empty"><td colspan="' + cols + '">' + empty + '</td></tr>';
      return;
    }
    for (const item of items) {
      const tr = document.createElement('tr');
      for (const c of cells(item)) {
        const td = document.createElement('td');
        td.textContent = c;
        tr.appendChild(td);
      }
      if (decorate) decorate(tr, item);
      body.appendChild(tr);
    }
  }
  // historyTable fills tbody#history with the newest sessions.
  function historyTable(sessions, who) {
    fillTable($('history'), sessions.slice(0, 20), 7, 'No sessions yet.', (s) => {
      const end = s.end ? new Date(s.end) : new Date();
      return [new Date(s.start).toLocaleString(), short(s[who]), duration((end - new Date(s.start)) / 1000) + (s.end ? '' : ' (running)'),
        bytes(s.bytes), myst(s.paid || '0'), s.path || '–', s.reason || (s.end ? '' : '–')];
    }, (tr, s) => {
      tr.cells[1].className = 'mono';
      tr.cells[1].title = s[who];
    });
  }
  // initHistory loads path's session list and draws it; the period
  // buttons redraw; the returned function reloads.
  function initHistory(path, who, draw) {
    let sessions = [];
    let period = 'hour';
    const redraw = () => { draw(sessions, period); historyTable(sessions, who); };
    for (const b of document.querySelectorAll('button.period')) {
      b.addEventListener('click', () => {
        period = b.dataset.period;
        for (const o of document.querySelectorAll('button.period')) o.setAttribute('aria-pressed', String(o === b));
        redraw();
      });
    }
    const load = async () => {
      try {
        sessions = (await api('GET', path)).sessions || [];
        redraw();
      } catch (e) {
        if (e.status !== 404 && e.status !== 503) showError(e, 'read the session history');
      }
    };
    load();
    return load;
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
    // serviceState says why the provider does not run ('' while it runs):
    // off (none served) or starting (with the reason); the proposal's
    // absence must not hide it.
    let serviceState = '';
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
      // Earnings answer once the provider runs: its proposal says the rest.
      if (serviceState) { serviceState = ''; renderToggle(); if (provider) loadProposal(); }
      setText('earned', myst(e.earned) + ' MYST');
      setText('settled', myst(e.settled) + ' MYST');
      setText('unsettled', myst(e.unsettled) + ' MYST');
      $('settle-preview').disabled = BigInt(e.unsettled || '0') <= 0n;
      if (!provider && e.identity) { provider = e.identity; loadIdentity(); }
    }
    // loadSettlements fills the settlement history from GET /settlements.
    let settledSeen = null;
    async function loadSettlements() {
      let list;
      try {
        list = (await api('GET', '/settlements')).settlements || [];
      } catch (e) {
        if (e.status !== 404 && e.status !== 503) showError(e, 'read the settlement history');
        return;
      }
      fillTable($('settlements'), list.slice(0, 20), 6, 'No settlement yet.', (r) => {
        const fees = BigInt(r.hermes_fee || '0') + BigInt(r.transactor_fee || '0');
        const status = r.status + (r.attempt > 1 ? ' (attempt ' + r.attempt + ')' : '') + (r.error ? ': ' + r.error : '');
        return [new Date(r.time).toLocaleString(), r.trigger, myst(r.unsettled), myst(fees.toString()), r.tx ? short(r.tx) : '–', status];
      }, (tr, r) => {
        tr.dataset.settlement = String(r.id);
        tr.cells[4].className = 'mono';
        if (r.tx) tr.cells[4].title = r.tx;
        tr.cells[3].title = 'hermes fee ' + myst(r.hermes_fee) + ', transactor fee ' + myst(r.transactor_fee);
      });
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
      loadQuality();
    }
    // loadQuality shows the provider's own score (GET /quality/{id}): the
    // payment-backed reports of its consumers, as every node counts them.
    async function loadQuality() {
      if (!provider) return;
      try {
        const q = await api('GET', '/quality/' + provider);
        setText('quality-score', qualityText(q.score));
        setText('quality-success', q.score.reports ? Math.round(q.score.success_rate * 100) + '%' : '–');
        setText('quality-connect', q.score.median_connect_ms ? q.score.median_connect_ms + ' ms' : '–');
        setText('quality-throughput', q.score.median_throughput ? bytes(q.score.median_throughput) + '/s' : '–');
        setText('quality-blacklisted', q.blacklisted ? 'yes: a verified fraud proof names this identity; no node lists it' : 'no');
      } catch (e) {
        if (e.status !== 404) showError(e, 'read the quality score');
      }
    }
    let proposalRetry = 0;
    async function loadProposal() {
      try {
        const ps = await api('GET', '/proposals?provider_id=' + encodeURIComponent(provider));
        if (!ps || ps.length === 0) {
          setText('service-status', serviceState || 'not announced (no proposal on the network yet)');
          for (const id of ['location', 'access', 'price-hour', 'price-gib']) setText(id, '–');
          // A provider that runs announces soon: look again.
          if (!serviceState && !proposalRetry) proposalRetry = setTimeout(() => { proposalRetry = 0; loadProposal(); }, 2000);
          return;
        }
        const p = ps[0];
        // (a stopped provider's proposal may be listed until its withdrawal arrives)
        setText('service-status', serviceState || 'on: announced (proposal seq ' + p.seq + ')');
        setText('location', [p.location.country, p.location.city, p.location.ip_type].filter(Boolean).join(', '));
        setText('access', accessText(p.access));
        $('access').title = p.access && p.access.allow && p.access.allow.length ? 'served: ' + p.access.allow.join(', ') : 'any consumer';
        setText('price-hour', myst(p.price.per_hour) + ' MYST');
        setText('price-gib', myst(p.price.per_gib) + ' MYST');
        if (!$('new-price-hour').value) $('new-price-hour').value = myst(p.price.per_hour);
        if (!$('new-price-gib').value) $('new-price-gib').value = myst(p.price.per_gib);
      } catch (e) { showError(e, 'read the proposal'); }
    }

    async function load() {
      try {
        const st = await api('GET', '/provider');
        setText('exit-mode', st.exit_mode);
        setText('wg-endpoint', st.wireguard);
        setText('peer-id', st.peer_id);
      } catch (e) {
        if (e.status !== 404 && e.status !== 503) showError(e, 'read the provider');
        for (const id of ['exit-mode', 'wg-endpoint', 'peer-id']) setText(id, '–');
      }
      try {
        renderEarnings(await api('GET', '/earnings'));
      } catch (e) {
        if (e.status === 404) {
          serviceState = 'off: this daemon serves no provider (start one with the form below, or turn the last one on again)';
        } else if (e.status === 503 && e.code === 'provider_refused') {
          // The start gave up on options that cannot work: say why; the
          // switch turns it off, the form starts it with other options.
          serviceState = 'refused: ' + e.message;
        } else if (e.status === 503) {
          // Say what the start does, why it waits and when it tries
          // again; look again soon.
          serviceState = 'starting: ' + e.message;
          setTimeout(load, 5000);
        } else {
          showError(e, 'read earnings');
        }
        if (serviceState) {
          setText('service-status', serviceState);
          for (const id of ['earned', 'settled', 'unsettled']) setText(id, '–');
          $('settle-preview').disabled = true;
        }
      }
      renderToggle();
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

    // The on/off switch: DELETE /service stops the provider (its sessions
    // end, its proposal is withdrawn); PUT /service without options starts
    // the provider this daemon ran again, with its options.
    function renderToggle() {
      const off = serviceState.startsWith('off');
      const b = $('service-toggle');
      b.dataset.state = off ? 'off' : 'on';
      b.textContent = off ? 'Turn provider on' : 'Turn provider off';
      // A price change republishes the running provider's proposal.
      $('price-form').hidden = !!serviceState;
    }
    $('service-toggle').addEventListener('click', async () => {
      clearError();
      const b = $('service-toggle');
      const stop = b.dataset.state !== 'off';
      b.disabled = true;
      setText('service-toggle-status', stop ? 'Stopping the provider…' : 'Starting the provider…');
      try {
        if (stop) {
          await api('DELETE', '/service');
          setText('service-toggle-status', 'Provider stopped: its sessions ended and its proposal was withdrawn.');
        } else {
          await api('PUT', '/service', {});
          setText('service-toggle-status', 'Provider started.');
        }
      } catch (e) {
        setText('service-toggle-status', '');
        showError(e, stop ? 'stop the provider' : 'start the provider');
      } finally {
        b.disabled = false;
        document.dispatchEvent(new Event('openmyst:service'));
      }
    });
    // The provider was started or stopped (here or by the start form).
    document.addEventListener('openmyst:service', async () => {
      await load();
      if (provider) loadProposal();
    });

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
        loadSettlements();
      } catch (e) {
        setText('settle-status', '');
        loadSettlements();
        showError(e, 'settle');
      } finally {
        $('settle-go').disabled = false;
      }
    });

    load();
    loadSettlements();
    // Reports arrive by gossip after each session: re-read the score.
    setInterval(loadQuality, 5000);
    const reloadHistory = initHistory('/provider/history', 'consumer', (ss, period) => {
      barChart($('chart-earnings'), buckets(ss, period, (s) => weiToMYST(s.paid)), chartMYST, 'Earned');
      barChart($('chart-traffic'), buckets(ss, period, (s) => Number(s.bytes)), bytes, 'Traffic');
    });
    events({
      'session-started': (s) => { renderSession(s); reloadHistory(); },
      'session-updated': renderSession,
      'session-ended': (s) => { removeSession(s); reloadHistory(); },
      // Earnings change as payments arrive: so does the history.
      // An automatic settlement shows as a change of the settled amount.
      'earnings': (e) => {
        renderEarnings(e);
        reloadHistory();
        if (settledSeen !== null && settledSeen !== e.settled) loadSettlements();
        settledSeen = e.settled;
      },
    });
  }

  // Consumer page.
  function initConsumer() {
    let connected = false;
    function renderConnection(ev) {
      connected = ev.connected && ev.status && ev.status.running;
      const s = ev.status || {};
      // tun mode: reconnecting or held (the kill switch holds the device).
      const state = s.state === 'disconnecting' ? 'disconnecting' : s.running ? (s.state && s.state !== 'connected' ? s.state : 'connected') : 'ended: ' + (s.error || 'session over');
      setText('conn-state', ev.connected ? state : 'not connected');
      setText('conn-mode', ev.connected ? modeText[s.mode] || s.mode || 'proxy' : '–');
      setText('conn-kill-switch', ev.connected ? killSwitchText(s) : 'off (not connected)');
      $('conn-kill-switch').title = ev.connected && s.kill_switch ? 'reached outside the tunnel: ' + (s.kill_switch.exemptions || []).join(', ') : '';
      setText('conn-provider', ev.connected ? s.provider : '–');
      setText('conn-country', ev.connected ? s.country || '–' : '–');
      setText('conn-path', ev.connected ? pathText(s.path) : '–');
      setText('conn-socks', ev.connected && s.socks ? s.socks : '–');
      setText('conn-public-ip', ev.connected && s.public_ip ? s.public_ip + publicIPNote(s) : '–');
      setText('conn-duration', ev.connected ? duration(s.duration_seconds) : '–');
      setText('conn-rx', ev.connected ? bytes(s.rx_bytes) : '–');
      setText('conn-tx', ev.connected ? bytes(s.tx_bytes) : '–');
      setText('conn-spent', ev.connected ? myst(s.spent) + ' MYST' : '–');
      setText('conn-rate', ev.connected ? myst(s.rate_per_hour) + ' MYST/hour' : '–');
      $('disconnect').disabled = !ev.connected;
      for (const b of document.querySelectorAll('button.connect')) b.disabled = !!ev.connected;
    }
    const modeText = { proxy: 'proxy (local SOCKS5 proxy)', tun: 'tun (the whole device through the tunnel)' };
    // killSwitchText says whether the kill switch holds the device (GET
    // /connection's kill_switch: tun mode only) and how long it stays.
    function killSwitchText(s) {
      const k = s.kill_switch;
      if (!k) return s.mode === 'tun' ? 'unknown' : 'none (proxy mode: only programs using the proxy are tunnelled)';
      const setting = { connection: 'until disconnect', always: 'until disconnect, also across daemon restarts', off: 'off' }[k.setting] || k.setting;
      const n = (k.exemptions || []).length;
      return (k.active ? 'on: only the tunnel and ' + n + (n === 1 ? ' exemption' : ' exemptions') + ' leave this device'
        : 'off: traffic may leave outside the tunnel') + ' (setting: ' + setting + ')';
    }
    function renderModeChoice() {
      $('ks-choice').hidden = $('conn-mode-choice').value !== 'tun';
    }
    $('conn-mode-choice').addEventListener('change', renderModeChoice);
    // loadModes offers tun mode when GET /capabilities says the daemon
    // can (CAP_NET_ADMIN, ip, nft), and says why not otherwise.
    async function loadModes() {
      try {
        const t = (await api('GET', '/capabilities')).tun_mode || {};
        const sel = $('conn-mode-choice');
        sel.querySelector('option[value="tun"]').disabled = !t.available;
        if (!t.available) sel.value = 'proxy';
        renderModeChoice();
        setText('mode-tun-note', t.available ? 'This daemon can route the whole device (it has CAP_NET_ADMIN).'
          : 'Tun mode is not available: ' + t.reason + '.');
      } catch (e) {
        setText('mode-tun-note', 'Tun mode: could not ask the daemon (' + e.message + ').');
      }
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
        const req = { provider_id: providerID };
        if ($('conn-mode-choice').value === 'tun') {
          req.mode = 'tun';
          req.kill_switch = $('conn-kill-switch-choice').value;
        }
        const s = await api('PUT', '/connection', req);
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
      q.set('sort', $('f-sort').value);
      for (const th of document.querySelectorAll('th[data-sort]')) {
        th.setAttribute('aria-sort', th.dataset.sort === $('f-sort').value ? (th.dataset.sort === 'quality' ? 'descending' : 'ascending') : 'none');
      }
      const body = $('proposals');
      try {
        const ps = await api('GET', '/proposals?' + q); // q has sort at least
        fillTable(body, ps, 8, 'No proposal matches.', (p) => [short(p.provider_id), p.location.country, p.location.ip_type, accessText(p.access),
          myst(p.price.per_hour), myst(p.price.per_gib), qualityText(p.quality)], (tr, p) => {
          tr.dataset.provider = p.provider_id;
          tr.cells[0].className = 'mono';
          tr.cells[0].title = p.provider_id;
          tr.cells[6].className = 'quality';
          tr.cells[6].title = qualityDetail(p.quality);
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
        });
      } catch (e) { showError(e, 'read proposals'); }
    }
    $('filter-form').addEventListener('submit', (ev) => { ev.preventDefault(); loadProposals(); });
    $('f-sort').addEventListener('change', loadProposals);
    // The sortable column headers choose the order too.
    for (const b of document.querySelectorAll('th[data-sort] button')) {
      b.addEventListener('click', () => { $('f-sort').value = b.parentElement.dataset.sort; loadProposals(); });
    }
    // loadSpending fills the totals per day or month (GET
    // /sessions/spending, counted in the browser's time zone).
    async function loadSpending() {
      const by = $('spending-by').value;
      let sp;
      try {
        sp = await api('GET', '/sessions/spending?by=' + by + '&utc_offset=' + String((-new Date().getTimezoneOffset()) || 0));
      } catch (e) {
        if (e.status !== 404 && e.status !== 503) showError(e, 'read the spending history');
        return;
      }
      const sessionsText = (p) => p.sessions + (p.sessions === 1 ? ' session' : ' sessions') + (p.running ? ' (' + p.running + ' running)' : '');
      const t = sp.total;
      setText('spending-total', t.sessions ? sessionsText(t) + ', ' + duration(t.seconds) + ', ' + bytes(t.bytes) + ', ' + myst(t.spent) + ' MYST spent' : 'no sessions yet');
      fillTable($('spending-periods'), sp.periods.slice(0, 31), 5, 'No sessions yet.',
        (p) => [p.period, sessionsText(p), duration(p.seconds), bytes(p.bytes), myst(p.spent)],
        (tr, p) => { tr.dataset.period = p.period; });
    }
    $('spending-by').addEventListener('change', loadSpending);
    $('disconnect').addEventListener('click', async () => {
      clearError();
      setText('conn-status', 'Disconnecting… (final payment)');
      try {
        await api('DELETE', '/connection');
        renderConnection({ connected: false });
        setText('conn-status', 'Disconnected.');
        reloadHistory();
        loadSpending();
      } catch (e) {
        setText('conn-status', '');
        showError(e, 'disconnect');
      }
    });
    loadModes();
    loadConnection();
    loadProposals();
    loadSpending();
    // A session's last payment may land after it ended: re-read.
    setInterval(loadSpending, 10000);
    const reloadHistory = initHistory('/sessions', 'provider', (ss, period) => {
      barChart($('chart-spent'), buckets(ss.filter((s) => s.role === 'consumer'), period, (s) => weiToMYST(s.paid)), chartMYST, 'Spent');
    });
    let wasConnected = false;
    events({
      connection: (ev) => {
        renderConnection(ev);
        if (wasConnected && !ev.connected) { reloadHistory(); loadSpending(); }
        wasConnected = ev.connected;
      },
    });
  }

  // The page's API helper and byte formatting for the cards in their own
  // scripts (nat.js, caps.js).
  window.openmystUI = { api: api, showError: showError, bytes: bytes, inflight: () => inflight };

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
