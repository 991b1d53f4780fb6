//! Where persistent state lives on the host: git mirrors, uv's cache, worktrees.

use std::path::PathBuf;

/// `$BENCHVM_CACHE`, else `$XDG_CACHE_HOME/benchvm`, else `~/.cache/benchvm`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BENCHVM_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("benchvm");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/benchvm")
}
