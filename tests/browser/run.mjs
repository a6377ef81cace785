// Browser tests of the page at GET /: Debian's chromium, headless, driven by playwright-core,
// against a debug samgeo-api spawned on a free loopback port with the demo models and an API
// key. Test rasters are generated here with GDAL's command-line tools (a red square on dark
// ground). Prints one line per case and ends with `browser: N passed, N failed, N skipped`;
// skips are also appended to $SAMGEO_SKIP_LOG. Under CI=true a missing chromium is a failure.
// Screenshots of each step go to tests/browser/artifacts/ (not committed).
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
  // WGS84 of the square's centre and corners, for clicking on a georeferenced map.
  const pts = [[128, 128], [96, 96], [160, 160]].map(([c, r]) => `${x0 + c * px} ${y0 - r * px}`).join('\n');
  const out = execFileSync('gdaltransform', ['-s_srs', 'EPSG:32632', '-t_srs', 'EPSG:4326', '-output_xy'], { input: pts }).toString();
  const lonlat = out.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
  return { tif, png, lonlat };
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

async function idle(page) {
  await page.waitForFunction(() => window.samgeoPage && window.samgeoPage.busy() === 0, null, { timeout: 30000 });
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

/** The number of results the page has shown so far. */
const resultCount = (page) => page.evaluate(() => window.samgeoPage.results());

/** Waits for a result after `before` and checks a drawn feature's screen box covers `inside`. */
async function expectPolygonCovering(page, before, inside, what) {
  await page.waitForFunction((n) => window.samgeoPage.results() > n || document.querySelector('#message.error'), before, { timeout: 30000 });
  await idle(page);
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
      await page.setInputFiles('#file', data.tif);
      await idle(page);
      const [centreLL, ulLL, lrLL] = data.lonlat;
      const geo = images;
      const crs = geo ? 'EPSG:4326' : 'pixel';
      const at = (ll, px) => page.evaluate(([c, k]) => window.samgeoPage.screenOf(c, k), [geo ? ll : px, crs]);
      const centre = await at(centreLL, [128, 128]);
      if (geo) {
        assert((await page.evaluate(() => window.samgeoPage.projection())) === 'EPSG:3857', 'web mercator view');
        const colour = await colourAt(page, centre);
        assert(colour && colour[0] > 150 && colour[1] < 90, `the server's preview is drawn red at the square: ${colour}`);
      }
      const [ox, oy] = await mapOrigin(page);
      const before = await resultCount(page);
      await page.mouse.click(ox + centre[0], oy + centre[1]);
      const inner = [await at(ulLL.map((v, i) => v + (centreLL[i] - v) * 0.2), [102, 102]), await at(lrLL.map((v, i) => v + (centreLL[i] - v) * 0.2), [154, 154])];
      await expectPolygonCovering(page, before, [centre, ...inner], 'click on GeoTIFF');
      await shot('03-geotiff-click');
      if (!geo) console.log('[browser] note: POST /images is not on this server: the GeoTIFF is outlined in pixel space, not drawn');
    }],
    ['the box tool draws a polygon over the boxed square', async () => {
      await page.click('#clear');
      await page.keyboard.press('b');
      const a = await page.evaluate(() => window.samgeoPage.screenOf([88, 88], 'pixel'));
      const b = await page.evaluate(() => window.samgeoPage.screenOf([168, 168], 'pixel'));
      const crsPoints = images ? null : [a, b];
      let [p0, p1] = crsPoints || [];
      if (images) {
        // Georeferenced view: box corners from the square's corners, widened a little.
        const [c, ul, lr] = data.lonlat;
        const widen = (ll) => ll.map((v, i) => v + (v - c[i]) * 0.25);
        p0 = await page.evaluate((ll) => window.samgeoPage.screenOf(ll, 'EPSG:4326'), widen(ul));
        p1 = await page.evaluate((ll) => window.samgeoPage.screenOf(ll, 'EPSG:4326'), widen(lr));
      }
      const [ox, oy] = await mapOrigin(page);
      const before = await resultCount(page);
      await page.mouse.move(ox + p0[0], oy + p0[1]);
      await page.mouse.down();
      await page.mouse.move(ox + (p0[0] + p1[0]) / 2, oy + (p0[1] + p1[1]) / 2, { steps: 4 });
      await page.mouse.move(ox + p1[0], oy + p1[1], { steps: 4 });
      await page.mouse.up();
      const mid = [(p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2];
      await expectPolygonCovering(page, before, [mid], 'box');
      await shot('04-box');
      await page.keyboard.press('p');
    }],
    ['a text prompt (sam3 demo: "red") draws a polygon over the square', async () => {
      await page.click('#clear');
      const before = await resultCount(page);
      await page.fill('#prompt', 'red');
      await page.press('#prompt', 'Enter');
      const centre = images
        ? await page.evaluate((ll) => window.samgeoPage.screenOf(ll, 'EPSG:4326'), data.lonlat[0])
        : await page.evaluate(() => window.samgeoPage.screenOf([128, 128], 'pixel'));
      await expectPolygonCovering(page, before, [centre], 'text prompt');
      await shot('05-text');
    }],
    ['an error shows the server\'s detail', async () => {
      await page.fill('#prompt', 'x'.repeat(5000));
      await page.press('#prompt', 'Enter');
      await idle(page);
      await page.waitForSelector('#message.error', { timeout: 10000 });
      const text = await page.locator('#message').textContent();
      assert(/Error 400/.test(text) && /4096/.test(text), `message: ${text}`);
      await shot('06-error');
    }],
    ['segment everything runs as a job with a progress bar', async () => {
      if (!jobs) return 'skip:the jobs API (GET /jobs) is not on this server';
      await page.click('#clear');
      await page.click('#automatic');
      await page.waitForSelector('#progress:not([hidden])', { timeout: 15000 });
      await idle(page);
      const value = await page.locator('#progress').evaluate((p) => p.value);
      assert(value === 1, `progress at the end: ${value}`);
      const boxes = await page.evaluate(() => window.samgeoPage.resultBoxes());
      assert(boxes.length > 0, 'segment everything found something');
      await shot('07-automatic');
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
      await shot('08-phone');
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
        if (typeof outcome === 'string' && outcome.startsWith('skip:')) skip(name, outcome.slice(5));
        else { results.passed += 1; console.log(`[browser] ok ${name}`); }
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
