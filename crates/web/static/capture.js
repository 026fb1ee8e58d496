// A capture's view: click the photo to zoom in where clicked (again to zoom out); keys as
// on the workbench: c confirms, r then a digit rejects with that reason, n opens the queue.
(() => {
  const photo = document.getElementById('photo');
  if (photo) {
    photo.addEventListener('click', (e) => {
      const img = photo.querySelector('img');
      if (photo.classList.toggle('zoomed')) {
        const r = img.getBoundingClientRect();
        img.style.transformOrigin =
          ((e.clientX - r.left) / r.width) * 100 + '% ' + ((e.clientY - r.top) / r.height) * 100 + '%';
      }
    });
  }
  const view = document.getElementById('capture-view');
  const confirm = document.getElementById('confirm-form');
  const reject = document.getElementById('reject-form');
  const reasons = view ? JSON.parse(view.dataset.reasons || '[]') : [];
  let rejecting = false;
  document.addEventListener('keydown', (e) => {
    if (e.target.tagName === 'INPUT' || e.target.tagName === 'SELECT' || e.ctrlKey || e.metaKey || e.altKey) return;
    if (rejecting && /^[1-9]$/.test(e.key) && reject) {
      const code = reasons[Number(e.key) - 1];
      rejecting = false;
      if (code) {
        document.getElementById('reason').value = code;
        reject.submit();
      }
      return;
    }
    rejecting = false;
    if (e.key === 'c' && confirm) confirm.submit();
    else if (e.key === 'r' && reject) rejecting = true;
    else if (e.key === 'n') location = '/review';
  });
})();
