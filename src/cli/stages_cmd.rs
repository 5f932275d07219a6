//! `kvlab stages [KIND]`: every stage kind with its inputs (from the
//! registry), outputs and parameters (from the comments of stages/<kind>.toml).

use kvlab::dag::stage_docs::{self, KindDoc};
use kvlab::error::input_err;
use kvlab::stages::{self, StageKind};

/// One kind as `kvlab stages --json` prints it.
#[derive(Debug, serde::Serialize)]
struct KindInfo {
    kind: &'static str,
    version: u32,
    inputs: &'static [&'static str],
    optional_inputs: &'static [&'static str],
    /// Takes every other stage of the pipeline as an input.
    all_upstream: bool,
    unhashed: &'static [&'static str],
    #[serde(flatten)]
    doc: KindDoc,
}

fn info(k: &'static StageKind) -> kvlab::Result<KindInfo> {
    let file = format!("stages/{}.toml", k.kind);
    Ok(KindInfo {
        kind: k.kind,
        version: k.version,
        inputs: k.inputs,
        optional_inputs: k.optional_inputs,
        all_upstream: k.all_upstream,
        unhashed: k.unhashed,
        doc: stage_docs::parse(k.kind, k.defaults, &file)?,
    })
}

/// `chunks, tasks (optional)`; `every other stage` for a report-like kind.
fn inputs_line(i: &KindInfo) -> String {
    let mut v: Vec<String> = i.inputs.iter().map(|s| s.to_string()).collect();
    v.extend(i.optional_inputs.iter().map(|s| format!("{s} (optional)")));
    if i.all_upstream {
        v.push("every other stage".into());
    }
    if v.is_empty() {
        "–".into()
    } else {
        v.join(", ")
    }
}

pub fn stages(kind: Option<&str>, json: bool) -> anyhow::Result<i32> {
    let kinds: Vec<&'static StageKind> = match kind {
        None => stages::registry().kinds().iter().collect(),
        Some(k) => match stages::find(k) {
            Some(found) => vec![found],
            None => {
                let known: Vec<&str> = stages::registry().kinds().iter().map(|k| k.kind).collect();
                return Err(input_err(
                    "kvlab stages",
                    "KIND",
                    format!("unknown stage kind '{k}' (known: {})", known.join(", ")),
                )
                .into());
            }
        },
    };
    let infos = kinds
        .into_iter()
        .map(info)
        .collect::<kvlab::Result<Vec<_>>>()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&infos)?);
        return Ok(0);
    }
    let full = kind.is_some();
    for (n, i) in infos.iter().enumerate() {
        if n > 0 {
            println!();
        }
        print!("{}", describe(i, full));
    }
    Ok(0)
}

/// The text block of one kind; `full` adds every doc line, the version and
/// the unhashed parameters.
fn describe(i: &KindInfo, full: bool) -> String {
    let mut s = format!("{} — {}\n", i.kind, i.doc.summary);
    s += &format!("  inputs:  {}\n", inputs_line(i));
    s += &format!("  outputs: {}\n", i.doc.outputs.replace('`', ""));
    if full {
        s += &format!("  version: {}\n", i.version);
        s += &format!("  defaults: stages/{}.toml\n", i.kind);
        if !i.unhashed.is_empty() {
            s += &format!("  not in the key: {}\n", i.unhashed.join(", "));
        }
    }
    s += "  params:\n";
    let width = i
        .doc
        .params
        .iter()
        .map(|p| p.name.len() + 3 + p.default.len())
        .filter(|w| *w <= 40)
        .max()
        .unwrap_or(0);
    for p in &i.doc.params {
        let head = format!("{} = {}", p.name, p.default);
        if full {
            s += &format!("    {head}\n");
            for d in &p.doc {
                s += &format!("        {d}\n");
            }
        } else {
            let doc = p.doc.first().map(String::as_str).unwrap_or("");
            s += &format!("    {head:<width$}  {doc}\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_documents_its_outputs_and_every_parameter() {
        for k in stages::registry().kinds() {
            let i = info(k).unwrap_or_else(|e| panic!("{e}"));
            let defaults = k.defaults().unwrap();
            let names: Vec<&str> = i.doc.params.iter().map(|p| p.name.as_str()).collect();
            let keys: Vec<&str> = defaults.keys().map(|k| k.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(
                sorted, keys,
                "{}: documented params differ from the defaults",
                k.kind
            );
            assert!(i
                .doc
                .params
                .iter()
                .all(|p| !p.doc.concat().trim().is_empty()));
        }
    }

    #[test]
    fn describe_lists_inputs_outputs_and_params() {
        let i = info(stages::find("analyze").unwrap()).unwrap();
        let short = describe(&i, false);
        assert!(short.starts_with("analyze — token statistics"), "{short}");
        assert!(
            short.contains("  inputs:  chunks, tasks (optional)\n"),
            "{short}"
        );
        assert!(
            short.contains("  outputs: token_stats.parquet, doc_stats.parquet"),
            "{short}"
        );
        assert!(
            short.contains("    dataset = \"paul-graham-essays\"  Dataset name"),
            "{short}"
        );
        assert!(!short.contains("version"));
        let fetch = describe(&info(stages::find("fetch").unwrap()).unwrap(), true);
        assert!(
            fetch.contains("  inputs:  –\n") && fetch.contains("  not in the key: file\n"),
            "{fetch}"
        );
        assert!(
            fetch.contains("    gunzip = false\n        Decompress a .gz member"),
            "{fetch}"
        );
    }
}
