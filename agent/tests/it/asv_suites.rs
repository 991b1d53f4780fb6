//! Real asv suites, unchanged: discovery checked against asv's own runner (`asv_runner`,
//! from the package registry, an oracle benchvm did not write) on asv's test suite and on
//! suites in the shapes of numpy's, pandas' and networkx's; asv's own test benchmarks run
//! as asv's tests expect; and a comparison, configured by `asv.conf.json` alone, of a
//! suite that mixes every asv feature with a module that cannot be imported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::sh;
use benchvm_agent::bench::{Measurement, Probe, SKIPPED, Side, SideEnv};
use benchvm_agent::layers::asv;
use benchvm_agent::measure::runner::SystemRunner;
use benchvm_agent::measure::server::Servers;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/asv-suites")
}

/// A copy of `src` in `dst`: the suites write files (caches, __pycache__) where they run.
fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_dir(&entry.path(), &to);
            }
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

/// Runs `cmd` to completion within `limit`, killing it past that (no test waits forever).
fn run(cmd: &mut Command, limit: Duration) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {limit:?}: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.success(),
        std::fs::read_to_string(out).unwrap(),
        std::fs::read_to_string(err).unwrap(),
    )
}

/// The interpreter with asv_runner and pympler (asv's mem_* needs it); .ci/run installs them.
fn python_with_asv_runner() -> &'static str {
    let (ok, _, err) = run(
        Command::new("python3").args(["-c", "import asv_runner, pympler"]),
        Duration::from_secs(60),
    );
    assert!(
        ok,
        "asv_runner and pympler are installed for python3 (.ci/run installs them): {err}"
    );
    "python3"
}

/// asv's discovery, flattened to one entry per parameter combination, keyed by asv's id.
type Found = BTreeMap<String, (String, Vec<Vec<String>>, Vec<String>, String)>;

fn asv_discovers(python: &str, suite: &Path) -> Found {
    let out = tempfile::NamedTempFile::new().unwrap();
    let (ok, _, err) = run(
        Command::new(python)
            .args([
                "-c",
                "import sys; from asv_runner.discovery import _discover; _discover(sys.argv[1:3])",
            ])
            .arg(suite)
            .arg(out.path())
            .current_dir(suite.parent().unwrap()),
        Duration::from_secs(120),
    );
    assert!(ok, "asv_runner's discovery failed: {err}");
    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.path()).unwrap()).unwrap();
    let mut found = Found::new();
    for b in listed {
        let params: Vec<Vec<String>> = serde_json::from_value(b["params"].clone()).unwrap();
        let names: Vec<String> = serde_json::from_value(b["param_names"].clone()).unwrap();
        let name = b["name"].as_str().unwrap();
        // asv's own vocabulary for units; benchvm writes seconds as "s".
        let unit = match b["unit"].as_str().unwrap() {
            "seconds" => "s",
            other => other,
        };
        let mut ids = vec![Vec::<String>::new()];
        for values in &params {
            ids = ids
                .into_iter()
                .flat_map(|prefix| {
                    values.iter().map(move |v| {
                        let mut p = prefix.clone();
                        p.push(v.clone());
                        p
                    })
                })
                .collect();
        }
        for combo in ids {
            let id = if params.is_empty() {
                name.to_owned()
            } else {
                format!("{name}({})", combo.join(", "))
            };
            let entry = (
                b["type"].as_str().unwrap().to_owned(),
                params.clone(),
                names.clone(),
                unit.to_owned(),
            );
            assert!(found.insert(id.clone(), entry).is_none(), "{id} twice");
        }
    }
    found
}

fn benchvm_discovers(python: &str, suite: &Path) -> (Found, Vec<serde_json::Value>) {
    let harness_dir = tempfile::tempdir().unwrap();
    let harness = asv::install_harness(harness_dir.path()).unwrap();
    let (ok, out, err) = run(
        Command::new(python)
            .arg(&harness)
            .arg("list")
            .arg(suite)
            .current_dir(suite.parent().unwrap()),
        Duration::from_secs(120),
    );
    assert!(ok, "benchvm's discovery failed: {err}");
    let listing: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut found = Found::new();
    for b in listing["benchmarks"].as_array().unwrap() {
        let entry = (
            b["type"].as_str().unwrap().to_owned(),
            serde_json::from_value(b["params"].clone()).unwrap(),
            serde_json::from_value(b["param_names"].clone()).unwrap(),
            b["unit"].as_str().unwrap().to_owned(),
        );
        let id = b["id"].as_str().unwrap().to_owned();
        assert!(found.insert(id.clone(), entry).is_none(), "{id} twice");
    }
    (found, listing["errors"].as_array().unwrap().clone())
}

#[test]
fn discovery_finds_exactly_what_asv_runner_finds_on_asv_s_own_suite_and_numpy_pandas_networkx_shapes()
 {
    let python = python_with_asv_runner();
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixtures(), tmp.path());
    for (suite, at_least) in [
        ("asv-test/benchmark", 60),
        ("numpy-style/benchmarks/benchmarks", 20),
        ("pandas-style/asv_bench/benchmarks", 8),
        ("networkx-style/benchmarks/benchmarks", 7),
    ] {
        let dir = tmp.path().join(suite);
        let theirs = asv_discovers(python, &dir);
        let (ours, errors) = benchvm_discovers(python, &dir);
        assert!(errors.is_empty(), "{suite}: {errors:?}");
        assert!(theirs.len() >= at_least, "{suite}: {}", theirs.len());
        let only_theirs: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
        let only_ours: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
        assert!(
            only_theirs.is_empty() && only_ours.is_empty(),
            "{suite}: only asv finds {only_theirs:?}; only benchvm finds {only_ours:?}"
        );
        for (id, entry) in &theirs {
            assert_eq!(
                &ours[id], entry,
                "{suite}: {id} (type, params, names, unit)"
            );
        }
    }
}

/// The suite under `checkout/benchmarks`, discovered with a harness installed in `scratch`,
/// and the base side it was discovered on.
fn discovered(checkout: &Path, scratch: &Path, timeout: Duration) -> (SideEnv, asv::Suite) {
    let harness = asv::install_harness(scratch).unwrap();
    let base = side(checkout, vec![]);
    let suite = asv::discover(
        &SystemRunner,
        &harness,
        Path::new("benchmarks"),
        &base,
        scratch,
        timeout,
    )
    .unwrap();
    (base, suite)
}

fn side(checkout: &Path, env: Vec<(String, String)>) -> SideEnv {
    let mut env = env;
    env.push(("PATH".into(), std::env::var("PATH").unwrap()));
    SideEnv {
        side: Side::Base,
        checkout: checkout.to_owned(),
        env,
        writable: None,
    }
}

/// asv's own test suite (fixtures/asv-test) copied under `dir` and discovered on base.
struct AsvTestSuite {
    scratch: PathBuf,
    cache_root: PathBuf,
    base: SideEnv,
    timeout: Duration,
    suite: asv::Suite,
}

fn asv_test_suite(dir: &Path) -> AsvTestSuite {
    let checkout = dir.join("checkout");
    copy_dir(&fixtures().join("asv-test"), &checkout);
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let harness = asv::install_harness(&scratch).unwrap();
    let cache_root = dir.join("asv-cache");
    let base = side(
        &checkout,
        vec![(asv::CACHE_VAR.into(), cache_root.display().to_string())],
    );
    let timeout = Duration::from_secs(60);
    let suite = asv::discover(
        &SystemRunner,
        &harness,
        Path::new("benchmark"),
        &base,
        &scratch,
        timeout,
    )
    .unwrap();
    AsvTestSuite {
        scratch,
        cache_root,
        base,
        timeout,
        suite,
    }
}

#[test]
fn asv_s_own_test_benchmarks_run_as_asv_s_tests_expect() {
    let python = python_with_asv_runner();
    assert_eq!(python, "python3");
    let tmp = tempfile::tempdir().unwrap();
    let AsvTestSuite {
        scratch,
        cache_root,
        base,
        timeout,
        suite,
    } = asv_test_suite(tmp.path());
    let ids: Vec<&str> = suite.benchmarks.iter().map(|b| b.name.as_str()).collect();
    // Parameters are asv's reprs, memory addresses left out.
    assert!(ids.contains(&"params_examples.FunctionParamSuite.time_func(<function track_param>)"));
    assert!(
        ids.contains(&"custom.time_function"),
        "benchmark_name renames"
    );
    let mut log = Vec::new();
    asv::prepare_caches(
        &SystemRunner,
        &base,
        &cache_root,
        &suite.benchmarks,
        &suite.caches,
        timeout,
        &mut |line| log.push(line),
    )
    .unwrap();
    let probe = Probe {
        runner: &SystemRunner,
        scratch: &scratch,
        timeout,
        servers: None,
        cpu: None,
    };
    let measure = |id: &str| {
        let bench = suite
            .benchmarks
            .iter()
            .find(|b| b.name == id)
            .unwrap_or_else(|| panic!("{id} discovered"));
        probe.measure(bench, &base, 0)
    };
    let value = |id: &str| measure(id).unwrap_or_else(|e| panic!("{id}: {e}")).value;
    // setup_cache: its result is passed in, and its benchmarks run in its directory.
    assert_eq!(value("cache_examples.track_cache_foo"), 42.0);
    assert_eq!(value("cache_examples.track_cache_bar"), 12.0);
    assert_eq!(value("cache_examples.track_my_cache_foo"), 0.0);
    assert_eq!(value("cache_examples.ClassLevelSetup.track_example"), 500.0);
    // A setup_cache's own timeout (5 s) outlasts its 2 s sleep; one of 0.1 s does not, and
    // fails only its own benchmark.
    assert_eq!(
        value("cache_examples.ClassLevelCacheTimeoutSuccess.track_success"),
        0.0
    );
    let slow = measure("cache_examples.ClassLevelCacheTimeout.track_fail").unwrap_err();
    assert!(slow.contains("setup_cache failed: timed out"), "{slow}");
    let raising = measure("cache_examples.ClassLevelSetupFail.track_fail").unwrap_err();
    assert!(
        raising.contains("setup_cache failed: RuntimeError"),
        "{raising}"
    );
    assert!(log.iter().any(|l| l.contains("failed on base")), "{log:?}");
    // timeraw_*: a fresh interpreter (no asv, no inspect loaded), a setup, number and repeat.
    for id in [
        "timeraw_examples.TimerawSuite.timeraw_fresh",
        "timeraw_examples.TimerawSuite.timeraw_setup",
        "timeraw_examples.TimerawSuite.timeraw_count",
    ] {
        assert!(value(id) > 0.0, "{id}");
    }
    // A benchmark's own timeout applies to its run.
    let spin = measure("time_examples.time_with_timeout").unwrap_err();
    assert!(spin.contains("timed out"), "{spin}");
    let spin = measure("timeraw_examples.TimerawSuite.timeraw_timeout").unwrap_err();
    assert!(spin.contains("timed out"), "{spin}");
    // setup runs again before every repeat; number and repeat set in setup take effect; a
    // timer that never advances does not hang calibration.
    for id in [
        "time_examples.TimeWithRepeat.time_it",
        "params_examples.TuningTest.time_it(1)",
        "params_examples.TuningTest.time_it(2)",
        "time_examples.TimeWithRepeatCalibrate.time_it",
        "time_examples.time_auto_repeat",
        "subdir.time_subdir.time_foo",
        "time_secondary.TimeSecondary.time_factorial",
    ] {
        assert!(value(id) >= 0.0, "{id}");
    }
    measure("time_examples.TimeWithBadTimer.time_it").unwrap();
    // mem_* is asv's figure (pympler): a list of 255 references is 255 pointers and more.
    assert!(value("mem_examples.mem_list") >= 255.0 * 8.0);
    assert_eq!(value("params_examples.mem_param(10, 2)"), 136.0);
    assert!(value("peakmem_examples.peakmem_list") > 8e6);
    assert_eq!(value("params_examples.track_param_selection(2, 5)"), 7.0);
    assert_eq!(value("named.track_custom_pretty_name"), 42.0);
    assert_eq!(value("params_examples.ParamSuite.track_value('c')"), 3.0);
    let skipped = measure("params_examples.time_skip(3000)").unwrap_err();
    assert!(skipped.starts_with("skipped: "), "{skipped}");
    value("params_examples.time_skip(2000)");
    // What asv's tests expect to fail, fails (and alone).
    for id in [
        "time_secondary.TimeSecondary.time_exception",
        "time_secondary.track_fail_errcode_123",
        "time_secondary.track_fail_signal_9",
        "time_examples.time_with_warnings",
        "params_examples.track_wrong_number_of_args(1)",
    ] {
        assert!(measure(id).is_err(), "{id} fails");
    }
}

#[test]
fn a_suite_configured_by_asv_conf_json_alone_compares_everything_but_its_broken_module() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_dir(&fixtures().join("mixed"), &repo);
    sh(
        &repo,
        "git init -q -b main && git add -A && git commit -qm base",
    );
    sh(
        &repo,
        "git checkout -qb head && sed -i 's/range(n))$/range(n)) + 0/' src/mixedpkg/__init__.py && git commit -qam head && git checkout -q main",
    );
    let results = tmp.path().join("results");
    let (ok, _, stderr) = run(
        Command::new(env!("CARGO_BIN_EXE_benchvm-agent"))
            .args(["compare", "--repo"])
            .arg(&repo)
            .args(["--base", "main", "--head", "head", "--rounds", "2"])
            .arg("--results")
            .arg(&results)
            .arg("--cache")
            .arg(tmp.path().join("cache")),
        Duration::from_secs(600),
    );
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("no bench.yml: reading head:asv.conf.json, the asv suite in benchmarks"),
        "{stderr}"
    );
    assert!(stderr.contains("`build_command` not used"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("report.json")).unwrap())
            .unwrap();
    let dropped: BTreeMap<&str, (&str, bool)> = report["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["benchmark"].as_str().unwrap(),
                (
                    d["reason"].as_str().unwrap(),
                    d["skipped"].as_bool().unwrap_or(false),
                ),
            )
        })
        .collect();
    let (broken, skipped) = dropped["micro/bench_broken"];
    assert!(
        broken.contains(
            "cannot import it: ModuleNotFoundError: No module named 'mixedpkg.not_there'"
        ) && !skipped,
        "{broken}"
    );
    let (slow, skipped) = dropped["micro/bench_cache.SlowCache.track_never"];
    assert!(
        slow.contains("setup_cache failed: timed out") && !skipped,
        "{slow}"
    );
    for id in [
        "micro/bench_skip.Skips.time_inside(1)",
        "micro/bench_skip.Skips.time_inside(3)",
        "micro/bench_skip.Skips.time_some(2)",
        "micro/bench_skip.Skips.time_some(3)",
    ] {
        assert!(
            dropped[id].1,
            "{id} is skipped, not failed: {:?}",
            dropped[id]
        );
    }
    assert_eq!(dropped.len(), 6, "{dropped:?}");
    assert_eq!(report["summary"]["failed"], 2);
    let compared: BTreeMap<&str, &serde_json::Value> = report["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["benchmark"].as_str().unwrap(), c))
        .collect();
    for id in [
        "micro/bench_cache.track_cached",
        "micro/bench_cache.time_cached",
        "micro/bench_raw.timeraw_import_json",
        "micro/bench_raw.timeraw_with_setup",
        "micro/bench_raw.mem_table",
        "micro/bench_skip.Skips.time_inside(2)",
        "micro/bench_skip.Skips.time_some(1)",
        "micro/bench_skip.time_kept",
        "micro/bench_time.Work.time_work(400, 'b')",
        "micro/bench_time.Work.track_len(100, 'a')",
        "micro/bench_time.time_lookup(50)",
        "micro/bench_time.peakmem_table",
    ] {
        assert!(
            compared.contains_key(id),
            "{id} compared: {:?}",
            compared.keys()
        );
    }
    assert_eq!(compared.len(), 19, "{:?}", compared.keys());
    assert!(
        !compared.contains_key("micro/bench_skip.time_never"),
        "skip_benchmark"
    );
    let c = compared["micro/bench_cache.track_cached"];
    assert_eq!(
        (c["base_median"].as_f64(), c["unit"].as_str()),
        (Some(1000.0), Some("unit"))
    );
    let c = compared["micro/bench_time.Work.track_len(400, 'a')"];
    assert_eq!(
        (c["head_median"].as_f64(), c["unit"].as_str()),
        (Some(400.0), Some("entries"))
    );
    let summary = std::fs::read_to_string(results.join("summary.md")).unwrap();
    assert!(
        summary.contains(
            "- `micro/bench_broken` failed: `head: cannot import it: ModuleNotFoundError"
        ),
        "{summary}"
    );
    assert!(summary.contains("⏭️ skipped"), "{summary}");
}

/// The sample server (sampling.fork, the default) gives asv's own time_* test benchmarks
/// the outcome a fresh interpreter gives them: a value, the same skip, the same failure,
/// a benchmark's own timeout; and a server that dies is replaced by the next sample.
#[test]
fn served_time_samples_end_as_fresh_ones_do_on_asv_s_test_suite() {
    let tmp = tempfile::tempdir().unwrap();
    let AsvTestSuite {
        scratch,
        cache_root,
        base,
        timeout,
        suite,
    } = asv_test_suite(tmp.path());
    asv::prepare_caches(
        &SystemRunner,
        &base,
        &cache_root,
        &suite.benchmarks,
        &suite.caches,
        timeout,
        &mut |_| {},
    )
    .unwrap();
    let servers = Servers::new(&scratch, None);
    let probe = |servers| Probe {
        runner: &SystemRunner,
        scratch: &scratch,
        timeout,
        servers,
        cpu: None,
    };
    let (fresh, served) = (probe(None), probe(Some(&servers)));
    // time_fail_second_run fails on its second run by design (asv tests its `processes`
    // with it): whichever of the two ran second would fail.
    let timed: Vec<_> = suite
        .benchmarks
        .iter()
        .filter(|b| b.served && b.name != "cache_examples.time_fail_second_run")
        .collect();
    assert!(timed.len() >= 10, "{} time_* benchmarks", timed.len());
    assert!(
        !suite
            .benchmarks
            .iter()
            .any(|b| b.served && !b.name.contains("time_") && !b.name.contains(".Time")),
        "only time_* benchmarks are served"
    );
    let class = |r: &Result<Measurement, String>| match r {
        Ok(m) if m.value > 0.0 && m.value.is_finite() => "value".to_string(),
        Ok(m) => format!("bad value {}", m.value),
        Err(e) if e.starts_with(SKIPPED) => "skipped".into(),
        Err(e) if e.contains("timed out") => "timed out".into(),
        Err(_) => "failed".into(),
    };
    let mut classes = std::collections::BTreeSet::new();
    for bench in timed {
        let (f, s) = (
            fresh.measure(bench, &base, 0),
            served.measure(bench, &base, 100),
        );
        // Under load a fresh interpreter can take longer than a benchmark's own 1 s timeout
        // to reach the failure the served sample reports at once: the timeout's message then
        // ends with that failure (seen once in a loaded run, params_examples.time_find_test_timeout).
        let slow_to_fail = |a: &Result<Measurement, String>, b: &Result<Measurement, String>| {
            matches!((a, b), (Err(a), Err(b)) if class(&Err(b.clone())) == "failed"
                && a.contains("timed out") && a.ends_with(b.as_str()))
        };
        assert!(
            class(&f) == class(&s) || slow_to_fail(&f, &s) || slow_to_fail(&s, &f),
            "{}: fresh {f:?}, served {s:?}",
            bench.name
        );
        classes.insert(class(&s));
    }
    assert!(
        classes.contains("value") && classes.contains("timed out"),
        "{classes:?}"
    );

    // A server that dies (here: killed as a stop signal kills it) fails the sample in
    // progress, and the next one starts a new server.
    let bench = suite
        .benchmarks
        .iter()
        .find(|b| b.served && b.name == "time_examples.TimeSuite.time_example_benchmark_1")
        .expect("a plain time_* benchmark");
    assert!(served.measure(bench, &base, 0).is_ok());
    benchvm_agent::measure::runner::kill_current();
    let lost = served.measure(bench, &base, 0).unwrap_err();
    assert!(lost.contains("sample server"), "{lost}");
    assert!(served.measure(bench, &base, 0).is_ok());
}

/// A suite that is unkind to the sample server: a sample that reads stdin, one that leaves
/// a process holding its pipes, one whose teardown closes stdout. Each gets its own outcome,
/// within its timeout, and never another benchmark's answer.
#[test]
fn hostile_samples_cannot_disturb_the_sample_server() {
    let tmp = tempfile::tempdir().unwrap();
    let checkout = tmp.path().join("checkout");
    crate::support::write(
        &checkout,
        "benchmarks/bench_h.py",
        "import subprocess, sys\n\
         def time_reads_stdin():\n    sys.stdin.read()\n\
         def time_leaves_a_child():\n    subprocess.Popen(['sleep', '20'])\n\
         def time_plain():\n    sum(range(100))\n\
         class TimeCloses:\n    def teardown(self):\n        sys.stdout.close()\n    def time_it(self):\n        pass\n",
    );
    crate::support::write(&checkout, "benchmarks/__init__.py", "");
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let timeout = Duration::from_secs(5);
    let (base, suite) = discovered(&checkout, &scratch, timeout);
    let servers = Servers::new(&scratch, None);
    let probe = Probe {
        runner: &SystemRunner,
        scratch: &scratch,
        timeout,
        servers: Some(&servers),
        cpu: None,
    };
    let bench = |name: &str| {
        suite
            .benchmarks
            .iter()
            .find(|b| b.name == name && b.served)
            .unwrap_or_else(|| panic!("{name} discovered and served"))
    };
    for name in [
        "bench_h.time_reads_stdin",
        "bench_h.time_leaves_a_child",
        "bench_h.TimeCloses.time_it",
        "bench_h.time_plain",
    ] {
        let t = Instant::now();
        let m = probe
            .measure(bench(name), &base, 0)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // Its own answer, not the 20 s of a child's sleep nor the 5 s timeout: far below
        // either (a Popen on this loaded 2-core machine took 12 ms, over the 10 ms this
        // bound used to be).
        assert!(m.value > 0.0 && m.value < 1.0, "{name}: {m:?}");
        assert!(
            t.elapsed() < Duration::from_secs(4),
            "{name}: {:?}",
            t.elapsed()
        );
        // And the next sample of the same server still answers for itself.
        let plain = probe.measure(bench("bench_h.time_plain"), &base, 0);
        assert!(plain.is_ok_and(|m| m.value < 1.0), "after {name}");
    }
}

/// `sampling.pin_cpu`: every sample, forked from a server or in a fresh process, runs on the
/// one CPU the agent chose, and without it on any the agent may use.
#[test]
fn pinned_samples_run_on_the_chosen_cpu_served_and_fresh() {
    let Some(cpu) = benchvm_agent::measure::runner::sample_cpu() else {
        // Only one CPU to run on: then there is nothing to choose, and nothing is pinned.
        assert_eq!(std::thread::available_parallelism().unwrap().get(), 1);
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let seen = tmp.path().join("seen");
    std::fs::create_dir_all(&seen).unwrap();
    let (scratch, base, _, suite) = turns_suite(
        tmp.path(),
        "import os\n\
         def where(kind):\n    \
             with open(os.path.join(os.environ['SEEN'], kind), 'w') as f:\n        \
                 f.write(' '.join(map(str, sorted(os.sched_getaffinity(0)))))\n\
         def time_where():\n    where('served')\n\
         def track_where():\n    where('fresh')\n    return 1\n",
        vec![("SEEN".into(), seen.to_str().unwrap().into())],
    );
    let timeout = Duration::from_secs(30);
    let bench = |name: &str| {
        suite
            .benchmarks
            .iter()
            .find(|b| b.name == name)
            .unwrap_or_else(|| panic!("{name} discovered"))
    };
    assert!(bench("bench_turns.time_where").served && !bench("bench_turns.track_where").served);
    let read = |kind: &str| std::fs::read_to_string(seen.join(kind)).unwrap();
    for pinned in [Some(cpu), None] {
        let servers = Servers::new(&scratch, pinned);
        let probe = Probe {
            runner: &SystemRunner,
            scratch: &scratch,
            timeout,
            servers: Some(&servers),
            cpu: pinned,
        };
        for name in ["bench_turns.time_where", "bench_turns.track_where"] {
            probe
                .measure(bench(name), &base, 0)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let (served, fresh) = (read("served"), read("fresh"));
        match pinned {
            Some(cpu) => {
                assert_eq!(served, cpu.to_string());
                assert_eq!(fresh, cpu.to_string());
            }
            None => {
                assert!(served.split(' ').count() > 1, "unpinned served: {served}");
                assert!(fresh.split(' ').count() > 1, "unpinned fresh: {fresh}");
            }
        }
    }
}

/// A restart starts the next round's server ahead, on the CPUs other than the sampling one,
/// where it imports the benchmarks it is given before anything is asked of it; the next
/// restart waits for it to say so, moves it to the sampling CPU, and the round's samples are
/// forked from it. A spare not ready in time is not used, and with samples not pinned there
/// are no spares.
#[test]
fn a_spare_server_imports_beside_the_sampling_cpu_and_then_samples_on_it() {
    let Some(cpu) = benchvm_agent::measure::runner::sample_cpu() else {
        assert_eq!(std::thread::available_parallelism().unwrap().get(), 1);
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let seen = tmp.path().join("seen");
    std::fs::create_dir_all(&seen).unwrap();
    // Each import leaves a file named by its process, saying the CPUs it may use then, and
    // takes 20 s while a file "slow" exists; each sample leaves one named "sample", saying
    // its server (its parent) and its CPUs.
    let (scratch, base, _, suite) = turns_suite(
        tmp.path(),
        "import os, time\n\
         def cpus():\n    return ' '.join(map(str, sorted(os.sched_getaffinity(0))))\n\
         with open(os.path.join(os.environ['SEEN'], 'import-%d' % os.getpid()), 'w') as f:\n    \
             f.write(cpus())\n\
         if os.path.exists(os.path.join(os.environ['SEEN'], 'slow')):\n    time.sleep(20)\n\
         def time_where():\n    \
             with open(os.path.join(os.environ['SEEN'], 'sample'), 'w') as f:\n        \
                 f.write('%d %s' % (os.getppid(), cpus()))\n",
        vec![("SEEN".into(), seen.to_str().unwrap().into())],
    );
    let bench = suite
        .benchmarks
        .iter()
        .find(|b| b.name == "bench_turns.time_where")
        .expect("discovered");
    let discovery: Vec<u32> = imports(&seen).into_keys().collect();
    // The import that started after all of `known`, within 60 s: (pid, its CPUs).
    let next_import = |known: &[u32]| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = imports(&seen);
            if let Some((&pid, cpus)) = now.iter().find(|(pid, _)| !known.contains(pid)) {
                break (pid, cpus.clone());
            }
            assert!(
                Instant::now() < deadline,
                "no new import within 60 s: {now:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let sample = || {
        let text = std::fs::read_to_string(seen.join("sample")).unwrap();
        let (pid, cpus) = text.split_once(' ').unwrap();
        (pid.parse::<u32>().unwrap(), cpus.to_owned())
    };
    let wait = Duration::from_secs(60);
    let pinned = Servers::new(&scratch, Some(cpu));
    let probe = |servers| Probe {
        runner: &SystemRunner,
        scratch: &scratch,
        timeout: Duration::from_secs(30),
        servers: Some(servers),
        cpu: Some(cpu),
    };
    probe(&pinned)
        .measure(bench, &base, 0)
        .expect("a first sample");
    let (first, cpus) = sample();
    assert_eq!(cpus, cpu.to_string(), "a server started on first use");
    assert!(!discovery.contains(&first));

    pinned.restart([0, 0], &[bench], wait);
    let spare = next_import(&[&discovery[..], &[first]].concat());
    let aside: Vec<&str> = spare.1.split(' ').collect();
    assert!(
        !aside.is_empty() && !aside.contains(&cpu.to_string().as_str()),
        "the spare imported on {aside:?}, beside CPU {cpu}"
    );
    pinned.restart([0, 0], &[], wait);
    probe(&pinned)
        .measure(bench, &base, 0)
        .expect("a sample of the new round");
    assert_eq!(
        sample(),
        (spare.0, cpu.to_string()),
        "the spare, moved to the sampling CPU, forked it"
    );
    assert_eq!(imports(&seen).len(), discovery.len() + 2, "no third server");

    // A spare still importing when its round begins is not used: its side starts anew.
    std::fs::write(seen.join("slow"), "").unwrap();
    pinned.restart([0, 0], &[bench], wait);
    let slow = next_import(&[&discovery[..], &[first, spare.0]].concat());
    std::fs::remove_file(seen.join("slow")).unwrap();
    pinned.restart([0, 0], &[], Duration::from_millis(500));
    probe(&pinned)
        .measure(bench, &base, 0)
        .expect("a sample from a new server");
    let (server, _) = sample();
    assert_ne!(
        server, slow.0,
        "the spare that was not ready forked the sample"
    );
    assert!(imports(&seen).contains_key(&server));

    // Samples not pinned: no spares.
    let unpinned = Servers::new(&scratch, None);
    Probe {
        cpu: None,
        ..probe(&unpinned)
    }
    .measure(bench, &base, 0)
    .expect("an unpinned sample");
    let known: Vec<u32> = imports(&seen).into_keys().collect();
    unpinned.restart([0, 0], &[bench], wait);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        imports(&seen).len(),
        known.len(),
        "a spare started unpinned"
    );
}

/// The imports `a_spare_server_imports_beside_the_sampling_cpu_and_then_samples_on_it`'s
/// suite recorded: pid, and the CPUs it could use.
fn imports(seen: &Path) -> BTreeMap<u32, String> {
    std::fs::read_dir(seen)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let pid = name.strip_prefix("import-")?.parse().ok()?;
            Some((pid, std::fs::read_to_string(seen.join(&name)).unwrap()))
        })
        .collect()
}

/// A suite of one benchmark module, `bench_turns.py`, discovered on a base side whose
/// environment also carries `env`; returns (scratch, base, head, suite).
fn turns_suite(
    dir: &Path,
    module: &str,
    env: Vec<(String, String)>,
) -> (PathBuf, SideEnv, SideEnv, asv::Suite) {
    let checkout = dir.join("checkout");
    crate::support::write(&checkout, "benchmarks/__init__.py", "");
    crate::support::write(&checkout, "benchmarks/bench_turns.py", module);
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let harness = asv::install_harness(&scratch).unwrap();
    let with = |name: &str| {
        let mut env = env.clone();
        env.push(("SIDE".into(), name.into()));
        env
    };
    let base = side(&checkout, with("base"));
    let head = SideEnv {
        side: Side::Head,
        ..side(&checkout, with("head"))
    };
    let suite = asv::discover(
        &SystemRunner,
        &harness,
        Path::new("benchmarks"),
        &base,
        &scratch,
        Duration::from_secs(30),
    )
    .unwrap();
    (scratch, base, head, suite)
}

/// `sampling.lockstep`: both children of a pair are alive at once and take turns, block by
/// block, in ABBA order: the calls they log alternate between the sides about twice per
/// block, where a sequential pair switches once; each side's value is its own.
#[test]
fn a_lockstep_pair_takes_turns_block_by_block_and_measures_each_side() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("calls.log");
    let (scratch, base, head, suite) = turns_suite(
        tmp.path(),
        "import os, time\n\
         def time_turns():\n    \
             with open(os.environ['LOG'], 'a') as f:\n        \
                 f.write(os.environ['SIDE'][0])\n    \
             if os.environ['SIDE'] == 'head':\n        \
                 time.sleep(0.0002)\n",
        vec![("LOG".into(), log.to_str().unwrap().into())],
    );
    let bench = &suite.benchmarks[0];
    assert!(bench.served, "{bench:?}");
    let timeout = Duration::from_secs(30);
    let servers = Servers::new(&scratch, None).with_lockstep(Some(20));
    // No calibrated `number` yet: not in lockstep, the warm-up calibrates it.
    assert!(
        servers
            .measure_pair(bench, [(&base, 0), (&head, 0)], timeout, 20)
            .is_none()
    );
    servers.measure(bench, &base, 0, timeout).unwrap();
    let switches = |servers: &Servers, lockstep: bool| {
        std::fs::write(&log, "").unwrap();
        let [b, h] = if lockstep {
            servers
                .measure_pair(bench, [(&base, 0), (&head, 0)], timeout, 20)
                .expect("calibrated")
        } else {
            [
                servers.measure(bench, &base, 0, timeout),
                servers.measure(bench, &head, 0, timeout),
            ]
        };
        let (b, h) = (b.unwrap().value, h.unwrap().value);
        // Head sleeps 0.2 ms more per call.
        assert!(h > b + 0.00015, "base {b}, head {h}");
        let calls = std::fs::read_to_string(&log).unwrap();
        let runs = calls.as_bytes().windows(2).filter(|w| w[0] != w[1]).count();
        (runs, calls.len())
    };
    let (sequential, _) = switches(&servers, false);
    assert_eq!(sequential, 1);
    let (lockstep, calls) = switches(&servers, true);
    // `number` calls a side in min(20, number) blocks, in turns A B, B A, A B, ...: a switch
    // within each turn and none between, so one per block; children running at once without
    // turns switch at random.
    assert_eq!(calls % 2, 0, "{calls} calls");
    assert_eq!(lockstep, (calls / 2).min(20), "{calls} calls");
}

/// A lockstep side that fails in setup, or times out in its blocks, ends the pair: the
/// other side is sampled alone and keeps its value; the failure reads as it would in a
/// sequential pair (a timeout as a timeout, so the pair can be censored); nothing hangs,
/// and the servers go on serving.
#[test]
fn a_failing_or_hanging_lockstep_side_ends_the_pair_and_the_other_is_sampled_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let mode = tmp.path().join("mode");
    let (scratch, base, head, suite) = turns_suite(
        tmp.path(),
        "import os, time\n\
         def mode():\n    \
             with open(os.environ['MODE']) as f:\n        \
                 return f.read() if os.environ['SIDE'] == 'head' else ''\n\
         class Turns:\n    \
             def setup(self):\n        \
                 if mode() == 'fail':\n            \
                     raise ValueError('head setup broke')\n    \
             def time_turns(self):\n        \
                 if mode() == 'hang':\n            \
                     time.sleep(3600)\n        \
                 sum(range(100))\n",
        vec![("MODE".into(), mode.to_str().unwrap().into())],
    );
    let bench = &suite.benchmarks[0];
    let timeout = Duration::from_secs(3);
    let servers = Servers::new(&scratch, None).with_lockstep(Some(20));
    std::fs::write(&mode, "").unwrap();
    servers.measure(bench, &base, 0, timeout).unwrap();
    for (kind, expected) in [
        ("fail", "head setup broke"),
        ("hang", benchvm_agent::bench::TIMED_OUT),
        ("", ""),
    ] {
        std::fs::write(&mode, kind).unwrap();
        let started = Instant::now();
        let [h, b] = servers
            .measure_pair(bench, [(&head, 0), (&base, 0)], timeout, 20)
            .expect("calibrated");
        assert!(
            started.elapsed() < 4 * timeout,
            "{kind}: {:?}",
            started.elapsed()
        );
        let b = b.unwrap_or_else(|e| panic!("{kind}: base {e}"));
        assert!(b.value > 0.0 && b.value < SANE_CALL_S, "{kind}: {b:?}");
        match h {
            Err(e) => assert!(!expected.is_empty() && e.contains(expected), "{kind}: {e}"),
            Ok(m) => assert!(expected.is_empty(), "{kind}: head {m:?}"),
        }
    }
}

/// A lockstep child keeps the server's answer stream open, so the benchmark's own code can
/// write to it: an endless line ends that side's pair at once (the agent reads at most
/// 1 MiB of one line), instead of growing the agent's memory until the sample times out.
#[test]
fn a_lockstep_child_flooding_the_answer_stream_only_ends_its_own_side() {
    let tmp = tempfile::tempdir().unwrap();
    let (scratch, base, head, suite) = turns_suite(
        tmp.path(),
        "import os, time\n\
         class Flood:\n    \
             def setup(self):\n        \
                 import __main__\n        \
                 fd = getattr(__main__, 'LOCKSTEP', {}).get('answers')\n        \
                 if os.environ['SIDE'] == 'head' and fd is not None:\n            \
                     for _ in range(256):\n                \
                         os.write(fd, b'x' * (1 << 20))\n            \
                     time.sleep(3600)\n    \
             def time_flood(self):\n        \
                 sum(range(100))\n",
        vec![],
    );
    let bench = &suite.benchmarks[0];
    let timeout = Duration::from_secs(5);
    let servers = Servers::new(&scratch, None).with_lockstep(Some(20));
    servers.measure(bench, &base, 0, timeout).unwrap();
    let started = Instant::now();
    let [b, h] = servers
        .measure_pair(bench, [(&base, 0), (&head, 0)], timeout, 20)
        .expect("calibrated");
    let h = h.expect_err("head flooded its stream");
    assert!(h.contains("longer than 1048576 bytes"), "{h}");
    assert!(started.elapsed() < timeout, "{:?}", started.elapsed());
    assert!(b.is_ok_and(|m| m.value < SANE_CALL_S));
}

// Hostile and unusual lockstep suites (from an independent review).

/// An upper bound on one call's time for the cheap benchmarks of the lockstep tests (a 1 ms
/// sleep, `sum(range(100))`): far above what a loaded machine stretches them to (a 1 ms sleep
/// measured 11.5 ms under load), far below the seconds a side's value would hold had it
/// waited out the other side's hang or timeout, and below a unit slip (ms read as s).
const SANE_CALL_S: f64 = 0.5;

/// Runs `f` on its own thread; fails the test if it has not returned within `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, recv) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match recv.recv_timeout(limit) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("the test did not finish within {limit:?}"),
    }
}

const REVIEW_SUITE: &str = "import os, time\n\
def mode():\n    \
    with open(os.environ['MODE']) as f:\n        \
        return f.read() if os.environ['SIDE'] == 'head' else ''\n\
def spin(secs):\n    \
    if 'spun' in CALLS:\n        \
        return\n    \
    CALLS.append('spun')\n    \
    end = time.process_time() + secs\n    \
    while time.process_time() < end:\n        \
        pass\n\
CALLS = [0]\n\
class Forty:\n    \
    number = 40\n    \
    def setup(self):\n        \
        self.m = mode()\n        \
        if self.m == 'skip':\n            \
            raise NotImplementedError('head skips')\n        \
        if self.m == 'slowsetup':\n            \
            time.sleep(10)\n        \
        if self.m.startswith('spin:'):\n            \
            spin(float(self.m[5:]))\n        \
        b = os.environ.get('BASESPIN')\n        \
        if b and os.path.exists(b) and os.environ['SIDE'] == 'base':\n            \
            spin(float(open(b).read() or 0))\n    \
    def teardown(self):\n        \
        if self.m == 'slowteardown' and not CALLS[1:]:\n            \
            CALLS.append('torn')\n            \
            time.sleep(11)\n    \
    def time_forty(self):\n        \
        CALLS[0] += 1\n        \
        if self.m.startswith('raise:') and CALLS[0] == int(self.m[6:]):\n            \
            raise ValueError('head call %d' % CALLS[0])\n        \
        sum(range(100))\n\
class One:\n    \
    number = 1\n    \
    def time_one(self):\n        \
        time.sleep(0.001 if mode() == '' else 0.003)\n\
class Uneven:\n    \
    number = 1 if os.environ['SIDE'] == 'head' else 40\n    \
    def time_uneven(self):\n        \
        sum(range(100))\n\
class Waits:\n    \
    number = 40\n    \
    repeat = 1\n    \
    def setup(self):\n        \
        if mode() == 'sleep':\n            \
            time.sleep(2)\n    \
    def time_waits(self):\n        \
        if os.environ['SIDE'] == 'base':\n            \
            time.sleep(0.03)\n\
class Repeat:\n    \
    repeat = (1, 3, 1.0)\n    \
    def time_repeat(self):\n        \
        sum(range(100))\n";

struct Review {
    _tmp: tempfile::TempDir,
    scratch: PathBuf,
    base: SideEnv,
    head: SideEnv,
    suite: asv::Suite,
    mode: PathBuf,
    basespin: PathBuf,
}

fn lockstep_suite() -> Review {
    let tmp = tempfile::tempdir().unwrap();
    let mode = tmp.path().join("mode");
    let basespin = tmp.path().join("basespin");
    std::fs::write(&mode, "").unwrap();
    let (scratch, base, head, suite) = turns_suite(
        tmp.path(),
        REVIEW_SUITE,
        vec![
            ("MODE".into(), mode.to_str().unwrap().into()),
            ("BASESPIN".into(), basespin.to_str().unwrap().into()),
        ],
    );
    Review {
        _tmp: tmp,
        scratch,
        base,
        head,
        suite,
        mode,
        basespin,
    }
}

type Sample = Result<Measurement, String>;

impl Review {
    /// Lockstep servers (20 blocks, on `cpu` if given), `name`'s `number` calibrated by one
    /// base sample within `t`.
    fn calibrated(
        &self,
        name: &str,
        cpu: Option<usize>,
        t: Duration,
    ) -> (Servers, &benchvm_agent::bench::Benchmark) {
        let bench = self.bench(name);
        let servers = Servers::new(&self.scratch, cpu).with_lockstep(Some(20));
        servers.measure(bench, &self.base, 0, t).unwrap();
        (servers, bench)
    }

    /// One lockstep pair, head heard first or second; the answer as `[head, base]`.
    fn pair(
        &self,
        servers: &Servers,
        bench: &benchvm_agent::bench::Benchmark,
        head_first: bool,
        t: Duration,
    ) -> [Sample; 2] {
        let runs = if head_first {
            [(&self.head, 0), (&self.base, 0)]
        } else {
            [(&self.base, 0), (&self.head, 0)]
        };
        let [first, second] = servers
            .measure_pair(bench, runs, t, 20)
            .expect("calibrated");
        if head_first {
            [first, second]
        } else {
            [second, first]
        }
    }

    fn bench(&self, name: &str) -> &benchvm_agent::bench::Benchmark {
        self.suite
            .benchmarks
            .iter()
            .find(|b| b.name == name)
            .unwrap_or_else(|| panic!("{name} not discovered: {:?}", self.suite.benchmarks))
    }

    /// The same servers still serve sequential samples and pairs, twice over.
    fn still_serves(&self, servers: &Servers, name: &str, after: &str) {
        std::fs::write(&self.mode, "").unwrap();
        let bench = self.bench(name);
        let t = Duration::from_secs(10);
        for round in 0..2 {
            for side in [&self.base, &self.head] {
                let m = servers.measure(bench, side, 0, t);
                assert!(
                    m.as_ref()
                        .is_ok_and(|m| m.value > 0.0 && m.value < SANE_CALL_S),
                    "after {after}, round {round}: sequential {}: {m:?}",
                    side.side
                );
            }
            for runs in [
                [(&self.base, 0), (&self.head, 0)],
                [(&self.head, 0), (&self.base, 0)],
            ] {
                let pair = servers
                    .measure_pair(bench, runs, t, 20)
                    .expect("calibrated");
                for r in &pair {
                    assert!(
                        r.as_ref()
                            .is_ok_and(|m| m.value > 0.0 && m.value < SANE_CALL_S),
                        "after {after}, round {round}: pair: {pair:?}"
                    );
                }
            }
        }
    }
}

/// A benchmark's own `number = 1` and `repeat = (1, 3, 1.0)` in lockstep.
#[test]
fn lockstep_own_number_and_repeat_in_lockstep() {
    within(Duration::from_secs(60), || {
        let r = lockstep_suite();
        let servers = Servers::new(&r.scratch, None).with_lockstep(Some(20));
        let t = Duration::from_secs(10);
        for name in ["bench_turns.One.time_one", "bench_turns.Repeat.time_repeat"] {
            let bench = r.bench(name);
            servers.measure(bench, &r.base, 0, t).unwrap();
            for mode in ["", "slower"] {
                std::fs::write(&r.mode, mode).unwrap();
                let started = Instant::now();
                let [h, b] = r.pair(&servers, bench, true, t);
                eprintln!(
                    "{name} {mode:?}: head {h:?} base {b:?} in {:?}",
                    started.elapsed()
                );
                let (h, b) = (h.unwrap().value, b.unwrap().value);
                assert!(b > 0.0 && b < SANE_CALL_S, "{name}: base {b}");
                if name.contains("One") {
                    // One call of a 1 ms (base) / 1 or 3 ms (head) sleep.
                    assert!(b > 0.0009, "{name}: base {b}");
                    if mode == "slower" {
                        assert!(h > 0.0029, "{name}: head {h}");
                    }
                }
            }
            r.still_serves(&servers, name, name);
        }
    });
}

/// Head raises inside the timed blocks (3rd call: block 1 of 20; 40th call: the
/// last block, after base has timed all of its own).
#[test]
fn lockstep_head_raises_inside_the_blocks() {
    within(Duration::from_secs(60), || {
        let r = lockstep_suite();
        let t = Duration::from_secs(10);
        let (servers, bench) = r.calibrated("bench_turns.Forty.time_forty", None, t);
        for call in [1, 3, 39, 40] {
            for head_first in [true, false] {
                std::fs::write(&r.mode, format!("raise:{call}")).unwrap();
                let started = Instant::now();
                let [h, b] = r.pair(&servers, bench, head_first, t);
                eprintln!(
                    "raise:{call} head_first {head_first}: head {h:?} base {b:?} in {:?}",
                    started.elapsed()
                );
                let e = h.expect_err("head raised");
                assert!(e.contains(&format!("head call {call}")), "{e}");
                assert!(b.is_ok_and(|m| m.value < SANE_CALL_S));
                r.still_serves(
                    &servers,
                    "bench_turns.Forty.time_forty",
                    &format!("raise:{call}"),
                );
            }
        }
    });
}

/// Head skips in setup (NotImplementedError): the skip reads as in a sequential sample.
#[test]
fn lockstep_head_skips_in_setup() {
    within(Duration::from_secs(60), || {
        let r = lockstep_suite();
        let t = Duration::from_secs(10);
        let (servers, bench) = r.calibrated("bench_turns.Forty.time_forty", None, t);
        std::fs::write(&r.mode, "skip").unwrap();
        let seq = servers.measure(bench, &r.head, 0, t);
        eprintln!("sequential head: {seq:?}");
        for head_first in [true, false] {
            std::fs::write(&r.mode, "skip").unwrap();
            let [h, b] = r.pair(&servers, bench, head_first, t);
            eprintln!("skip head_first {head_first}: head {h:?} base {b:?}");
            assert_eq!(h, seq, "lockstep head reads as the sequential one");
            assert!(h.unwrap_err().starts_with(SKIPPED));
            assert!(b.is_ok_and(|m| m.value < SANE_CALL_S));
            r.still_serves(&servers, "bench_turns.Forty.time_forty", "skip");
        }
    });
}

/// Head's setup (a 10 s sleep) outlives twice the 2 s timeout: head times out, base is
/// sampled alone, and the pair does not wait out the sleep.
#[test]
fn lockstep_head_setup_outlives_the_timeout() {
    within(Duration::from_secs(60), || {
        let r = lockstep_suite();
        let t = Duration::from_secs(2);
        let (servers, bench) = r.calibrated("bench_turns.Forty.time_forty", None, t);
        for head_first in [true, false] {
            std::fs::write(&r.mode, "slowsetup").unwrap();
            let started = Instant::now();
            let [h, b] = r.pair(&servers, bench, head_first, t);
            let took = started.elapsed();
            eprintln!("slowsetup head_first {head_first}: head {h:?} base {b:?} in {took:?}");
            assert!(h.unwrap_err().starts_with(benchvm_agent::bench::TIMED_OUT));
            assert!(b.is_ok_and(|m| m.value < SANE_CALL_S));
            // Setup may take twice the timeout (both sides set up at once); not the whole 10 s.
            assert!(took < Duration::from_secs(8), "{took:?}");
            r.still_serves(&servers, "bench_turns.Forty.time_forty", "slowsetup");
        }
    });
}

/// The same on one pinned CPU with CPU-bound setups that share it: both spinning 0.5 s of
/// CPU fit a 4 s timeout in lockstep as they do alone; head spinning 9 s times out (its
/// setup has twice the timeout) and base, slowed by it, is still sampled alone, not judged.
#[test]
fn lockstep_cpu_bound_setups_on_a_pinned_cpu() {
    let Some(cpu) = benchvm_agent::measure::runner::sample_cpu() else {
        return;
    };
    within(Duration::from_secs(60), move || {
        let r = lockstep_suite();
        let t = Duration::from_secs(4);
        let (servers, bench) = r.calibrated("bench_turns.Forty.time_forty", Some(cpu), t);
        std::fs::write(&r.basespin, "0.5").unwrap();
        std::fs::write(&r.mode, "spin:0.5").unwrap();
        let b = servers.measure(bench, &r.base, 0, t);
        let h = servers.measure(bench, &r.head, 0, t);
        eprintln!("sequential, both spin 0.5 s: base {b:?} head {h:?}");
        let seq_ok = b.is_ok() && h.is_ok();
        let [h, b] = r.pair(&servers, bench, true, t);
        eprintln!("lockstep, both spin 0.5 s: head {h:?} base {b:?}");
        std::fs::write(&r.mode, "spin:9").unwrap();
        let alone = servers.measure(bench, &r.base, 0, t);
        let [h5, b5] = r.pair(&servers, bench, true, t);
        eprintln!("base alone {alone:?}; lockstep, head spins 9 s: head {h5:?} base {b5:?}");
        std::fs::write(&r.basespin, "").unwrap();
        r.still_serves(&servers, "bench_turns.Forty.time_forty", "spin");
        assert!(seq_ok, "sequential samples within the timeout");
        assert!(alone.is_ok(), "base alone: {alone:?}");
        assert!(
            h.is_ok() && b.is_ok(),
            "lockstep pair: head {h:?} base {b:?}"
        );
        assert!(b5.is_ok(), "lockstep, head timed out: base {b5:?}");
    });
}

/// A teardown after the last block longer than the 10 s grace, within the 30 s timeout:
/// the sample is kept (it was read as a timeout, a false ×1000 regression once censored).
#[test]
fn lockstep_slow_teardown_after_the_blocks() {
    within(Duration::from_secs(60), || {
        let r = lockstep_suite();
        let t = Duration::from_secs(30);
        let (servers, bench) = r.calibrated("bench_turns.Forty.time_forty", None, t);
        std::fs::write(&r.mode, "slowteardown").unwrap();
        let started = Instant::now();
        let seq = servers.measure(bench, &r.head, 0, t);
        eprintln!("sequential head: {seq:?} in {:?}", started.elapsed());
        let started = Instant::now();
        let [h, b] = r.pair(&servers, bench, true, t);
        eprintln!("lockstep: head {h:?} base {b:?} in {:?}", started.elapsed());
        r.still_serves(&servers, "bench_turns.Forty.time_forty", "slowteardown");
        assert!(seq.is_ok(), "sequential head {seq:?}");
        assert!(h.is_ok(), "lockstep head {h:?} (sequential: {seq:?})");
    });
}

/// The sides' own `number` differ (head 1, base 40): head times 1 block, base 20.
#[test]
fn lockstep_uneven_numbers() {
    within(Duration::from_secs(60), || {
        let r = lockstep_suite();
        let t = Duration::from_secs(10);
        let (servers, bench) = r.calibrated("bench_turns.Uneven.time_uneven", None, t);
        for runs in [[(&r.head, 0), (&r.base, 0)], [(&r.base, 0), (&r.head, 0)]] {
            let started = Instant::now();
            let pair = servers
                .measure_pair(bench, runs, t, 20)
                .expect("calibrated");
            eprintln!("uneven: {pair:?} in {:?}", started.elapsed());
            for p in &pair {
                assert!(
                    p.as_ref()
                        .is_ok_and(|m| m.value > 0.0 && m.value < SANE_CALL_S),
                    "{pair:?}"
                );
            }
        }
        for side in [&r.base, &r.head] {
            let m = servers.measure(bench, side, 0, t);
            assert!(m.is_ok(), "{m:?}");
        }
    });
}

/// A side's time for its blocks does not include the other side's setup: head sets up in
/// 2 s, base times 40 calls of 30 ms (1.2 s), timeout 2.5 s; base alone fits, and so it
/// must in lockstep.
#[test]
fn lockstep_the_second_side_does_not_pay_for_the_first_sides_setup() {
    within(Duration::from_secs(60), || {
        let r = lockstep_suite();
        let t = Duration::from_secs_f64(2.5);
        let (servers, bench) = r.calibrated("bench_turns.Waits.time_waits", None, t);
        std::fs::write(&r.mode, "sleep").unwrap();
        let alone = [
            servers.measure(bench, &r.head, 0, t),
            servers.measure(bench, &r.base, 0, t),
        ];
        eprintln!("sequential: head {:?} base {:?}", alone[0], alone[1]);
        let started = Instant::now();
        let [h, b] = r.pair(&servers, bench, true, t);
        eprintln!("lockstep: head {h:?} base {b:?} in {:?}", started.elapsed());
        assert!(alone.iter().all(|a| a.is_ok()), "{alone:?}");
        assert!(h.is_ok() && b.is_ok(), "lockstep: head {h:?} base {b:?}");
    });
}

/// A sample's forked child dies with its server (the agent kills a server mid-sample when a
/// run stops): it asks for SIGKILL on its parent's death, with the C library the server
/// loaded once.
#[test]
fn a_served_sample_dies_with_its_server() {
    let tmp = tempfile::tempdir().unwrap();
    let checkout = tmp.path().join("checkout");
    let pid_file = tmp.path().join("child.pid");
    crate::support::write(
        &checkout,
        "benchmarks/bench_s.py",
        &format!(
            "import os, time\n\
             def time_sleeps():\n    open({:?}, 'w').write(str(os.getpid()))\n    time.sleep(60)\n",
            pid_file.display().to_string()
        ),
    );
    crate::support::write(&checkout, "benchmarks/__init__.py", "");
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let sampler = {
        let (checkout, scratch) = (checkout.clone(), scratch.clone());
        std::thread::spawn(move || {
            let timeout = Duration::from_secs(90);
            let (base, suite) = discovered(&checkout, &scratch, timeout);
            let servers = Servers::new(&scratch, None);
            let probe = Probe {
                runner: &SystemRunner,
                scratch: &scratch,
                timeout,
                servers: Some(&servers),
                cpu: None,
            };
            let bench = suite.benchmarks.iter().find(|b| b.served).unwrap();
            probe.measure(bench, &base, 0).map(|m| m.value)
        })
    };
    let t = Instant::now();
    let child: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.parse().ok())
        {
            break pid;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the sample never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stat = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
    let field = |text: &str, n: usize| -> String {
        let rest = text.rsplit_once(") ").unwrap().1;
        rest.split_whitespace().nth(n).unwrap().to_owned()
    };
    let server: i32 = field(&stat(child).expect("the child runs"), 1)
        .parse()
        .unwrap();
    assert_eq!(unsafe { libc::kill(server, libc::SIGKILL) }, 0);
    let t = Instant::now();
    // Gone, or a zombie nobody has reaped yet: either way no longer running.
    while stat(child).is_some_and(|s| field(&s, 0) != "Z") {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the sample outlived its server"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let outcome = sampler.join().unwrap();
    assert!(outcome.is_err(), "{outcome:?}");
}

/// A setup_cache's directory name comes from the side's own listing: one that is not the
/// harness's hash (here `../escaped`) is refused, and nothing is made outside the root.
#[test]
fn a_setup_cache_directory_that_is_not_the_harnesss_hash_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let AsvTestSuite {
        cache_root,
        base,
        timeout,
        suite,
        ..
    } = asv_test_suite(tmp.path());
    let (id, cache) = suite
        .caches
        .first()
        .expect("asv's suite has a setup_cache")
        .clone();
    let forged = asv::SetupCache {
        dir: "../escaped".into(),
        ..cache
    };
    let mut log = Vec::new();
    asv::prepare_caches(
        &SystemRunner,
        &base,
        &cache_root,
        &suite.benchmarks,
        &[(id, forged)],
        timeout,
        &mut |line| log.push(line),
    )
    .unwrap();
    assert!(!cache_root.with_file_name("escaped").exists());
    assert!(log.iter().any(|l| l.contains("refused")), "{log:?}");
}
