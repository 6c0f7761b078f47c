//! Moving a file's content from the tar stream to the new file.

use std::io::{self, Read, Write};

pub(super) enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies with a large buffer (fewer write calls than `io::copy`'s 8 KiB).
pub(super) fn copy(
    r: &mut impl Read,
    w: &mut impl Write,
    buf: &mut [u8],
) -> Result<u64, CopyError> {
    let mut total = 0u64;
    loop {
        let n = match r.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        w.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}
