"""When would each benchmark of a vs-asv.sh run have settled "no change" if the equivalence
interval were 1 - 2*alpha*w (the textbook two one-sided tests at alpha) instead of benchvm's
1 - alpha*w? Offline, on the run's reports: usage `equivalence_level.py OUT_DIR`.

The Hodges-Lehmann interval uses the normal approximation of the signed-rank distribution, so
it reproduces benchvm's own verdicts only approximately (the script says how often)."""
import glob, json, math, sys
from statistics import NormalDist

PLAN = [8, 12, 18, 27, 40]
t2 = [(n / 40) ** 2 for n in PLAN]
SHARE = [t2[0]] + [t2[i] - t2[i - 1] for i in range(1, len(t2))]
ALPHA = 0.05

def hl_interval(d, level):
    n = len(d)
    w = sorted((d[i] + d[j]) / 2 for i in range(n) for j in range(i, n))
    N = len(w)
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    mean = n * (n + 1) / 4
    sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    k = int(math.floor(mean - z * sd))
    if k < 0:
        return None
    return w[k], w[N - 1 - k]

def first_settle(d, delta, factor, last):
    t = math.log(1 + delta / 100)
    for look, n in enumerate(PLAN):
        if n > last:
            return None
        level = 1 - factor * ALPHA * SHARE[look]
        ci = hl_interval(d[:n], level)
        if ci and -t < ci[0] and ci[1] < t:
            return n
    return None

rows = {}
for path in sorted(glob.glob(sys.argv[1] + '/bvm-*/report.json')):
    tag = path.split('/')[-2][4:]
    if tag == 'calibrate':
        continue
    r = json.load(open(path))
    by = {}
    for s in r['samples']:
        if s.get('base') and s.get('head'):
            by.setdefault(s['benchmark'], []).append((s['round'], math.log(s['head']['value'] / s['base']['value'])))
    kind = tag.split('-')[0]
    for c in r['comparisons']:
        d = [x for _, x in sorted(by.get(c['benchmark'], []))]
        delta = c.get('min_effect_percent') or 2.0
        last = len(d)
        old = first_settle(d, delta, 1, last)
        new = first_settle(d, delta, 2, last)
        rows.setdefault(kind, []).append((tag, c['benchmark'], c['verdict'], last, old, new))

for kind, rs in rows.items():
    actual = sum(r[3] for r in rs)
    # with the new rule a row stops at its first new settle, else where it actually stopped
    new_pairs = sum(min(r[3], r[5]) if r[5] else r[3] for r in rs)
    agree = sum(1 for r in rs if (r[4] is not None) == (r[2] == 'no_change'))
    nc_old = sum(1 for r in rs if r[2] == 'no_change')
    nc_new = sum(1 for r in rs if r[5] is not None or r[2] == 'no_change')
    print(f"{kind}: rows {len(rs)}, pairs actual {actual}, with 1-2aw {new_pairs} ({new_pairs/actual:.2f}); "
          f"reimplementation agrees with the real no-change verdict on {agree}/{len(rs)}; no change {nc_old} -> {nc_new}")
    for r in rs:
        if 'contains(10000)' in r[1] or 'contains(1000)' in r[1]:
            if kind == 'p5' and r[5] is not None:
                print('   planted row settles no change under new rule:', r)
