//! Layering of `src/`: no two files import each other, and the model holds
//! no SIMD code (that lives in `src/cpu/`). Imports are read from the source
//! text, not the compiler, so the check is cheap and names the lines.
//!
//! What counts as file A importing file B: a `use` statement or an inline
//! path (`crate::x::f()`, `super::y::T`, `self::z`, `kvlab::w`, or a bare
//! path starting with a child module of a `mod.rs`) in A that resolves to
//! B — the deepest existing module file along the path, so
//! `use crate::a::b::Item` is `src/a/b.rs` (or `src/a/b/mod.rs`), and a path
//! into an inline `mod` is the file holding it. Comments and string literals
//! are ignored, as are `mod x;` declarations and, in a module root (`lib.rs`,
//! `main.rs`, `mod.rs`), `pub use` re-exports of its own descendants: a
//! façade is not a dependency of the parent on its children.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Mutual imports another engineer is removing while restructuring
/// `src/dag`, `src/stages`, `src/cli` and `src/model_source.rs`; allowed
/// until then, and only these. Delete an entry once its cycle is gone (the
/// test fails on an entry that no longer matches a cycle).
const KNOWN_CYCLES_BEING_REMOVED: &[(&str, &str)] = &[];

/// Text markers of SIMD code, which belongs in `src/cpu/`, not `src/model/`.
const SIMD_MARKERS: &[&str] = &[
    "std::arch",
    "core::arch",
    "target_feature",
    "is_x86_feature_detected",
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source with comments and string/char literals blanked out (newlines
/// kept, so byte offsets still give line numbers).
fn strip(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let prev_ident = i > 0 && is_ident(b[i - 1]);
        if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if !prev_ident && (c == 'r' || (c == 'b' && b.get(i + 1) == Some(&'r'))) && {
            let j = i + if c == 'b' { 2 } else { 1 };
            let h = b[j.min(b.len())..]
                .iter()
                .take_while(|&&x| x == '#')
                .count();
            b.get(j + h) == Some(&'"')
        } {
            // Raw string: r#"..."#, br"...".
            let j = i + if c == 'b' { 2 } else { 1 };
            let hashes = b[j..].iter().take_while(|&&x| x == '#').count();
            let end: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            let body_start = j + hashes + 1;
            let rest: String = b[body_start..].iter().collect();
            let len = rest.find(&end).map_or(rest.chars().count(), |at| {
                rest[..at].chars().count() + end.len()
            });
            for &x in &b[i..(body_start + len).min(b.len())] {
                blank(&mut out, x);
            }
            i = body_start + len;
        } else if c == '"' {
            blank(&mut out, c);
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            if i < b.len() {
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if c == '\'' && (b.get(i + 1) == Some(&'\\') || b.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\u{..}'); a lifetime ('a) has no closing quote.
            blank(&mut out, c);
            i += 1;
            if b.get(i) == Some(&'\\') {
                // The escape and the escaped char ('\'' included).
                for _ in 0..2 {
                    if i < b.len() {
                        blank(&mut out, b[i]);
                        i += 1;
                    }
                }
            }
            while i < b.len() && b[i] != '\'' {
                blank(&mut out, b[i]);
                i += 1;
            }
            if i < b.len() {
                blank(&mut out, b[i]);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Punct(char),
}

/// Tokens with their line numbers.
fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = text.chars().collect();
    let (mut out, mut line, mut i) = (Vec::new(), 1, 0);
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let s: String = b[i..]
                .iter()
                .take_while(|x| x.is_alphanumeric() || **x == '_')
                .collect();
            i += s.chars().count();
            out.push((Tok::Ident(s), line));
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push((Tok::Sep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// One path found in a file: its segments, the module it was written in
/// (inline `mod`s included), its line, and whether it is a `pub use`.
struct Ref {
    segs: Vec<String>,
    module: Vec<String>,
    line: usize,
    reexport: bool,
}

/// Expands a use tree starting at `toks[*i]` into full paths.
fn use_tree(toks: &[(Tok, usize)], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut segs = prefix;
    while *i < toks.len() {
        match &toks[*i].0 {
            Tok::Sep => *i += 1,
            Tok::Punct('{') => {
                *i += 1;
                loop {
                    match toks.get(*i).map(|t| &t.0) {
                        Some(Tok::Punct('}')) | None => break,
                        Some(Tok::Punct(',')) => *i += 1,
                        _ => use_tree(toks, i, segs.clone(), out),
                    }
                }
                *i += 1;
                return;
            }
            Tok::Punct('*') => {
                *i += 1;
                out.push(segs);
                return;
            }
            Tok::Ident(s) => {
                segs.push(s.clone());
                *i += 1;
                if toks.get(*i).map(|t| &t.0) == Some(&Tok::Ident("as".into())) {
                    *i += 2;
                }
                if toks.get(*i).map(|t| &t.0) != Some(&Tok::Sep) {
                    out.push(segs);
                    return;
                }
            }
            _ => {
                out.push(segs);
                return;
            }
        }
    }
}

/// Every `use` path and inline path of a file whose module path is `base`.
fn refs(src: &str, base: &[String]) -> Vec<Ref> {
    let toks = tokens(&strip(src));
    let ident = |i: usize| match toks.get(i) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is = |i: usize, t: Tok| toks.get(i).map(|x| &x.0) == Some(&t);
    // Open braces: Some(name) for an inline `mod name {`.
    let mut scopes: Vec<Option<String>> = Vec::new();
    let module = |scopes: &[Option<String>]| {
        let mut m = base.to_vec();
        m.extend(scopes.iter().flatten().cloned());
        m
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let line = toks[i].1;
        match &toks[i].0 {
            Tok::Punct('{') => {
                let m = (i >= 2 && ident(i - 2) == Some("mod")).then(|| ident(i - 1));
                scopes.push(m.flatten().map(str::to_string));
                i += 1;
            }
            Tok::Punct('}') => {
                scopes.pop();
                i += 1;
            }
            Tok::Ident(s) if s == "use" => {
                // `pub use` / `pub(crate) use`: a re-export.
                let reexport = (i >= 1 && ident(i - 1) == Some("pub"))
                    || (i >= 2 && is(i - 1, Tok::Punct(')')) && {
                        let open = (0..i).rev().find(|&j| is(j, Tok::Punct('(')));
                        open.is_some_and(|j| j >= 1 && ident(j - 1) == Some("pub"))
                    });
                i += 1;
                if is(i, Tok::Sep) {
                    i += 1; // `use ::std::...`: an external crate
                    continue;
                }
                let mut paths = Vec::new();
                use_tree(&toks, &mut i, Vec::new(), &mut paths);
                let m = module(&scopes);
                for segs in paths {
                    out.push(Ref {
                        segs,
                        module: m.clone(),
                        line,
                        reexport,
                    });
                }
            }
            Tok::Ident(_) if is(i + 1, Tok::Sep) => {
                // An inline path, read from its first segment.
                let after_sep = i >= 1 && is(i - 1, Tok::Sep);
                let macro_var = i >= 1 && is(i - 1, Tok::Punct('$'));
                let mut segs = Vec::new();
                while let Some(s) = ident(i) {
                    segs.push(s.to_string());
                    i += 1;
                    if !(is(i, Tok::Sep) && ident(i + 1).is_some()) {
                        break;
                    }
                    i += 1;
                }
                if !after_sep && !macro_var {
                    out.push(Ref {
                        segs,
                        module: module(&scopes),
                        line,
                        reexport: false,
                    });
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// The source tree: module paths of both crates (`lib.rs` and `main.rs`
/// roots) and their files.
struct Tree {
    /// Module path -> file, for every module with a file of its own.
    files: BTreeMap<Vec<String>, PathBuf>,
    lib: PathBuf,
    main: PathBuf,
    /// Top-level modules `main.rs` declares: their files are the binary's.
    bin_mods: BTreeSet<String>,
}

fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut segs: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        segs.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        segs.pop();
    }
    segs
}

impl Tree {
    fn new(src: &Path, files: &[PathBuf]) -> Tree {
        let (lib, main) = (src.join("lib.rs"), src.join("main.rs"));
        let mut map = BTreeMap::new();
        for f in files {
            if *f != lib && *f != main {
                map.insert(module_path(src, f), f.clone());
            }
        }
        let text = std::fs::read_to_string(&main).unwrap_or_default();
        let toks = tokens(&strip(&text));
        let bin_mods = toks
            .windows(3)
            .filter_map(|w| match w {
                [(Tok::Ident(m), _), (Tok::Ident(n), _), (Tok::Punct(';'), _)] if m == "mod" => {
                    Some(n.clone())
                }
                _ => None,
            })
            .collect();
        Tree {
            files: map,
            lib,
            main,
            bin_mods,
        }
    }

    /// The file of the deepest module along `m` that has a file; the crate
    /// root for `[]`.
    fn file_of(&self, m: &[String], root: &Path) -> PathBuf {
        (1..=m.len())
            .rev()
            .find_map(|n| self.files.get(&m[..n]).cloned())
            .unwrap_or_else(|| root.to_path_buf())
    }

    /// The file a path written in module `module` of `file` leads to; `None`
    /// for paths outside the crate (std, dependencies, locals).
    fn resolve(&self, file: &Path, r: &Ref) -> Option<PathBuf> {
        let in_bin =
            *file == self.main || r.module.first().is_some_and(|m| self.bin_mods.contains(m));
        let own_root = if in_bin { &self.main } else { &self.lib };
        let segs = &r.segs;
        let (mut at, root, rest) = match segs[0].as_str() {
            "crate" => (Vec::new(), own_root, &segs[1..]),
            "kvlab" => (Vec::new(), &self.lib, &segs[1..]),
            "self" | "super" => {
                let mut m = r.module.clone();
                let n = segs.iter().take_while(|s| *s == "super").count();
                for _ in 0..n {
                    m.pop()?;
                }
                let skip = if n == 0 { 1 } else { n };
                (m, own_root, &segs[skip..])
            }
            first => {
                // A bare path: only a child module of where it is written.
                let mut child = r.module.clone();
                child.push(first.to_string());
                if !self.files.contains_key(&child) {
                    return None;
                }
                (r.module.clone(), own_root, &segs[..])
            }
        };
        for s in rest.iter().filter(|s| *s != "self") {
            at.push(s.clone());
            if !self.files.contains_key(&at) {
                at.pop();
                break;
            }
        }
        Some(self.file_of(&at, root))
    }
}

/// For each file, the files it imports, with the line and path of the first
/// reference.
fn imports(src: &Path) -> BTreeMap<PathBuf, BTreeMap<PathBuf, (usize, String)>> {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    let tree = Tree::new(src, &files);
    let mut out = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let base = module_path(src, f);
        let is_root = *f == tree.lib || *f == tree.main || f.ends_with("mod.rs");
        let mut deps: BTreeMap<PathBuf, (usize, String)> = BTreeMap::new();
        for r in refs(&text, &base) {
            let Some(to) = tree.resolve(f, &r) else {
                continue;
            };
            let below_me = |to: &Path| {
                let m = module_path(src, to);
                m.len() > base.len() && m.starts_with(&base)
            };
            if to == *f || (is_root && r.reexport && below_me(&to)) {
                continue;
            }
            deps.entry(to).or_insert((r.line, r.segs.join("::")));
        }
        out.insert(f.clone(), deps);
    }
    out
}

/// `p` relative to the directory holding `src`.
fn rel(src: &Path, p: &Path) -> String {
    let base = src.parent().unwrap();
    p.strip_prefix(base).unwrap_or(p).display().to_string()
}

/// Every pair of files that import each other, as `(a, b)` with `a < b`
/// (paths relative to the crate), and a line describing it.
fn mutual_pairs(src: &Path) -> Vec<((String, String), String)> {
    let deps = imports(src);
    let mut pairs = Vec::new();
    for (a, ad) in &deps {
        for (b, (line_a, path_a)) in ad {
            if a >= b {
                continue;
            }
            if let Some((line_b, path_b)) = deps.get(b).and_then(|bd| bd.get(a)) {
                let (ra, rb) = (rel(src, a), rel(src, b));
                let why = format!("{ra}:{line_a} `{path_a}` <-> {rb}:{line_b} `{path_b}`");
                pairs.push(((ra, rb), why));
            }
        }
    }
    pairs
}

#[test]
fn no_two_files_in_src_import_each_other() {
    let pairs = mutual_pairs(&src_dir());
    let known = |a: &str, b: &str| {
        KNOWN_CYCLES_BEING_REMOVED
            .iter()
            .any(|&(x, y)| (x, y) == (a, b) || (y, x) == (a, b))
    };
    let new: Vec<&String> = pairs
        .iter()
        .filter(|((a, b), _)| !known(a, b))
        .map(|(_, why)| why)
        .collect();
    let gone: Vec<_> = KNOWN_CYCLES_BEING_REMOVED
        .iter()
        .filter(|&&(x, y)| {
            !pairs
                .iter()
                .any(|((a, b), _)| (x, y) == (a, b) || (y, x) == (a, b))
        })
        .collect();
    assert!(
        new.is_empty(),
        "files that import each other (split the shared piece into its own file):\n  {}",
        new.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    assert!(
        gone.is_empty(),
        "no longer cycles, delete from KNOWN_CYCLES_BEING_REMOVED: {gone:?}"
    );
}

#[test]
fn model_holds_no_simd_code() {
    let mut files = Vec::new();
    rs_files(&src_dir().join("model"), &mut files);
    assert!(!files.is_empty(), "no files under src/model");
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            for m in SIMD_MARKERS.iter().filter(|m| line.contains(*m)) {
                found.push(format!("{}:{} `{m}`", rel(&src_dir(), f), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SIMD code belongs in src/cpu, not src/model:\n  {}",
        found.join("\n  ")
    );
}

/// The scanner itself, on a small tree: a real cycle is caught (through a
/// `use` tree and through an inline path), a façade and a test module's
/// `super::*` are not.
#[test]
fn the_scanner_catches_a_cycle_and_only_a_cycle() {
    let dir = std::env::temp_dir().join(format!("kvlab-layering-{}", std::process::id()));
    let w = |p: &str, s: &str| {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    };
    w("lib.rs", "pub mod a;\npub mod b;\npub use a::A;\n");
    w(
        "a/mod.rs",
        "pub mod x;\npub mod y;\npub use x::X;\npub struct A;\n",
    );
    // x <-> y is the one cycle; x -> b only in a comment, y -> b in a string.
    w(
        "a/x.rs",
        "use super::{y::{self, Y}, A};\n/// crate::b::B\npub struct X;\n\
         #[cfg(test)] mod tests { use super::*; fn c() -> [char; 2] { ['{', '\\''] } }\n",
    );
    w(
        "a/y.rs",
        "pub struct Y;\nfn f<'a>() { let _ = r#\"crate::b\"#; crate::a::x::X; }\n",
    );
    w("b.rs", "use crate::a::{x::X, y::Y};\npub struct B;\n");
    let pairs = mutual_pairs(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let got: Vec<(String, String)> = pairs
        .into_iter()
        .map(|((a, b), _)| (a.replace('\\', "/"), b.replace('\\', "/")))
        .collect();
    let name = |s: &str| format!("{}/{s}", dir.file_name().unwrap().to_string_lossy());
    assert_eq!(got, vec![(name("a/x.rs"), name("a/y.rs"))]);
}
