//! The selection database (ARCHITECTURE §4): one SQLite file in the results directory, in tables a
//! user can query with plain SQL. A survey replaces the previous one in a single
//! transaction, so a survey killed midway leaves the old one intact, never a mix; WAL mode
//! lets a reader see a consistent survey while a new one is written.
//!
//! ```sql
//! SELECT benchmark, file, block FROM dependencies WHERE file LIKE 'textkit/%';
//! SELECT step_id, benchmark, delta_percent FROM step_results ORDER BY recorded_at;
//! ```

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// Bump on any change of the tables below.
pub const SCHEMA_VERSION: u32 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS benchmarks (
    benchmark TEXT PRIMARY KEY,
    always_affected INTEGER NOT NULL,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS dependencies (
    benchmark TEXT NOT NULL,
    file TEXT NOT NULL,
    blob_sha1 TEXT NOT NULL,
    block TEXT NOT NULL,
    checksum INTEGER NOT NULL,
    PRIMARY KEY (benchmark, file, block)
);
CREATE INDEX IF NOT EXISTS dependencies_by_file ON dependencies (file);
CREATE TABLE IF NOT EXISTS data_files (
    benchmark TEXT NOT NULL,
    file TEXT NOT NULL,
    blob_sha1 TEXT,
    PRIMARY KEY (benchmark, file)
);
CREATE TABLE IF NOT EXISTS baseline (
    benchmark TEXT PRIMARY KEY,
    unit TEXT NOT NULL,
    median REAL NOT NULL,
    ci99_low REAL NOT NULL,
    ci99_high REAL NOT NULL,
    q1 REAL NOT NULL,
    q3 REAL NOT NULL,
    repeat INTEGER NOT NULL,
    number INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS step_results (
    step_id TEXT NOT NULL,
    benchmark TEXT NOT NULL,
    ran INTEGER NOT NULL,
    reason TEXT NOT NULL,
    median REAL,
    ci99_low REAL,
    ci99_high REAL,
    q1 REAL,
    q3 REAL,
    delta_percent REAL,
    recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (step_id, benchmark)
);
"#;

/// What a survey learnt about the suite at one commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Survey {
    pub commit: String,
    /// Files that differed from `commit` when the survey ran (uncommitted edits, untracked
    /// files): what was surveyed is their content then, so they count as changed later
    /// whatever git says (an edit reverted after the survey is a change git cannot see).
    pub dirty: Vec<String>,
    pub environment_hash: String,
    pub normaliser_version: u32,
    pub benchmarks: Vec<Surveyed>,
}

/// One benchmark's survey.
#[derive(Debug, Clone, PartialEq)]
pub struct Surveyed {
    pub benchmark: String,
    /// Why its coverage cannot be trusted (it then runs on every change).
    pub always_affected: Option<String>,
    pub dependencies: Vec<Dependency>,
    /// Data files it opened, with their blob SHA1 (None: it did not exist).
    pub data_files: Vec<(String, Option<String>)>,
    pub baseline: Option<Baseline>,
}

/// A covered block of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub file: String,
    pub blob_sha1: String,
    pub block: String,
    pub checksum: u32,
}

/// A timing summary: the survey's baseline, or a step's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub median: f64,
    pub ci99_low: f64,
    pub ci99_high: f64,
    pub q1: f64,
    pub q3: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub unit: String,
    pub timing: Timing,
    /// Fresh-process samples behind `timing` (the local loop's rounds × repeat).
    pub repeat: u32,
    pub number: u32,
}

/// One benchmark's outcome at a step of the local loop.
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    pub benchmark: String,
    /// False: skipped, `reason` says why.
    pub ran: bool,
    pub reason: String,
    /// The survey's baseline median, for display (the baseline table holds it).
    pub baseline: Option<f64>,
    /// What `baseline` and `timing` count: `s`, `bytes` (peakmem) or a track's own unit.
    pub unit: String,
    pub timing: Option<Timing>,
    pub delta_percent: Option<f64>,
    /// Selected, and failed when timed: why (`reason` ends with it too).
    pub failure: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("selection database {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "selection database {path} has schema {found}, this benchvm writes {SCHEMA_VERSION}: survey again with --force"
    )]
    Schema { path: String, found: u32 },
}

/// Maps a SQLite error to one naming the database.
fn sql_error(path: &str) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

/// An open selection database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: String,
}

impl Store {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let err = |source| StoreError::Sqlite {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        let store = Store { conn, path: shown };
        match store.meta("schema_version")? {
            Some(v) if v.parse() != Ok(SCHEMA_VERSION) => {
                return Err(StoreError::Schema {
                    path: store.path.clone(),
                    found: v.parse().unwrap_or(0),
                });
            }
            Some(_) => {}
            None => {
                store
                    .conn
                    .execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                        params![SCHEMA_VERSION.to_string()],
                    )
                    .map_err(|e| store.err(e))?;
            }
        }
        Ok(store)
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Writes a consistent copy of the whole database to `dest` (replacing it), WAL
    /// contents included, without stopping readers or writers of this one.
    pub fn export(&self, dest: &Path) -> Result<(), StoreError> {
        let _ = std::fs::remove_file(dest);
        self.conn
            .execute("VACUUM INTO ?1", [dest.display().to_string()])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Replaces the stored survey with `survey`, all or nothing.
    pub fn replace_survey(&mut self, survey: &Survey) -> Result<(), StoreError> {
        self.replace_survey_with(survey, |_| {})
    }

    /// As [`Store::replace_survey`], calling `after` once per benchmark written (tests use it
    /// to be killed midway).
    pub fn replace_survey_with(
        &mut self,
        survey: &Survey,
        mut after: impl FnMut(usize),
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = sql_error(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute_batch(
            "DELETE FROM benchmarks; DELETE FROM dependencies; DELETE FROM data_files; DELETE FROM baseline;",
        )
        .map_err(err)?;
        for (i, b) in survey.benchmarks.iter().enumerate() {
            tx.execute(
                "INSERT INTO benchmarks (benchmark, always_affected, reason) VALUES (?1, ?2, ?3)",
                params![b.benchmark, b.always_affected.is_some(), b.always_affected],
            )
            .map_err(err)?;
            let mut dep = tx
                .prepare_cached(
                    "INSERT INTO dependencies (benchmark, file, blob_sha1, block, checksum) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for d in &b.dependencies {
                dep.execute(params![
                    b.benchmark,
                    d.file,
                    d.blob_sha1,
                    d.block,
                    d.checksum
                ])
                .map_err(err)?;
            }
            drop(dep);
            for (file, sha) in &b.data_files {
                tx.execute(
                    "INSERT INTO data_files (benchmark, file, blob_sha1) VALUES (?1, ?2, ?3)",
                    params![b.benchmark, file, sha],
                )
                .map_err(err)?;
            }
            if let Some(base) = &b.baseline {
                let t = base.timing;
                tx.execute(
                    "INSERT INTO baseline (benchmark, unit, median, ci99_low, ci99_high, q1, q3, repeat, number) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![b.benchmark, base.unit, t.median, t.ci99_low, t.ci99_high, t.q1, t.q3, base.repeat, base.number],
                )
                .map_err(err)?;
            }
            after(i);
        }
        for (key, value) in [
            ("surveyed_commit", survey.commit.clone()),
            ("dirty_files", survey.dirty.join("\n")),
            ("environment_hash", survey.environment_hash.clone()),
            ("normaliser_version", survey.normaliser_version.to_string()),
        ] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// The stored survey, read as one consistent snapshot; None before the first survey.
    pub fn survey(&mut self) -> Result<Option<Survey>, StoreError> {
        let path = self.path.clone();
        let err = sql_error(&path);
        let tx = self.conn.transaction().map_err(err)?;
        let meta = |key: &str| -> Result<Option<String>, StoreError> {
            tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(err)
        };
        let Some(commit) = meta("surveyed_commit")? else {
            return Ok(None);
        };
        let environment_hash = meta("environment_hash")?.unwrap_or_default();
        let normaliser_version = meta("normaliser_version")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut benchmarks: Vec<Surveyed> = tx
            .prepare("SELECT benchmark, reason, always_affected FROM benchmarks ORDER BY benchmark")
            .and_then(|mut s| {
                s.query_map([], |r| {
                    let always: bool = r.get(2)?;
                    let reason: Option<String> = r.get(1)?;
                    Ok(Surveyed {
                        benchmark: r.get(0)?,
                        always_affected: if always {
                            Some(reason.unwrap_or_default())
                        } else {
                            None
                        },
                        dependencies: vec![],
                        data_files: vec![],
                        baseline: None,
                    })
                })?
                .collect()
            })
            .map_err(err)?;
        for b in &mut benchmarks {
            b.dependencies = tx
                .prepare_cached(
                    "SELECT file, blob_sha1, block, checksum FROM dependencies WHERE benchmark = ?1 ORDER BY file, block",
                )
                .and_then(|mut s| {
                    s.query_map([&b.benchmark], |r| {
                        Ok(Dependency {
                            file: r.get(0)?,
                            blob_sha1: r.get(1)?,
                            block: r.get(2)?,
                            checksum: r.get(3)?,
                        })
                    })?
                    .collect()
                })
                .map_err(err)?;
            b.data_files = tx
                .prepare_cached(
                    "SELECT file, blob_sha1 FROM data_files WHERE benchmark = ?1 ORDER BY file",
                )
                .and_then(|mut s| {
                    s.query_map([&b.benchmark], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect()
                })
                .map_err(err)?;
            b.baseline = tx
                .query_row(
                    "SELECT unit, median, ci99_low, ci99_high, q1, q3, repeat, number FROM baseline WHERE benchmark = ?1",
                    [&b.benchmark],
                    |r| {
                        Ok(Baseline {
                            unit: r.get(0)?,
                            timing: Timing {
                                median: r.get(1)?,
                                ci99_low: r.get(2)?,
                                ci99_high: r.get(3)?,
                                q1: r.get(4)?,
                                q3: r.get(5)?,
                            },
                            repeat: r.get(6)?,
                            number: r.get(7)?,
                        })
                    },
                )
                .optional()
                .map_err(err)?;
        }
        let dirty = meta("dirty_files")?
            .map(|d| d.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Some(Survey {
            commit,
            dirty,
            environment_hash,
            normaliser_version,
            benchmarks,
        }))
    }

    /// Stores a step's results under `step_id` (a step recorded again is replaced).
    /// Whether results are recorded under `step_id`.
    pub fn has_step(&self, step_id: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM step_results WHERE step_id = ?1)",
                [step_id],
                |r| r.get(0),
            )
            .map_err(sql_error(&self.path))
    }

    pub fn record_step(&mut self, step_id: &str, results: &[StepResult]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = sql_error(&path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute("DELETE FROM step_results WHERE step_id = ?1", [step_id])
            .map_err(err)?;
        for r in results {
            let t = r.timing;
            tx.execute(
                "INSERT INTO step_results (step_id, benchmark, ran, reason, median, ci99_low, ci99_high, q1, q3, delta_percent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    step_id,
                    r.benchmark,
                    r.ran,
                    r.reason,
                    t.map(|t| t.median),
                    t.map(|t| t.ci99_low),
                    t.map(|t| t.ci99_high),
                    t.map(|t| t.q1),
                    t.map(|t| t.q3),
                    r.delta_percent
                ],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survey(commit: &str, n: usize) -> Survey {
        Survey {
            commit: commit.into(),
            dirty: vec![],
            environment_hash: format!("env-{commit}"),
            normaliser_version: 1,
            benchmarks: (0..n)
                .map(|i| Surveyed {
                    benchmark: format!("micro/b{i:03}"),
                    always_affected: (i % 7 == 3).then(|| "spawns a thread (_thread)".to_owned()),
                    dependencies: (0..5)
                        .map(|j| Dependency {
                            file: format!("pkg/m{j}.py"),
                            blob_sha1: format!("{commit}{j:038}"),
                            block: if j == 0 {
                                "<module>".into()
                            } else {
                                format!("f{j}")
                            },
                            checksum: (i * 31 + j) as u32 ^ u32::MAX,
                        })
                        .collect(),
                    data_files: vec![(
                        format!("data/{i}.txt"),
                        (i % 2 == 0).then(|| "ab".repeat(20)),
                    )],
                    baseline: Some(Baseline {
                        unit: "s".into(),
                        timing: Timing {
                            median: 0.001 * i as f64,
                            ci99_low: 0.0009 * i as f64,
                            ci99_high: 0.0011 * i as f64,
                            q1: 0.00095 * i as f64,
                            q3: 0.00105 * i as f64,
                        },
                        repeat: 5,
                        number: 100,
                    }),
                })
                .collect(),
        }
    }

    #[test]
    fn a_survey_round_trips_and_is_plain_sql() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("selection.sqlite");
        let mut store = Store::open(&db).unwrap();
        assert_eq!(store.survey().unwrap(), None);
        let s = survey("aaaa", 20);
        store.replace_survey(&s).unwrap();
        assert_eq!(store.survey().unwrap(), Some(s.clone()));
        // Another connection, plain SQL.
        let conn = Connection::open(&db).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT count(DISTINCT benchmark) FROM dependencies WHERE file = 'pkg/m2.py'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 20);
        let always: i64 = conn
            .query_row(
                "SELECT count(*) FROM benchmarks WHERE always_affected",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(always, 3);
        // An exported copy holds the same survey, WAL contents included.
        let copy = dir.path().join("copy.sqlite");
        store.export(&copy).unwrap();
        assert_eq!(Store::open(&copy).unwrap().survey().unwrap(), Some(s));
    }

    #[test]
    fn a_new_survey_replaces_the_old_one_entirely() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        store.replace_survey(&survey("aaaa", 20)).unwrap();
        let newer = survey("bbbb", 4);
        store.replace_survey(&newer).unwrap();
        assert_eq!(store.survey().unwrap(), Some(newer));
    }

    #[test]
    fn a_survey_that_fails_midway_leaves_the_old_one_intact() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let old = survey("aaaa", 10);
        store.replace_survey(&old).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.replace_survey_with(&survey("bbbb", 10), |i| assert!(i < 5, "interrupted"))
        }));
        assert!(result.is_err());
        assert_eq!(store.survey().unwrap(), Some(old));
    }

    /// Run as a child process by the test below (`BENCHVM_STORE_CHILD` = database path):
    /// writes a slow survey and is killed in the middle of it. On its own it checks that
    /// a slow survey completes.
    #[test]
    fn slow_survey_writer() {
        let own = tempfile::tempdir().unwrap();
        let (db, announce) = match std::env::var_os("BENCHVM_STORE_CHILD") {
            Some(p) => (std::path::PathBuf::from(p), true),
            None => (own.path().join("s.sqlite"), false),
        };
        let mut store = Store::open(&db).unwrap();
        let newer = survey("bbbb", 40);
        store
            .replace_survey_with(&newer, |i| {
                if announce && i == 10 {
                    std::fs::write(db.with_extension("midway"), "").unwrap();
                }
                std::thread::sleep(Duration::from_millis(if announce { 100 } else { 1 }));
            })
            .unwrap();
        assert_eq!(store.survey().unwrap(), Some(newer));
    }

    #[test]
    fn a_killed_survey_leaves_the_old_one_and_readers_see_one_survey_throughout() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.sqlite");
        let old = survey("aaaa", 30);
        Store::open(&db).unwrap().replace_survey(&old).unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "select::store::tests::slow_survey_writer",
                "--test-threads=1",
            ])
            .env("BENCHVM_STORE_CHILD", &db)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let midway = db.with_extension("midway");
        let t = std::time::Instant::now();
        while !midway.exists() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the writer never got midway"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // A reader during the write sees the old survey, whole.
        let mut reader = Store::open(&db).unwrap();
        assert_eq!(reader.survey().unwrap(), Some(old.clone()));
        child.kill().unwrap();
        child.wait().unwrap();
        let mut after = Store::open(&db).unwrap();
        assert_eq!(
            after.survey().unwrap(),
            Some(old),
            "killed midway: the old survey, intact"
        );
    }

    #[test]
    fn steps_are_recorded_by_id_and_queryable() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.sqlite");
        let mut store = Store::open(&db).unwrap();
        let ran = StepResult {
            benchmark: "micro/a".into(),
            baseline: None,
            unit: "s".into(),
            ran: true,
            reason: "covers count() in textkit/stats.py, which changed".into(),
            timing: Some(Timing {
                median: 1.1,
                ci99_low: 1.0,
                ci99_high: 1.2,
                q1: 1.05,
                q3: 1.15,
            }),
            delta_percent: Some(10.0),
            failure: None,
        };
        let skipped = StepResult {
            benchmark: "micro/b".into(),
            baseline: None,
            unit: "s".into(),
            ran: false,
            reason: "no block it covers changed".into(),
            timing: None,
            delta_percent: None,
            failure: None,
        };
        store
            .record_step("step-1", &[ran.clone(), skipped])
            .unwrap();
        store.record_step("step-2", &[ran]).unwrap();
        let conn = Connection::open(&db).unwrap();
        let rows: Vec<(String, String, bool)> = conn
            .prepare("SELECT step_id, benchmark, ran FROM step_results ORDER BY step_id, benchmark")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                ("step-1".to_owned(), "micro/a".to_owned(), true),
                ("step-1".into(), "micro/b".into(), false),
                ("step-2".into(), "micro/a".into(), true)
            ]
        );
    }

    #[test]
    fn another_schema_version_is_refused_with_the_remedy() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.sqlite");
        drop(Store::open(&db).unwrap());
        Connection::open(&db)
            .unwrap()
            .execute(
                "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
                [],
            )
            .unwrap();
        let err = Store::open(&db).unwrap_err().to_string();
        assert!(
            err.contains("schema 99") && err.contains("--force"),
            "{err}"
        );
    }
}
