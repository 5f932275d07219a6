//! A stage's resolved parameters: defaults from `stages/<kind>.toml`,
//! overridden by the pipeline, then by the chosen preset. Only keys present
//! in the defaults file may be overridden; the merged table is deserialized
//! into the stage's strict struct.

use crate::error::{input_err, Error, Result};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Params {
    pub table: toml::Table,
    /// The pipeline file the overrides came from (for error messages).
    pub file: PathBuf,
    pub stage: String,
}

impl Params {
    /// Merge `overrides` over `defaults`, rejecting unknown names.
    /// `origin` is where the overrides were written (e.g. `stages.chunk`).
    pub fn merge(
        defaults: &toml::Table,
        overrides: &toml::Table,
        file: &Path,
        origin: &str,
        table: &mut toml::Table,
    ) -> Result<()> {
        for (name, value) in overrides {
            let Some(default) = defaults.get(name) else {
                let known: Vec<&str> = defaults.keys().map(|k| k.as_str()).collect();
                return Err(input_err(
                    file.display(),
                    format!("{origin}.{name}"),
                    format!("unknown parameter (known: {})", known.join(", ")),
                ));
            };
            if std::mem::discriminant(default) != std::mem::discriminant(value)
                && !(default.is_float() && value.is_integer())
            {
                return Err(input_err(
                    file.display(),
                    format!("{origin}.{name}"),
                    format!(
                        "expected a {} like the default `{default}`, found `{value}`",
                        default.type_str()
                    ),
                ));
            }
            let value = match (default, value) {
                (toml::Value::Float(_), toml::Value::Integer(i)) => toml::Value::Float(*i as f64),
                _ => value.clone(),
            };
            table.insert(name.clone(), value);
        }
        Ok(())
    }

    /// Deserialize into the stage's strict parameter struct.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(toml::Value::Table(self.table.clone())).map_err(|e| {
            let msg = e.message().replace('\n', " ");
            input_err(self.file.display(), format!("stages.{}", self.stage), msg)
        })
    }

    /// An error about one parameter of this stage.
    pub fn err(&self, field: &str, msg: impl std::fmt::Display) -> Error {
        input_err(
            self.file.display(),
            format!("stages.{}.{}", self.stage, field),
            msg,
        )
    }

    /// The parameters as JSON for the preimage, without the `unhashed` ones.
    /// A `device` parameter is hashed as its kind (`cuda`) and left out when
    /// it is `cpu`, so CPU keys are the ones made before it existed.
    pub fn to_json(&self, unhashed: &[&str]) -> serde_json::Value {
        let mut t = self.table.clone();
        for k in unhashed {
            t.remove(*k);
        }
        if let Some(toml::Value::String(d)) = t.remove("device") {
            // Unparseable names never get here: resolve rejects them.
            let spec = crate::device::DeviceSpec::parse(&d).ok();
            if let Some(kind) = spec.and_then(crate::device::DeviceSpec::key_kind) {
                t.insert("device".into(), kind.into());
            }
        }
        serde_json::to_value(&t).expect("TOML values map to JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(device: Option<&str>) -> Params {
        let mut table = toml::Table::new();
        table.insert("window".into(), 512.into());
        if let Some(d) = device {
            table.insert("device".into(), d.into());
        }
        Params {
            table,
            file: PathBuf::from("p.toml"),
            stage: "s".into(),
        }
    }

    /// `device = "cpu"` hashes like no device at all (keys from before
    /// devices stay valid); CUDA ordinals hash as their kind.
    #[test]
    fn device_is_hashed_as_its_kind_and_not_for_cpu() {
        let plain = params(None).to_json(&[]);
        assert_eq!(params(Some("cpu")).to_json(&[]), plain);
        if cfg!(feature = "cuda") {
            let a = params(Some("cuda")).to_json(&[]);
            assert_ne!(a, plain);
            assert_eq!(params(Some("cuda:3")).to_json(&[]), a);
        }
    }
}
