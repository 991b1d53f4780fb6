//! Block fingerprints of a Python file (ARCHITECTURE §4): a module skeleton (imports, globals,
//! class bodies, signatures, decorators, defaults) plus one body block per function or
//! method, keyed by qualified name (`Class.method`, `outer.<locals>.inner`), never by
//! position. A block's checksum is the CRC32 of its tokens with comments and non-logical
//! newlines dropped, so comments, blank lines and spacing do not change it; any code or
//! docstring change does. A file that does not parse is one block.
//!
//! Parsed with ruff's parser (see `docs/perf/fingerprint.md` for the measurement that
//! chose it over tree-sitter-python).

use ruff_python_ast::statement_visitor::{StatementVisitor, walk_stmt};
use ruff_python_ast::token::TokenKind;
use ruff_python_ast::{Stmt, StmtClassDef, StmtFunctionDef};
use ruff_text_size::{Ranged, TextRange, TextSize};
use sha1::{Digest, Sha1};

/// Bump when the normalisation changes: stored fingerprints of another version are void.
pub const NORMALISER_VERSION: u32 = 1;

/// The key of the module skeleton.
pub const SKELETON: &str = "<module>";
/// The key of the single block of a file that does not parse.
pub const UNPARSED: &str = "<unparsed>";

/// One block of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub key: String,
    pub checksum: u32,
    /// 1-based, inclusive line ranges the block's own code spans (a function body minus
    /// the bodies of functions nested in it).
    pub lines: (u32, u32),
}

/// A file's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFingerprint {
    /// The git blob SHA1 of the content (what `git hash-object` prints).
    pub blob_sha1: String,
    pub blocks: Vec<Block>,
}

impl FileFingerprint {
    pub fn block(&self, key: &str) -> Option<&Block> {
        self.blocks.iter().find(|b| b.key == key)
    }

    /// The key of the innermost block that owns `line` (1-based): the smallest function
    /// body containing it, else the skeleton.
    pub fn owner_of_line(&self, line: u32) -> &str {
        self.blocks
            .iter()
            .filter(|b| b.key != SKELETON && b.lines.0 <= line && line <= b.lines.1)
            .min_by_key(|b| b.lines.1 - b.lines.0)
            .map_or_else(
                || {
                    if self.blocks.iter().any(|b| b.key == UNPARSED) {
                        UNPARSED
                    } else {
                        SKELETON
                    }
                },
                |b| b.key.as_str(),
            )
    }
}

/// The git blob SHA1 of `bytes`.
pub fn blob_sha1(bytes: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    format!("{:x}", h.finalize())
}

/// Fingerprints one Python source file.
pub fn fingerprint(source: &str) -> FileFingerprint {
    let blob_sha1 = blob_sha1(source.as_bytes());
    let parsed = match ruff_python_parser::parse_module(source) {
        Ok(p) => p,
        Err(_) => {
            let normal: Vec<&str> = source.split_whitespace().collect();
            let lines = source.lines().count().max(1) as u32;
            return FileFingerprint {
                blob_sha1,
                blocks: vec![Block {
                    key: UNPARSED.into(),
                    checksum: crc32fast::hash(normal.join(" ").as_bytes()),
                    lines: (1, lines),
                }],
            };
        }
    };
    let mut bodies = Bodies::default();
    bodies.visit_body(&parsed.syntax().body);
    // Innermost first when assigning tokens: sort by range length.
    let mut spans = bodies.spans;
    spans.sort_by_key(|(_, r)| r.len());
    let line_starts = line_starts(source);
    let mut texts: Vec<String> = vec![String::new(); spans.len() + 1];
    for token in parsed.tokens().iter() {
        match token.kind() {
            TokenKind::Comment | TokenKind::NonLogicalNewline | TokenKind::EndOfFile => continue,
            _ => {}
        }
        let at = token.start();
        let slot = spans
            .iter()
            .position(|(_, r)| r.contains(at))
            .map_or(0, |i| i + 1);
        let text = &mut texts[slot];
        if !text.is_empty() {
            text.push(' ');
        }
        match token.kind() {
            // Their text is whitespace; the kind is the structure.
            TokenKind::Newline => text.push_str("\\n"),
            TokenKind::Indent => text.push_str("\\t+"),
            TokenKind::Dedent => text.push_str("\\t-"),
            _ => text.push_str(&source[token.range()]),
        }
    }
    let line_of = |offset: TextSize| -> u32 {
        line_starts.partition_point(|&s| s <= u32::from(offset)) as u32
    };
    let total_lines = line_starts.len() as u32;
    let mut blocks = vec![Block {
        key: SKELETON.into(),
        checksum: crc32fast::hash(texts[0].as_bytes()),
        lines: (1, total_lines.max(1)),
    }];
    for (i, (key, range)) in spans.iter().enumerate() {
        blocks.push(Block {
            key: key.clone(),
            checksum: crc32fast::hash(texts[i + 1].as_bytes()),
            lines: (
                line_of(range.start()),
                line_of(range.end() - TextSize::from(1).min(range.len())),
            ),
        });
    }
    blocks[1..].sort_by(|a, b| a.key.cmp(&b.key));
    FileFingerprint { blob_sha1, blocks }
}

/// Offsets where lines start.
fn line_starts(source: &str) -> Vec<u32> {
    std::iter::once(0)
        .chain(source.match_indices('\n').map(|(i, _)| i as u32 + 1))
        .filter(|&s| (s as usize) < source.len() || s == 0)
        .collect()
}

/// Every function body with its qualified name.
#[derive(Default)]
struct Bodies {
    /// The qualified-name prefix of the current scope.
    scope: Vec<String>,
    spans: Vec<(String, TextRange)>,
}

impl<'a> StatementVisitor<'a> for Bodies {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::FunctionDef(StmtFunctionDef { name, body, .. }) => {
                let key = self.qualify(name.as_str());
                if let (Some(first), Some(last)) = (body.first(), body.last()) {
                    self.spans
                        .push((key.clone(), TextRange::new(first.start(), last.end())));
                }
                self.scope.push(format!("{}.<locals>", name.as_str()));
                self.visit_body(body);
                self.scope.pop();
            }
            Stmt::ClassDef(StmtClassDef { name, body, .. }) => {
                self.scope.push(name.as_str().to_owned());
                self.visit_body(body);
                self.scope.pop();
            }
            _ => walk_stmt(self, stmt),
        }
    }
}

impl Bodies {
    fn qualify(&self, name: &str) -> String {
        let mut key = self.scope.join(".");
        if !key.is_empty() {
            key.push('.');
        }
        key.push_str(name);
        // Two definitions of one name (an `if`/`else` pair, a redefinition): keep both.
        let n = self
            .spans
            .iter()
            .filter(|(k, _)| k == &key || k.starts_with(&format!("{key}#")))
            .count();
        if n > 0 {
            key.push_str(&format!("#{}", n + 1));
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#""""Text helpers."""
import re

LIMIT = 10  # the cap

class Tokenizer:
    pattern = re.compile(r"\w+")

    def __init__(self, lower=True):
        self.lower = lower

    def split(self, text):
        """Words of `text`."""
        words = self.pattern.findall(text)
        return [w.lower() for w in words] if self.lower else words


def count(text, limit=LIMIT):
    def keep(w):
        return len(w) > 1
    return min(limit, len([w for w in Tokenizer().split(text) if keep(w)]))
"#;

    fn sums(source: &str) -> Vec<(String, u32)> {
        fingerprint(source)
            .blocks
            .into_iter()
            .map(|b| (b.key, b.checksum))
            .collect()
    }

    fn changed(a: &str, b: &str) -> Vec<String> {
        let (a, b) = (sums(a), sums(b));
        let mut keys: Vec<String> = a.iter().chain(&b).map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter(|k| {
                a.iter().find(|(x, _)| x == k).map(|x| x.1)
                    != b.iter().find(|(x, _)| x == k).map(|x| x.1)
            })
            .collect()
    }

    #[test]
    fn blocks_are_the_skeleton_and_one_body_per_function_by_qualified_name() {
        let keys: Vec<String> = sums(BASE).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "<module>",
                "Tokenizer.__init__",
                "Tokenizer.split",
                "count",
                "count.<locals>.keep"
            ]
        );
    }

    #[test]
    fn comments_blank_lines_and_spacing_change_nothing() {
        let edited = BASE
            .replace("LIMIT = 10  # the cap", "LIMIT=10   # the limit")
            .replace(
                "        self.lower = lower\n",
                "        # remember\n        self.lower  =  lower\n\n",
            )
            .replace(
                "def count(text, limit=LIMIT):",
                "def count(text,  limit = LIMIT):  # count",
            );
        assert_ne!(edited, BASE);
        assert_eq!(changed(BASE, &edited), Vec::<String>::new());
    }

    #[test]
    fn a_body_edit_changes_only_its_block() {
        let edited = BASE.replace("return len(w) > 1", "return len(w) > 2");
        assert_eq!(changed(BASE, &edited), ["count.<locals>.keep"]);
        let edited = BASE.replace("self.lower = lower", "self.lower = bool(lower)");
        assert_eq!(changed(BASE, &edited), ["Tokenizer.__init__"]);
    }

    #[test]
    fn a_docstring_edit_is_a_change() {
        let edited = BASE.replace("Words of `text`.", "The words of `text`.");
        assert_eq!(changed(BASE, &edited), ["Tokenizer.split"]);
    }

    #[test]
    fn signatures_defaults_constants_and_class_attributes_are_the_skeleton() {
        for (from, to) in [
            ("LIMIT = 10", "LIMIT = 11"),
            ("def count(text, limit=LIMIT):", "def count(text, limit=5):"),
            (
                "def __init__(self, lower=True):",
                "def __init__(self, lower=False):",
            ),
            (r#"re.compile(r"\w+")"#, r#"re.compile(r"\S+")"#),
            ("import re", "import re as re"),
        ] {
            let edited = BASE.replace(from, to);
            assert_eq!(changed(BASE, &edited), ["<module>"], "{from} -> {to}");
        }
        // A nested function's signature belongs to the enclosing body.
        let edited = BASE.replace("def keep(w):", "def keep(w, n=1):");
        assert_eq!(changed(BASE, &edited), ["count"]);
    }

    #[test]
    fn moving_a_function_keeps_its_checksum() {
        let split_at = BASE.find("def count").unwrap();
        let (head, tail) = BASE.split_at(split_at);
        let moved = format!("{tail}\n\n{head}");
        let a = fingerprint(BASE);
        let b = fingerprint(&moved);
        assert_eq!(
            a.block("count").unwrap().checksum,
            b.block("count").unwrap().checksum
        );
        assert_eq!(
            a.block("Tokenizer.split").unwrap().checksum,
            b.block("Tokenizer.split").unwrap().checksum
        );
    }

    #[test]
    fn a_file_that_does_not_parse_is_one_block() {
        let broken = "def f(:\n    return 1\n";
        let fp = fingerprint(broken);
        assert_eq!(fp.blocks.len(), 1);
        assert_eq!(fp.blocks[0].key, UNPARSED);
        assert_eq!(fp.owner_of_line(2), UNPARSED);
        assert_ne!(
            fingerprint("def f(:\n    return 2\n").blocks[0].checksum,
            fp.blocks[0].checksum
        );
    }

    #[test]
    fn lines_map_to_their_innermost_block() {
        let fp = fingerprint(BASE);
        let line = |needle: &str| BASE.lines().position(|l| l.contains(needle)).unwrap() as u32 + 1;
        assert_eq!(
            fp.owner_of_line(line("return len(w) > 1")),
            "count.<locals>.keep"
        );
        assert_eq!(fp.owner_of_line(line("return min(limit")), "count");
        assert_eq!(fp.owner_of_line(line("def keep(w):")), "count");
        assert_eq!(
            fp.owner_of_line(line("words = self.pattern")),
            "Tokenizer.split"
        );
        assert_eq!(fp.owner_of_line(line("LIMIT = 10")), SKELETON);
        assert_eq!(fp.owner_of_line(line("def split(self, text):")), SKELETON);
    }

    #[test]
    fn redefinitions_are_kept_apart() {
        let src = "import sys\nif sys.platform == 'win32':\n    def f():\n        return 1\nelse:\n    def f():\n        return 2\n";
        let keys: Vec<String> = sums(src).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["<module>", "f", "f#2"]);
    }

    #[test]
    fn the_blob_sha1_is_gits() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            blob_sha1(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }
}
