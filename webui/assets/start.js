// openmyst node UI: the provider start form (templates/start.html).
// Shown while the daemon serves no provider: GET /service/options says
// the remembered state and fills the form in (the last provider's options,
// else the daemon's flags), GET /capabilities whether the kernel exit mode
// can work, and PUT /service {"provider": ...} starts it. A refused option
// is shown in words beside its field. Uses the page's API helper (app.js).
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const ui = window.openmystUI;
  if (!ui || !$('start-card')) return;
  // The request's fields and the inputs showing their errors.
  const FIELDS = {
    exit_mode: 'sf-exit', price_per_hour: 'sf-price-hour', price_per_gib: 'sf-price-gib',
    bandwidth: 'sf-bandwidth', max_sessions: 'sf-max-sessions', monthly_quota: 'sf-quota', allow: 'sf-allow',
    country: 'sf-country',
  };
  let filled = false;

  function text(id, v) {
    const el = $(id);
    if (el) el.textContent = v;
  }

  function clearFieldErrors() {
    for (const id of Object.values(FIELDS)) {
      $(id).removeAttribute('aria-invalid');
      text(id + '-err', '');
    }
  }

  function fill(o) {
    $('sf-exit').value = o.exit_mode || 'userspace';
    $('sf-price-hour').value = o.price_per_hour || '';
    $('sf-price-gib').value = o.price_per_gib || '';
    $('sf-bandwidth').value = o.bandwidth || '';
    $('sf-max-sessions').value = o.max_sessions ? String(o.max_sessions) : '';
    $('sf-quota').value = o.monthly_quota || '';
    $('sf-country').value = o.country || '';
    const allow = o.allow || [];
    $('sf-access').value = allow.length ? 'allowlist' : 'public';
    $('sf-allow').value = allow.join('\n');
    renderAccess();
  }

  function renderAccess() {
    $('sf-allow').disabled = $('sf-access').value !== 'allowlist';
  }

  // options reads the form; what the browser can tell is wrong is
  // refused here, in the same words as the API's.
  function options() {
    const bad = {};
    const max = $('sf-max-sessions').value.trim();
    if (max !== '' && !/^[0-9]+$/.test(max)) bad.max_sessions = 'want a whole number, 0 or more';
    const allow = $('sf-access').value === 'allowlist'
      ? $('sf-allow').value.split(/[\s,]+/).filter(Boolean) : [];
    if ($('sf-access').value === 'allowlist' && !allow.length) bad.allow = 'an allow-list needs at least one consumer identity (0x...)';
    return {
      bad: bad,
      o: {
        exit_mode: $('sf-exit').value, price_per_hour: $('sf-price-hour').value.trim(), price_per_gib: $('sf-price-gib').value.trim(),
        bandwidth: $('sf-bandwidth').value.trim(), max_sessions: max === '' ? 0 : Number(max), monthly_quota: $('sf-quota').value.trim(),
        allow: allow, country: $('sf-country').value.trim(),
      },
    };
  }

  function showFieldErrors(fields) {
    let first = null;
    for (const [k, v] of Object.entries(fields || {})) {
      const id = FIELDS[k];
      if (!id) continue;
      $(id).setAttribute('aria-invalid', 'true');
      text(id + '-err', v);
      if (!first) first = $(id);
    }
    if (first) first.focus();
  }

  async function loadCapabilities() {
    try {
      const c = await ui.api('GET', '/capabilities');
      const k = c.kernel_exit || {};
      $('sf-exit').querySelector('option[value="kernel"]').disabled = !k.available;
      text('sf-exit-note', k.available ? '' : 'kernel mode is not available here: ' + k.reason);
      if (!k.available && $('sf-exit').value === 'kernel') $('sf-exit').value = 'userspace';
    } catch (e) {
      ui.showError(e, 'read the daemon\'s capabilities');
    }
  }

  async function load() {
    let s;
    try {
      s = await ui.api('GET', '/service/options');
    } catch (e) {
      ui.showError(e, 'read the provider options');
      return;
    }
    const card = $('start-card');
    const wasHidden = card.hidden;
    card.hidden = s.state === 'on';
    // The on/off switch restarts the last provider: useless without one.
    const toggle = $('service-toggle');
    if (toggle) toggle.hidden = s.state !== 'on' && !s.restartable;
    if (!card.hidden && (wasHidden || !filled)) {
      fill(s.options);
      filled = true;
      loadCapabilities();
    }
  }

  function init() {
    $('sf-access').addEventListener('change', renderAccess);
    $('start-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearFieldErrors();
      const { bad, o } = options();
      if (Object.keys(bad).length) {
        showFieldErrors(bad);
        text('sf-status', 'Not started: ' + Object.entries(bad).map(([k, v]) => k + ': ' + v).join('; ') + '.');
        return;
      }
      $('sf-submit').disabled = true;
      text('sf-status', 'Starting the provider… (registration and the first announcement can take a while)');
      try {
        await ui.api('PUT', '/service', { provider: o });
        text('sf-status', 'Provider started.');
        text('service-toggle-status', 'Provider started with the chosen options.');
        $('start-card').hidden = true;
      } catch (e) {
        text('sf-status', 'Not started: ' + e.message);
        showFieldErrors(e.fields);
      } finally {
        $('sf-submit').disabled = false;
        document.dispatchEvent(new Event('openmyst:service'));
      }
    });
    document.addEventListener('openmyst:service', () => { setTimeout(load, 0); });
    load();
    setInterval(load, 5000);
  }

  document.addEventListener('DOMContentLoaded', init);
})();
