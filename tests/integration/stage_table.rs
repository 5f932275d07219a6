//! `kvlab stages` and the README's stage table say the same thing: the same
//! kinds, inputs and outputs, so neither can drift from the other.

use crate::sandbox::{stderr, stdout, Sandbox};
use std::collections::BTreeMap;

/// (required inputs, optional inputs, all_upstream, outputs) per kind.
type Row = (Vec<String>, Vec<String>, bool, String);

/// Rows of the table under "## Stages and their parameters".
fn readme_rows() -> BTreeMap<String, Row> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Stages and their parameters")
        .nth(1)
        .expect("README has the stage section");
    let mut rows = BTreeMap::new();
    for line in section
        .lines()
        .skip_while(|l| !l.starts_with("| kind |"))
        .skip(2)
    {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 3, "{line}");
        let kind = cells[0].trim_matches('`').to_string();
        let (mut req, mut opt, mut all) = (vec![], vec![], false);
        for item in top_level_items(cells[1]) {
            if item == "–" {
                continue;
            }
            if item == "every other stage" {
                all = true;
                continue;
            }
            let name = item
                .split('`')
                .nth(1)
                .unwrap_or_else(|| panic!("{kind}: input {item:?} is not `name`"));
            if item.contains("(optional)") {
                opt.push(name.to_string());
            } else {
                req.push(name.to_string());
            }
        }
        let dup = rows.insert(kind.clone(), (req, opt, all, cells[2].to_string()));
        assert!(dup.is_none(), "README lists {kind} twice");
    }
    rows
}

/// Split on ", " outside parentheses.
fn top_level_items(cell: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (vec![], String::new(), 0);
    for c in cell.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            out.push(cur.trim().to_string());
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    out.push(cur.trim().to_string());
    out
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn readme_stage_table_matches_kvlab_stages() {
    let sb = Sandbox::new("stages");
    let out = sb.kvlab(&["stages", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let cli: BTreeMap<String, Row> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kind"].as_str().unwrap().to_string(),
                (
                    strings(&k["inputs"]),
                    strings(&k["optional_inputs"]),
                    k["all_upstream"].as_bool().unwrap(),
                    k["outputs"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    let readme = readme_rows();
    assert_eq!(
        readme.keys().collect::<Vec<_>>(),
        cli.keys().collect::<Vec<_>>(),
        "the README's stage kinds differ from `kvlab stages`"
    );
    for (kind, row) in &cli {
        assert_eq!(
            &readme[kind], row,
            "README row of {kind} differs from `kvlab stages`"
        );
    }
}

#[test]
fn stages_lists_every_kind_and_one_kind_in_full() {
    let sb = Sandbox::new("stages-text");
    let all = sb.kvlab(&["stages"]);
    assert!(all.status.success(), "{}", stderr(&all));
    let text = stdout(&all);
    for kind in [
        "fetch",
        "chunk",
        "tasks",
        "analyze",
        "plot",
        "generate",
        "perplexity",
        "report",
    ] {
        assert!(
            text.contains(&format!("\n{kind} — ")) || text.starts_with(&format!("{kind} — ")),
            "{kind}: {text}"
        );
    }
    assert!(text.contains("    chunk_tokens = 512"), "{text}");
    let one = sb.kvlab(&["stages", "chunk"]);
    assert!(one.status.success());
    let one = stdout(&one);
    assert!(
        one.starts_with("chunk — ") && one.contains("  version: 1\n"),
        "{one}"
    );
    assert!(one.contains("  inputs:  model, docs\n"), "{one}");
    assert!(!one.contains("analyze"), "{one}");

    let bad = sb.kvlab(&["stages", "nosuch"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = stderr(&bad);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("unknown stage kind 'nosuch'"), "{err}");
}
