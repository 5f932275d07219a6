//! Defaults of one-off commands' options: `stages/<kind>.toml`.

/// `given`, or the default of `key` in `stages/<kind>.toml` (the only place
/// defaults live; a missing or mistyped default is a bug in that file).
pub(crate) fn or_default<T: serde::de::DeserializeOwned>(
    given: Option<T>,
    kind: &str,
    key: &str,
) -> anyhow::Result<T> {
    if let Some(v) = given {
        return Ok(v);
    }
    let k = kvlab::stages::find(kind).expect("registered stage kind");
    let value = k
        .defaults()?
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("stages/{kind}.toml lacks {key}"));
    Ok(value.try_into()?)
}
