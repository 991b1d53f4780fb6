//! `benchvm-agent survey` killed midway leaves the previous survey whole, and a reader
//! running alongside a survey sees the old survey or the new one, never a mix. Real git,
//! Python, coverage.py and SQLite; the kill is a real SIGKILL.

use crate::support::{sh, write};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn survey_cmd(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_benchvm-agent"));
    c.args(["survey", "--repeat", "1", "--source-root"])
        .arg(dir)
        .env("PYTHONPATH", dir);
    c
}

/// (surveyed commit, number of benchmarks), read in one transaction.
fn snapshot(db: &Path) -> Option<(String, i64)> {
    let mut conn = rusqlite::Connection::open(db).ok()?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).ok()?;
    let tx = conn.transaction().ok()?;
    let commit: String = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'surveyed_commit'",
            [],
            |r| r.get(0),
        )
        .ok()?;
    let n: i64 = tx
        .query_row("SELECT count(*) FROM benchmarks", [], |r| r.get(0))
        .ok()?;
    Some((commit, n))
}

#[test]
fn a_killed_survey_keeps_the_old_one_and_a_reader_never_sees_a_mix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "pkg/__init__.py", "");
    write(dir, "pkg/work.py", "def f(n):\n    return sum(range(n))\n");
    for i in 0..3 {
        write(
            dir,
            &format!("benchmarks/bench_{i}.py"),
            "from pkg.work import f\n\ndef time_f():\n    f(1000)\n",
        );
    }
    sh(
        dir,
        "printf '.benchvm/\\n__pycache__/\\n' > .gitignore && git init -q -b main && git add -A && git commit -qm one",
    );
    let out = survey_cmd(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = dir.join(".benchvm/selection.sqlite");
    let first = snapshot(&db).unwrap();
    assert_eq!(first.1, 3);

    // A new commit with a fourth, slow benchmark in the middle of the list: the survey
    // must be redone, and it is killed while surveying that one.
    write(
        dir,
        "benchmarks/bench_1b.py",
        "import time\n\ndef time_slow():\n    time.sleep(30)\n",
    );
    sh(dir, "git add -A && git commit -qm two");
    let mut child = survey_cmd(dir)
        .arg("--force")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines {
        let line = line.unwrap();
        // Surveyed a module at a time: the slow one is bench_1b's only benchmark.
        if line.contains("surveying 1 benchmark(s) of bench_1b") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(
        snapshot(&db),
        Some(first.clone()),
        "the old survey is whole"
    );

    // Now a complete survey of the new commit, read all along by another connection.
    write(
        dir,
        "benchmarks/bench_1b.py",
        "def time_quick():\n    sum(range(10))\n",
    );
    sh(dir, "git add -A && git commit -qm three");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (seen, done, db) = (seen.clone(), done.clone(), db.clone());
        std::thread::spawn(move || {
            // Bounded: the survey takes a few seconds.
            for _ in 0..20_000 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(s) = snapshot(&db) {
                    seen.lock().unwrap().push(s);
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    let out = survey_cmd(dir).output().unwrap();
    done.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = snapshot(&db).unwrap();
    assert_ne!(last.0, first.0);
    assert_eq!(last.1, 4);
    let seen = seen.lock().unwrap();
    assert!(seen.contains(&first), "the reader ran while the survey did");
    for s in seen.iter() {
        assert!(*s == first || *s == last, "a mix: {s:?}");
    }
}
