//! Times fingerprinting a tree of Python files (docs/perf/fingerprint.md).
//!
//!     fingerprint_tree LIST_FILE [ruff-parse|tree-sitter-parse|fingerprint] [REPEAT]
//!
//! LIST_FILE holds one path per line. `fingerprint` is the whole of
//! `select::fingerprint::fingerprint` (read, parse, blocks, CRC32, git blob SHA1);
//! the two `*-parse` modes only parse, to compare the parsers. Prints the median wall time
//! of REPEAT passes (default 5), after one warm-up pass.

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let list = std::fs::read_to_string(&args[1]).expect("list file");
    let mode = args.get(2).map_or("fingerprint", String::as_str);
    let repeat: usize = args.get(3).map_or(5, |r| r.parse().expect("REPEAT"));
    let files: Vec<String> = list.lines().map(str::to_owned).collect();
    let sources: Vec<String> = files
        .iter()
        .map(|f| String::from_utf8_lossy(&std::fs::read(f).expect("readable")).into_owned())
        .collect();
    let mut ts_parser = tree_sitter::Parser::new();
    ts_parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .expect("grammar");
    let mut pass = || -> (f64, usize) {
        let t = Instant::now();
        let mut units = 0;
        match mode {
            "fingerprint" => {
                // Reading is part of the job: fingerprint from disk.
                for f in &files {
                    let text =
                        String::from_utf8_lossy(&std::fs::read(f).expect("readable")).into_owned();
                    units += benchvm_agent::select::fingerprint::fingerprint(&text)
                        .blocks
                        .len();
                }
            }
            "ruff-parse" => {
                for s in &sources {
                    units += usize::from(ruff_python_parser::parse_module(s).is_ok());
                }
            }
            "tree-sitter-parse" => {
                for s in &sources {
                    let tree = ts_parser.parse(s, None).expect("a tree");
                    units += usize::from(!tree.root_node().has_error());
                }
            }
            other => panic!("unknown mode {other}"),
        }
        (t.elapsed().as_secs_f64(), units)
    };
    pass();
    let mut times: Vec<f64> = Vec::new();
    let mut units = 0;
    for _ in 0..repeat {
        let (t, u) = pass();
        times.push(t);
        units = u;
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{mode}: {} files, median {:.3} s of {repeat} (min {:.3}, max {:.3}); {units} {}",
        files.len(),
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        if mode == "fingerprint" {
            "blocks"
        } else {
            "parsed without error"
        }
    );
}
