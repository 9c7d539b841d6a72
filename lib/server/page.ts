/**
 * `GET /`: a page to try the service by hand. Plain HTML + JS, no build
 * step: pick or drop an image, see it with its top-5 labels as bars and the
 * round-trip latency. It posts the file as a raw body to /v1/classify.
 */
export const DEMO_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mobilenet-xnnpack</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; padding: 24px; color: #1d1d1f; background: #f5f5f7; }
  main { max-width: 720px; margin: 0 auto; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  #model { color: #666; margin: 0 0 16px; font-size: 13px; }
  #drop { display: flex; gap: 20px; align-items: flex-start; background: #fff; border: 2px dashed #b0b0b8; border-radius: 10px; padding: 16px; }
  #drop.over { border-color: #0a66d8; background: #eef5ff; }
  #preview { width: 224px; height: 224px; object-fit: cover; border-radius: 6px; background: #e8e8ed; flex: none; }
  #side { flex: 1; min-width: 0; }
  ol { list-style: none; padding: 0; margin: 12px 0 0; }
  li { margin: 0 0 8px; }
  .row { display: flex; justify-content: space-between; font-size: 14px; }
  .bar { height: 8px; background: #e8e8ed; border-radius: 4px; overflow: hidden; }
  .bar span { display: block; height: 100%; background: #0a66d8; }
  #status { color: #666; font-size: 13px; min-height: 1.4em; }
  #status.error { color: #c0262d; }
</style>
</head>
<body>
<main>
  <h1>MobileNet on XNNPACK</h1>
  <p id="model">loading model info…</p>
  <div id="drop">
    <img id="preview" alt="">
    <div id="side">
      <input id="file" type="file" accept="image/*">
      <div>or drop an image here</div>
      <div id="status"></div>
      <ol id="results"></ol>
    </div>
  </div>
</main>
<script>
const $ = (id) => document.getElementById(id);
fetch('v1/models').then((r) => r.json()).then((j) => {
  const m = j.models[0];
  $('model').textContent = m.name + ' · ' + m.architecture + ' · ' + m.inputShape.join('×') + ' input · ' + m.classes + ' classes · ' + m.parameters.toLocaleString('en') + ' parameters';
}).catch(() => { $('model').textContent = ''; });

async function classify(file) {
  $('results').replaceChildren();
  $('status').className = '';
  $('status').textContent = 'classifying…';
  $('preview').src = URL.createObjectURL(file);
  const started = performance.now();
  try {
    const res = await fetch('v1/classify?top=5', { method: 'POST', headers: { 'content-type': file.type || 'application/octet-stream' }, body: file });
    const body = await res.json();
    const ms = performance.now() - started;
    if (!res.ok) throw new Error(res.status + ': ' + body.message);
    $('status').textContent = 'top 5 in ' + ms.toFixed(0) + ' ms';
    $('status').dataset.ms = ms.toFixed(1);
    for (const p of body.predictions) {
      const li = document.createElement('li');
      const row = document.createElement('div');
      row.className = 'row';
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = p.label.replace(/_/g, ' ');
      label.dataset.index = p.index;
      const prob = document.createElement('span');
      prob.className = 'prob';
      prob.textContent = (p.probability * 100).toFixed(1) + '%';
      row.append(label, prob);
      const bar = document.createElement('div');
      bar.className = 'bar';
      const fill = document.createElement('span');
      fill.style.width = Math.max(0, Math.min(100, p.probability * 100)) + '%';
      bar.append(fill);
      li.append(row, bar);
      $('results').append(li);
    }
  } catch (e) {
    $('status').className = 'error';
    $('status').textContent = e.message;
  }
}
$('file').addEventListener('change', (e) => { if (e.target.files[0]) classify(e.target.files[0]); });
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  if (e.dataTransfer.files[0]) classify(e.dataTransfer.files[0]);
});
</script>
</body>
</html>
`;
