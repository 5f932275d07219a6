//! A pipeline file turned into a validated plan: every stage's kind known,
//! parameters merged and checked, inputs wired, stages in topological order.

use super::params::Params;
use super::stage::{Registry, StageKind};
use crate::error::{input_err, Result};
use crate::toml_file::read_toml;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct StageDecl {
    pub name: String,
    pub kind: &'static StageKind,
    /// role -> upstream stage name
    pub inputs: BTreeMap<String, String>,
    pub params: Params,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    /// The pipeline file as parsed (e.g. for its `[executor.slurm]` settings).
    pub doc: toml::Table,
    /// Topological order: every stage after its inputs.
    pub stages: Vec<StageDecl>,
}

const TOP_LEVEL: &[&str] = &["name", "description", "stages", "presets", "executor"];

impl Plan {
    pub fn load(file: &Path, preset: Option<&str>, registry: Registry) -> Result<Plan> {
        Self::load_with(file, preset, &toml::Table::new(), registry)
    }

    /// `load`, then `everywhere`'s values set in every stage whose kind has
    /// that parameter (command-line overrides such as `--device`), before
    /// each kind checks its parameters.
    pub fn load_with(
        file: &Path,
        preset: Option<&str>,
        everywhere: &toml::Table,
        registry: Registry,
    ) -> Result<Plan> {
        let doc = read_toml(file)?;
        let f = file.display();
        for key in doc.keys() {
            if !TOP_LEVEL.contains(&key.as_str()) {
                return Err(input_err(
                    &f,
                    key,
                    format!("unknown top-level key (allowed: {})", TOP_LEVEL.join(", ")),
                ));
            }
        }
        let name = match doc.get("name") {
            Some(toml::Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return Err(input_err(&f, "name", "must be a non-empty string")),
            None => file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("pipeline")
                .to_string(),
        };
        let description = match doc.get("description") {
            Some(toml::Value::String(s)) => s.clone(),
            Some(_) => return Err(input_err(&f, "description", "must be a string")),
            None => String::new(),
        };
        let Some(toml::Value::Table(stage_tables)) = doc.get("stages") else {
            return Err(input_err(&f, "stages", "missing [stages.<name>] tables"));
        };
        if stage_tables.is_empty() {
            return Err(input_err(&f, "stages", "no stages declared"));
        }
        let presets = match doc.get("presets") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t.clone(),
            Some(_) => {
                return Err(input_err(
                    &f,
                    "presets",
                    "must be a table of [presets.<name>.<stage>]",
                ))
            }
        };
        let preset_table = match preset {
            None => None,
            Some(p) => match presets.get(p) {
                Some(toml::Value::Table(t)) => Some(t.clone()),
                _ => {
                    let have: Vec<&str> = presets.keys().map(|k| k.as_str()).collect();
                    return Err(input_err(
                        &f,
                        format!("presets.{p}"),
                        format!("no such preset (have: {})", have.join(", ")),
                    ));
                }
            },
        };
        if let Some(pt) = &preset_table {
            for stage in pt.keys() {
                if !stage_tables.contains_key(stage) {
                    return Err(input_err(
                        &f,
                        format!("presets.{}.{stage}", preset.unwrap_or("")),
                        "no such stage",
                    ));
                }
            }
        }

        let mut decls = BTreeMap::new();
        for (name, value) in stage_tables {
            let origin = format!("stages.{name}");
            let toml::Value::Table(t) = value else {
                return Err(input_err(&f, &origin, "must be a table"));
            };
            let kind_name = match t.get("kind") {
                Some(toml::Value::String(k)) => k.as_str(),
                _ => {
                    return Err(input_err(
                        &f,
                        format!("{origin}.kind"),
                        "missing stage kind",
                    ))
                }
            };
            let Some(kind) = registry.find(kind_name) else {
                let known = registry.names();
                return Err(input_err(
                    &f,
                    format!("{origin}.kind"),
                    format!(
                        "unknown stage kind '{kind_name}' (known: {})",
                        known.join(", ")
                    ),
                ));
            };
            let inputs = parse_inputs(t.get("inputs"), kind, &f.to_string(), &origin)?;
            let mut overrides = t.clone();
            overrides.remove("kind");
            overrides.remove("inputs");
            let defaults = kind.defaults()?;
            let mut table = defaults.clone();
            Params::merge(&defaults, &overrides, file, &origin, &mut table)?;
            if let Some(toml::Value::Table(po)) = preset_table.as_ref().and_then(|pt| pt.get(name))
            {
                let porigin = format!("presets.{}.{name}", preset.unwrap_or(""));
                Params::merge(&defaults, po, file, &porigin, &mut table)?;
            }
            for (k, v) in everywhere {
                if defaults.contains_key(k) {
                    table.insert(k.clone(), v.clone());
                }
            }
            let mut params = Params {
                table,
                file: file.to_path_buf(),
                stage: name.clone(),
            };
            (kind.resolve)(&mut params)?;
            decls.insert(
                name.clone(),
                StageDecl {
                    name: name.clone(),
                    kind,
                    inputs,
                    params,
                },
            );
        }
        let summarised: Vec<String> = decls
            .values()
            .filter(|d| !d.kind.all_upstream)
            .map(|d| d.name.clone())
            .collect();
        for d in decls.values_mut().filter(|d| d.kind.all_upstream) {
            d.inputs = summarised.iter().map(|n| (n.clone(), n.clone())).collect();
        }
        for d in decls.values() {
            for (role, up) in &d.inputs {
                if !decls.contains_key(up) {
                    return Err(input_err(
                        &f,
                        format!("stages.{}.inputs.{role}", d.name),
                        format!("depends on missing stage '{up}'"),
                    ));
                }
            }
        }
        let order = topo_order(&decls, &f.to_string())?;
        let stages = order
            .into_iter()
            .map(|n| decls.remove(&n).expect("ordered names exist"))
            .collect();
        Ok(Plan {
            name,
            description,
            file: file.to_path_buf(),
            doc: doc.clone(),
            stages,
        })
    }

    pub fn stage(&self, name: &str) -> Option<&StageDecl> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// `names` plus everything upstream of them.
    pub fn with_upstream(&self, names: &BTreeSet<String>) -> BTreeSet<String> {
        let mut out = names.clone();
        for s in self.stages.iter().rev() {
            if out.contains(&s.name) {
                out.extend(s.inputs.values().cloned());
            }
        }
        out
    }
}

fn parse_inputs(
    v: Option<&toml::Value>,
    kind: &StageKind,
    f: &str,
    origin: &str,
) -> Result<BTreeMap<String, String>> {
    let mut inputs = BTreeMap::new();
    match v {
        None => {}
        Some(toml::Value::Table(t)) => {
            for (role, up) in t {
                if !kind.inputs.contains(&role.as_str())
                    && !kind.optional_inputs.contains(&role.as_str())
                {
                    let mut allowed: Vec<&str> = kind.inputs.to_vec();
                    allowed.extend(kind.optional_inputs);
                    return Err(input_err(
                        f,
                        format!("{origin}.inputs.{role}"),
                        format!(
                            "stage kind '{}' takes no input '{role}' (takes: {})",
                            kind.kind,
                            allowed.join(", ")
                        ),
                    ));
                }
                let toml::Value::String(up) = up else {
                    return Err(input_err(
                        f,
                        format!("{origin}.inputs.{role}"),
                        "must be a stage name",
                    ));
                };
                inputs.insert(role.clone(), up.clone());
            }
        }
        Some(_) => {
            return Err(input_err(
                f,
                format!("{origin}.inputs"),
                "must be a table { role = \"stage\" }",
            ))
        }
    }
    for role in kind.inputs {
        if !inputs.contains_key(*role) {
            return Err(input_err(
                f,
                format!("{origin}.inputs.{role}"),
                format!("missing required input '{role}'"),
            ));
        }
    }
    Ok(inputs)
}

/// Depth-first topological sort; a back edge is a cycle, reported as a path.
fn topo_order(decls: &BTreeMap<String, StageDecl>, f: &str) -> Result<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        n: &str,
        decls: &BTreeMap<String, StageDecl>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
        out: &mut Vec<String>,
        f: &str,
    ) -> Result<()> {
        match marks[n] {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let start = path.iter().position(|p| p == n).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].to_vec();
                cycle.push(n.to_string());
                return Err(input_err(
                    f,
                    format!("stages.{n}.inputs"),
                    format!("dependency cycle: {}", cycle.join(" -> ")),
                ));
            }
            Mark::New => {}
        }
        marks.insert(n.to_string(), Mark::Active);
        path.push(n.to_string());
        for up in decls[n].inputs.values() {
            visit(up, decls, marks, path, out, f)?;
        }
        path.pop();
        marks.insert(n.to_string(), Mark::Done);
        out.push(n.to_string());
        Ok(())
    }
    let mut marks: BTreeMap<String, Mark> = decls.keys().map(|k| (k.clone(), Mark::New)).collect();
    let mut out = Vec::new();
    for n in decls.keys() {
        visit(n, decls, &mut marks, &mut Vec::new(), &mut out, f)?;
    }
    Ok(out)
}
