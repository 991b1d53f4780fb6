use super::*;

const GOOD: &str = r#"
startup:
  - name: "tool --version"
    command: "tool --version"
importtime: pkg.sub
micro:
  asv: benchmarks
integration:
  - name: run
    command: "tool run 'a b'"
    quality: out/q.json
memory:
  - name: run
    command: tool run
sampling:
  min_rounds: 3
  max_rounds: 5
"#;

fn err(text: &str) -> String {
    Config::parse(text, "bench.yml").unwrap_err().to_string()
}

#[test]
fn parses_a_complete_file_with_defaults() {
    let c = Config::parse(GOOD, "bench.yml").unwrap();
    assert_eq!(c.python, "python3");
    assert_eq!(c.startup[0].argv, ["tool", "--version"]);
    assert_eq!(c.integration[0].run.argv, ["tool", "run", "a b"]);
    assert_eq!(c.sampling.warmups, 1);
    assert_eq!(c.sampling.max_rounds, 5);
    assert_eq!(c.thresholds.min_effect_percent, 2.0);
    assert_eq!(c.sampling.repeat, 1);
    assert_eq!(
        c.thresholds.calibration,
        crate::config::CalibrationMode::Auto
    );
    assert!(!c.fail_on_regression);
}

#[test]
fn unknown_top_level_key_is_named_with_its_position() {
    let e = err("startup: []\nbogus: 1\n");
    assert!(e.starts_with("bench.yml: "), "{e}");
    assert!(e.contains("unknown field `bogus`"), "{e}");
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn unknown_nested_key_is_named() {
    let e = err("startup:\n  - name: a\n    comand: x\n");
    assert!(e.contains("unknown field `comand`"), "{e}");
    assert!(e.contains("startup[0]"), "{e}");
}

#[test]
fn wrong_type_is_refused() {
    let e = err("memory: []\nsampling:\n  min_rounds: ten\n");
    assert!(e.contains("sampling.min_rounds"), "{e}");
    assert!(e.contains("invalid type"), "{e}");
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        ("sampling:\n  min_rounds: 1\n", "sampling.min_rounds"),
        (
            "sampling:\n  min_rounds: 5\n  max_rounds: 4\n",
            "sampling.max_rounds",
        ),
        ("sampling:\n  timeout_s: 0\n", "sampling.timeout_s"),
        ("sampling:\n  time_budget_s: -3\n", "sampling.time_budget_s"),
        (
            "thresholds:\n  min_effect_percent: 0\n",
            "thresholds.min_effect_percent",
        ),
        ("thresholds:\n  alpha: 1.5\n", "thresholds.alpha"),
        ("sampling:\n  repeat: 0\n", "sampling.repeat"),
        (
            "thresholds:\n  calibration: sometimes\n",
            "thresholds.calibration",
        ),
        ("importtime: 'not a module'\n", "importtime"),
    ];
    for (body, key) in cases {
        let e = err(&format!("startup:\n  - {{name: a, command: a}}\n{body}"));
        assert!(e.contains(&format!(": {key}: ")), "{key}: {e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }
}

#[test]
fn commands_are_checked() {
    let e = err("startup:\n  - {name: a, command: \"x 'unbalanced\"}\n");
    assert!(
        e.contains("startup[0].command") && e.contains("unbalanced"),
        "{e}"
    );
    let e = err("startup:\n  - {name: a, command: \"  \"}\n");
    assert!(e.contains("startup[0].command: must not be empty"), "{e}");
    let e = err("startup:\n  - {name: a, command: x}\n  - {name: a, command: y}\n");
    assert!(
        e.contains("startup[1].name") && e.contains("duplicate"),
        "{e}"
    );
}

#[test]
fn a_file_without_benchmarks_is_refused() {
    let e = err("sampling:\n  min_rounds: 3\n");
    assert!(e.contains("no benchmarks"), "{e}");
}
