//! Checks on an entry's header as the tar reader parsed it.

use std::io::Read;

use super::error::LayerError;

/// Bytes of an entry's data as stored in the archive (a sparse entry's size is the
/// expanded one; its header holds the stored one).
pub(super) fn stored_size<R: Read>(entry: &tar::Entry<'_, R>) -> u64 {
    if entry.header().entry_type() == tar::EntryType::GNUSparse {
        entry.header().entry_size().unwrap_or(0)
    } else {
        entry.size()
    }
}

/// Refuses an entry whose ustar size field disagrees with its pax `size` record:
/// parsers that ignore pax would read a different archive. A zero field is how
/// writers (Go's archive/tar) mark a size only the pax record can hold.
pub(super) fn check_pax_size<R: Read>(
    entry: &tar::Entry<'_, R>,
    name: &str,
) -> Result<(), LayerError> {
    let header = entry.header();
    if header.entry_type() == tar::EntryType::GNUSparse {
        return Ok(()); // the header holds the stored size, the entry the real one
    }
    let field = header.entry_size().map_err(LayerError::from_read)?;
    if field != 0 && field != entry.size() {
        return Err(LayerError::Unsafe {
            entry: name.to_string(),
            reason: format!(
                "header size {field} disagrees with the pax size record {}",
                entry.size()
            ),
        });
    }
    Ok(())
}
