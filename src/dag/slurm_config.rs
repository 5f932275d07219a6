//! `[executor.slurm]`: cluster settings, outside every key. Defaults come
//! from `stages/executor-slurm.toml`; a user config file, the pipeline file
//! and `--slurm KEY=VALUE` override them in that order, each checked against
//! the defaults' names and types (an unknown key is an input error).

use super::params::Params;
use crate::error::{input_err, Result};
use crate::toml_file::{parse_toml, read_toml};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULTS: &str = include_str!("../../stages/executor-slurm.toml");

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    pub partition: String,
    pub account: String,
    pub time: String,
    pub cpus_per_task: i64,
    pub mem: String,
    pub gres: String,
    pub max_concurrent: i64,
    pub extra_args: Vec<String>,
}

/// `$KVLAB_CONFIG`, else `~/.config/kvlab/config.toml`, if it exists.
pub fn user_config_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KVLAB_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home).join(".config/kvlab/config.toml");
    p.exists().then_some(p)
}

/// The `[executor.slurm]` table of a TOML document, if any.
fn slurm_table(doc: &toml::Table, file: &Path) -> Result<Option<toml::Table>> {
    let Some(exec) = doc.get("executor") else {
        return Ok(None);
    };
    let toml::Value::Table(exec) = exec else {
        return Err(input_err(file.display(), "executor", "must be a table"));
    };
    for k in exec.keys() {
        if k != "slurm" {
            return Err(input_err(
                file.display(),
                format!("executor.{k}"),
                "unknown executor (known: slurm)",
            ));
        }
    }
    match exec.get("slurm") {
        None => Ok(None),
        Some(toml::Value::Table(t)) => Ok(Some(t.clone())),
        Some(_) => Err(input_err(
            file.display(),
            "executor.slurm",
            "must be a table",
        )),
    }
}

/// Defaults <- user config <- pipeline's `[executor.slurm]` <- `--slurm K=V`.
pub fn resolve(pipeline_doc: Option<(&toml::Table, &Path)>, cli: &[String]) -> Result<SlurmConfig> {
    let defaults_file = Path::new("stages/executor-slurm.toml");
    let defaults = parse_toml(DEFAULTS, defaults_file)?;
    let mut table = defaults.clone();
    if let Some(file) = user_config_file() {
        let doc = read_toml(&file)?;
        if let Some(t) = slurm_table(&doc, &file)? {
            Params::merge(&defaults, &t, &file, "executor.slurm", &mut table)?;
        }
    }
    if let Some((doc, file)) = pipeline_doc {
        if let Some(t) = slurm_table(doc, file)? {
            Params::merge(&defaults, &t, file, "executor.slurm", &mut table)?;
        }
    }
    let cli_file = Path::new("command line");
    for kv in cli {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(input_err(
                "command line",
                "--slurm",
                format!("'{kv}' is not KEY=VALUE"),
            ));
        };
        let value = parse_value(v, defaults.get(k));
        let mut one = toml::Table::new();
        one.insert(k.to_string(), value);
        Params::merge(&defaults, &one, cli_file, "--slurm", &mut table)?;
    }
    let cfg = SlurmConfig::deserialize(toml::Value::Table(table))
        .map_err(|e| input_err("executor.slurm", "", e.message().replace('\n', " ")))?;
    if cfg.cpus_per_task < 1 {
        return Err(input_err("executor.slurm", "cpus_per_task", "must be >= 1"));
    }
    if cfg.max_concurrent < 0 {
        return Err(input_err(
            "executor.slurm",
            "max_concurrent",
            "must be >= 0",
        ));
    }
    Ok(cfg)
}

/// A command-line value typed like its default (a list is comma-separated).
fn parse_value(v: &str, default: Option<&toml::Value>) -> toml::Value {
    match default {
        Some(toml::Value::Integer(_)) => v
            .parse::<i64>()
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(v.into())),
        Some(toml::Value::Array(_)) => toml::Value::Array(
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.into()))
                .collect(),
        ),
        _ => toml::Value::String(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_in_order_and_unknown_keys_are_refused() {
        std::env::set_var("KVLAB_CONFIG", "/nonexistent/kvlab-config.toml");
        let doc: toml::Table = "[executor.slurm]\npartition = \"gpu\"\nmax_concurrent = 4\n"
            .parse()
            .unwrap();
        let f = Path::new("p.toml");
        let c = resolve(Some((&doc, f)), &["max_concurrent=2".into()]);
        // The user config file named by KVLAB_CONFIG does not exist: an error naming it.
        assert!(c.is_err());
        std::env::remove_var("KVLAB_CONFIG");
        let c = resolve(
            Some((&doc, f)),
            &["max_concurrent=2".into(), "extra_args=--qos=x".into()],
        )
        .unwrap();
        assert_eq!(c.partition, "gpu");
        assert_eq!(c.max_concurrent, 2);
        assert_eq!(c.extra_args, vec!["--qos=x".to_string()]);
        let bad: toml::Table = "[executor.slurm]\nqueue = \"x\"\n".parse().unwrap();
        let e = resolve(Some((&bad, f)), &[]).unwrap_err().to_string();
        assert!(
            e.contains("p.toml") && e.contains("executor.slurm.queue"),
            "{e}"
        );
        let e = resolve(None, &["cpus_per_task=0".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cpus_per_task"), "{e}");
        let e = resolve(None, &["nodes=2".into()]).unwrap_err().to_string();
        assert!(e.contains("--slurm.nodes"), "{e}");
    }
}
