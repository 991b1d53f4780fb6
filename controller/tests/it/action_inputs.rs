//! action.yml and `benchvm action` stay in step: every input is a flag and every flag an
//! input, with the same default and description; the README's input table is action.yml's.

use std::collections::BTreeMap;

use serde_yaml::Value;

fn action_yml() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../action.yml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// name → (description, default) of action.yml's inputs.
fn inputs() -> BTreeMap<String, (String, Option<String>)> {
    let yml = action_yml();
    let map = yml["inputs"].as_mapping().expect("inputs");
    map.iter()
        .map(|(k, v)| {
            let default = match &v["default"] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => {
                    panic!("input {k:?}: quote the default {other:?} (the runner passes strings)")
                }
            };
            let description = v["description"].as_str().expect("description").to_owned();
            (k.as_str().unwrap().to_owned(), (description, default))
        })
        .collect()
}

/// name → (help, default) of `benchvm action`'s flags.
fn flags() -> BTreeMap<String, (String, Option<String>)> {
    let cmd = benchvm::cli::command();
    let action = cmd.find_subcommand("action").expect("action subcommand");
    action
        .get_arguments()
        .filter_map(|a| {
            let long = a.get_long()?;
            if long == "help" {
                return None;
            }
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            let default = a
                .get_default_values()
                .first()
                .map(|d| d.to_string_lossy().into_owned());
            Some((long.to_owned(), (help, default)))
        })
        .collect()
}

/// Help text and description compare without the closing period and markdown code ticks.
fn plain(s: &str) -> String {
    s.trim().trim_end_matches('.').replace('`', "")
}

#[test]
fn every_input_is_a_flag_and_every_flag_an_input() {
    let (inputs, flags) = (inputs(), flags());
    let only_inputs: Vec<_> = inputs.keys().filter(|k| !flags.contains_key(*k)).collect();
    let only_flags: Vec<_> = flags.keys().filter(|k| !inputs.contains_key(*k)).collect();
    assert!(
        only_inputs.is_empty(),
        "inputs without a flag: {only_inputs:?}"
    );
    assert!(
        only_flags.is_empty(),
        "flags without an input: {only_flags:?}"
    );
}

#[test]
fn defaults_and_descriptions_agree() {
    let flags = flags();
    for (name, (description, default)) in inputs() {
        let (help, flag_default) = &flags[&name];
        assert_eq!(
            plain(&description),
            plain(help),
            "description of input {name}"
        );
        match default.as_deref() {
            // Expressions are the runner's to evaluate; the flag documents its fallback.
            Some(d) if d.starts_with("${{") => {
                assert!(flag_default.is_none(), "{name}");
                assert!(help.contains("[default:"), "{name} documents its fallback");
            }
            d => assert_eq!(d, flag_default.as_deref(), "default of input {name}"),
        }
    }
}

#[test]
fn the_wrapper_is_node24_with_an_always_post_step() {
    let yml = action_yml();
    let runs = &yml["runs"];
    assert_eq!(runs["using"].as_str(), Some("node24"));
    assert_eq!(runs["post-if"].as_str(), Some("always()"));
    for key in ["main", "post"] {
        let file = runs[key].as_str().unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(file);
        assert!(path.is_file(), "{file}");
    }
}

/// The README's table under "Use it in your repository": `| name | default | description |`.
#[test]
fn the_readme_documents_every_input_as_action_yml_does() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme
        .split("## Use it in your repository")
        .nth(1)
        .expect("README has a 'Use it in your repository' section");
    let table = section
        .split("| input | default | description |")
        .nth(1)
        .expect("the section has the inputs table");
    let rows: BTreeMap<String, (String, String)> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 3, "row {l:?}");
            (
                cells[0].trim_matches('`').to_owned(),
                (cells[1].trim_matches('`').to_owned(), cells[2].to_owned()),
            )
        })
        .collect();
    let inputs = inputs();
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        inputs.keys().collect::<Vec<_>>(),
        "the README's input table lists exactly action.yml's inputs"
    );
    for (name, (description, default)) in inputs {
        let (readme_default, readme_description) = &rows[&name];
        assert_eq!(
            readme_default,
            &default.unwrap_or_default(),
            "README default of {name}"
        );
        assert_eq!(
            plain(readme_description),
            plain(&description),
            "README description of {name}"
        );
    }
}
