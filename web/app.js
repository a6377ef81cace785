// The page at GET /: open a raster, click / drag a box / type a prompt, see the masks on a map.
// Hand-written on OpenLayers (the `ol` global from ui/ol.js); talks only to this server, with
// relative URLs (so the page also works behind a path prefix).
/* global ol */
'use strict';

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = 'samgeo-api-key';

/** What the page holds: the open image, the prompts given so far, the last result. */
const state = {
  image: null,        // {name, file, id?, width, height, georef, crs, bounds_wgs84}
  prompts: [],        // [{kind:'point', coord:[x,y], label:1|0}, {kind:'box', box:[x0,y0,x1,y1]}]
  lastRequest: null,  // {path, fields, model} or {job: true, model} of the result shown, to download it in another format
  lastGeojson: null,
  models: [],         // [{version, id}]
  defaults: {},
  config: {},
  busy: 0,
  results: 0,         // results shown so far (for tests and scripts)
};

// ---------------------------------------------------------------------------------------------
// HTTP: every call sends the API key once the user gave one; a 401 asks for it (once).

/** An error answered by the server, with its `detail`. */
class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

let keyPrompt = null;
function askForKey() {
  if (keyPrompt) return keyPrompt;
  keyPrompt = new Promise((resolve) => {
    const dialog = $('key-dialog');
    const done = (value) => { dialog.close(); keyPrompt = null; resolve(value); };
    $('key-form').onsubmit = (e) => { e.preventDefault(); done($('key').value.trim() || null); };
    $('key-cancel').onclick = () => done(null);
    dialog.showModal();
    $('key').focus();
  });
  return keyPrompt;
}

/** fetch() relative to the page, with the key; on 401 asks for a key and tries once more. */
async function call(path, options = {}, retried = false) {
  const headers = new Headers(options.headers || {});
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) headers.set('Authorization', `Bearer ${key}`);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401 && !retried) {
    const given = await askForKey();
    if (given) {
      sessionStorage.setItem(KEY_STORAGE, given);
      return call(path, options, true);
    }
  }
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.detail !== undefined) {
        detail = typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail);
      }
    } catch (_) { /* not JSON: keep the status line */ }
    throw new ApiError(response.status, detail);
  }
  return response;
}

/** Runs `work` with the busy indicator shown; errors go to the message line. */
async function busy(label, work) {
  state.busy += 1;
  $('busy').textContent = `${label}…`;
  $('busy').hidden = false;
  document.body.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } catch (e) {
    showError(e);
    return undefined;
  } finally {
    state.busy -= 1;
    if (state.busy === 0) {
      $('busy').hidden = true;
      document.body.removeAttribute('aria-busy');
    }
  }
}

function showError(e) {
  const m = $('message');
  m.className = 'message error';
  m.textContent = e instanceof ApiError ? `Error ${e.status}: ${e.message}` : `Error: ${e.message || e}`;
}

function showInfo(text) {
  const m = $('message');
  m.className = 'message';
  m.textContent = text;
}

// ---------------------------------------------------------------------------------------------
// The map.

const pixelProjection = (w, h) => new ol.proj.Projection({
  code: 'samgeo-pixels', units: 'pixels', extent: [0, -h, w, 0],
});

const promptSource = new ol.source.Vector();
const resultSource = new ol.source.Vector();
const resultStyle = (feature) => new ol.style.Style({
  stroke: new ol.style.Stroke({ color: feature.get('selected') ? '#ffd54a' : '#00e5ff', width: feature.get('selected') ? 3 : 2 }),
  fill: new ol.style.Fill({ color: 'rgba(0, 229, 255, 0.25)' }),
});
const promptStyle = (feature) => {
  if (feature.get('kind') === 'box') {
    return new ol.style.Style({ stroke: new ol.style.Stroke({ color: '#ffd54a', width: 2, lineDash: [6, 4] }) });
  }
  return new ol.style.Style({
    image: new ol.style.Circle({
      radius: 6,
      fill: new ol.style.Fill({ color: feature.get('label') === 1 ? '#2ecc40' : '#ff4136' }),
      stroke: new ol.style.Stroke({ color: '#fff', width: 2 }),
    }),
  });
};

const resultLayer = new ol.layer.Vector({ source: resultSource, style: resultStyle, zIndex: 10 });
const promptLayer = new ol.layer.Vector({ source: promptSource, style: promptStyle, zIndex: 11 });
let imageLayer = null;
let basemapLayer = null;

const map = new ol.Map({
  target: 'map',
  layers: [resultLayer, promptLayer],
  view: new ol.View({ center: [0, 0], zoom: 2 }),
  controls: ol.control.defaults.defaults({ attributionOptions: { collapsible: true } }),
});

const dragBox = new ol.interaction.DragBox({ condition: ol.events.condition.noModifierKeys });
dragBox.setActive(false);
map.addInteraction(dragBox);
dragBox.on('boxend', () => {
  if (!state.image) return;
  const extent = dragBox.getGeometry().getExtent();
  const box = toImageBox(extent);
  const feature = new ol.Feature({ geometry: ol.geom.Polygon.fromExtent(extent), kind: 'box' });
  promptSource.addFeature(feature);
  state.prompts.push({ kind: 'box', box, feature });
  runPrompts();
});

function dragPan() {
  return map.getInteractions().getArray().find((i) => i instanceof ol.interaction.DragPan);
}

function setTool(tool) {
  const radio = document.querySelector(`input[name=tool][value=${tool}]`);
  if (radio) radio.checked = true;
  dragBox.setActive(tool === 'box');
  const pan = dragPan();
  if (pan) pan.setActive(tool !== 'box');
  $('map').style.cursor = tool === 'pan' ? 'grab' : 'crosshair';
}

/** True when the open image is shown in a geographic view (it has a CRS); else pixel space. */
const georeferenced = () => Boolean(state.image && state.image.georef);

/** Map coordinate → what the server takes: [lon, lat] (point_crs EPSG:4326) or pixel [col, row]. */
function toImagePoint(coord) {
  if (georeferenced()) return ol.proj.toLonLat(coord, map.getView().getProjection());
  return [coord[0], -coord[1]];
}

function toImageBox(extent) {
  if (georeferenced()) {
    const [x0, y0, x1, y1] = ol.proj.transformExtent(extent, map.getView().getProjection(), 'EPSG:4326');
    return [x0, y0, x1, y1];
  }
  return [extent[0], -extent[3], extent[2], -extent[1]];
}

map.on('singleclick', (event) => {
  const tool = document.querySelector('input[name=tool]:checked').value;
  if (tool !== 'point' || !state.image) return;
  const label = event.originalEvent.shiftKey ? 0 : 1;
  const feature = new ol.Feature({ geometry: new ol.geom.Point(event.coordinate), kind: 'point', label });
  promptSource.addFeature(feature);
  state.prompts.push({ kind: 'point', coord: toImagePoint(event.coordinate), label, feature });
  runPrompts();
});

// Score and area on hover.
map.on('pointermove', (event) => {
  const tip = $('tooltip');
  if (event.dragging) { tip.hidden = true; return; }
  const feature = map.forEachFeatureAtPixel(event.pixel, (f) => f, { layerFilter: (l) => l === resultLayer });
  if (!feature) { tip.hidden = true; return; }
  tip.textContent = describe(feature);
  tip.style.left = `${event.pixel[0]}px`;
  tip.style.top = `${event.pixel[1]}px`;
  tip.hidden = false;
});

function describe(feature) {
  const score = feature.get('score');
  const area = feature.get('area');
  const parts = [`#${feature.get('value') ?? ''}`];
  if (typeof score === 'number') parts.push(`score ${score.toFixed(3)}`);
  if (typeof area === 'number') parts.push(`area ${area} px`);
  return parts.join(' · ');
}

// ---------------------------------------------------------------------------------------------
// Opening an image: stored on the server (POST images) when it offers that, else kept here and
// uploaded with each request.

async function openImage(file) {
  clearAll();
  state.image = null;
  $('image-name').textContent = file.name;
  await busy('Opening', async () => {
    let stored = null;
    try {
      const form = new FormData();
      form.append('file', file);
      stored = await (await call('images', { method: 'POST', body: form })).json();
    } catch (e) {
      if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 405)) throw e;
    }
    if (stored) {
      state.image = {
        name: file.name, file, id: stored.image_id, width: stored.width, height: stored.height,
        crs: stored.crs, bounds_wgs84: stored.bounds_wgs84,
        georef: Boolean(stored.crs && stored.bounds_wgs84),
      };
      await showStoredImage(state.image);
    } else {
      state.image = { name: file.name, file, georef: false };
      await showLocalImage(state.image);
    }
    $('image-name').textContent = `${file.name}` + (state.image.width ? ` (${state.image.width}×${state.image.height}${state.image.crs ? `, ${shortCrs(state.image.crs)}` : ''})` : '');
    showInfo(georeferenced()
      ? 'Click an object (Shift+click: background), drag a box (B), or type a prompt.'
      : 'No CRS: shown in pixel space. Click an object, drag a box (B), or type a prompt.');
  });
}

function shortCrs(crs) {
  const m = /AUTHORITY\["EPSG","(\d+)"\]\]$/.exec(crs) || /^(EPSG:\d+)$/.exec(crs);
  return m ? (m[1].startsWith('EPSG') ? m[1] : `EPSG:${m[1]}`) : 'georeferenced';
}

/** The image fields of a segment request: the one place that decides upload vs stored image. */
function appendImage(form) {
  if (state.image.id) form.append('image_id', state.image.id);
  else form.append('file', state.image.file, state.image.name);
}

/** Loads an image URL through call() (so the key is sent) into an <img> as a blob URL. */
async function loadThroughApi(img, url) {
  try {
    const blob = await (await call(url)).blob();
    const objectUrl = URL.createObjectURL(blob);
    img.addEventListener('load', () => URL.revokeObjectURL(objectUrl), { once: true });
    img.src = objectUrl;
  } catch (e) {
    img.src = 'data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEAAAAALAAAAAABAAEAAAIBRAA7';
  }
}

function replaceImageLayer(layer, projection, extent) {
  if (imageLayer) map.removeLayer(imageLayer);
  imageLayer = layer;
  if (layer) map.addLayer(layer);
  const view = new ol.View({ projection, center: ol.extent.getCenter(extent), zoom: 2, maxZoom: 28 });
  map.setView(view);
  if (basemapLayer) basemapLayer.setVisible(projection.getCode && projection.getCode() === 'EPSG:3857');
  view.fit(extent, { padding: [20, 20, 20, 20] });
  setTool(document.querySelector('input[name=tool]:checked').value);
}

/** A stored image: its server-rendered preview (or tiles when large) in place on the map. */
async function showStoredImage(image) {
  const base = `images/${encodeURIComponent(image.id)}`;
  if (image.georef) {
    const [w, s, e, n] = image.bounds_wgs84;
    const extent = ol.proj.transformExtent([w, s, e, n], 'EPSG:4326', 'EPSG:3857');
    const large = image.width * image.height > 4096 * 4096;
    let layer;
    if (large) {
      layer = new ol.layer.Tile({
        source: new ol.source.XYZ({
          url: `${base}/tiles/{z}/{x}/{y}.png`,
          tileLoadFunction: (tile, src) => loadThroughApi(tile.getImage(), src),
          maxZoom: 24,
        }),
        extent,
      });
    } else {
      const response = await call(`${base}/preview.png`);
      const bounds = (response.headers.get('X-Samgeo-Bounds') || '').split(',').map(Number);
      const previewExtent = bounds.length === 4 && bounds.every(Number.isFinite) ? bounds : extent;
      const url = URL.createObjectURL(await response.blob());
      layer = new ol.layer.Image({
        source: new ol.source.ImageStatic({ url, imageExtent: previewExtent, projection: 'EPSG:3857' }),
      });
    }
    replaceImageLayer(layer, ol.proj.get('EPSG:3857'), extent);
  } else {
    const projection = pixelProjection(image.width, image.height);
    const response = await call(`${base}/preview.png`);
    const url = URL.createObjectURL(await response.blob());
    const layer = new ol.layer.Image({
      source: new ol.source.ImageStatic({ url, imageExtent: projection.getExtent(), projection }),
    });
    replaceImageLayer(layer, projection, projection.getExtent());
  }
}

/** Without an image store: PNG and JPEG are drawn by the browser in pixel space; a GeoTIFF is
 * outlined in pixel space from its header (browsers do not draw TIFF). */
async function showLocalImage(image) {
  const url = URL.createObjectURL(image.file);
  let size = null;
  let layer = null;
  const img = new Image();
  const drawn = await new Promise((resolve) => {
    img.onload = () => resolve(true);
    img.onerror = () => resolve(false);
    img.src = url;
  });
  if (drawn) {
    size = [img.naturalWidth, img.naturalHeight];
  } else {
    URL.revokeObjectURL(url);
    const header = tiffHeader(await image.file.arrayBuffer());
    if (!header) throw new Error(`cannot read ${image.name} as a GeoTIFF, PNG or JPEG image`);
    size = [header.width, header.height];
    // Results come back in the raster's CRS: turned into pixels with this grid.
    image.grid = header.grid;
  }
  [image.width, image.height] = size;
  const projection = pixelProjection(size[0], size[1]);
  if (drawn) {
    layer = new ol.layer.Image({
      source: new ol.source.ImageStatic({ url, imageExtent: projection.getExtent(), projection }),
    });
  } else {
    const outline = new ol.Feature({ geometry: ol.geom.Polygon.fromExtent(projection.getExtent()) });
    layer = new ol.layer.Vector({
      source: new ol.source.Vector({ features: [outline] }),
      style: new ol.style.Style({ stroke: new ol.style.Stroke({ color: '#5b6675', width: 1 }), fill: new ol.style.Fill({ color: '#cfd5dd' }) }),
    });
  }
  replaceImageLayer(layer, projection, projection.getExtent());
}

/** Width, height and (north-up) pixel grid from a TIFF header, or null: tags 256 and 257,
 * GeoTIFF's ModelPixelScale (33550) and ModelTiepoint (33922) of the first IFD. */
function tiffHeader(buffer) {
  const view = new DataView(buffer);
  if (view.byteLength < 16) return null;
  const order = view.getUint16(0);
  const little = order === 0x4949;
  if (!little && order !== 0x4d4d) return null;
  const magic = view.getUint16(2, little);
  const big = magic === 43;
  if (magic !== 42 && !big) return null;
  let offset = big ? Number(view.getBigUint64(8, little)) : view.getUint32(4, little);
  const count = big ? Number(view.getBigUint64(offset, little)) : view.getUint16(offset, little);
  offset += big ? 8 : 2;
  const entrySize = big ? 20 : 12;
  const tags = {};
  for (let i = 0; i < count && offset + entrySize <= view.byteLength; i += 1, offset += entrySize) {
    const tag = view.getUint16(offset, little);
    const type = view.getUint16(offset + 2, little);
    const n = big ? Number(view.getBigUint64(offset + 4, little)) : view.getUint32(offset + 4, little);
    const field = offset + (big ? 12 : 8);
    if (type === 3 || type === 4) {
      tags[tag] = type === 3 ? view.getUint16(field, little) : view.getUint32(field, little);
    } else if (type === 12) {
      const at = big ? Number(view.getBigUint64(field, little)) : view.getUint32(field, little);
      const values = [];
      for (let k = 0; k < n && at + 8 * (k + 1) <= view.byteLength; k += 1) values.push(view.getFloat64(at + 8 * k, little));
      tags[tag] = values;
    }
  }
  const [width, height] = [tags[256], tags[257]];
  if (!width || !height) return null;
  const scale = tags[33550];
  const tie = tags[33922];
  const grid = scale && tie && scale.length >= 2 && tie.length >= 6
    ? { x0: tie[3] - tie[0] * scale[0], y0: tie[4] + tie[1] * scale[1], sx: scale[0], sy: scale[1] }
    : null;
  return { width, height, grid };
}

// ---------------------------------------------------------------------------------------------
// Segmenting.

function selectedModel() {
  const [version, id] = ($('model').value || '').split('|');
  return { version, id };
}

/** Common fields: the image, the model, GeoJSON in WGS84 when the image has a CRS. */
function baseFields(form, { version, id }) {
  appendImage(form);
  if (version) form.append('model_version', version);
  if (id) form.append('model_id', id);
  if (georeferenced()) form.append('output_crs', 'EPSG:4326');
}

/** Runs the points and boxes given so far (or clears the result when none are left). */
async function runPrompts() {
  if (!state.image) return;
  if (state.prompts.length === 0) { showResult(null, null); return; }
  const points = state.prompts.filter((p) => p.kind === 'point');
  const boxes = state.prompts.filter((p) => p.kind === 'box');
  let model = selectedModel();
  if (model.version === 'sam3' && points.length) {
    model = firstModel(['sam2', 'sam']) || model;
  }
  const fields = {};
  if (points.length) {
    fields.point_coords = JSON.stringify(points.map((p) => p.coord));
    fields.point_labels = JSON.stringify(points.map((p) => p.label));
  }
  if (boxes.length) fields.boxes = JSON.stringify(boxes.map((b) => b.box));
  if (georeferenced()) fields.point_crs = 'EPSG:4326';
  await segment('segment/predict', fields, model, 'Segmenting');
}

function firstModel(versions) {
  for (const v of versions) {
    const m = state.models.find((x) => x.version === v);
    if (m) return m;
  }
  return null;
}

async function runText(prompt) {
  if (!state.image) { showError(new Error('open an image first')); return; }
  const chosen = selectedModel();
  const model = chosen.version === 'sam3' ? chosen : (firstModel(['sam3']) || { version: 'sam3' });
  await segment('segment/text', { prompt }, model, 'Finding');
}

async function runAutomatic() {
  if (!state.image) { showError(new Error('open an image first')); return; }
  let model = selectedModel();
  if (model.version === 'sam3') model = firstModel(['sam2', 'sam']) || model;
  const asJob = await runAutomaticAsJob(model);
  if (asJob === true) return;
  // No job (the server has no jobs, or no stored image): one synchronous request. When the jobs
  // path answered 503 (jobs not available, too many accepted), say so: the request may wait.
  if (asJob instanceof ApiError) showInfo(`Jobs unavailable (${asJob.message}): segmenting in one request…`);
  await segment('segment/automatic', {}, model, 'Segmenting everything', asJob instanceof ApiError ? asJob : null);
}

/** The inputs of a segment-everything job on the open (stored) image. */
function automaticInputs(model, format) {
  const inputs = { image_id: state.image.id, model_version: model.version, model_id: model.id, output_format: format };
  if (georeferenced() && format === 'geojson') inputs.output_crs = 'EPSG:4326';
  return inputs;
}

/** Runs a segment-everything job and answers its result (a Response in the job's format),
 * showing the progress bar and the percent done while it runs. Answers null when the server
 * does not run jobs (404/405); throws the ApiError of a 503 with `fallback` set, so that the
 * caller can run a plain request instead. */
async function automaticJob(inputs, label) {
  const bar = $('progress');
  let response;
  try {
    response = await call('processes/segment-automatic/execution', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Prefer: 'respond-async' },
      body: JSON.stringify({ inputs }),
    });
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 405)) return null;
    if (e instanceof ApiError && e.status === 503) e.fallback = true;
    throw e;
  }
  if (response.status !== 201 && !(response.headers.get('Content-Type') || '').includes('json')) {
    return response; // answered synchronously in a binary format: this is the result
  }
  const body = await response.clone().json().catch(() => null);
  const id = body && typeof body.jobID === 'string' ? body.jobID : null;
  if (!id) return response; // answered synchronously (respond-async not applied): the result
  bar.hidden = false;
  bar.value = 0;
  const jobUrl = `jobs/${encodeURIComponent(id)}`;
  for (let wait = 200; ; wait = Math.min(wait * 1.5, 1000)) {
    const status = await (await call(jobUrl)).json();
    if (typeof status.progress === 'number') {
      bar.value = status.progress / 100;
      $('busy').textContent = `${label}… ${status.progress} %`;
    }
    if (status.status === 'successful') break;
    if (status.status === 'failed' || status.status === 'dismissed') {
      throw new ApiError(500, status.message || `job ${status.status}`);
    }
    await new Promise((r) => setTimeout(r, wait));
  }
  bar.value = 1;
  return call(`${jobUrl}/results`);
}

/** Segment everything as an OGC API Processes job with a progress bar, when the server offers
 * jobs and the image is stored there. Answers true when the job ran (or failed: the error is
 * shown), false when the server does not run jobs, or the ApiError of a 503 from the jobs path;
 * for those two the caller runs a plain request. */
async function runAutomaticAsJob(model) {
  if (!state.image.id) return false;
  const inputs = automaticInputs(model, 'geojson');
  let unavailable = null;
  const ran = await busy('Segmenting everything', async () => {
    try {
      const response = await automaticJob(inputs, 'Segmenting everything');
      if (!response) return false;
      const geojson = await response.json();
      showResult(geojson.features ? geojson : (geojson.masks || geojson), { job: true, model });
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.fallback) { unavailable = e; return false; }
      throw e;
    }
  });
  hideProgressSoon();
  if (unavailable) return unavailable;
  return ran !== false;
}

function hideProgressSoon() {
  setTimeout(() => { if (state.busy === 0) $('progress').hidden = true; }, 1500);
}

/** One segment request drawn as GeoJSON; remembered so it can be downloaded in another format. */
async function segment(path, fields, model, label, jobsError = null) {
  await busy(label, async () => {
    const form = new FormData();
    baseFields(form, model);
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    form.append('output_format', 'geojson');
    let response;
    try {
      response = await call(path, { method: 'POST', body: form });
    } catch (e) {
      // The plain request after a 503 from the jobs path: show both answers.
      if (jobsError && e instanceof ApiError) throw new ApiError(e.status, `${e.message} (jobs: ${jobsError.message})`);
      throw e;
    }
    const geojson = await response.json();
    showResult(geojson, { path, fields, model });
  });
}

function showResult(geojson, request) {
  resultSource.clear();
  state.results += 1;
  state.lastGeojson = geojson;
  state.lastRequest = request;
  const list = $('features');
  list.textContent = '';
  if (!geojson) { $('feature-count').textContent = ''; return; }
  const format = new ol.format.GeoJSON();
  const view = map.getView().getProjection();
  let features = format.readFeatures(geojson, georeferenced()
    ? { dataProjection: 'EPSG:4326', featureProjection: view }
    : {});
  if (!georeferenced()) {
    // Pixel coordinates come with rows growing down; the map's y grows up. A GeoTIFF shown in
    // pixel space (no image store) answers in its CRS: back to pixels through its grid.
    const grid = state.image && state.image.grid;
    const toMap = grid
      ? (x, y) => [(x - grid.x0) / grid.sx, -(grid.y0 - y) / grid.sy]
      : (x, y) => [x, -y];
    features.forEach((f) => f.getGeometry().applyTransform((input, output, dim = 2) => {
      for (let i = 0; i < input.length; i += dim) {
        [output[i], output[i + 1]] = toMap(input[i], input[i + 1]);
      }
      return output;
    }));
  }
  features = features.filter((f) => f.getGeometry());
  resultSource.addFeatures(features);
  $('feature-count').textContent = `(${features.length})`;
  features.forEach((f, i) => {
    const li = document.createElement('li');
    li.textContent = describe(f);
    li.tabIndex = 0;
    const select = () => {
      resultSource.getFeatures().forEach((g) => g.set('selected', g === f));
      list.querySelectorAll('li').forEach((x) => x.classList.toggle('selected', x === li));
    };
    li.addEventListener('mouseenter', select);
    li.addEventListener('focus', select);
    li.addEventListener('click', () => map.getView().fit(f.getGeometry().getExtent(), { padding: [40, 40, 40, 40], maxZoom: map.getView().getZoom() + 2 }));
    li.dataset.index = String(i);
    list.appendChild(li);
  });
  showInfo(features.length ? `${features.length} feature(s).` : 'Nothing found.');
}

async function download() {
  if (!state.lastGeojson) { showError(new Error('nothing to download yet')); return; }
  const format = $('format').value;
  const base = (state.image ? state.image.name : 'result').replace(/\.[^.]*$/, '');
  const ext = { geojson: 'geojson', geotiff: 'tif', png: 'png', json: 'json' }[format] || 'bin';
  const name = `${base}-masks.${ext}`;
  if (format === 'geojson') {
    save(new Blob([JSON.stringify(state.lastGeojson)], { type: 'application/geo+json' }), name);
    return;
  }
  if (!state.lastRequest) {
    showError(new Error(`this result cannot be downloaded as ${format}: choose GeoJSON`));
    return;
  }
  if (state.lastRequest.job) {
    // Segment everything ran as a job: run it again in the chosen format (a job too, with its
    // progress bar), since a job's result comes in the one format it was asked for. Without
    // jobs now (404/405/503), one plain request as runAutomatic does.
    const { model } = state.lastRequest;
    const plain = await busy('Preparing the download', async () => {
      try {
        const response = await automaticJob(automaticInputs(model, format), 'Preparing the download');
        if (!response) return true;
        save(await response.blob(), name);
        return false;
      } catch (e) {
        if (e instanceof ApiError && e.fallback) return true;
        throw e;
      }
    });
    hideProgressSoon();
    if (plain) await downloadPlain({ path: 'segment/automatic', fields: {}, model }, format, name);
    return;
  }
  await downloadPlain(state.lastRequest, format, name);
}

/** Runs a remembered segment request again in `format` and saves the answer. */
async function downloadPlain({ path, fields, model }, format, name) {
  await busy('Preparing the download', async () => {
    const form = new FormData();
    appendImage(form);
    if (model.version) form.append('model_version', model.version);
    if (model.id) form.append('model_id', model.id);
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    form.append('output_format', format);
    save(await (await call(path, { method: 'POST', body: form })).blob(), name);
  });
}

function save(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

function undo() {
  const last = state.prompts.pop();
  if (!last) return;
  promptSource.removeFeature(last.feature);
  runPrompts();
}

function clearAll() {
  state.prompts = [];
  promptSource.clear();
  showResult(null, null);
  showInfo('');
}

// ---------------------------------------------------------------------------------------------
// Start-up: models, configuration (basemap), controls, keyboard, drag and drop.

async function loadModels() {
  const body = await (await call('models')).json();
  const select = $('model');
  select.textContent = '';
  state.models = [];
  for (const [version, ids] of Object.entries(body.configured || {})) {
    for (const id of ids) {
      state.models.push({ version, id });
      const option = document.createElement('option');
      option.value = `${version}|${id}`;
      const demo = (body.demo || []).some(([v, i]) => v === version && i === id);
      option.textContent = `${version} · ${id}${demo ? ' (demo)' : ''}`;
      select.appendChild(option);
    }
  }
  const preferred = state.models.find((m) => m.version === 'sam2') || state.models[0];
  if (preferred) select.value = `${preferred.version}|${preferred.id}`;
}

async function loadConfig() {
  state.config = await (await call('ui/config.json')).json();
  if (state.config.basemap_url) {
    basemapLayer = new ol.layer.Tile({
      source: new ol.source.XYZ({
        url: state.config.basemap_url,
        attributions: state.config.basemap_attribution ? [escapeHtml(state.config.basemap_attribution)] : undefined,
      }),
      zIndex: -1,
    });
    map.addLayer(basemapLayer);
  }
}

function escapeHtml(text) {
  const d = document.createElement('div');
  d.textContent = text;
  return d.innerHTML;
}

function wire() {
  $('file').addEventListener('change', (e) => { if (e.target.files[0]) openImage(e.target.files[0]); });
  document.querySelectorAll('input[name=tool]').forEach((r) => r.addEventListener('change', () => setTool(r.value)));
  $('text-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const prompt = $('prompt').value.trim();
    if (prompt) runText(prompt);
  });
  $('automatic').addEventListener('click', runAutomatic);
  $('undo').addEventListener('click', undo);
  $('clear').addEventListener('click', clearAll);
  $('download').addEventListener('click', download);
  $('model').addEventListener('change', () => { if (state.prompts.length) runPrompts(); });

  document.addEventListener('keydown', (e) => {
    const typing = ['INPUT', 'SELECT', 'TEXTAREA'].includes(e.target.tagName) && e.target.type !== 'radio';
    if (typing || $('key-dialog').open) return;
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'z') { e.preventDefault(); undo(); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const actions = {
      p: () => setTool('point'), b: () => setTool('box'), m: () => setTool('pan'),
      t: () => $('prompt').focus(), a: runAutomatic, u: undo, c: clearAll, d: download,
      o: () => $('file').click(),
    };
    const action = actions[e.key.toLowerCase()];
    if (action) { e.preventDefault(); action(); }
  });

  const wrap = document.querySelector('.map-wrap');
  wrap.addEventListener('dragover', (e) => { e.preventDefault(); $('drop').hidden = false; });
  wrap.addEventListener('dragleave', () => { $('drop').hidden = true; });
  wrap.addEventListener('drop', (e) => {
    e.preventDefault();
    $('drop').hidden = true;
    const file = e.dataTransfer.files[0];
    if (file) openImage(file);
  });
}

wire();
setTool('point');
busy('Loading', async () => {
  await loadConfig();
  await loadModels();
});

// For the browser tests and for scripting the page: where things are on screen (CSS pixels
// relative to the map element), and whether a request is running.
window.samgeoPage = {
  /** Screen boxes [left, top, right, bottom] of the result features drawn. */
  resultBoxes: () => resultSource.getFeatures().map((f) => {
    const [x0, y0, x1, y1] = f.getGeometry().getExtent();
    const a = map.getPixelFromCoordinate([x0, y1]);
    const b = map.getPixelFromCoordinate([x1, y0]);
    return [a[0], a[1], b[0], b[1]];
  }),
  /** Screen position of [lon, lat] (crs 'EPSG:4326') or of an image pixel [col, row] ('pixel'). */
  screenOf: (coord, crs) => map.getPixelFromCoordinate(crs === 'EPSG:4326'
    ? ol.proj.fromLonLat(coord, map.getView().getProjection())
    : [coord[0], -coord[1]]),
  projection: () => map.getView().getProjection().getCode(),
  /** Resolves once the map has drawn everything it has loaded. */
  rendered: () => new Promise((resolve) => { map.once('rendercomplete', () => resolve(true)); map.render(); }),
  busy: () => state.busy,
  /** How many results (or clears) were shown so far. */
  results: () => state.results,
  imageId: () => (state.image ? state.image.id || null : null),
  modelCount: () => state.models.length,
};
