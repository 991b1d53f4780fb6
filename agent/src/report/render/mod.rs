//! The report as people read it: the markdown PR comment and a terminal table. Pure
//! functions of a [`Report`](crate::report::Report).

mod markdown;
mod terminal;
mod units;

pub use markdown::{COMMENT_LIMIT, MARKER, markdown, markdown_within};
pub use terminal::terminal;
pub use units::value;
