// openmyst node UI: the caps and access policy card (templates/caps.html).
// Everything shown comes from GET /service/caps, re-read every 5 s so that
// the running sessions and the quota's use stay current. Uses the page's
// API helper and formatting from app.js.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const ui = window.openmystUI;
  if (!ui || !$('caps-card')) return;
  const FIELDS = ['caps-bandwidth', 'caps-sessions', 'caps-quota', 'caps-access'];

  function text(id, v) {
    const el = $(id);
    if (el) el.textContent = v;
  }

  // percent is used of limit in percent, with one decimal.
  function percent(used, limit) {
    return (Math.min(used / limit, 1) * 100).toFixed(1) + ' %';
  }

  function render(c) {
    text('caps-status', '');
    text('caps-bandwidth', c.session_bandwidth ? ui.bytes(c.session_bandwidth) + '/s in each direction' : 'none (unlimited)');
    text('caps-sessions', c.sessions + ' running of at most ' + c.max_sessions);
    const q = c.quota || {};
    const used = Number(q.used || 0), limit = Number(q.limit || 0);
    const bar = $('caps-quota-bar');
    const resets = q.resets ? ', resets ' + new Date(q.resets).toLocaleString() : '';
    if (limit > 0) {
      text('caps-quota', ui.bytes(used) + ' used of ' + ui.bytes(limit) + ' (' + percent(used, limit) + ') in ' + q.month + resets +
        (q.exhausted ? ' — used up: new sessions are refused until the next month' : ''));
      bar.max = limit;
      bar.value = Math.min(used, limit);
      bar.hidden = false;
    } else {
      text('caps-quota', 'none (unlimited; ' + ui.bytes(used) + ' used in ' + q.month + ')');
      bar.hidden = true;
    }
    const allow = c.allow || [];
    text('caps-access', c.access === 'allowlist'
      ? 'allow-list: only ' + allow.length + (allow.length === 1 ? ' identity' : ' identities') + ' (' + allow.join(', ') + ')'
      : 'public: any consumer');
  }

  function clear() {
    for (const id of FIELDS) text(id, '–');
    $('caps-quota-bar').hidden = true;
  }

  async function load() {
    try {
      render(await ui.api('GET', '/service/caps'));
    } catch (e) {
      clear();
      if (e.status === 404) {
        text('caps-status', 'No caps: this daemon serves no provider (start one with the form above, or with --provider.serve).');
      } else if (e.status === 503) {
        text('caps-status', 'No caps yet: ' + e.message);
      } else {
        text('caps-status', 'Could not read the caps: ' + e.message);
        ui.showError(e, 'read the caps');
      }
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    load();
    setInterval(load, 5000);
  });
})();
