'use strict';
// The Action's wrapper, shared by main.js and post.js. It only obtains the benchvm
// binaries for this action's ref and spawns them; everything else (inputs, refs, the
// comment) is done by `benchvm action`, which reads the INPUT_* variables itself.
// No npm dependencies: Node's own fetch, crypto, fs and child_process.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

// benchvm last: its presence means both are there.
const ASSETS = { 'benchvm-agent': 'benchvm-agent-x86_64-linux', benchvm: 'benchvm-x86_64-linux' };

function log(line) {
  process.stderr.write(`benchvm-action: ${line}\n`);
}

function env(name) {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

// How long one download may take, and how large it may be: a stalled or endless response
// must not hold the job (and a VM) for its whole timeout.
const DOWNLOAD_TIMEOUT_MS = Number(process.env.BENCHVM_DOWNLOAD_TIMEOUT_MS) || 120000;
const DOWNLOAD_MAX_BYTES = 256 * 1024 * 1024;

// Lines of a sha256sum file: "<hex>  <name>"; `#` starts a comment.
function parseSums(text) {
  const sums = {};
  for (const line of text.split('\n')) {
    const m = line.trim().match(/^([0-9a-f]{64})\s+\*?(\S+)$/);
    if (m) sums[m[2]] = m[1];
  }
  return sums;
}

// The checksums of released binaries kept in this repository (action/release-sums, lines
// "<sha256>  <tag>/<asset>"), read from the action's own source: a release's assets,
// its SHA256SUMS included, can be replaced after the fact; the repository's history cannot
// be, unnoticed.
function pinnedSums(source) {
  try {
    return parseSums(fs.readFileSync(path.join(source, 'action', 'release-sums'), 'utf8'));
  } catch (_) {
    return {};
  }
}

async function download(url) {
  const res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS) });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${res.statusText}`);
  const chunks = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.length;
    if (size > DOWNLOAD_MAX_BYTES) throw new Error(`GET ${url}: larger than ${DOWNLOAD_MAX_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

// The release assets of `tag`, verified against the checksums this repository keeps for
// that tag (`pinned`), into `dir`. With `commit`, the release's COMMIT asset must name that
// commit (the action's own ref).
async function fromRelease(dir, server, repo, tag, commit, pinned) {
  const base = `${server}/${repo}/releases/download/${tag}`;
  const wanted = [...(commit ? ['COMMIT'] : []), ...Object.values(ASSETS)];
  const missing = wanted.filter((asset) => !pinned[`${tag}/${asset}`]);
  if (missing.length) {
    throw new Error(`action/release-sums of this action has no checksum for ${tag}/${missing[0]}`);
  }
  const verified = async (asset) => {
    const expected = pinned[`${tag}/${asset}`];
    const bytes = await download(`${base}/${asset}`);
    const actual = crypto.createHash('sha256').update(bytes).digest('hex');
    if (actual !== expected) {
      const err = new Error(`${asset} of ${tag}: checksum ${actual} is not the ${expected} kept in action/release-sums; refusing to run it`);
      err.fatal = true;
      throw err;
    }
    return bytes;
  };
  if (commit) {
    const built = (await verified('COMMIT')).toString('utf8').trim();
    if (built !== commit) throw new Error(`release ${tag} was built from ${built}, not from ${commit}`);
  }
  for (const [name, asset] of Object.entries(ASSETS)) {
    const bytes = await verified(asset);
    const file = path.join(dir, name);
    fs.writeFileSync(`${file}.part`, bytes, { mode: 0o755 });
    fs.renameSync(`${file}.part`, file);
  }
}

// The release tag of the action's ref: the ref itself when it is a tag; for a commit, the
// version in the action's Cargo.toml (the release's COMMIT asset is then checked).
function releaseOf(ref, source) {
  if (!/^[0-9a-f]{40}$/.test(ref)) return { tag: ref, commit: undefined };
  let version;
  try {
    const toml = fs.readFileSync(path.join(source, 'Cargo.toml'), 'utf8');
    version = (toml.match(/^version\s*=\s*"([^"]+)"/m) || [])[1];
  } catch (_) {
    version = undefined;
  }
  return { tag: version ? `v${version}` : undefined, commit: ref };
}

// Builds both binaries from the action's own source (needs cargo on the runner).
function fromSource(dir, source) {
  const build = (args) => {
    log(`building: cargo ${args.join(' ')}`);
    const r = spawnSync('cargo', args, { cwd: source, stdio: ['ignore', 2, 2] });
    if (r.error || r.status !== 0) throw new Error(`cargo ${args.join(' ')} failed (${r.error || `exit ${r.status}`})`);
  };
  // The static agent needs the musl target; a runner without rustup may have it already.
  spawnSync('rustup', ['target', 'add', 'x86_64-unknown-linux-musl'], { stdio: ['ignore', 2, 2] });
  build(['build', '--release', '--locked', '-p', 'benchvm']);
  build(['build', '--release', '--locked', '--target', 'x86_64-unknown-linux-musl', '-p', 'benchvm-agent']);
  fs.copyFileSync(path.join(source, 'target/x86_64-unknown-linux-musl/release/benchvm-agent'), path.join(dir, 'benchvm-agent'));
  fs.copyFileSync(path.join(source, 'target/release/benchvm'), path.join(dir, 'benchvm'));
}

// The path of the benchvm binary for this action's ref: BENCHVM_BINARY when set, else the
// release assets (checked against action/release-sums), else a build from the action's
// source.
async function obtain() {
  const given = env('BENCHVM_BINARY');
  if (given) return given;
  const ref = env('GITHUB_ACTION_REF') || 'main';
  const repo = env('GITHUB_ACTION_REPOSITORY') || 'benchvm/benchvm';
  const server = env('GITHUB_SERVER_URL') || 'https://github.com';
  const dir = path.join(env('RUNNER_TEMP') || require('node:os').tmpdir(), `benchvm-${ref.replace(/[^A-Za-z0-9._-]/g, '_')}`);
  const binary = path.join(dir, 'benchvm');
  if (fs.existsSync(binary)) return binary;
  fs.mkdirSync(dir, { recursive: true });
  const source = env('GITHUB_ACTION_PATH') || path.join(__dirname, '..');
  const { tag, commit } = releaseOf(ref, source);
  try {
    if (!tag) throw new Error('no version in the action\'s Cargo.toml');
    await fromRelease(dir, server, repo, tag, commit, pinnedSums(source));
    log(`using the ${tag} release of ${repo} (checksums verified against action/release-sums${commit ? ', built from this commit' : ''})`);
  } catch (err) {
    if (err.fatal) throw err;
    log(`no usable release for ${ref} (${err.message}); building from source`);
    fromSource(dir, source);
  }
  return binary;
}

// Runs the binary; SIGINT and SIGTERM (a cancelled job) are passed on to it, so benchvm
// itself stops the run and deallocates. Resolves to the exit code to use.
function run(binary, args) {
  return new Promise((resolve) => {
    const child = spawn(binary, args, { stdio: 'inherit' });
    const forward = (signal) => {
      log(`${signal}: passing it on to benchvm`);
      child.kill(signal);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', (err) => {
      log(`cannot run ${binary}: ${err.message}`);
      resolve(3);
    });
    child.on('exit', (code, signal) => {
      resolve(code !== null ? code : 128 + (require('node:os').constants.signals[signal] || 0));
    });
  });
}

function sha256File(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function saveState(name, value) {
  const file = env('GITHUB_STATE');
  if (file) fs.appendFileSync(file, `${name}=${value}\n`);
}

module.exports = { obtain, run, saveState, sha256File, parseSums, log };
