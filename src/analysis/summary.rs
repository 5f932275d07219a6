//! Every statistic in one long table `(table, key, metric, value)`, so a
//! single duckdb query shows all of them.

use crate::error::Result;
use polars::prelude::*;

/// Flatten `df` into long rows: for each row (named by its `key` column) and
/// each numeric column, one `(table, key, metric, value)` row.
pub fn long(table: &str, df: &DataFrame, key: &str) -> Result<DataFrame> {
    let keys = df.column(key)?.cast(&DataType::String)?;
    let keys = keys.str()?;
    let mut metrics = Vec::new();
    for c in df.columns() {
        if c.name().as_str() != key && c.dtype().is_primitive_numeric() {
            metrics.push((c.name().to_string(), c.cast(&DataType::Float64)?));
        }
    }
    let n = df.height() * metrics.len();
    let (mut k, mut m, mut v) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for row in 0..df.height() {
        for (name, values) in &metrics {
            k.push(keys.get(row).unwrap_or("").to_string());
            m.push(name.clone());
            v.push(values.f64()?.get(row));
        }
    }
    Ok(df!(
        "table" => vec![table; n],
        "key" => k,
        "metric" => m,
        "value" => v,
    )?)
}

/// Concatenate the long forms of `(table name, frame, key column)` parts.
pub fn summary(parts: &[(&str, &DataFrame, &str)]) -> Result<DataFrame> {
    let mut out = df!(
        "table" => Vec::<String>::new(),
        "key" => Vec::<String>::new(),
        "metric" => Vec::<String>::new(),
        "value" => Vec::<Option<f64>>::new(),
    )?;
    for (table, df, key) in parts {
        out.vstack_mut_owned(long(table, df, key)?)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_form_has_one_row_per_cell() {
        let df = df!(
            "task" => ["a", "b"],
            "n" => [1i64, 2],
            "mean" => [Some(0.5), None],
            "note" => ["x", "y"],
        )
        .unwrap();
        let l = long("task_stats", &df, "task").unwrap();
        assert_eq!(l.height(), 4);
        let s = |c: &str| -> Vec<String> {
            l.column(c)
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .flatten()
                .map(String::from)
                .collect()
        };
        assert_eq!(s("key"), ["a", "a", "b", "b"]);
        assert_eq!(s("metric"), ["n", "mean", "n", "mean"]);
        assert!(s("table").iter().all(|t| t == "task_stats"));
        let v: Vec<Option<f64>> = l.column("value").unwrap().f64().unwrap().iter().collect();
        assert_eq!(v, [Some(1.0), Some(0.5), Some(2.0), None]);

        let all = summary(&[("t1", &df, "task"), ("t2", &df, "task")]).unwrap();
        assert_eq!(all.height(), 8);
        assert_eq!(
            all.column("table").unwrap().str().unwrap().get(7),
            Some("t2")
        );
    }
}
