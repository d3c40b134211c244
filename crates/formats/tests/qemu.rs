//! Real images written by qemu-img, checked against `qemu-img info`.
//!
//! These tests need `qemu-img` (Debian: qemu-utils). Without it they fail
//! loudly rather than pass vacuously.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use tidepool_formats::{inspect, DiskFormat, Inspection, Inspector, Refusal};
use tidepool_testkit::{qemu_img, qemu_info, temp_dir, Pattern};

const MIB: u64 = 1 << 20;
const VIRTUAL: u64 = 64 * MIB;
const LIMIT: u64 = 1 << 40;

/// A raw disk with recognisable, non-zero data scattered over it.
fn source_raw(dir: &Path) -> PathBuf {
    let p = dir.join("source.raw");
    Pattern::Scattered.write(&p, VIRTUAL);
    p
}

fn verdict_chunked(bytes: &[u8], chunk: usize, limit: u64) -> Result<Inspection, Refusal> {
    let mut ins = Inspector::new(limit);
    for c in bytes.chunks(chunk) {
        ins.push(c)?;
    }
    ins.finish()
}

/// One-shot and chunked verdicts agree, and the verdict is returned.
fn check(path: &Path) -> Result<Inspection, Refusal> {
    let bytes = fs::read(path).unwrap();
    let whole = inspect(&bytes, LIMIT);
    for chunk in [7919, 1 << 20] {
        assert_eq!(
            verdict_chunked(&bytes, chunk, LIMIT),
            whole,
            "chunked ({chunk}) and one-shot verdicts differ for {}",
            path.display()
        );
    }
    // Streaming from the file without holding it whole.
    let mut ins = Inspector::new(LIMIT);
    let mut f = File::open(path).unwrap();
    let mut buf = vec![0u8; 7919];
    let streamed = loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break ins.finish();
        }
        if let Err(r) = ins.push(&buf[..n]) {
            break Err(r);
        }
    };
    assert_eq!(streamed, whole);
    whole
}

fn accepted(path: &Path, format: DiskFormat, detail: &str) {
    let got = check(path).unwrap_or_else(|r| panic!("{} refused: {r}", path.display()));
    let qemu = qemu_info(path);
    assert_eq!(got.format.as_str(), qemu.format, "{}", path.display());
    assert_eq!(got.format, format);
    assert_eq!(got.virtual_size, qemu.virtual_size, "{}", path.display());
    assert_eq!(got.detail, detail, "{}", path.display());
    never_panics_on_truncation(path);
    // What qemu-img create makes holds no data: its tables point at nothing past what the
    // header requires, so a cut that keeps them leaves the whole (empty) disk.
    let empty = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .is_some_and(|n| n.starts_with("empty") || n.starts_with("e-"));
    if format != DiskFormat::Raw && !empty {
        half_is_refused(path);
    }
}

/// What a server that closes the connection halfway delivers: the first half of the file,
/// which must never pass, whatever the chunking.
fn half_is_refused(path: &Path) {
    let bytes = fs::read(path).unwrap();
    let half = &bytes[..bytes.len() / 2];
    let whole = inspect(half, LIMIT);
    assert_eq!(
        verdict_chunked(half, 7919, LIMIT),
        whole,
        "{}",
        path.display()
    );
    match whole {
        Ok(i) => panic!(
            "{} cut to {} of {} bytes accepted as {i:?}",
            path.display(),
            half.len(),
            bytes.len()
        ),
        Err(r) => assert!(
            r.message().contains("truncated"),
            "{} cut in half: {r}",
            path.display()
        ),
    }
}

fn refused(path: &Path, needle: &str) {
    match check(path) {
        Ok(i) => panic!("{} accepted as {i:?}, expected refusal", path.display()),
        Err(r) => assert!(
            r.message().contains(needle),
            "{}: {r:?} does not mention {needle:?}",
            path.display()
        ),
    }
}

/// Truncations of a real sample at many lengths: any verdict, no panic, and
/// a strict prefix of a non-raw image never passes as that format with a
/// different size.
fn never_panics_on_truncation(path: &Path) {
    let bytes = fs::read(path).unwrap();
    let n = bytes.len().min(6 * MIB as usize);
    let mut len = 0;
    while len < n {
        let _ = inspect(&bytes[..len], LIMIT);
        len += if len < 4096 {
            61
        } else if len < 600_000 {
            4093
        } else {
            65521
        };
    }
}

fn convert(dir: &Path, src: &Path, fmt: &str, opts: &[&str], name: &str) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["convert", "-O", fmt];
    args.extend_from_slice(opts);
    let (s, o) = (src.to_str().unwrap(), out.to_str().unwrap());
    args.push(s);
    args.push(o);
    qemu_img(dir, &args);
    out
}

fn create(dir: &Path, fmt: &str, opts: &[&str], name: &str) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["create", "-f", fmt];
    args.extend_from_slice(opts);
    args.push(out.to_str().unwrap());
    args.push("64M");
    qemu_img(dir, &args);
    out
}

#[test]
fn qemu_img_is_installed() {
    let out = Command::new("qemu-img").arg("--version").output();
    assert!(
        out.as_ref().is_ok_and(|o| o.status.success()),
        "qemu-img is required for these tests; install it (Debian/Ubuntu: apt-get install qemu-utils)"
    );
}

#[test]
fn raw_is_accepted() {
    let tmp = temp_dir("formats-raw");
    let d = tmp.path();
    let src = source_raw(d);
    accepted(
        &convert(d, &src, "raw", &[], "a.raw"),
        DiskFormat::Raw,
        "raw",
    );
}

#[test]
fn qcow2_variants_are_accepted() {
    let tmp = temp_dir("formats-qcow2");
    let d = tmp.path();
    let src = source_raw(d);
    let cases: &[(&[&str], &str)] = &[
        (&["-o", "compat=0.10"], "qcow2 v2"),
        (&["-o", "compat=1.1"], "qcow2 v3"),
        (&["-c", "-o", "compat=0.10"], "qcow2 v2"),
        (&["-c", "-o", "compat=1.1"], "qcow2 v3"),
        (&["-o", "preallocation=metadata"], "qcow2 v3"),
        (&["-o", "extended_l2=on"], "qcow2 v3 extended_l2"),
        (&["-c", "-o", "compression_type=zstd"], "qcow2 v3"),
        (&["-o", "cluster_size=512"], "qcow2 v3"),
        (&["-o", "cluster_size=2M"], "qcow2 v3"),
        (&["-o", "lazy_refcounts=on,refcount_bits=64"], "qcow2 v3"),
    ];
    for (i, (opts, detail)) in cases.iter().enumerate() {
        let p = convert(d, &src, "qcow2", opts, &format!("c{i}.qcow2"));
        accepted(&p, DiskFormat::Qcow2, detail);
    }
    accepted(
        &create(d, "qcow2", &[], "empty.qcow2"),
        DiskFormat::Qcow2,
        "qcow2 v3",
    );
}

#[test]
fn vmdk_sparse_variants_are_accepted() {
    let tmp = temp_dir("formats-vmdk");
    let d = tmp.path();
    let src = source_raw(d);
    for sub in ["monolithicSparse", "streamOptimized"] {
        let o = format!("subformat={sub}");
        let detail = format!("vmdk {sub}");
        accepted(
            &convert(d, &src, "vmdk", &["-o", &o], &format!("c-{sub}.vmdk")),
            DiskFormat::Vmdk,
            &detail,
        );
        accepted(
            &create(d, "vmdk", &["-o", &o], &format!("e-{sub}.vmdk")),
            DiskFormat::Vmdk,
            &detail,
        );
    }
}

#[test]
fn vmdk_other_subformats_are_refused() {
    let tmp = temp_dir("formats-vmdk-other");
    let d = tmp.path();
    for sub in [
        "monolithicFlat",
        "twoGbMaxExtentSparse",
        "twoGbMaxExtentFlat",
    ] {
        let o = format!("subformat={sub}");
        let p = create(d, "vmdk", &["-o", &o], &format!("{sub}.vmdk"));
        refused(&p, "vmdk descriptor without data");
    }
    // The data extent of a split sparse disk, uploaded on its own.
    refused(
        &d.join("twoGbMaxExtentSparse-s001.vmdk"),
        "no embedded descriptor",
    );
    // A flat extent is byte for byte a raw disk, and is stored as one.
    let flat = check(&d.join("monolithicFlat-flat.vmdk")).unwrap();
    assert_eq!((flat.format, flat.virtual_size), (DiskFormat::Raw, VIRTUAL));
}

#[test]
fn vhdx_variants_are_accepted() {
    let tmp = temp_dir("formats-vhdx");
    let d = tmp.path();
    let src = source_raw(d);
    accepted(
        &convert(d, &src, "vhdx", &[], "dyn.vhdx"),
        DiskFormat::Vhdx,
        "vhdx dynamic",
    );
    accepted(
        &convert(d, &src, "vhdx", &["-o", "subformat=fixed"], "fixed.vhdx"),
        DiskFormat::Vhdx,
        "vhdx fixed",
    );
    for bs in ["1M", "32M", "256M"] {
        let o = format!("block_size={bs}");
        accepted(
            &convert(d, &src, "vhdx", &["-o", &o], &format!("bs{bs}.vhdx")),
            DiskFormat::Vhdx,
            "vhdx dynamic",
        );
    }
    accepted(
        &create(d, "vhdx", &[], "empty.vhdx"),
        DiskFormat::Vhdx,
        "vhdx dynamic",
    );
}

#[test]
fn vdi_variants_are_accepted() {
    let tmp = temp_dir("formats-vdi");
    let d = tmp.path();
    let src = source_raw(d);
    accepted(
        &convert(d, &src, "vdi", &[], "dyn.vdi"),
        DiskFormat::Vdi,
        "vdi dynamic",
    );
    accepted(
        &convert(d, &src, "vdi", &["-o", "static=on"], "static.vdi"),
        DiskFormat::Vdi,
        "vdi fixed",
    );
    accepted(
        &create(d, "vdi", &[], "empty.vdi"),
        DiskFormat::Vdi,
        "vdi dynamic",
    );
}

#[test]
fn foreign_formats_are_refused() {
    let tmp = temp_dir("formats-foreign");
    let d = tmp.path();
    let src = source_raw(d);
    refused(
        &convert(d, &src, "vpc", &[], "dyn.vhd"),
        "VHD (vpc) is not supported",
    );
    refused(
        &convert(d, &src, "vpc", &["-o", "subformat=fixed"], "fixed.vhd"),
        "VHD (vpc) is not supported",
    );
    refused(&convert(d, &src, "qed", &[], "a.qed"), "QED");
    refused(&convert(d, &src, "parallels", &[], "a.hdd"), "Parallels");
    refused(
        &create(
            d,
            "luks",
            &[
                "--object",
                "secret,id=sec0,data=abc",
                "-o",
                "key-secret=sec0",
            ],
            "a.luks",
        ),
        "LUKS",
    );
}

#[test]
fn qcow_version_1_is_refused() {
    let tmp = temp_dir("formats-qcow1");
    let d = tmp.path();
    let src = source_raw(d);
    refused(&convert(d, &src, "qcow", &[], "a.qcow"), "qcow (version 1)");
}

#[test]
fn qcow2_dependencies_are_refused() {
    let tmp = temp_dir("formats-qcow2-deps");
    let d = tmp.path();
    let base = create(d, "qcow2", &[], "base.qcow2");
    let top = d.join("top.qcow2");
    qemu_img(
        d,
        [
            "create",
            "-f",
            "qcow2",
            "-b",
            base.to_str().unwrap(),
            "-F",
            "qcow2",
            top.to_str().unwrap(),
        ],
    );
    refused(&top, "backing file");
    let enc = create(
        d,
        "qcow2",
        &[
            "--object",
            "secret,id=sec0,data=abc",
            "-o",
            "encrypt.format=luks,encrypt.key-secret=sec0",
        ],
        "enc.qcow2",
    );
    refused(&enc, "encrypted");
    let data = d.join("data.raw");
    let o = format!("data_file={}", data.display());
    refused(
        &create(d, "qcow2", &["-o", &o], "ext.qcow2"),
        "external data file",
    );
}

#[test]
fn oversized_images_are_refused_from_the_header() {
    let tmp = temp_dir("formats-big");
    let d = tmp.path();
    for (fmt, name) in [
        ("qcow2", "big.qcow2"),
        ("vmdk", "big.vmdk"),
        ("vhdx", "big.vhdx"),
        ("vdi", "big.vdi"),
    ] {
        let p = d.join(name);
        qemu_img(d, ["create", "-f", fmt, p.to_str().unwrap(), "200G"]);
        let bytes = fs::read(&p).unwrap();
        let r = inspect(&bytes, 100 << 30).unwrap_err();
        assert!(
            r.message()
                .contains("virtual size 200 GiB exceeds the limit of 100 GiB"),
            "{fmt}: {r}"
        );
        assert_eq!(verdict_chunked(&bytes, 7919, 100 << 30), Err(r.clone()));
        // qcow2, vmdk and vdi say so within the first 4 KiB; vhdx keeps its
        // size in the metadata region, read once the prefix is complete.
        if fmt != "vhdx" {
            let mut ins = Inspector::new(100 << 30);
            assert_eq!(ins.push(&bytes[..4096]), Err(r));
        }
    }
}

/// `path` cut to each of `cuts` bytes is refused as truncated, in any chunking.
fn cuts_are_refused(path: &Path, cuts: &[usize]) {
    let bytes = fs::read(path).unwrap();
    for &cut in cuts {
        assert!(cut < bytes.len(), "{}: cut {cut}", path.display());
        let part = &bytes[..cut];
        let whole = inspect(part, LIMIT);
        assert_eq!(
            verdict_chunked(part, 7919, LIMIT),
            whole,
            "{}",
            path.display()
        );
        assert_eq!(
            verdict_chunked(part, 1 << 20, LIMIT),
            whole,
            "{}",
            path.display()
        );
        match whole {
            Ok(i) => panic!(
                "{} cut to {cut} of {} bytes accepted as {i:?}",
                path.display(),
                bytes.len()
            ),
            Err(r) => assert!(
                r.message().contains("truncated"),
                "{} cut to {cut}: {r}",
                path.display()
            ),
        }
    }
}

/// The message of a cut that only the data the tables point at can tell from the whole file.
fn data_cut_message(path: &Path, format: &str, cut: usize) -> String {
    let bytes = fs::read(path).unwrap();
    let r = inspect(&bytes[..cut], LIMIT).unwrap_err();
    assert!(
        r.message().starts_with(&format!(
            "the {format} image is truncated: its tables point at data up to byte "
        )),
        "{}: {r}",
        path.display()
    );
    assert!(
        r.message().contains(&format!(
            "but only {cut} bytes arrived; upload the complete file"
        )),
        "{}: {r}",
        path.display()
    );
    r.message().to_owned()
}

#[test]
fn truncated_images_are_refused_at_every_cut() {
    let tmp = temp_dir("formats-cuts");
    let d = tmp.path();
    let src = source_raw(d);
    let len = |p: &Path| fs::metadata(p).unwrap().len() as usize;

    // qcow2: the last cluster is data, after every table.
    for (i, opts) in [
        &["-o", "compat=1.1"][..],
        &["-o", "compat=0.10"],
        &["-o", "extended_l2=on"],
        &["-o", "cluster_size=2M"],
    ]
    .iter()
    .enumerate()
    {
        let p = convert(d, &src, "qcow2", opts, &format!("q{i}.qcow2"));
        let n = len(&p);
        let cluster = if i == 3 { 2 << 20 } else { 64 << 10 };
        cuts_are_refused(
            &p,
            &[n - 1, n - cluster, n - cluster - 1, n / 2, 4096, 100_000],
        );
        let msg = data_cut_message(&p, "qcow2", n - 1);
        assert!(msg.contains(&format!("up to byte {n} ")), "{msg}");
        data_cut_message(&p, "qcow2", n - cluster);
    }
    // Compressed clusters end where their last sector does.
    let p = convert(d, &src, "qcow2", &["-c"], "z.qcow2");
    let n = len(&p);
    cuts_are_refused(&p, &[n / 2, n * 3 / 4, n - 1024]);

    // vdi: the last 1 MiB block.
    let p = convert(d, &src, "vdi", &[], "dyn.vdi");
    let n = len(&p);
    cuts_are_refused(&p, &[n - 1, n - (1 << 20), n / 2, 300]);

    // vhdx: blocks the BAT points at; a cut inside the metadata.
    for (i, bs) in ["1M", "32M"].iter().enumerate() {
        let o = format!("block_size={bs}");
        let p = convert(d, &src, "vhdx", &["-o", &o], &format!("b{i}.vhdx"));
        let n = len(&p);
        cuts_are_refused(&p, &[n - 1, n / 2, n * 3 / 4, (3 << 20) + 4096]);
        data_cut_message(&p, "vhdx", n - 1);
    }

    // vmdk: grains the grain tables point at.
    let p = convert(
        d,
        &src,
        "vmdk",
        &["-o", "subformat=monolithicSparse"],
        "s.vmdk",
    );
    let n = len(&p);
    cuts_are_refused(&p, &[n - 1, n - (64 << 10), n / 2, 20_000]);
    data_cut_message(&p, "vmdk", n - 1);
    let p = convert(
        d,
        &src,
        "vmdk",
        &["-o", "subformat=streamOptimized"],
        "so.vmdk",
    );
    let n = len(&p);
    // qemu-img leaves only zero sectors after the last compressed grain, so a cut there loses
    // nothing; a cut at the grain's marker, or inside it, does.
    let last = last_grain(&fs::read(&p).unwrap()) as usize;
    cuts_are_refused(&p, &[last, last + 12, n / 2, 20_000]);
    data_cut_message(&p, "vmdk", last);
}

/// The offset of the last grain (its marker) a vmdk's grain tables point at.
fn last_grain(b: &[u8]) -> u64 {
    let le32 = |at: u64| u32::from_le_bytes(b[at as usize..at as usize + 4].try_into().unwrap());
    let le64 = |at: u64| u64::from_le_bytes(b[at as usize..at as usize + 8].try_into().unwrap());
    let (capacity, granularity, gtes, gd) = (le64(12), le64(20), u64::from(le32(44)), le64(56));
    let tables = capacity.div_ceil(granularity * gtes);
    (0..tables)
        .map(|i| u64::from(le32(gd * 512 + i * 4)) * 512)
        .filter(|&gt| gt != 0)
        .flat_map(|gt| (0..gtes).map(move |j| gt + j * 4))
        .map(|at| u64::from(le32(at)) * 512)
        .max()
        .unwrap()
}

#[test]
fn qcow2_with_its_l1_table_moved_to_the_end_is_accepted() {
    let tmp = temp_dir("formats-resized");
    let d = tmp.path();
    let src = source_raw(d);
    let p = convert(d, &src, "qcow2", &[], "r.qcow2");
    // 600 GiB needs 1,200 L1 entries: qemu-img moves the grown L1 table to the end.
    qemu_img(d, ["resize", p.to_str().unwrap(), "600G"]);
    let got = check(&p).unwrap_or_else(|r| panic!("resized qcow2 refused: {r}"));
    assert_eq!(got.virtual_size, 600 << 30);
    half_is_refused(&p);
}
