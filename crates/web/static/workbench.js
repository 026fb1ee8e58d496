// citywatch review workbench: the queue decided from the keyboard, without page loads.
// j/k or the arrows move, c confirms, r then a digit rejects with that reason, x selects,
// Enter opens the capture; c and r apply to the selection when there is one. Decisions go
// to the JSON API with the page's CSRF token; a decided card leaves the grid and the next
// one takes the focus, so the operator's order and filters stay as they were.
(() => {
  'use strict';
  const grid = document.getElementById('grid');
  if (!grid) return;
  const csrf = document.querySelector('meta[name=csrf]').content;
  const reasons = JSON.parse(grid.dataset.reasons || '[]');
  const total = document.getElementById('total');
  const range = document.getElementById('range');
  const status = document.getElementById('status');
  const cards = () => [...grid.querySelectorAll('li.card')];
  let at = 0;
  let rejecting = false;
  let busy = false;

  function focus(i) {
    const cs = cards();
    if (!cs.length) return;
    at = Math.max(0, Math.min(i, cs.length - 1));
    cs.forEach((c, k) => c.classList.toggle('focus', k === at));
    cs[at].scrollIntoView({ block: 'nearest' });
  }

  // Cards in one row of the grid, for up and down.
  function columns() {
    const cs = cards();
    if (!cs.length) return 1;
    const top = cs[0].offsetTop;
    return Math.max(1, cs.filter((c) => c.offsetTop === top).length);
  }

  function say(text, bad) {
    status.textContent = text;
    status.classList.toggle('error', !!bad);
  }

  // Whether the capture still waits for review (null: cannot tell).
  async function stillPending(id) {
    const r = await fetch('/api/captures/' + encodeURIComponent(id));
    if (!r.ok) return null;
    return (await r.json()).capture.status === 'pending_review';
  }

  async function decide(kind, reason) {
    const cs = cards();
    const selected = cs.filter((c) => c.classList.contains('selected'));
    const targets = selected.length ? selected : cs[at] ? [cs[at]] : [];
    if (!targets.length || busy) return;
    busy = true;
    // Afterwards the focus goes to what then stands where the first decided card stood.
    const from = cs.indexOf(targets[0]);
    let done = 0;
    for (const c of targets) {
      const id = c.dataset.id;
      const init = { method: 'POST', headers: { 'X-CSRF-Token': csrf } };
      if (kind === 'reject') {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify({ reason });
      }
      const r = await fetch('/api/captures/' + encodeURIComponent(id) + '/' + kind, init);
      const gone = () => {
        c.remove();
        // A capped total ("10000+") stays as it is: the exact figure is not known.
        if (!total.textContent.endsWith('+')) {
          total.textContent = String(Math.max(0, Number(total.textContent) - 1));
        }
        // The captures shown on this page, counted again.
        if (range) {
          const first = Number(range.dataset.first);
          const n = cards().length;
          range.textContent = n ? first + '–' + (first + n - 1) : '';
        }
      };
      if (r.ok) {
        gone();
        done += 1;
      } else if (r.status === 409 && (await stillPending(id)) === false) {
        // Another operator decided it first: it is no longer in the queue.
        say(id + ': ' + (await r.text()));
        gone();
      } else {
        c.classList.add('failed');
        c.classList.remove('selected');
        say(id + ': ' + (await r.text()), true);
      }
    }
    busy = false;
    if (done) say(grid.dataset[kind] + (done > 1 ? ' ×' + done : ''));
    focus(from);
    // The page is used up but the queue is not: the next page's captures.
    if (!cards().length && Number(total.textContent) > 0) location.reload();
  }

  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest('input, select, textarea')) return;
    if (rejecting) {
      rejecting = false;
      const n = Number(e.key);
      if (Number.isInteger(n) && n >= 1 && n <= reasons.length) decide('reject', reasons[n - 1]);
      else say('');
      e.preventDefault();
      return;
    }
    switch (e.key) {
      case 'j': case 'ArrowRight': focus(at + 1); break;
      case 'k': case 'ArrowLeft': focus(at - 1); break;
      case 'ArrowDown': focus(at + columns()); break;
      case 'ArrowUp': focus(at - columns()); break;
      case 'c': decide('confirm'); break;
      case 'r':
        rejecting = true;
        say(document.getElementById('reasons').textContent.trim());
        break;
      case 'x': { const c = cards()[at]; if (c) c.classList.toggle('selected'); break; }
      case 'Enter': case 'o': { const c = cards()[at]; if (c) location = c.querySelector('a').href; break; }
      default: return;
    }
    e.preventDefault();
  });
  focus(0);
})();
