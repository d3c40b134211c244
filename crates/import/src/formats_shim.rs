//! TEMPORARY stand-in for `tidepool-formats` until it lands; same interface.
#![allow(dead_code)]

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
    Vhdx,
    Vdi,
    Vmdk,
}
impl DiskFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Qcow2 => "qcow2",
            Self::Vhdx => "vhdx",
            Self::Vdi => "vdi",
            Self::Vmdk => "vmdk",
        }
    }
}
impl std::fmt::Display for DiskFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub format: DiskFormat,
    pub virtual_size: u64,
    pub detail: String,
}
#[derive(Debug, Clone)]
pub struct Refusal(String);
impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Refusal {}
pub struct Inspector {
    max: u64,
    head: Vec<u8>,
    total: u64,
}
impl Inspector {
    pub fn new(max_virtual_size: u64) -> Self {
        Self {
            max: max_virtual_size,
            head: Vec::new(),
            total: 0,
        }
    }
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), Refusal> {
        let want = 4096usize.saturating_sub(self.head.len()).min(chunk.len());
        self.head.extend_from_slice(&chunk[..want]);
        self.total += chunk.len() as u64;
        if self.head.starts_with(b"MZ") {
            return Err(Refusal(
                "this is a Windows program, not a disk image".into(),
            ));
        }
        Ok(())
    }
    pub fn finish(self) -> Result<Inspection, Refusal> {
        let h = &self.head;
        let u64be = |o: usize| u64::from_be_bytes(h[o..o + 8].try_into().unwrap());
        let u64le = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap());
        let (format, virtual_size) = if h.starts_with(b"QFI\xfb") {
            (DiskFormat::Qcow2, u64be(24))
        } else if h.starts_with(b"KDMV") {
            (DiskFormat::Vmdk, u64le(12) * 512)
        } else if h.len() > 0x178 && h[0x40..0x44] == [0x7f, 0x10, 0xda, 0xbe] {
            (DiskFormat::Vdi, u64le(0x170))
        } else if h.starts_with(b"vhdxfile") {
            (DiskFormat::Vhdx, 0)
        } else {
            (DiskFormat::Raw, self.total)
        };
        if virtual_size > self.max {
            return Err(Refusal("virtual size too large".into()));
        }
        Ok(Inspection {
            format,
            virtual_size,
            detail: String::new(),
        })
    }
}
