//! Entries of a layer set aside while the layers below it are still being
//! applied: those that interact with theirs, and those of the same layer that
//! interact with one set aside (so the layer's own order holds). They are kept
//! in memory, headers and content, as a tar stream of their own, up to a budget,
//! and applied in order once the layers below are done.

use std::io::{self, Read};

use super::index::LayerIndex;
use super::order::EntryTouch;

/// Memory for entries set aside, at most (content, headers and names): these
/// are a package manager's database and caches, a few small files; past this
/// the layer waits for the layers below instead.
const BUDGET: u64 = 16 << 20;

/// The entries set aside so far.
pub(super) struct SetAside {
    stream: tar::Builder<Vec<u8>>,
    /// Their paths (hard links: their targets too); they meet no symlink, so
    /// named and resolved are the same.
    touched: LayerIndex,
    bytes: u64,
    count: u64,
}

impl Default for SetAside {
    fn default() -> Self {
        SetAside {
            stream: tar::Builder::new(Vec::new()),
            touched: LayerIndex::default(),
            bytes: 0,
            count: 0,
        }
    }
}

impl SetAside {
    /// Whether nothing is set aside.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether an entry touching `touches` interacts with one set aside: applied
    /// now, it would be applied out of the layer's order.
    pub fn interacts(&self, touches: &[EntryTouch]) -> bool {
        !self.is_empty()
            && touches
                .iter()
                .any(|t| self.touched.interacts(&t.named, t.touch))
    }

    /// Sets `entry` (named `name`, touching `touches`) aside, reading its content.
    /// False, with nothing read, when it cannot be: a sparse file, or past the
    /// budget.
    pub fn add<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &[u8],
        touches: &[EntryTouch],
    ) -> io::Result<bool> {
        let kind = entry.header().entry_type();
        // Its content, its headers (a pax one and its own) and its names, kept
        // here and in `touched`.
        let link_len = entry.link_name_bytes().map_or(0, |l| l.len());
        let size = entry.size() + 3 * 512 + 4 * (name.len() + link_len) as u64;
        if kind == tar::EntryType::GNUSparse || self.bytes.saturating_add(size) > BUDGET {
            return Ok(false);
        }
        let mut content = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut content)?;
        // The name and link target exactly as the stream gave them (however long,
        // whatever their bytes), in a pax header before the entry's own header.
        let mut records = Vec::new();
        pax_record(&mut records, "path", name);
        if let Some(link) = entry.link_name_bytes() {
            pax_record(&mut records, "linkpath", &link);
        }
        let mut pax = tar::Header::new_ustar();
        pax.set_entry_type(tar::EntryType::XHeader);
        pax.set_path("pax")?;
        pax.set_mode(0o644);
        pax.set_size(records.len() as u64);
        pax.set_cksum();
        self.stream.append(&pax, &records[..])?;
        let mut header = entry.header().clone();
        header.set_size(content.len() as u64);
        header.set_cksum();
        self.stream.append(&header, &content[..])?;
        // Only entries that meet no symlink are set aside: named = resolved.
        for t in touches {
            self.touched.add_path(t.named.clone(), t.touch);
        }
        self.bytes += size;
        self.count += 1;
        Ok(true)
    }

    /// How many entries are set aside, and the memory they take.
    pub fn size(&self) -> (u64, u64) {
        (self.count, self.bytes)
    }

    /// The entries set aside, as a tar stream, in their order; empties the store.
    pub fn take(&mut self) -> io::Result<Vec<u8>> {
        let stream = std::mem::take(self).stream;
        stream.into_inner()
    }
}

/// Appends one pax record, `LEN key=value\n`, where LEN counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        for value in [&b"x"[..], &[b'a'; 5], &[b'b'; 94], &[b'c'; 995]] {
            let mut out = Vec::new();
            pax_record(&mut out, "path", value);
            let (len, _) = out.split_at(out.iter().position(|b| *b == b' ').unwrap());
            let len: usize = std::str::from_utf8(len).unwrap().parse().unwrap();
            assert_eq!(len, out.len(), "{}", String::from_utf8_lossy(&out));
        }
    }
}
