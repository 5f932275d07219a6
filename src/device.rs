//! The `device` stage parameter and `--device` flag: `cpu`, `cuda` or
//! `cuda:N`. One candle device per ordinal per process: candle refuses to mix
//! tensors of two `Device::new_cuda` calls, and a target and its draft model
//! must share one.

use std::collections::BTreeMap;
use std::sync::Mutex;

use candle_core::Device;

use crate::error::{other, Result};

/// What the parameter accepts, for messages.
pub const DEVICES: &str = "cpu, cuda or cuda:N";

/// A parsed device name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

impl DeviceSpec {
    /// `cpu`, `cuda` (ordinal 0) or `cuda:N`; the message says what is wrong,
    /// including a CUDA name given to a CPU-only build.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let spec = match s {
            "cpu" => DeviceSpec::Cpu,
            "cuda" => DeviceSpec::Cuda(0),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => DeviceSpec::Cuda(n),
                _ => return Err(format!("'{s}' is not one of {DEVICES}")),
            },
        };
        if spec != DeviceSpec::Cpu && !cfg!(feature = "cuda") {
            return Err(format!(
                "'{s}' needs a kvlab built with CUDA (`make cuda`); this build is CPU-only"
            ));
        }
        Ok(spec)
    }

    /// What goes into cache keys: the kind only (`cuda:0` and `cuda:1`
    /// compute the same artifact), and nothing for the CPU, so keys made
    /// before devices existed stay valid.
    pub fn key_kind(self) -> Option<&'static str> {
        match self {
            DeviceSpec::Cpu => None,
            DeviceSpec::Cuda(_) => Some("cuda"),
        }
    }
}

/// The candle device for a name (created once per ordinal).
pub fn open(name: &str) -> Result<Device> {
    static CUDA: Mutex<BTreeMap<usize, Device>> = Mutex::new(BTreeMap::new());
    match DeviceSpec::parse(name).map_err(other)? {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(n) => {
            let mut open = CUDA.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(d) = open.get(&n) {
                return Ok(d.clone());
            }
            let d = Device::new_cuda(n)?;
            open.insert(n, d.clone());
            Ok(d)
        }
    }
}

/// Adds the device kind to an item's (or any) preimage object, unless it is
/// the CPU (see `key_kind`). Unparseable names were rejected at resolve time.
pub fn add_to_preimage(preimage: &mut serde_json::Value, name: &str) {
    let kind = DeviceSpec::parse(name).ok().and_then(DeviceSpec::key_kind);
    if let (Some(kind), serde_json::Value::Object(m)) = (kind, preimage) {
        m.insert("device".into(), kind.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_only_cuda_reaches_keys() {
        assert_eq!(DeviceSpec::parse("cpu"), Ok(DeviceSpec::Cpu));
        for bad in ["gpu", "cuda:", "cuda:x", "CPU", ""] {
            let e = DeviceSpec::parse(bad).unwrap_err();
            assert!(e.contains(DEVICES), "{bad}: {e}");
        }
        let mut pre = serde_json::json!({ "a": 1 });
        add_to_preimage(&mut pre, "cpu");
        assert_eq!(pre, serde_json::json!({ "a": 1 }));
        if cfg!(feature = "cuda") {
            assert_eq!(DeviceSpec::parse("cuda:1"), Ok(DeviceSpec::Cuda(1)));
            add_to_preimage(&mut pre, "cuda:1");
            assert_eq!(pre, serde_json::json!({ "a": 1, "device": "cuda" }));
        } else {
            let e = DeviceSpec::parse("cuda:1").unwrap_err();
            assert!(e.contains("make cuda"), "{e}");
        }
    }
}
