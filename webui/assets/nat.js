// openmyst node UI: the reachability and NAT card (templates/nat.html).
// Everything shown comes from GET /nat; "Ask peers to check now" is
// POST /nat/check. Uses the page's API helper from app.js.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const ui = window.openmystUI;
  if (!ui || !$('nat-card')) return;

  const ACCESS = {
    'direct': 'directly: peers dial this node',
    'relay-only': 'through a relay only (behind NAT; sessions use the circuit relay and TURN)',
    'unreachable': 'not yet: behind NAT without a relay reservation',
    'unknown': 'unknown yet (AutoNAT has not decided, or NAT traversal is off)',
  };

  function text(id, v) {
    const el = $(id);
    if (el) el.textContent = v;
  }
  function list(id, xs) {
    const el = $(id);
    if (!el) return;
    el.textContent = xs && xs.length ? '' : 'none';
    for (const x of xs || []) {
      const d = document.createElement('div');
      d.textContent = x;
      el.appendChild(d);
    }
  }
  function when(s) {
    return s ? new Date(s).toLocaleString() : '';
  }

  function render(st) {
    text('nat-access', ACCESS[st.access] || st.access);
    text('nat-autonat', st.reachability + (st.reachability_since ? ' since ' + when(st.reachability_since) : ''));
    if (st.mapping) {
      const m = st.mapping;
      text('nat-mapping', m.behavior + (m.public_addr ? ', public address ' + m.public_addr : '') +
        (m.error ? ' (' + m.error + ')' : '') + ' — checked ' + when(m.checked_at));
    } else {
      text('nat-mapping', 'not checked (no STUN server configured)');
    }
    text('nat-type', 'TCP ' + st.nat_type_tcp + ', UDP ' + st.nat_type_udp);
    const pm = st.port_mappings || [];
    text('nat-portmaps', pm.length ? pm.map((m) => m.protocol + ' ' + m.external + ' → :' + m.internal_port + ' (' + m.method + ')').join(', ') : 'none');
    list('nat-relay', st.relay_addrs);
    list('nat-direct', st.direct_addrs);
    renderCheck(st.peer_check);
  }

  function renderCheck(c) {
    const body = $('nat-checks');
    if (!c) {
      text('nat-peercheck', 'not run yet');
      return;
    }
    text('nat-peercheck', 'reachable from ' + c.reachable + ' of ' + c.asked + ' peers (' + when(c.checked_at) + ')');
    body.textContent = '';
    for (const r of c.results || []) {
      const tr = document.createElement('tr');
      const cells = [r.peer.length > 16 ? r.peer.slice(0, 8) + '…' + r.peer.slice(-6) : r.peer,
        r.reachable ? 'reached this node' : 'failed: ' + (r.error || 'no answer'),
        r.path || '–', r.reachable ? (r.rtt_ms < 1 ? '< 1 ms' : r.rtt_ms + ' ms') : '–'];
      for (const v of cells) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  async function load() {
    try {
      render(await ui.api('GET', '/nat'));
    } catch (e) {
      ui.showError(e, 'read the reachability status');
    }
  }

  $('nat-check').addEventListener('click', async () => {
    const btn = $('nat-check');
    btn.disabled = true;
    text('nat-check-status', 'Asking peers to connect to this node…');
    try {
      const c = await ui.api('POST', '/nat/check');
      text('nat-check-status', 'Done: reachable from ' + c.reachable + ' of ' + c.asked + ' peers.');
      await load();
    } catch (e) {
      text('nat-check-status', 'Not checked: ' + e.message);
    } finally {
      btn.disabled = false;
    }
  });

  document.addEventListener('DOMContentLoaded', () => {
    load();
    setInterval(load, 30000);
  });
})();
