//! The streaming inspector and the decision procedure it shares with
//! [`crate::inspect`].
//!
//! The decision runs in a fixed order so that one-shot and chunked inspection
//! always agree, including on which refusal is reported:
//! 1. the format declared at the start of the file: foreign ones are refused by
//!    name, supported ones have their header parsed and checked;
//! 2. every signature in the prefix: more than one means a polyglot (a raw
//!    disk's own MBR and GPT do not count; in another format's header they do);
//! 3. (once the stream ends) raw size limit, trailers in the last sector, the
//!    partition table a raw image must have (when required), structures that
//!    lie past the end of the file, the vmdk footer;
//! 4. the data the image's own tables point at (qcow2 L2 entries, the VHDX
//!    BAT and log, the VDI block map, vmdk grain tables), read by a
//!    [`Scan`] as the tables stream by: a file that ends before it is
//!    truncated.
//!
//! The inspector runs step 1 early on a growing prefix and only acts on a
//! refusal: a refusal there depends only on bytes already seen, so the full
//! run would reach the same refusal first. The scan of step 4 starts once the
//! format is decided and is fed every later chunk.

use crate::foreign::{self, Kind};
use crate::tables::Scan;
use crate::{qcow2, vdi, vhdx, vmdk, DiskFormat, Inspection, Parsed, Problem, Refusal};

#[derive(Debug, Clone)]
enum Candidate {
    Raw(RawLayout),
    Image(Parsed),
}

/// What the first sectors of a raw image say about its partitioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawLayout {
    /// A GPT header at LBA 1.
    Gpt,
    /// An MBR with at least one partition.
    Mbr,
    /// The MBR boot signature, but no partition behind it (an empty table, a
    /// FAT boot sector, or chance).
    BootSignature,
    Bare,
}

impl RawLayout {
    fn of(prefix: &[u8]) -> Self {
        if crate::bytes::has_at(prefix, 512, foreign::GPT_SIGNATURE) {
            Self::Gpt
        } else if foreign::has_mbr_partitions(prefix) {
            Self::Mbr
        } else if crate::bytes::has_at(prefix, 510, &foreign::MBR_BOOT_SIGNATURE) {
            Self::BootSignature
        } else {
            Self::Bare
        }
    }

    fn detail(self) -> &'static str {
        match self {
            Self::Gpt => "raw (GPT)",
            Self::Mbr | Self::BootSignature => "raw (MBR)",
            Self::Bare => "raw",
        }
    }

    /// Why a raw image without a partition table is refused, or `None`.
    fn unpartitioned(self) -> Option<Refusal> {
        let what = match self {
            Self::Gpt | Self::Mbr => return None,
            Self::BootSignature => {
                "this one has an MBR boot signature but no partition in its table"
            }
            Self::Bare => "this one has neither (a bare file system, or not a disk image at all?)",
        };
        Some(Refusal::new(format!(
            "a raw image must start with an MBR or GPT partition table, as DigitalOcean requires; {what}; upload the whole partitioned disk"
        )))
    }
}

fn parse_primary(prefix: &[u8], limit: u64) -> Result<Candidate, (Option<DiskFormat>, Problem)> {
    let Some(probe) = foreign::primary(prefix) else {
        return Ok(Candidate::Raw(RawLayout::of(prefix)));
    };
    let format = match probe.kind {
        Kind::Refused(msg) => return Err((None, Problem::Refuse(Refusal::new(msg)))),
        Kind::Supported(f) => f,
        // `primary` never answers a partition table: that is a raw disk.
        Kind::PartitionTable => return Ok(Candidate::Raw(RawLayout::of(prefix))),
    };
    let parsed = match format {
        DiskFormat::Qcow2 => qcow2::parse(prefix, limit),
        DiskFormat::Vmdk => vmdk::parse(prefix, limit),
        DiskFormat::Vhdx => vhdx::parse(prefix, limit),
        DiskFormat::Vdi => vdi::parse(prefix, limit),
        DiskFormat::Raw => return Ok(Candidate::Raw(RawLayout::of(prefix))),
    };
    parsed.map(Candidate::Image).map_err(|p| (Some(format), p))
}

/// Step 1 on a partial prefix: a refusal, or nothing yet.
fn early(prefix: &[u8], limit: u64) -> Option<Refusal> {
    match parse_primary(prefix, limit) {
        Err((_, Problem::Refuse(r))) => Some(r),
        _ => None,
    }
}

/// Steps 1 and 2, on a full prefix or on a whole file shorter than that.
fn decide(prefix: &[u8], limit: u64) -> Result<Candidate, Refusal> {
    let candidate = match parse_primary(prefix, limit) {
        Ok(c) => c,
        Err((_, Problem::Refuse(r))) => return Err(r),
        Err((format, Problem::Need(end))) => {
            let name = format.map_or("image", DiskFormat::as_str);
            return Err(if prefix.len() < Inspector::PREFIX_LEN {
                Refusal::new(format!(
                    "{name} image is truncated: its header needs at least {end} bytes but the file has only {}; upload the complete file",
                    prefix.len()
                ))
            } else {
                Refusal::new(format!(
                    "{name} image keeps header data beyond the first {} (at byte {end}), which tidepool does not inspect; convert it with qemu-img convert -O qcow2 and upload that",
                    crate::human_size(Inspector::PREFIX_LEN as u64)
                ))
            });
        }
    };
    let mut names = foreign::all_names(prefix);
    if let Candidate::Raw(_) = candidate {
        // A raw disk's partition tables describe that disk (and a GPT disk has
        // a protective MBR as well): neither is a second format.
        names.retain(|n| !foreign::is_partition_table(n));
    }
    if names.len() > 1 {
        return Err(Refusal::new(foreign::polyglot_message(&names)));
    }
    if let Candidate::Raw(_) = candidate {
        // A lone signature past offset 0 in an otherwise raw file (an ISO).
        if let Some(probe) = foreign::PROBES.iter().find(|p| names.contains(&p.name)) {
            if let Kind::Refused(msg) = probe.kind {
                return Err(Refusal::new(msg));
            }
        }
    }
    Ok(candidate)
}

fn raw_over_limit(total: u64, limit: u64) -> Option<Refusal> {
    // Worded without the total: a streaming caller only knows "more than".
    (total > limit).then(|| {
        Refusal::new(format!(
            "raw image is larger than the limit of {}; upload a smaller disk",
            crate::human_size(limit)
        ))
    })
}

/// Step 3: `tail` is the last `min(total, TAIL_LEN)` bytes.
fn conclude(
    candidate: Candidate,
    tail: &[u8],
    total: u64,
    limit: u64,
    require_partition_table: bool,
) -> Result<Inspection, Refusal> {
    if let Candidate::Raw(_) = candidate {
        if let Some(r) = raw_over_limit(total, limit) {
            return Err(r);
        }
    }
    let last512 = tail
        .len()
        .checked_sub(512)
        .and_then(|start| tail.get(start..))
        .unwrap_or(&[]);
    if let Some((name, msg)) = foreign::trailer(last512) {
        return Err(match &candidate {
            Candidate::Raw(_) => Refusal::new(msg),
            Candidate::Image(p) => {
                Refusal::new(foreign::polyglot_message(&[p.format.as_str(), name]))
            }
        });
    }
    match candidate {
        Candidate::Raw(layout) => {
            // After the trailers: a fixed VHD of an unpartitioned disk is
            // better told to be a VHD.
            if let Some(r) = layout.unpartitioned().filter(|_| require_partition_table) {
                return Err(r);
            }
            Ok(Inspection {
                format: DiskFormat::Raw,
                virtual_size: total,
                detail: layout.detail().to_owned(),
            })
        }
        Candidate::Image(p) => {
            if p.min_len > total {
                return Err(Refusal::new(format!(
                    "{} image is truncated: its header refers to data up to byte {} but the file has only {total} bytes; upload the complete file",
                    p.format, p.min_len
                )));
            }
            if let Some(capacity) = p.vmdk_footer_capacity {
                vmdk::check_footer(tail, total, capacity)?;
            }
            Ok(Inspection {
                format: p.format,
                virtual_size: p.virtual_size,
                detail: p.detail,
            })
        }
    }
}

/// The scan of the tables a decided image's header points at, fed the bytes seen so far (`rest`
/// follows `prefix` in the file).
fn start_scan(candidate: &Candidate, prefix: &[u8], rest: &[u8]) -> Result<Option<Scan>, Refusal> {
    let Candidate::Image(Parsed {
        tables: Some(plan), ..
    }) = candidate
    else {
        return Ok(None);
    };
    let mut scan = Scan::new(plan.clone());
    scan.feed(prefix, prefix)?;
    scan.feed(rest, prefix)?;
    Ok(Some(scan))
}

/// After step 3: the data the image's tables point at must have arrived.
fn tables_fit(
    inspection: Inspection,
    scan: Option<&Scan>,
    total: u64,
) -> Result<Inspection, Refusal> {
    match scan.and_then(Scan::required_len) {
        Some(required) if required > total => Err(Refusal::new(format!(
            "the {} image is truncated: its tables point at data up to byte {required} but only {total} bytes arrived; upload the complete file",
            inspection.format
        ))),
        _ => Ok(inspection),
    }
}

fn empty() -> Refusal {
    Refusal::new("image is empty; upload a disk image")
}

pub(crate) fn inspect_whole(bytes: &[u8], limit: u64) -> Result<Inspection, Refusal> {
    inspect_whole_with(bytes, limit, false)
}

/// [`inspect_whole`] with [`Inspector::require_partition_table`].
pub(crate) fn inspect_whole_with(
    bytes: &[u8],
    limit: u64,
    require_partition_table: bool,
) -> Result<Inspection, Refusal> {
    if bytes.is_empty() {
        return Err(empty());
    }
    let prefix = bytes.get(..Inspector::PREFIX_LEN).unwrap_or(bytes);
    let tail_start = bytes.len().saturating_sub(Inspector::TAIL_LEN);
    let tail = bytes.get(tail_start..).unwrap_or(bytes);
    let candidate = decide(prefix, limit)?;
    let scan = start_scan(&candidate, prefix, bytes.get(prefix.len()..).unwrap_or(&[]))?;
    let inspection = conclude(
        candidate,
        tail,
        bytes.len() as u64,
        limit,
        require_partition_table,
    )?;
    tables_fit(inspection, scan.as_ref(), bytes.len() as u64)
}

#[derive(Debug)]
enum State {
    Undecided,
    Decided(Candidate),
    Refused(Refusal),
}

/// Streaming inspector: the importer pushes every decompressed chunk through
/// it as the bytes pass by, and never needs to seek back.
///
/// Memory is bounded by [`Self::PREFIX_LEN`] + [`Self::TAIL_LEN`] whatever is
/// pushed. Once [`push`](Self::push) has returned a refusal, every later call
/// returns the same refusal.
pub struct Inspector {
    limit: u64,
    prefix: Vec<u8>,
    /// Ring buffer holding the last bytes; `tail_pos` is where the next byte goes.
    tail: Vec<u8>,
    tail_pos: usize,
    total: u64,
    state: State,
    require_partition_table: bool,
    /// Once an image format is decided: its tables, read as they pass.
    scan: Option<Scan>,
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector")
            .field("limit", &self.limit)
            .field("prefix_len", &self.prefix.len())
            .field("total", &self.total)
            .field("state", &self.state)
            .field("require_partition_table", &self.require_partition_table)
            .finish()
    }
}

/// Prefix lengths at which the header checks run early, so an oversized or
/// backed qcow2 is refused after a few KiB rather than after 4 MiB.
const EARLY_AT: [usize; 10] = [
    4 << 10,
    8 << 10,
    16 << 10,
    32 << 10,
    64 << 10,
    128 << 10,
    256 << 10,
    512 << 10,
    1 << 20,
    2 << 20,
];

impl Inspector {
    /// Bytes of the start of the stream kept for header parsing.
    pub const PREFIX_LEN: usize = 4 << 20;
    /// Bytes of the end of the stream kept (vmdk streamOptimized footer, VHD
    /// footer, dmg trailer).
    pub const TAIL_LEN: usize = 64 << 10;

    /// An inspector that refuses virtual sizes above `max_virtual_size` bytes.
    /// It accepts raw images without a partition table unless
    /// [`require_partition_table`](Self::require_partition_table) says otherwise.
    pub fn new(max_virtual_size: u64) -> Self {
        Self {
            limit: max_virtual_size,
            prefix: Vec::new(),
            tail: Vec::new(),
            tail_pos: 0,
            total: 0,
            state: State::Undecided,
            require_partition_table: false,
            scan: None,
        }
    }

    /// With `true`, refuses a raw image that does not start with an MBR (with
    /// at least one partition) or a GPT, as DigitalOcean does. The verdict
    /// comes at [`finish`](Self::finish), after the trailer checks, so that a
    /// fixed VHD is still refused as one.
    pub fn require_partition_table(mut self, require: bool) -> Self {
        self.require_partition_table = require;
        self
    }

    /// Bytes pushed so far.
    pub fn total_len(&self) -> u64 {
        self.total
    }

    /// Feed the next chunk. Returns `Err` as soon as what has been seen is
    /// enough to refuse, so the importer can stop downloading early.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), Refusal> {
        if let State::Refused(r) = &self.state {
            return Err(r.clone());
        }
        if chunk.is_empty() {
            return Ok(());
        }
        self.total = self.total.saturating_add(chunk.len() as u64);
        self.push_tail(chunk);

        if let Some(scan) = &mut self.scan {
            if let Err(r) = scan.feed(chunk, &self.prefix) {
                self.state = State::Refused(r);
            }
        } else if matches!(self.state, State::Undecided) {
            let before = self.prefix.len();
            let take = Self::PREFIX_LEN.saturating_sub(before).min(chunk.len());
            if self.prefix.capacity() == 0 {
                self.prefix.reserve_exact(Self::PREFIX_LEN);
            }
            self.prefix
                .extend_from_slice(chunk.get(..take).unwrap_or(chunk));
            let after = self.prefix.len();
            if after >= Self::PREFIX_LEN {
                let rest = chunk.get(take..).unwrap_or(&[]);
                self.state = match decide(&self.prefix, self.limit) {
                    Ok(c) => match start_scan(&c, &self.prefix, rest) {
                        Ok(scan) => {
                            self.scan = scan;
                            State::Decided(c)
                        }
                        Err(r) => State::Refused(r),
                    },
                    Err(r) => State::Refused(r),
                };
            } else if EARLY_AT.iter().any(|&t| before < t && t <= after) {
                if let Some(r) = early(&self.prefix, self.limit) {
                    self.state = State::Refused(r);
                }
            }
        }
        if let State::Decided(Candidate::Raw(_)) = self.state {
            if let Some(r) = raw_over_limit(self.total, self.limit) {
                self.state = State::Refused(r);
            }
        }
        match &self.state {
            State::Refused(r) => Err(r.clone()),
            _ => Ok(()),
        }
    }

    fn push_tail(&mut self, chunk: &[u8]) {
        if self.tail.is_empty() {
            self.tail = vec![0; Self::TAIL_LEN];
        }
        let keep = chunk
            .get(chunk.len().saturating_sub(Self::TAIL_LEN)..)
            .unwrap_or(chunk);
        let first = keep.len().min(Self::TAIL_LEN - self.tail_pos);
        let (a, b) = keep.split_at(first);
        if let Some(dst) = self.tail.get_mut(self.tail_pos..self.tail_pos + a.len()) {
            dst.copy_from_slice(a);
        }
        if let Some(dst) = self.tail.get_mut(..b.len()) {
            dst.copy_from_slice(b);
        }
        self.tail_pos = (self.tail_pos + keep.len()) % Self::TAIL_LEN;
    }

    /// The last `min(total, TAIL_LEN)` bytes, oldest first.
    fn tail_bytes(&self) -> Vec<u8> {
        if self.total >= Self::TAIL_LEN as u64 {
            let (newer, older) = self.tail.split_at(self.tail_pos.min(self.tail.len()));
            let mut out = Vec::with_capacity(Self::TAIL_LEN);
            out.extend_from_slice(older);
            out.extend_from_slice(newer);
            out
        } else {
            // Never wrapped: the bytes are at the start, in order.
            let n = usize::try_from(self.total).unwrap_or(0);
            self.tail.get(..n).unwrap_or(&[]).to_vec()
        }
    }

    /// The verdict once the stream has ended.
    pub fn finish(self) -> Result<Inspection, Refusal> {
        let (candidate, scan) = match self.state {
            State::Refused(r) => return Err(r),
            _ if self.total == 0 => return Err(empty()),
            State::Decided(ref c) => (c.clone(), self.scan.clone()),
            State::Undecided => {
                let c = decide(&self.prefix, self.limit)?;
                let scan = start_scan(&c, &self.prefix, &[])?;
                (c, scan)
            }
        };
        let inspection = conclude(
            candidate,
            &self.tail_bytes(),
            self.total,
            self.limit,
            self.require_partition_table,
        )?;
        tables_fit(inspection, scan.as_ref(), self.total)
    }
}
