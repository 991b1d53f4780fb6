//! Untrusted text made inert wherever it is shown. Everything a pull request's head produces
//! (benchmark names, asv ids and parameter reprs, units, quality keys, module names, error
//! messages, file paths, ref names) reaches the PR comment, the terminal and the job log only
//! through these functions, one per kind of place:
//!
//! * [`code`]: markdown (prose and table cells): an inline code span, so no HTML, link,
//!   image, emphasis or @mention inside it is live; its fence is longer than any run of
//!   backticks in the text, and `|` is escaped so a table row keeps its cells;
//! * [`label`]: a mermaid chart label or a unit, reduced to characters that mean nothing in
//!   mermaid or markdown;
//! * [`html`]: text inside the comment's own HTML (`<summary>`, `<code>`): entities, and an
//!   `@` that mentions no one;
//! * [`line`]: one line of a terminal or a log, no longer than one line.
//!
//! All of them show control characters (newlines included), and the Unicode characters that
//! reorder or hide text, as visible escapes, so no untrusted text can start a new line: a
//! table row, a mermaid statement or a workflow command (`::error::`) of its own.

/// `text` with control and bidirectional-override characters shown as `\n`, `\t`,
/// `\u{…}`: what every function here starts from.
fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Characters that are invisible or rearrange what is around them: C0/C1 controls, DEL, the
/// bidirectional embeddings, overrides and isolates, zero-width spaces and joiners, and the
/// line and paragraph separators.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}')
}

/// `text` as a markdown inline code span, safe in prose and in a table cell.
pub fn code(text: &str) -> String {
    let text = visible(text).replace('|', "\\|");
    if text.is_empty() {
        return "` `".into();
    }
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // A span that starts or ends with a backtick needs a space inside its fence (CommonMark
    // strips one from each end).
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// `text` as the content of a quoted mermaid label: letters, digits and `space . _ - / ( ) = , +`
/// are kept, anything else (quotes, brackets, `#`, `%`, `;`, `<`, backticks) becomes `_`.
pub fn label(text: &str) -> String {
    visible(text)
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || " ._-/()=,+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `text` inside the comment's own HTML elements: ``& < > " ' ` [ ] :`` and `@` as entities
/// (no tag, link, autolink or mention).
pub fn html(text: &str) -> String {
    visible(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
        .replace('@', "&#64;")
        .replace('`', "&#96;")
        .replace('[', "&#91;")
        .replace(']', "&#93;")
        .replace(':', "&#58;")
}

/// `text` as one line of a terminal or a log: no control character reaches the terminal (no
/// escape sequence), and no newline can start a line of its own.
pub fn line(text: &str) -> String {
    visible(text)
}

/// `text` as the message of a GitHub workflow command (`::error::{here}`): one line, with
/// `%`, CR and LF encoded as the runner decodes them.
pub fn command_data(text: &str) -> String {
    visible(
        &text
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The issue's hostile benchmark name.
    pub(crate) const HOSTILE: &str = "evil` @octo-org/security <!-- hidden --> \
        [click](https://evil.example) <img src=x>\n::error::pwned";

    #[test]
    fn a_code_span_holds_any_text_on_one_line() {
        let span = code(HOSTILE);
        assert!(span.starts_with("``evil` @octo"), "{span}");
        assert!(span.ends_with("\\n::error::pwned``"), "{span}");
        assert!(!span.contains('\n'));
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(code("a``b"), "```a``b```");
        assert_eq!(code(""), "` `");
    }

    #[test]
    fn controls_and_bidi_overrides_are_shown_not_obeyed() {
        assert_eq!(
            line("a\u{1b}[31mb\rc\u{202e}d"),
            "a\\u{1b}[31mb\\rc\\u{202e}d"
        );
        assert_eq!(line("ok: naïve ünïcode"), "ok: naïve ünïcode");
    }

    #[test]
    fn a_workflow_command_message_stays_one_message() {
        assert_eq!(
            command_data("50% done\n::add-mask::x\r"),
            "50%25 done%0A::add-mask::x%0D"
        );
    }

    #[test]
    fn labels_and_html_lose_their_syntax() {
        assert_eq!(
            label("Grid.time_join(100, 'b') \"]\n"),
            "Grid.time_join(100, _b_) ___n"
        );
        assert_eq!(
            html("<b>@me & \"you\"</b>"),
            "&lt;b&gt;&#64;me &amp; &quot;you&quot;&lt;/b&gt;"
        );
    }
}
