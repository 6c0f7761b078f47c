//! How layers are applied, and what applying one counted.

/// How to apply layers.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Set owners from the tar headers (needs root); default: when running as root.
    /// When false, setuid and setgid bits are dropped from regular files: they
    /// would run the file as whoever extracted it (docs/limits.md).
    pub same_owner: bool,
    /// Create device nodes (needs root); default: when running as root. When false
    /// they are skipped and counted.
    pub devices: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        ApplyOptions {
            same_owner: root,
            devices: root,
        }
    }
}

/// Counts of what one layer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Tar entries read (all types).
    pub entries: u64,
    /// Regular files written.
    pub files: u64,
    /// Directories created or merged.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Hard links created.
    pub hardlinks: u64,
    /// Whiteouts and opaque markers applied.
    pub whiteouts: u64,
    /// Device nodes skipped for lack of privilege.
    pub skipped_devices: u64,
    /// Extended attributes not set: the process may not (a `trusted.*` or
    /// `security.*` one without the privilege) or the filesystem cannot.
    pub skipped_xattrs: u64,
    /// Bytes of regular-file content written.
    pub file_bytes: u64,
}
