//! Test helpers: a scratch directory and structural checks of PNG and SVG
//! files (no image decoder in the dependency tree we may use directly).

use std::path::{Path, PathBuf};

/// A fresh, empty directory under the system temp dir.
pub fn tempdir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "kvlab-test-{tag}-{}-{nanos}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The file is a well-formed PNG of the given size: signature, IHDR with
/// width and height, every chunk's CRC, at least one IDAT, ends in IEND,
/// and is bigger than a blank image would compress to.
pub fn assert_png(path: &Path, width: u32, height: u32) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{}: not a PNG signature",
        path.display()
    );
    assert_eq!(&b[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    assert_eq!(
        (be(16), be(20)),
        (width, height),
        "{}: IHDR size",
        path.display()
    );
    let (mut at, mut idat, mut last) = (8usize, 0usize, [0u8; 4]);
    while at + 12 <= b.len() {
        let len = be(at) as usize;
        let body = &b[at + 4..at + 8 + len];
        assert_eq!(
            crc32(body),
            be(at + 8 + len),
            "{}: bad CRC in chunk {:?}",
            path.display(),
            &body[..4]
        );
        last.copy_from_slice(&body[..4]);
        if &last == b"IDAT" {
            idat += len;
        }
        at += 12 + len;
    }
    assert_eq!(at, b.len(), "{}: trailing bytes", path.display());
    assert_eq!(&last, b"IEND", "{}: no IEND", path.display());
    assert!(
        idat > 4000,
        "{}: only {idat} bytes of image data — blank?",
        path.display()
    );
}

/// The SVG parses as text, is an <svg> document and contains each needle.
pub fn assert_svg_has(path: &Path, needles: &[&str]) {
    let s = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        s.contains("<svg") && s.trim_end().ends_with("</svg>"),
        "{}: not an SVG",
        path.display()
    );
    for n in needles {
        assert!(s.contains(n), "{}: missing text {n:?}", path.display());
    }
}

#[test]
fn crc32_known_value() {
    assert_eq!(crc32(b"IEND"), 0xae42_6082);
}

/// Remove a test directory unless KVLAB_KEEP_TEST_FILES is set (to look at
/// the figures by hand).
pub fn cleanup(dir: &Path) {
    if std::env::var_os("KVLAB_KEEP_TEST_FILES").is_some() {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}
