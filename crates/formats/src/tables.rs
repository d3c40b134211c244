//! The tables an image's header points at (qcow2 L1 and L2 tables, the VHDX BAT, the VDI block
//! map, a vmdk's grain directory and grain tables), read as their bytes stream by, so that a
//! file shorter than the data its tables point at is called truncated.
//!
//! Why in-stream rather than a second pass over the stored blob: the inspector already sees
//! every byte once, and a second pass would have to read an upload that on S3 is not readable
//! until it is committed (a multipart upload), so it would commit, read back and delete. Here
//! nothing is stored: each entry updates one number, the highest byte some table needs. The only
//! things kept are the offsets of second-level tables (qcow2 L2 tables, vmdk grain tables), at
//! most [`MAX_TABLES`] of them, sorted so that the stream finds each as it passes. Only table
//! bytes are parsed; a chunk that holds no table costs a comparison.
//!
//! A second-level table that lies before the first-level table pointing at it (a qcow2 L1 table
//! that `qemu-img resize` moved to the end) has passed by the time it is known. It is read from
//! the kept prefix when it lies there; otherwise its entries cannot be read in one pass, and the
//! scan is marked unverified: the image is then held only to what the header and the tables that
//! were read say (every table itself must still lie inside the file).

use crate::bytes::{be64, le32, le64};
use crate::Refusal;

/// The most second-level tables tracked (8 MiB of offsets). With qemu's cluster and grain
/// sizes a disk under the virtual size limit needs far fewer: a 100 GB qcow2 with 64 KiB
/// clusters has about 200 L2 tables.
pub(crate) const MAX_TABLES: usize = 1 << 20;

const MIB: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Qcow2L1,
    Qcow2L2,
    VdiBlockMap,
    VhdxBat,
    VmdkGrainDirectory,
    VmdkGrainTable,
}

/// How a format's entries are read. Built by the format's `parse` from its header.
#[derive(Debug, Clone)]
pub(crate) enum Walker {
    Qcow2 {
        cluster_bits: u32,
        /// 16 with extended L2 entries, else 8.
        l2_entry_len: u64,
        /// L1 entries that map the virtual disk; the L2 tables of later ones are only required
        /// to exist.
        l1_used: u64,
        l2_tables: Vec<u64>,
    },
    Vdi {
        data_offset: u64,
        block_size: u64,
    },
    Vhdx {
        block_size: u64,
        chunk_ratio: u64,
        entries: u64,
    },
    Vmdk {
        grain_table_len: u64,
        grain_size: u64,
        grain_tables: Vec<u64>,
    },
}

/// What a format hands the inspector: how to read entries, and the first-level tables.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub walker: Walker,
    /// (offset, length, kind) of each first-level table.
    pub tables: Vec<(u64, u64, Kind)>,
}

impl Walker {
    fn entry_len(&self, kind: Kind) -> u64 {
        match (self, kind) {
            (Walker::Qcow2 { l2_entry_len, .. }, Kind::Qcow2L2) => *l2_entry_len,
            (_, Kind::Qcow2L1 | Kind::Qcow2L2 | Kind::VhdxBat) => 8,
            (_, Kind::VdiBlockMap | Kind::VmdkGrainDirectory | Kind::VmdkGrainTable) => 4,
        }
    }

    fn child(&self) -> Option<(Kind, u64)> {
        match self {
            Walker::Qcow2 { cluster_bits, .. } => Some((Kind::Qcow2L2, 1 << cluster_bits)),
            Walker::Vmdk {
                grain_table_len, ..
            } => Some((Kind::VmdkGrainTable, *grain_table_len)),
            _ => None,
        }
    }

    /// One entry of a table; raises `required` to the end of what it points at.
    fn entry(
        &mut self,
        kind: Kind,
        index: u64,
        e: &[u8],
        required: &mut u64,
    ) -> Result<(), Refusal> {
        let mut need = |end: Option<u64>| {
            *required = (*required).max(end.unwrap_or(u64::MAX));
        };
        match (self, kind) {
            (
                Walker::Qcow2 {
                    cluster_bits,
                    l1_used,
                    l2_tables,
                    ..
                },
                Kind::Qcow2L1,
            ) => {
                let cluster = 1u64 << *cluster_bits;
                let off = be64(e, 0).unwrap_or(0) & 0x00ff_ffff_ffff_fe00;
                if off == 0 {
                    return Ok(());
                }
                if off % cluster != 0 {
                    return Err(Refusal::corrupt(
                        "qcow2",
                        format_args!("L1 entry {index} points at an unaligned L2 table"),
                    ));
                }
                need(off.checked_add(cluster));
                if index < *l1_used {
                    if l2_tables.len() >= MAX_TABLES {
                        return Err(too_many("qcow2", "L2 tables"));
                    }
                    l2_tables.push(off);
                }
            }
            (Walker::Qcow2 { cluster_bits, .. }, Kind::Qcow2L2) => {
                let cluster_bits = *cluster_bits;
                let e = be64(e, 0).unwrap_or(0);
                if e & (1 << 62) != 0 {
                    // Compressed: the offset's low bits, then the sectors used beyond the one
                    // holding the offset. The data ends somewhere in the last sector.
                    let x = 62 - (cluster_bits - 8);
                    let off = e & ((1u64 << x) - 1);
                    let more = (e >> x) & ((1u64 << (cluster_bits - 8)) - 1);
                    need((off & !511).checked_add(more * 512 + 1));
                } else {
                    let off = e & 0x00ff_ffff_ffff_fe00;
                    if off != 0 {
                        need(off.checked_add(1 << cluster_bits));
                    }
                }
            }
            (
                Walker::Vdi {
                    data_offset,
                    block_size,
                },
                Kind::VdiBlockMap,
            ) => {
                let block = u64::from(le32(e, 0).unwrap_or(u32::MAX));
                // 0xffffffff: not allocated; 0xfffffffe: reads as zeros.
                if block < 0xffff_fffe {
                    need(
                        (block + 1)
                            .checked_mul(*block_size)
                            .and_then(|n| n.checked_add(*data_offset)),
                    );
                }
            }
            (
                Walker::Vhdx {
                    block_size,
                    chunk_ratio,
                    entries,
                },
                Kind::VhdxBat,
            ) => {
                if index >= *entries {
                    return Ok(());
                }
                let e = le64(e, 0).unwrap_or(0);
                let state = e & 7;
                let off = (e >> 20) * MIB;
                // Every chunk_ratio payload entries are followed by a sector bitmap entry.
                let bitmap = (index + 1) % (*chunk_ratio + 1) == 0;
                const PRESENT: u64 = 6;
                const PARTIALLY_PRESENT: u64 = 7;
                if bitmap && state == PRESENT {
                    need(off.checked_add(MIB));
                } else if !bitmap && (state == PRESENT || state == PARTIALLY_PRESENT) {
                    need(off.checked_add(*block_size));
                }
            }
            (
                Walker::Vmdk {
                    grain_table_len,
                    grain_tables,
                    ..
                },
                Kind::VmdkGrainDirectory,
            ) => {
                let sector = u64::from(le32(e, 0).unwrap_or(0));
                if sector != 0 {
                    let off = sector * 512;
                    need(off.checked_add(*grain_table_len));
                    if grain_tables.len() >= MAX_TABLES {
                        return Err(too_many("vmdk", "grain tables"));
                    }
                    grain_tables.push(off);
                }
            }
            (Walker::Vmdk { grain_size, .. }, Kind::VmdkGrainTable) => {
                // 0: not allocated; 1: a zeroed grain.
                let sector = u64::from(le32(e, 0).unwrap_or(0));
                if sector > 1 {
                    need((sector * 512).checked_add(*grain_size));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The second-level tables a finished first-level table pointed at, sorted, without repeats.
    fn take_children(&mut self, kind: Kind) -> Vec<u64> {
        let list = match (self, kind) {
            (Walker::Qcow2 { l2_tables, .. }, Kind::Qcow2L1) => l2_tables,
            (Walker::Vmdk { grain_tables, .. }, Kind::VmdkGrainDirectory) => grain_tables,
            _ => return Vec::new(),
        };
        let mut list = std::mem::take(list);
        list.sort_unstable();
        list.dedup();
        list
    }
}

fn too_many(format: &str, what: &str) -> Refusal {
    Refusal::new(format!(
        "{format} image has more than {MAX_TABLES} {what}, more than tidepool checks; convert it with qemu-img convert -O qcow2 (64 KiB clusters) and upload that"
    ))
}

#[derive(Debug, Clone)]
struct Table {
    start: u64,
    len: u64,
    kind: Kind,
    /// Bytes read so far.
    done: u64,
    /// Entries read so far.
    index: u64,
    /// An entry split between two chunks.
    carry: [u8; 16],
    carry_len: usize,
}

impl Table {
    fn new(start: u64, len: u64, kind: Kind, entry_len: u64) -> Self {
        Self {
            start,
            // Whole entries only.
            len: len - len % entry_len,
            kind,
            done: 0,
            index: 0,
            carry: [0; 16],
            carry_len: 0,
        }
    }

    fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// The scan of one image: fed every byte in order, it knows at the end how long the file must
/// be.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    walker: Walker,
    /// First-level tables not yet reached, sorted by start, last first.
    pending: Vec<Table>,
    /// Starts of second-level tables not yet reached, in descending order.
    children: Vec<u64>,
    active: Vec<Table>,
    pos: u64,
    required: u64,
    unverified: bool,
}

impl Scan {
    pub(crate) fn new(plan: Plan) -> Self {
        let walker = plan.walker;
        let mut pending: Vec<Table> = plan
            .tables
            .into_iter()
            .filter(|&(_, len, _)| len > 0)
            .map(|(start, len, kind)| Table::new(start, len, kind, walker.entry_len(kind)))
            .collect();
        pending.sort_unstable_by_key(|t| std::cmp::Reverse(t.start));
        let required = pending.iter().map(Table::end).max().unwrap_or(0);
        Self {
            walker,
            pending,
            children: Vec::new(),
            active: Vec::new(),
            pos: 0,
            required,
            unverified: false,
        }
    }

    /// The highest byte the tables read point at (exclusive), or `None` when a table could not
    /// be read in one pass.
    pub(crate) fn required_len(&self) -> Option<u64> {
        (!self.unverified).then_some(self.required)
    }

    /// The next bytes of the file. `prefix` is the file's first bytes, kept by the inspector,
    /// where a table found after it passed is read.
    pub(crate) fn feed(&mut self, chunk: &[u8], prefix: &[u8]) -> Result<(), Refusal> {
        let start = self.pos;
        let end = start.saturating_add(chunk.len() as u64);
        loop {
            self.activate(end);
            let mut i = 0;
            while let Some(t) = self.active.get_mut(i) {
                let from = t.start.saturating_add(t.done);
                if from < start {
                    // Not reachable by construction; never read a table from the wrong bytes.
                    self.unverified = true;
                    self.active.swap_remove(i);
                    continue;
                }
                let to = t.end().min(end);
                if from < to {
                    let (a, b) = ((from - start) as usize, (to - start) as usize);
                    if let Some(bytes) = chunk.get(a..b) {
                        eat(&mut self.walker, t, bytes, &mut self.required)?;
                    }
                }
                if t.done >= t.len {
                    let t = self.active.swap_remove(i);
                    self.finished(&t, prefix)?;
                } else {
                    i += 1;
                }
            }
            let next = self
                .pending
                .last()
                .map(|t| t.start)
                .into_iter()
                .chain(self.children.last().copied())
                .min();
            if next.is_none_or(|n| n >= end) {
                break;
            }
        }
        self.pos = end;
        Ok(())
    }

    fn activate(&mut self, end: u64) {
        while self.pending.last().is_some_and(|t| t.start < end) {
            if let Some(t) = self.pending.pop() {
                self.active.push(t);
            }
        }
        if let Some((kind, len)) = self.walker.child() {
            while self.children.last().is_some_and(|&s| s < end) {
                if let Some(s) = self.children.pop() {
                    let entry_len = self.walker.entry_len(kind);
                    self.active.push(Table::new(s, len, kind, entry_len));
                }
            }
        }
    }

    /// A first-level table is read: queue the tables it points at. Those that start before its
    /// end have passed; they are read from the prefix if they lie there.
    fn finished(&mut self, t: &Table, prefix: &[u8]) -> Result<(), Refusal> {
        let Some((kind, len)) = self.walker.child() else {
            return Ok(());
        };
        let children = self.walker.take_children(t.kind);
        if children.is_empty() {
            return Ok(());
        }
        let here = t.end();
        let entry_len = self.walker.entry_len(kind);
        let mut ahead = Vec::new();
        for s in children {
            if s >= here {
                ahead.push(s);
                continue;
            }
            let mut child = Table::new(s, len, kind, entry_len);
            let seen_to = child.end().min(here);
            let (Ok(a), Ok(b)) = (usize::try_from(s), usize::try_from(seen_to)) else {
                self.unverified = true;
                continue;
            };
            match prefix.get(a..b) {
                Some(bytes) => {
                    eat(&mut self.walker, &mut child, bytes, &mut self.required)?;
                    if child.done < child.len {
                        // It runs on past the table that pointed at it.
                        self.pending.push(child);
                        self.pending
                            .sort_unstable_by_key(|t| std::cmp::Reverse(t.start));
                    }
                }
                None => self.unverified = true,
            }
        }
        ahead.reverse();
        // Merge with what is queued already (a second first-level table: not in any format
        // today, but cheap to get right).
        self.children.extend(ahead);
        self.children.sort_unstable_by(|a, b| b.cmp(a));
        self.children.dedup();
        Ok(())
    }
}

/// Reads `bytes`, the next ones of table `t`, entry by entry.
fn eat(
    walker: &mut Walker,
    t: &mut Table,
    mut bytes: &[u8],
    required: &mut u64,
) -> Result<(), Refusal> {
    let n = walker.entry_len(t.kind) as usize;
    t.done += bytes.len() as u64;
    if t.carry_len > 0 {
        let take = (n - t.carry_len).min(bytes.len());
        let (head, rest) = bytes.split_at(take);
        if let Some(dst) = t.carry.get_mut(t.carry_len..t.carry_len + take) {
            dst.copy_from_slice(head);
        }
        t.carry_len += take;
        bytes = rest;
        if t.carry_len == n {
            let carry = t.carry;
            walker.entry(t.kind, t.index, carry.get(..n).unwrap_or(&[]), required)?;
            t.index += 1;
            t.carry_len = 0;
        }
    }
    let mut entries = bytes.chunks_exact(n);
    for e in &mut entries {
        walker.entry(t.kind, t.index, e, required)?;
        t.index += 1;
    }
    let rest = entries.remainder();
    if let Some(dst) = t.carry.get_mut(..rest.len()) {
        dst.copy_from_slice(rest);
        t.carry_len = rest.len();
    }
    Ok(())
}
