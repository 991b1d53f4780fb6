//! The proof of safety of issue 3: `validate-selection` applies the catalogue
//! (fixtures/selection/catalogue.yml) to the selection fixture, runs the whole suite after
//! each edit and counts what changed without being selected. Real git, Python, pip and
//! coverage.py.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/selection")
}

/// The fixture as a clean git checkout, with a venv (coverage.py from the system's
/// site-packages) holding `dep` 1.0.
fn checkout(dir: &Path) {
    sh(
        dir,
        &format!(
            "cp -r {}/. . && git init -q -b main && git add -A && git commit -qm fixture \
             && python3 -m venv --system-site-packages .venv && python3 deps/make_wheels.py \
             && .venv/bin/python -m pip install --quiet --no-index --find-links deps/dist dep==1.0",
            fixture().join("project").display()
        ),
    );
}

fn validate(dir: &Path, catalogue: &Path) -> (Output, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_benchvm-agent"))
        .args([
            "validate-selection",
            "--json",
            "--repeat",
            "3",
            "--catalogue",
        ])
        .arg(catalogue)
        .args(["--python", ".venv/bin/python"])
        .current_dir(dir)
        // The fixture is used from its checkout.
        .env("PYTHONPATH", dir)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json)
}

fn edit<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    json["edits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no edit {name:?} in {json:#}"))
}

fn count(v: &serde_json::Value) -> usize {
    v.as_array()
        .map_or_else(|| v.as_object().unwrap().len(), Vec::len)
}

#[test]
fn the_selection_misses_nothing_the_catalogue_changes() {
    let tmp = tempfile::tempdir().unwrap();
    checkout(tmp.path());
    let (out, json) = validate(tmp.path(), &fixture().join("catalogue.yml"));
    assert!(
        out.status.success(),
        "missed: {json:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["missed"], 0, "{json:#}");
    // Every edit but the comment and the faithful rename changes some benchmark's outcome,
    // so a selection that missed one would show here.
    assert!(json["affected"].as_u64().unwrap() >= 10, "{json:#}");
    for name in [
        "a function body edit (leaf)",
        "a module-level constant in a constants-only module",
        "an import-time decorator body in another module",
        "a default argument",
        "a class attribute read without any method of its file running",
        "a renamed module (its importer not updated)",
        "a data file the benchmark reads",
        "a function cached and shared by two benchmarks",
        "a new module that shadows an imported one",
        "a dependency version change",
    ] {
        assert!(
            count(&edit(&json, name)["affected"]) >= 1,
            "{name}: {json:#}"
        );
    }
    let total = edit(&json, "a function body edit (leaf)")["total"]
        .as_u64()
        .unwrap() as usize;
    let leaf = count(&edit(&json, "a function body edit (leaf)")["selected"]);
    assert!(
        leaf >= 1 && leaf * 3 <= total,
        "leaf edit selected {leaf} of {total}"
    );
    assert_eq!(count(&edit(&json, "a comment-only edit")["selected"]), 0);
    assert_eq!(
        count(&edit(&json, "a function cached and shared by two benchmarks")["affected"]),
        2
    );
    // The checkout is as committed, and the venv back on dep 1.0.
    sh(tmp.path(), "test -z \"$(git status --porcelain)\"");
    sh(
        tmp.path(),
        ".venv/bin/python -c 'import dep; assert dep.factor() == 2'",
    );
}

/// A change outside both git's view and the package set: a `.pth` file dropped into the
/// venv patches a module at startup. The selection cannot see it (a known limit), and the
/// harness says so: it counts the miss and exits 1.
#[test]
fn the_harness_reports_a_miss_and_fails() {
    let tmp = tempfile::tempdir().unwrap();
    checkout(tmp.path());
    let catalogue = tmp.path().join("blind.yml");
    std::fs::write(
        &catalogue,
        r#"edits:
  - name: a .pth file patches colorsys
    steps:
      - run: "{python} -c \"import os, sysconfig; open(os.path.join(sysconfig.get_paths()['purelib'], 'zz_patch.pth'), 'w').write('import colorsys; colorsys.rgb_to_hsv = lambda r, g, b: (0.25, 0.0, 0.0)\\n')\""
    undo:
      - run: "{python} -c \"import os, sysconfig; os.remove(os.path.join(sysconfig.get_paths()['purelib'], 'zz_patch.pth'))\""
"#,
    )
    .unwrap();
    // The catalogue file itself is untracked: commit it so the checkout starts clean.
    sh(tmp.path(), "git add blind.yml && git commit -qm catalogue");
    let (out, json) = validate(tmp.path(), &catalogue);
    assert_eq!(out.status.code(), Some(1), "{json:#}");
    assert_eq!(json["missed"], 1, "{json:#}");
    let e = edit(&json, "a .pth file patches colorsys");
    assert_eq!(e["missed"][0], "bench_colors.time_hue", "{json:#}");
    assert_eq!(count(&e["selected"]), 0);
}
