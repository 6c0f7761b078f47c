//! The destination's filesystem: its type, writeback, and waiting out its
//! memory of recent deletions before a measured run.
//!
//! ext4 without a journal will not reuse an inode deleted in the last 60 s, or
//! in the last 360 s while its inode-table block is dirty (not yet written back)
//! (`recently_deleted()` in fs/ext4/ialloc.c, `RECENTCY_MIN` and
//! `RECENTCY_DIRTY`). New files go to the block group of their directory, where
//! the deleted ones were: each new inode is then found only after a look at every
//! recently deleted one before it. On this project's machine, extracting 14,000
//! entries next to a tree of that size deleted a moment before cost 4.7 s instead
//! of 0.43 s, and 0.43 s in another directory of the same filesystem
//! (docs/performance.md, "The filesystem's memory"). A run that follows a
//! deletion on such a filesystem would measure the deletion, so it waits: a
//! `syncfs`, and the rest of [`WINDOW`] (361 s).

use std::path::Path;
use std::time::{Duration, Instant};

/// The filesystem type of `path` by its statfs magic number.
pub fn filesystem_type(path: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs writes into a zeroed struct we own; `c` is NUL-terminated.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut buf) } != 0 {
        return None;
    }
    let name = match buf.f_type as i64 {
        0xEF53 => "ext4",
        0x0102_1994 => "tmpfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x794C_7630 => "overlay",
        0x2FC1_2FC1 => "zfs",
        0x6969 => "nfs",
        0x0102_1997 => "v9fs",
        0x6573_5546 => "fuse",
        other => return Some(format!("0x{other:x}")),
    };
    Some(name.into())
}

/// Writes the filesystem under `dir` back to disk before a run, outside its timed
/// part: a cold node is not still writing back its last pull, and on a machine
/// pulling back to back the previous run's writeback would otherwise take CPU and
/// disk from this one (hyperfine users put `sync` in `--prepare` for the same reason).
pub fn flush_writes(dir: &Path) {
    use std::os::fd::AsRawFd;
    match std::fs::File::open(dir) {
        // SAFETY: syncfs takes any open descriptor on the filesystem.
        Ok(f) => {
            if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
                tracing::debug!(error = %std::io::Error::last_os_error(), "syncfs failed");
            }
        }
        Err(e) => tracing::debug!(error = %e, dir = %dir.display(), "cannot open for syncfs"),
    }
}

/// How long after a deletion new inodes near it can cost more: 60 s, plus 300 s
/// while the inode-table block is dirty, and a second of margin. A `syncfs`
/// cleans the blocks, but the next run's first allocations in a block dirty it
/// again, and the other inodes deleted in it are then skipped until the longer
/// window has passed: in a `compare --puller` run that waited 61 s, round 2 was
/// still 3.5x round 3 for pulltime and 2.6x for docker (docs/performance.md).
pub const WINDOW: Duration = Duration::from_secs(361);

/// Whether `a` and `b` are on the same filesystem (false when either cannot be
/// read).
pub fn same_filesystem(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev(),
        _ => false,
    }
}

/// Whether deletions on the filesystem of `path` slow the file creation after
/// them: ext2/3/4 mounted without a journal. Unknown (no /sys, no /proc): false.
pub fn deletions_linger(path: &Path) -> bool {
    journal(path) == Some(false)
}

/// Whether the ext2/3/4 filesystem holding `path` has a journal: `None` when it
/// is not ext2/3/4 or cannot be told. A loaded journal shows as
/// `/proc/fs/jbd2/DEVICE-N`.
pub fn journal(path: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    if filesystem_type(path).as_deref() != Some("ext4") {
        return None;
    }
    let dev = std::fs::metadata(path).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let uevent = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent")).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    let device = name.rsplit('/').next()?;
    // The ext4 driver lists every mounted ext2/3/4 device here.
    if !Path::new("/proc/fs/ext4").join(device).exists() {
        return None;
    }
    let prefix = format!("{device}-");
    let journals = match std::fs::read_dir("/proc/fs/jbd2") {
        Ok(entries) => entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(&prefix)),
        // No jbd2 at all: no filesystem here has a journal.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(_) => return None,
    };
    Some(journals)
}

/// After files were deleted (the deletion ended at `deleted_at`) on the
/// filesystem of `path`: writes its dirty blocks back and sleeps until `window`
/// (normally [`WINDOW`]; zero: no wait) has passed, saying so through `say`,
/// when that filesystem keeps deletions in mind ([`deletions_linger`]); `stop`
/// (the user's Ctrl-C) ends the wait early. Returns the time waited.
pub async fn wait_out(
    path: &Path,
    deleted_at: Instant,
    window: Duration,
    stop: &tokio_util::sync::CancellationToken,
    say: impl Fn(&str),
) -> Duration {
    if window.is_zero() || !deletions_linger(path) {
        return Duration::ZERO;
    }
    let start = Instant::now();
    let left = window.saturating_sub(deleted_at.elapsed());
    if !left.is_zero() {
        say(&format!(
            "waiting {:.0} s: {} is ext4 without a journal, where file creation near \
             files deleted in the last minutes costs several times more \
             (docs/performance.md; --settle 0 skips the wait)",
            left.as_secs_f64(),
            path.display()
        ));
    }
    let root = path.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || flush_writes(&root)).await;
    // Ctrl-C ends the wait at once: the caller then stops as after a run.
    tokio::select! {
        _ = tokio::time::sleep(window.saturating_sub(deleted_at.elapsed())) => {}
        _ = stop.cancelled() => {}
    }
    start.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The journal is read from /proc for ext4 and left unknown elsewhere; this
    /// machine's root is ext4 (journal or not) and /dev/shm tmpfs.
    #[test]
    fn journal_is_known_for_ext4_only() {
        if Path::new("/dev/shm").exists() {
            assert_eq!(journal(Path::new("/dev/shm")), None);
            assert!(!deletions_linger(Path::new("/dev/shm")));
        }
        let tmp = std::env::temp_dir();
        if super::filesystem_type(&tmp).as_deref() == Some("ext4") {
            let mounted_with_journal = std::fs::read_dir("/proc/fs/jbd2")
                .map(|d| d.count() > 0)
                .unwrap_or(false);
            let known = journal(&tmp).expect("ext4 under /proc/fs/ext4");
            if !mounted_with_journal {
                assert!(!known, "no jbd2 device at all, yet a journal was found");
            }
        }
    }
}
