// The cameras page's zone editor (admins): pick a zone, press "Draw", click each corner on
// the camera's picture, then "Save". Or press "Edit the corners" to change the zone as it
// stands: drag a corner to move it, click beside an edge to add a corner there, double-click
// a corner to remove it (three stay at least), then "Save". "Draw a new mask" adds a mask
// beyond the config's zones (named drawn-mask-<n>, ignored by every rule); resetting a drawn
// mask removes it. The polygon goes to PUT /api/cameras/{id}/zones/{zone};
// the server checks it (inside the frame, not crossing itself), stores it over the
// config's, audits it, and the running camera uses it from its next frame. "Back to the
// config's zone" deletes the drawn one. Operators draw a fixture (a bench, a shop's
// chairs) as a box: "Draw a fixture", then two opposite corners; it is added as the form on
// the page would add it.
(() => {
  const csrf = document.querySelector('meta[name=csrf]').content;
  for (const ed of document.querySelectorAll('.zone-editor')) {
    const camera = ed.dataset.camera;
    const live = document.querySelector('.live[data-camera="' + CSS.escape(camera) + '"]');
    if (!live) continue;
    const svg = live.querySelector('svg');
    const pick = ed.querySelector('.zone-pick');
    const draw = ed.querySelector('.zone-draw');
    const edit = ed.querySelector('.zone-edit');
    const save = ed.querySelector('.zone-save');
    const reset = ed.querySelector('.zone-reset');
    const status = ed.querySelector('.zone-status');
    const fixtureDraw = ed.querySelector('.fixture-draw');
    const fixtureLabel = ed.querySelector('.fixture-label');
    let points = null;
    let line = null;
    // Editing the corners: their handles, and the one being dragged.
    let handles = null;
    let dragging = null;
    let pressedHandle = false;
    let corners = null;
    let box = null;
    const url = () => '/api/cameras/' + encodeURIComponent(camera) + '/zones/' +
      encodeURIComponent(pick.value);
    const polygonOf = (zone) =>
      svg.querySelector('polygon[data-zone="' + CSS.escape(zone) + '"]');
    const show = (zone) => {
      let p = polygonOf(zone.zone);
      if (zone.source === 'removed') {
        if (p) p.remove();
        for (const o of pick.options) if (o.value === zone.zone) o.remove();
        return;
      }
      const mask = zone.zone.startsWith('drawn-mask-') || (p && p.classList.contains('mask'));
      if (!p) {
        p = document.createElementNS('http://www.w3.org/2000/svg', 'polygon');
        p.dataset.zone = zone.zone;
        const title = document.createElementNS('http://www.w3.org/2000/svg', 'title');
        title.textContent = zone.zone;
        p.appendChild(title);
        svg.insertBefore(p, svg.firstChild);
      }
      p.setAttribute('points', zone.polygon.map((q) => q[0] + ',' + q[1]).join(' '));
      p.setAttribute('class', (zone.source === 'drawn' ? 'drawn' : 'config') + (mask ? ' mask' : ''));
    };
    const stop = () => {
      points = null;
      corners = null;
      if (handles) handles.forEach((h) => h.remove());
      handles = null;
      dragging = null;
      if (line) line.remove();
      if (box) box.remove();
      line = null;
      box = null;
      live.classList.remove('editing');
      if (save) save.disabled = true;
    };
    const at = (e) => {
      const r = live.getBoundingClientRect();
      const x = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
      const y = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height));
      return [Number(x.toFixed(4)), Number(y.toFixed(4))];
    };
    if (fixtureDraw) fixtureDraw.addEventListener('click', () => {
      stop();
      corners = [];
      box = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      box.setAttribute('class', 'proposed');
      svg.appendChild(box);
      live.classList.add('editing');
      status.textContent = ed.dataset.drawingFixture;
    });
    // The fixtures form the page posts (add, accept, dismiss); the page reloads with it.
    const postFixtures = async (fields) => {
      const r = await fetch('/cameras/' + encodeURIComponent(camera) + '/fixtures', {
        method: 'POST', body: new URLSearchParams({ csrf, ...fields }),
        headers: { 'X-CSRF-Token': csrf },
      });
      if (r.ok) {
        location.reload();
      } else {
        status.textContent = r.status + ': ' + (await r.text());
        stop();
      }
    };
    const addFixture = () => {
      const [a, b] = corners;
      return postFixtures({
        label: fixtureLabel.value || 'fixture',
        x1: Math.min(a[0], b[0]), y1: Math.min(a[1], b[1]),
        x2: Math.max(a[0], b[0]), y2: Math.max(a[1], b[1]),
      });
    };
    // A proposed fixture clicked on the picture: accept or dismiss it there.
    for (const rect of svg.querySelectorAll('rect.proposed')) {
      rect.addEventListener('click', (e) => {
        if (points || corners) return;
        e.stopPropagation();
        const i = rect.dataset.index;
        status.textContent = (rect.querySelector('title') || {}).textContent + ' ';
        for (const [field, word] of [['accept', ed.dataset.accept], ['dismiss', ed.dataset.dismiss]]) {
          const b = document.createElement('button');
          b.type = 'button';
          b.className = 'proposed-' + field;
          b.textContent = word;
          b.addEventListener('click', () => postFixtures({ [field]: i }));
          status.appendChild(b);
        }
      });
    }
    if (!draw) {
      live.addEventListener('click', (e) => {
        if (!corners) return;
        corners.push(at(e));
        if (corners.length === 2) addFixture();
      });
      continue;
    }
    // A new mask: the next free drawn-mask-<n>, picked, then drawn like any zone.
    const maskNew = ed.querySelector('.mask-new');
    if (maskNew) maskNew.addEventListener('click', () => {
      let n = 1;
      for (const o of pick.options) {
        const m = /^drawn-mask-(\d+)$/.exec(o.value);
        if (m) n = Math.max(n, Number(m[1]) + 1);
      }
      const o = document.createElement('option');
      o.value = o.textContent = 'drawn-mask-' + n;
      pick.appendChild(o);
      pick.value = o.value;
      draw.click();
    });
    draw.addEventListener('click', () => {
      if (!pick.value) return;
      stop();
      points = [];
      line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
      line.setAttribute('class', 'drawing');
      svg.appendChild(line);
      live.classList.add('editing');
      status.textContent = ed.dataset.drawing;
    });
    const redraw = () => {
      const shown = points.concat(points.length > 2 ? [points[0]] : []);
      line.setAttribute('points', shown.map((q) => q[0] + ',' + q[1]).join(' '));
      save.disabled = points.length < 3;
      if (!handles) return;
      handles.forEach((h) => h.remove());
      handles = points.map((q, i) => {
        const h = document.createElementNS('http://www.w3.org/2000/svg', 'ellipse');
        h.setAttribute('class', 'handle');
        h.setAttribute('cx', q[0]);
        h.setAttribute('cy', q[1]);
        // Round on the screen whatever the picture's shape (the SVG is stretched).
        const r = live.getBoundingClientRect();
        h.setAttribute('rx', 7 / r.width);
        h.setAttribute('ry', 7 / r.height);
        h.dataset.index = i;
        h.addEventListener('pointerdown', (e) => {
          e.preventDefault();
          e.stopPropagation();
          dragging = i;
          // The click that ends this press moves the corner only: it adds none.
          pressedHandle = true;
          live.setPointerCapture(e.pointerId);
        });
        h.addEventListener('dblclick', (e) => {
          e.stopPropagation();
          if (points.length > 3) {
            points.splice(i, 1);
            redraw();
          }
        });
        svg.appendChild(h);
        return h;
      });
    };
    live.addEventListener('pointermove', (e) => {
      if (dragging === null || !points) return;
      points[dragging] = at(e);
      redraw();
    });
    live.addEventListener('pointerdown', () => {
      pressedHandle = false;
    });
    live.addEventListener('pointerup', (e) => {
      if (dragging === null) return;
      if (live.hasPointerCapture(e.pointerId)) live.releasePointerCapture(e.pointerId);
      dragging = null;
    });
    // The distance from q to the segment a–b, in screen pixels.
    const apart = (q, a, b) => {
      const r = live.getBoundingClientRect();
      const [px, py, ax, ay, bx, by] = [q[0] * r.width, q[1] * r.height, a[0] * r.width,
        a[1] * r.height, b[0] * r.width, b[1] * r.height];
      const [dx, dy] = [bx - ax, by - ay];
      const len = dx * dx + dy * dy;
      const t = len ? Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len)) : 0;
      return Math.hypot(px - ax - t * dx, py - ay - t * dy);
    };
    if (edit) edit.addEventListener('click', () => {
      const p = polygonOf(pick.value);
      if (!p) return;
      stop();
      points = p.getAttribute('points').trim().split(/\s+/)
        .map((xy) => xy.split(',').map(Number));
      line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
      line.setAttribute('class', 'drawing');
      svg.appendChild(line);
      handles = [];
      live.classList.add('editing');
      status.textContent = ed.dataset.editing;
      redraw();
    });
    live.addEventListener('click', (e) => {
      if (corners) {
        corners.push(at(e));
        if (corners.length === 2) addFixture();
        return;
      }
      if (!points) return;
      if (handles) {
        if (pressedHandle) {
          pressedHandle = false;
          return;
        }
        // A new corner on the nearest edge.
        const q = at(e);
        let best = 0;
        for (let i = 1; i < points.length; i++) {
          const j = (i + 1) % points.length;
          const bj = (best + 1) % points.length;
          if (apart(q, points[i], points[j]) < apart(q, points[best], points[bj])) best = i;
        }
        points.splice(best + 1, 0, q);
        redraw();
        return;
      }
      points.push(at(e));
      redraw();
    });
    const send = async (method, body) => {
      const init = { method, headers: { 'X-CSRF-Token': csrf } };
      if (body) {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
      }
      const r = await fetch(url(), init);
      if (!r.ok) {
        status.textContent = r.status + ': ' + (await r.text());
        return null;
      }
      return r.json();
    };
    save.addEventListener('click', async () => {
      if (!points || points.length < 3) return;
      const zone = await send('PUT', { polygon: points });
      if (zone) {
        stop();
        show(zone);
        status.textContent = ed.dataset.saved;
      }
    });
    reset.addEventListener('click', async () => {
      if (!pick.value) return;
      stop();
      const zone = await send('DELETE');
      if (zone) {
        show(zone);
        status.textContent = zone.source === 'removed' ? ed.dataset.removed : ed.dataset.reset;
      }
    });
  }
})();
