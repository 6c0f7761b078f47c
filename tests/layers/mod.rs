//! Applying layers to a real filesystem: the whiteout and replacement rules, and
//! the hostile-layer corpus (entries that try to escape the root, headers that
//! disagree, limits), each case run in a sandbox checked unchanged outside the root.

mod case;
mod concurrent;
mod hostile_entries;
mod hostile_headers;
mod mtimes;
mod rawtar;
mod rules;
mod xattrs;
