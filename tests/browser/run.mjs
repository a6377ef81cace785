// Browser tests of the page at GET /: Debian's chromium, headless, driven by playwright-core,
// against a debug samgeo-api spawned on a free loopback port with the demo models and an API
// key. Test rasters are generated here with GDAL's command-line tools (a red square on dark
// ground). Prints one line per case and ends with `browser: N passed, N failed, N skipped`;
// skips are also appended to $SAMGEO_SKIP_LOG. Under CI=true a skip (a missing chromium, a
// server without jobs) is a failure. Screenshots of each step go to tests/browser/artifacts/
// (not committed).
//
//   node tests/browser/run.mjs      (after scripts/setup and cargo build -p samgeo-host --bins)

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const artifacts = path.join(root, 'tests/browser/artifacts');
const chromiumPath = process.env.SAMGEO_CHROMIUM || '/usr/bin/chromium';
const ci = process.env.CI === 'true';
const KEY = 'browser-test-key';

const results = { passed: 0, failed: 0, skipped: 0 };
function skip(name, why) {
  results.skipped += 1;
  console.log(`[browser] SKIP ${name}: ${why}`);
  if (process.env.SAMGEO_SKIP_LOG) fs.appendFileSync(process.env.SAMGEO_SKIP_LOG, `browser ${name}: ${why}\n`);
}
function finish(code) {
  console.log(`browser: ${results.passed} passed, ${results.failed} failed, ${results.skipped} skipped`);
  process.exit(code ?? (results.failed ? 1 : 0));
}
function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// ---------------------------------------------------------------------------------------------
// Preconditions: chromium and playwright-core (both from scripts/setup).

const require = createRequire(path.join(root, 'web/package.json'));
let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch (e) {
  if (ci) { results.failed += 1; console.log('[browser] FAILED: playwright-core missing (run scripts/setup)'); finish(1); }
  skip('all', 'playwright-core is not installed in web/node_modules (scripts/setup installs it)');
  finish(0);
}
if (!fs.existsSync(chromiumPath)) {
  if (ci) { results.failed += 1; console.log(`[browser] FAILED: ${chromiumPath} missing (scripts/setup installs chromium)`); finish(1); }
  skip('all', `${chromiumPath} is not installed (scripts/setup installs Debian's chromium)`);
  finish(0);
}

// ---------------------------------------------------------------------------------------------
// Test data: 256×256, 10 m pixels in UTM 32N; dark blue-grey ground, a red square of 64×64 px
// at columns/rows 96..160. The same pixels as a PNG (no CRS).

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'samgeo-browser-'));
const UTM = { x0: 500000, y0: 5000000, px: 10 };
function makeRasters() {
  const tif = path.join(work, 'square.tif');
  const { x0, y0, px } = UTM;
  execFileSync('gdal_create', ['-q', '-of', 'GTiff', '-outsize', '256', '256', '-bands', '3', '-ot', 'Byte',
    '-burn', '30', '-burn', '35', '-burn', '60', '-a_srs', 'EPSG:32632',
    '-a_ullr', String(x0), String(y0), String(x0 + 256 * px), String(y0 - 256 * px), tif]);
  const square = path.join(work, 'square.geojson');
  const [sx0, sx1] = [x0 + 96 * px, x0 + 160 * px];
  const [sy0, sy1] = [y0 - 96 * px, y0 - 160 * px];
  fs.writeFileSync(square, JSON.stringify({
    type: 'FeatureCollection',
    crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::32632' } },
    features: [{ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [[[sx0, sy0], [sx1, sy0], [sx1, sy1], [sx0, sy1], [sx0, sy0]]] } }],
  }));
  execFileSync('gdal_rasterize', ['-q', '-b', '1', '-b', '2', '-b', '3', '-burn', '220', '-burn', '30', '-burn', '30', square, tif]);
  const png = path.join(work, 'square.png');
  execFileSync('gdal_translate', ['-q', '-of', 'PNG', tif, png]);
  fs.rmSync(`${png}.aux.xml`, { force: true });
  // WGS84 of the square's centre and corners, and of a point on the ground, for clicking on a
  // georeferenced map.
  const lonlat = toLonLat([[128, 128], [96, 96], [160, 160], [40, 40]]);
  const large = makeLarge();
  return { tif, png, lonlat, large };
}

/** [lon, lat] of pixel [col, row]s of the UTM grid above. */
function toLonLat(pixels) {
  const { x0, y0, px } = UTM;
  const pts = pixels.map(([c, r]) => `${x0 + c * px} ${y0 - r * px}`).join('\n');
  const out = execFileSync('gdaltransform', ['-s_srs', 'EPSG:32632', '-t_srs', 'EPSG:4326', '-output_xy'], { input: pts }).toString();
  return out.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
}

// A larger raster for segment everything as a job: LARGE² px on the same grid, with a red square
// of 64×64 px in each quarter. The server tiles rasters above 512 px into 256 px tiles with 32 px
// overlap ([tiling] in the config below): (LARGE - 32) / 224 tiles a side.
const LARGE = 768;
const LARGE_SQUARES = [[160, 160], [544, 160], [160, 544], [544, 544]]; // centres, px
function makeLarge() {
  const tif = path.join(work, 'large.tif');
  const { x0, y0, px } = UTM;
  execFileSync('gdal_create', ['-q', '-of', 'GTiff', '-outsize', String(LARGE), String(LARGE), '-bands', '3', '-ot', 'Byte',
    '-burn', '30', '-burn', '35', '-burn', '60', '-a_srs', 'EPSG:32632',
    '-a_ullr', String(x0), String(y0), String(x0 + LARGE * px), String(y0 - LARGE * px), tif]);
  const squares = path.join(work, 'large.geojson');
  const ring = ([c, r]) => {
    const [l, rt, t, b] = [x0 + (c - 32) * px, x0 + (c + 32) * px, y0 - (r - 32) * px, y0 - (r + 32) * px];
    return [[[l, t], [rt, t], [rt, b], [l, b], [l, t]]];
  };
  fs.writeFileSync(squares, JSON.stringify({
    type: 'FeatureCollection',
    crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::32632' } },
    features: LARGE_SQUARES.map((c) => ({ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: ring(c) } })),
  }));
  execFileSync('gdal_rasterize', ['-q', '-b', '1', '-b', '2', '-b', '3', '-burn', '220', '-burn', '30', '-burn', '30', squares, tif]);
  return { tif, centres: toLonLat(LARGE_SQUARES) };
}

// ---------------------------------------------------------------------------------------------
// The server.

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

function serverBinary() {
  const target = process.env.CARGO_TARGET_DIR || path.join(root, 'target');
  return path.join(target, 'debug/samgeo-api');
}

async function startServer() {
  const port = await freePort();
  const p = (rel) => path.join(root, rel);
  const ort = process.env.ORT_DYLIB_PATH || p('.ort/libonnxruntime.so.1.31.1');
  const plugins = process.env.SAMGEO_PLUGIN_DIR || p('target/plugins/dist');
  const config = `
[server]
host = "127.0.0.1"
port = ${port}
cache_dir = "${path.join(work, 'cache')}"
request_timeout_secs = 60
api_key = "${KEY}"
[runtime]
onnxruntime_library = "${ort}"
execution_providers = ["cpu"]
intra_threads = 1
[models.sam.vit_h]
encoder = "${p('models/demo/sam_encoder.onnx')}"
decoder = "${p('models/demo/sam_decoder.onnx')}"
demo = true
[models.sam2."sam2-hiera-large"]
encoder = "${p('models/demo/sam2_encoder.onnx')}"
decoder = "${p('models/demo/sam2_decoder.onnx')}"
demo = true
[models.sam3."facebook/sam3"]
encoder = "${p('models/demo/sam3_image_encoder.onnx')}"
decoder = "${p('models/demo/sam3_decoder.onnx')}"
language_encoder = "${p('models/demo/sam3_language_encoder.onnx')}"
tokenizer_vocab = "${p('models/vocab/bpe_simple_vocab_16e6.txt.gz')}"
demo = true
[plugins]
directory = "${plugins}"
[tiling]
auto_above_px = 512
tile_size = 256
tile_overlap = 32
`;
  const configPath = path.join(work, 'samgeo.toml');
  fs.writeFileSync(configPath, config);
  const log = fs.openSync(path.join(work, 'server.log'), 'w');
  const child = spawn(serverBinary(), ['--config', configPath], { cwd: work, stdio: ['ignore', log, log] });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`samgeo-api exited:\n${fs.readFileSync(path.join(work, 'server.log'), 'utf8')}`);
    try { if ((await fetch(`${base}/health`)).ok) return { child, base }; } catch (_) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error('samgeo-api did not answer /health within 60 s');
}

// ---------------------------------------------------------------------------------------------
// Helpers on the page.

async function idle(page, timeout = 30000) {
  await page.waitForFunction(() => window.samgeoPage && window.samgeoPage.busy() === 0, null, { timeout });
}

async function mapOrigin(page) {
  const box = await page.locator('#map').boundingBox();
  return [box.x, box.y];
}

/** The colour drawn at map pixel (x, y): the topmost non-transparent layer canvas there. */
async function colourAt(page, [x, y]) {
  await page.evaluate(() => window.samgeoPage.rendered());
  return page.evaluate(([px, py]) => {
    let found = null;
    for (const canvas of document.querySelectorAll('#map canvas')) {
      const r = canvas.getBoundingClientRect();
      const m = document.getElementById('map').getBoundingClientRect();
      const sx = canvas.width / r.width;
      const cx = Math.floor((m.left + px - r.left) * sx);
      const cy = Math.floor((m.top + py - r.top) * sx);
      if (cx < 0 || cy < 0 || cx >= canvas.width || cy >= canvas.height) continue;
      const d = canvas.getContext('2d').getImageData(cx, cy, 1, 1).data;
      if (d[3] > 0 && !found) found = Array.from(d);
    }
    return found;
  }, [x, y]);
}

/** The form fields of a multipart body (text parts only). */
function multipartFields(body) {
  const fields = {};
  for (const m of (body || '').matchAll(/name="([^"]+)"\r\n\r\n([^\r]*)\r\n/g)) fields[m[1]] = m[2];
  return fields;
}

/** Clicks #download and answers the path of the file the page saved. */
async function downloadAs(page, format, timeout = 30000) {
  await page.selectOption('#format', format);
  const [download] = await Promise.all([page.waitForEvent('download', { timeout }), page.click('#download')]);
  const file = path.join(work, `download-${format}-${download.suggestedFilename()}`);
  await download.saveAs(file);
  await idle(page, timeout);
  return { file, name: download.suggestedFilename() };
}

/** The number of results the page has shown so far. */
const resultCount = (page) => page.evaluate(() => window.samgeoPage.results());

/** Waits for a result after `before` and checks a drawn feature's screen box covers `inside`. */
async function expectPolygonCovering(page, before, inside, what, timeout = 30000) {
  await page.waitForFunction((n) => window.samgeoPage.results() > n || document.querySelector('#message.error'), before, { timeout });
  await idle(page, timeout);
  const message = await page.locator('#message').textContent();
  const boxes = await page.evaluate(() => window.samgeoPage.resultBoxes());
  assert(boxes.length > 0, `${what}: no polygon drawn (message: ${message})`);
  const covers = boxes.some(([l, t, r, b]) => inside.every(([x, y]) => x >= l - 2 && x <= r + 2 && y >= t - 2 && y <= b + 2));
  assert(covers, `${what}: no polygon covers ${JSON.stringify(inside)}; boxes ${JSON.stringify(boxes)}`);
  return boxes;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  fs.mkdirSync(artifacts, { recursive: true });
  for (const f of fs.readdirSync(artifacts)) if (f.endsWith('.png')) fs.rmSync(path.join(artifacts, f));
  const data = makeRasters();
  const { child, base } = await startServer();
  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const consoleErrors = [];
  const foreign = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(`${base}/`) && !url.startsWith('blob:') && !url.startsWith('data:')) foreign.push(url);
  });
  page.on('dialog', (d) => d.dismiss());
  // The segment requests the page sends: [path, multipart body].
  const sent = [];
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (r.method() === 'POST' && url.pathname.startsWith('/segment/')) sent.push([url.pathname, r.postData() || '']);
  });
  const lastSent = (pathname) => [...sent].reverse().find(([p]) => p === pathname);
  if (process.env.SAMGEO_BROWSER_LIVE_ASSETS) {
    // While editing web/: serve the page's own files from disk instead of the built-in copies.
    const live = { '/': 'index.html', '/ui/app.js': 'app.js', '/ui/app.css': 'app.css' };
    await page.route((url) => Object.hasOwn(live, url.pathname), (route) => {
      const file = live[new URL(route.request().url()).pathname];
      const type = file.endsWith('.js') ? 'text/javascript' : file.endsWith('.css') ? 'text/css' : 'text/html';
      route.fulfill({ body: fs.readFileSync(path.join(root, 'web', file)), contentType: type });
    });
  }
  const shot = (name) => page.screenshot({ path: path.join(artifacts, `${name}.png`) });
  let images = false;
  let jobs = false;

  const cases = [
    ['page loads, asks for the key once, no console errors, nothing fetched elsewhere', async () => {
      await page.goto(`${base}/`);
      await page.waitForSelector('#key-dialog[open]', { timeout: 15000 });
      await page.fill('#key', KEY);
      await page.click('#key-dialog button[type=submit]');
      await page.waitForFunction(() => window.samgeoPage.modelCount() > 0, null, { timeout: 15000 });
      await idle(page);
      await shot('01-loaded');
      const options = await page.locator('#model option').allTextContents();
      assert(options.some((o) => o.startsWith('sam2')), `models listed: ${options}`);
      const errors = consoleErrors.filter((e) => !/status of 401/.test(e));
      assert(errors.length === 0, `console errors: ${errors.join(' | ')}`);
      const key = await page.evaluate(() => sessionStorage.getItem('samgeo-api-key'));
      assert(key === KEY, 'the key is kept in sessionStorage');
      images = (await fetch(`${base}/images/none`, { headers: { Authorization: `Bearer ${KEY}` } })).status !== 404
        || (await fetch(`${base}/images`, { method: 'POST', headers: { Authorization: `Bearer ${KEY}` } })).status !== 404;
      jobs = (await fetch(`${base}/jobs`, { headers: { Authorization: `Bearer ${KEY}` } })).status !== 404;
    }],
    ['a PNG without CRS is drawn in pixel space; a click on the square draws a polygon over it', async () => {
      await page.setInputFiles('#file', data.png);
      await idle(page);
      assert((await page.evaluate(() => window.samgeoPage.projection())) === 'samgeo-pixels', 'pixel projection');
      const centre = await page.evaluate(() => window.samgeoPage.screenOf([128, 128], 'pixel'));
      const colour = await colourAt(page, centre);
      assert(colour && colour[0] > 150 && colour[1] < 90, `the square is drawn red at its centre: ${colour}`);
      const [ox, oy] = await mapOrigin(page);
      const before = await resultCount(page);
      await page.mouse.click(ox + centre[0], oy + centre[1]);
      const corners = await page.evaluate(() => [[100, 100], [156, 156]].map((p) => window.samgeoPage.screenOf(p, 'pixel')));
      await expectPolygonCovering(page, before, [centre, ...corners], 'click on PNG');
      const boxes = await page.evaluate(() => window.samgeoPage.resultBoxes());
      const outside = await page.evaluate(() => window.samgeoPage.screenOf([20, 20], 'pixel'));
      assert(!boxes.some(([l, t, r, b]) => outside[0] >= l && outside[0] <= r && outside[1] >= t && outside[1] <= b), 'the ground is not part of the polygon');
      await shot('02-png-click');
    }],
    ['a GeoTIFF is drawn in place on the map; a click on the square draws a polygon over it', async () => {
      assert(images, 'POST /images is not on this server: a GeoTIFF cannot be drawn in place');
      await page.setInputFiles('#file', data.tif);
      await idle(page);
      assert(await page.evaluate(() => window.samgeoPage.imageId()), 'the GeoTIFF is stored on the server (image_id)');
      const [centreLL, ulLL, lrLL] = data.lonlat;
      const at = (ll) => page.evaluate((c) => window.samgeoPage.screenOf(c, 'EPSG:4326'), ll);
      const centre = await at(centreLL);
      assert((await page.evaluate(() => window.samgeoPage.projection())) === 'EPSG:3857', 'web mercator view');
      const colour = await colourAt(page, centre);
      assert(colour && colour[0] > 150 && colour[1] < 90, `the server's preview is drawn red at the square: ${colour}`);
      const [ox, oy] = await mapOrigin(page);
      const before = await resultCount(page);
      await page.mouse.click(ox + centre[0], oy + centre[1]);
      const inner = [await at(ulLL.map((v, i) => v + (centreLL[i] - v) * 0.2)), await at(lrLL.map((v, i) => v + (centreLL[i] - v) * 0.2))];
      await expectPolygonCovering(page, before, [centre, ...inner], 'click on GeoTIFF');
      const fields = multipartFields(lastSent('/segment/predict')[1]);
      assert(fields.point_labels === '[1]' && fields.point_crs === 'EPSG:4326', `a foreground point in WGS84: ${JSON.stringify(fields)}`);
      await shot('03-geotiff-click');
    }],
    ['shift-click adds a background point (point_labels 0)', async () => {
      const [ox, oy] = await mapOrigin(page);
      const ground = await page.evaluate((c) => window.samgeoPage.screenOf(c, 'EPSG:4326'), data.lonlat[3]);
      const before = await resultCount(page);
      await page.keyboard.down('Shift');
      await page.mouse.click(ox + ground[0], oy + ground[1]);
      await page.keyboard.up('Shift');
      const centre = await page.evaluate((c) => window.samgeoPage.screenOf(c, 'EPSG:4326'), data.lonlat[0]);
      await expectPolygonCovering(page, before, [centre], 'foreground + background point');
      const fields = multipartFields(lastSent('/segment/predict')[1]);
      assert(fields.point_labels === '[1,0]', `point_labels: ${fields.point_labels}`);
      const coords = JSON.parse(fields.point_coords);
      assert(coords.length === 2 && Math.abs(coords[1][0] - data.lonlat[3][0]) < 1e-4 && Math.abs(coords[1][1] - data.lonlat[3][1]) < 1e-4,
        `the background point is where the shift-click was: ${fields.point_coords} vs ${data.lonlat[3]}`);
      await shot('04-shift-click');
    }],
    ['hovering a polygon shows its score and area; the feature list lists the features', async () => {
      const boxes = await page.evaluate(() => window.samgeoPage.resultBoxes());
      const [l, t, r, b] = boxes[0];
      const [ox, oy] = await mapOrigin(page);
      // Inside the polygon, away from the prompt marker at its centre.
      await page.mouse.move(ox + l + (r - l) * 0.3, oy + t + (b - t) * 0.3, { steps: 3 });
      await page.waitForSelector('#tooltip:not([hidden])', { timeout: 5000 });
      const tip = await page.locator('#tooltip').textContent();
      assert(/score [01]\.\d{3}/.test(tip) && /area \d+ px/.test(tip), `tooltip: ${tip}`);
      await shot('05-hover');
      const items = await page.locator('#features li').allTextContents();
      assert(items.length === boxes.length && items.length > 0, `${items.length} list items for ${boxes.length} features`);
      assert(items.every((i) => /score [01]\.\d{3}/.test(i) && /area \d+ px/.test(i)), `list: ${items.join(' | ')}`);
      const count = await page.locator('#feature-count').textContent();
      assert(count === `(${boxes.length})`, `feature count: ${count}`);
      await page.mouse.move(ox + 5, oy + 5);
    }],
    ['download as GeoJSON saves a FeatureCollection', async () => {
      const { file, name } = await downloadAs(page, 'geojson');
      const body = JSON.parse(fs.readFileSync(file, 'utf8'));
      assert(body.type === 'FeatureCollection' && Array.isArray(body.features) && body.features.length > 0, `${name}: ${JSON.stringify(body).slice(0, 200)}`);
      assert(name === 'square-masks.geojson', `file name: ${name}`);
      assert(body.features.every((f) => f.geometry && /Polygon/.test(f.geometry.type)), 'polygons');
    }],
    ['undo removes the last prompt and its polygon', async () => {
      // Two prompts so far (a foreground and a background point): undo re-runs with the first.
      let before = await resultCount(page);
      await page.keyboard.press('u');
      const centre = await page.evaluate((c) => window.samgeoPage.screenOf(c, 'EPSG:4326'), data.lonlat[0]);
      await expectPolygonCovering(page, before, [centre], 'after one undo');
      const fields = multipartFields(lastSent('/segment/predict')[1]);
      assert(fields.point_labels === '[1]', `after undo, point_labels: ${fields.point_labels}`);
      // The last prompt: undo removes the polygon and the list.
      before = await resultCount(page);
      await page.click('#undo');
      await page.waitForFunction((n) => window.samgeoPage.results() > n, before, { timeout: 10000 });
      await idle(page);
      const boxes = await page.evaluate(() => window.samgeoPage.resultBoxes());
      assert(boxes.length === 0, `no polygon left after undoing the last prompt: ${JSON.stringify(boxes)}`);
      assert((await page.locator('#features li').count()) === 0, 'the feature list is empty');
      await shot('06-undo');
    }],
    ['the box tool draws a polygon over the boxed square; undo removes the last box\'s polygon', async () => {
      await page.click('#clear');
      await page.keyboard.press('b');
      const [c, ul, lr] = data.lonlat;
      const widen = (ll, k) => ll.map((v, i) => v + (v - c[i]) * k);
      const screen = (ll) => page.evaluate((x) => window.samgeoPage.screenOf(x, 'EPSG:4326'), ll);
      const [ox, oy] = await mapOrigin(page);
      const drag = async (p0, p1) => {
        await page.mouse.move(ox + p0[0], oy + p0[1]);
        await page.mouse.down();
        await page.mouse.move(ox + (p0[0] + p1[0]) / 2, oy + (p0[1] + p1[1]) / 2, { steps: 4 });
        await page.mouse.move(ox + p1[0], oy + p1[1], { steps: 4 });
        await page.mouse.up();
      };
      const p0 = await screen(widen(ul, 0.25));
      const p1 = await screen(widen(lr, 0.25));
      let before = await resultCount(page);
      await drag(p0, p1);
      const mid = [(p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2];
      await expectPolygonCovering(page, before, [mid], 'box');
      await shot('07-box');
      // A second box, on the ground left of the square: one polygon per box.
      const q0 = await screen(toLonLat([[8, 100]])[0]);
      const q1 = await screen(toLonLat([[72, 156]])[0]);
      before = await resultCount(page);
      await drag(q0, q1);
      await page.waitForFunction((n) => window.samgeoPage.results() > n || document.querySelector('#message.error'), before, { timeout: 30000 });
      await idle(page);
      const two = await page.evaluate(() => window.samgeoPage.resultBoxes());
      const boxes = multipartFields(lastSent('/segment/predict')[1]).boxes;
      assert(JSON.parse(boxes).length === 2, `two boxes sent: ${boxes}`);
      assert(two.length === 2, `one polygon per box: ${JSON.stringify(two)}`);
      before = await resultCount(page);
      await page.keyboard.press('Control+z');
      await expectPolygonCovering(page, before, [mid], 'box after undo');
      const one = await page.evaluate(() => window.samgeoPage.resultBoxes());
      assert(one.length === 1, `undo removed the second box's polygon: ${JSON.stringify(one)}`);
      await page.keyboard.press('p');
    }],
    ['a text prompt (sam3 demo: "red") draws a polygon over the square', async () => {
      await page.click('#clear');
      const before = await resultCount(page);
      await page.fill('#prompt', 'red');
      await page.press('#prompt', 'Enter');
      const centre = await page.evaluate((ll) => window.samgeoPage.screenOf(ll, 'EPSG:4326'), data.lonlat[0]);
      await expectPolygonCovering(page, before, [centre], 'text prompt');
      await shot('08-text');
    }],
    ['an error shows the server\'s detail', async () => {
      await page.fill('#prompt', 'x'.repeat(5000));
      await page.press('#prompt', 'Enter');
      await idle(page);
      await page.waitForSelector('#message.error', { timeout: 10000 });
      const text = await page.locator('#message').textContent();
      assert(/Error 400/.test(text) && /4096/.test(text), `message: ${text}`);
      await shot('09-error');
      await page.fill('#prompt', '');
    }],
    ['when the jobs path answers 503, segment everything runs as one request', async () => {
      if (!jobs) return 'skip:the jobs API (GET /jobs) is not on this server';
      await page.click('#clear');
      const detail = 'Too many jobs accepted and not finished (test)';
      await page.route('**/processes/segment-automatic/execution', (route) => route.fulfill({
        status: 503, contentType: 'application/json', body: JSON.stringify({ detail }),
      }), { times: 1 });
      const before = await resultCount(page);
      const sentBefore = sent.length;
      await page.click('#automatic');
      const centre = await page.evaluate((ll) => window.samgeoPage.screenOf(ll, 'EPSG:4326'), data.lonlat[0]);
      await expectPolygonCovering(page, before, [centre], 'segment everything after a 503');
      assert(sent.slice(sentBefore).some(([p]) => p === '/segment/automatic'), 'a POST /segment/automatic was sent');
      await page.unroute('**/processes/segment-automatic/execution');
      await shot('10-automatic-fallback');
      return null;
    }],
    ['segment everything on a larger raster runs as a tiled job: progress moves, polygons at the end, GeoTIFF download', async () => {
      if (!jobs) return 'skip:the jobs API (GET /jobs) is not on this server';
      await page.setInputFiles('#file', data.large.tif);
      await idle(page);
      const size = await page.locator('#image-name').textContent();
      assert(size.includes(`${LARGE}×${LARGE}`), `the large raster is open: ${size}`);
      // Every value the bar and the busy line take, seen from the DOM.
      await page.evaluate(() => {
        const bar = document.getElementById('progress');
        const busy = document.getElementById('busy');
        window.seenProgress = [];
        window.seenBusy = [];
        const note = () => {
          if (!bar.hidden) window.seenProgress.push(bar.value);
          if (!busy.hidden) window.seenBusy.push(busy.textContent);
        };
        window.progressObserver = new MutationObserver(note);
        window.progressObserver.observe(bar, { attributes: true });
        window.progressObserver.observe(busy, { attributes: true, childList: true, characterData: true, subtree: true });
      });
      const before = await resultCount(page);
      const started = Date.now();
      await page.click('#automatic');
      await page.waitForSelector('#progress:not([hidden])', { timeout: 15000 });
      await page.waitForFunction(() => window.seenProgress.some((v) => v > 0 && v < 1) || window.samgeoPage.busy() === 0, null, { timeout: 180000 });
      await shot('11-automatic-running');
      const centres = await page.evaluate((cs) => cs.map((c) => window.samgeoPage.screenOf(c, 'EPSG:4326')), data.large.centres);
      await expectPolygonCovering(page, before, [centres[0]], 'segment everything', 180000);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const { progress, busyText, value } = await page.evaluate(() => {
        window.progressObserver.disconnect();
        return { progress: window.seenProgress, busyText: window.seenBusy, value: document.getElementById('progress').value };
      });
      const distinct = [...new Set(progress)];
      console.log(`[browser] note: job of ${seconds} s; progress values seen: ${distinct.join(', ')}`);
      assert(progress.some((v) => v > 0 && v < 1), `an intermediate progress value was shown (seen: ${distinct.join(', ')})`);
      assert(busyText.some((t) => /\d+ %/.test(t) && !/ 0 %| 100 %/.test(t)), `the busy line showed a percent: ${[...new Set(busyText)].join(' | ')}`);
      assert(value === 1, `progress at the end: ${value}`);
      const boxes = await page.evaluate(() => window.samgeoPage.resultBoxes());
      for (const [i, c] of centres.entries()) {
        assert(boxes.some(([l, t, r, b]) => c[0] >= l && c[0] <= r && c[1] >= t && c[1] <= b), `square ${i} has a polygon over it; boxes ${JSON.stringify(boxes)}`);
      }
      const items = await page.locator('#features li').count();
      assert(items === boxes.length, `${items} listed for ${boxes.length} polygons`);
      await shot('12-automatic');
      // The job's result was GeoJSON; a GeoTIFF download runs it again in that format.
      const { file, name } = await downloadAs(page, 'geotiff', 180000);
      const head = fs.readFileSync(file).subarray(0, 4).toString('latin1');
      assert(head === 'II*\0' || head === 'MM\0*', `${name} is a TIFF (starts ${JSON.stringify(head)})`);
      assert(name === 'large-masks.tif', `file name: ${name}`);
      await page.selectOption('#format', 'geojson');
      return null;
    }],
    ['on a phone (390×844) the map and the tools fit the width', async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.evaluate(() => window.samgeoPage.rendered());
      const fit = await page.evaluate(() => ({
        scroll: document.scrollingElement.scrollWidth,
        map: document.getElementById('map').getBoundingClientRect().toJSON(),
        panel: document.querySelector('.panel').getBoundingClientRect().toJSON(),
      }));
      assert(fit.scroll <= 390, `no horizontal scrolling: ${fit.scroll}`);
      assert(fit.map.width >= 380 && fit.map.height >= 300, `map ${JSON.stringify(fit.map)}`);
      assert(fit.panel.top >= fit.map.bottom - 1, 'the tools come below the map');
      await shot('13-phone');
      await page.setViewportSize({ width: 1280, height: 800 });
    }],
    ['nothing was fetched from outside the server', async () => {
      assert(foreign.length === 0, `requests elsewhere: ${foreign.join(', ')}`);
    }],
  ];

  try {
    for (const [name, run] of cases) {
      try {
        const outcome = await run();
        if (typeof outcome === 'string' && outcome.startsWith('skip:')) {
          if (ci) {
            results.failed += 1;
            console.log(`[browser] FAILED ${name}: skipped under CI=true: ${outcome.slice(5)}`);
          } else skip(name, outcome.slice(5));
        } else { results.passed += 1; console.log(`[browser] ok ${name}`); }
      } catch (e) {
        results.failed += 1;
        console.log(`[browser] FAILED ${name}: ${e.message}`);
        await shot(`failed-${results.failed}`).catch(() => {});
      }
    }
  } finally {
    await browser.close();
    child.kill();
    if (results.failed) console.log(`[browser] server log: ${path.join(work, 'server.log')}`);
    else fs.rmSync(work, { recursive: true, force: true });
  }
}

main().then(() => finish(), (e) => {
  results.failed += 1;
  console.log(`[browser] FAILED: ${e.stack || e}`);
  finish(1);
});
