//! Parquet tables on the page: schema (names and dtypes), the row count and
//! the first rows, every cell shortened and escaped.

use super::html::Html;
use crate::error::Result;
use polars::prelude::*;
use std::path::Path;

/// What the page shows of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableView {
    pub rows: usize,
    /// (column name, dtype) in table order.
    pub schema: Vec<(String, String)>,
    /// The first rows, one string per cell.
    pub head: Vec<Vec<String>>,
}

/// Read the schema, the row count and the first `max_rows` rows (all when
/// `None`) of a Parquet file, cells cut at `cell_chars` characters.
pub fn read_table(path: &Path, max_rows: Option<usize>, cell_chars: usize) -> Result<TableView> {
    let lf = crate::analysis::scan(path)?;
    let rows = lf.clone().select([len()]).collect()?;
    let rows = rows.columns()[0].get(0)?.extract::<u64>().unwrap_or(0) as usize;
    let head = match max_rows {
        Some(n) => lf.limit(n as IdxSize).collect()?,
        None => lf.collect()?,
    };
    let schema = head
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.dtype().to_string()))
        .collect();
    let mut cells = Vec::with_capacity(head.height());
    for i in 0..head.height() {
        let mut row = Vec::with_capacity(head.width());
        for c in head.columns() {
            row.push(shorten(&cell(&c.get(i)?), cell_chars));
        }
        cells.push(row);
    }
    Ok(TableView {
        rows,
        schema,
        head: cells,
    })
}

/// One value as text: strings bare (not quoted), lists as `[a, b, …] (n)`.
fn cell(v: &AnyValue) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::List(s) => {
            const SHOWN: usize = 8;
            let items: Vec<String> = (0..s.len().min(SHOWN))
                .map(|i| s.get(i).map(|x| cell(&x)).unwrap_or_default())
                .collect();
            let more = if s.len() > SHOWN { ", …" } else { "" };
            format!("[{}{more}] ({})", items.join(", "), s.len())
        }
        other => other.str_value().into_owned(),
    }
}

/// At most `max` characters, an ellipsis marking the cut.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The table as HTML: a caption line, the schema, then the rows.
pub fn render(h: &mut Html, title: &str, t: &TableView) {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let shown = if t.head.len() < t.rows {
        format!("{}, first {} shown", plural(t.rows, "row"), t.head.len())
    } else {
        plural(t.rows, "row")
    };
    h.open("div", &[("class", "table")]);
    h.open("p", &[("class", "caption")])
        .elem("code", &[], title)
        .text(&format!(" — {shown}, {}", plural(t.schema.len(), "column")))
        .close("p");
    h.raw("<table class=\"schema\"><tr><th>column</th><th>dtype</th></tr>\n");
    for (name, dtype) in &t.schema {
        h.row("td", &[name.as_str(), dtype.as_str()]);
    }
    h.raw("</table>\n<div class=\"scroll\"><table class=\"data\">");
    let names: Vec<&str> = t.schema.iter().map(|(n, _)| n.as_str()).collect();
    h.row("th", &names);
    for r in &t.head {
        h.row("td", r);
    }
    h.raw("</table></div></div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::testing::{cleanup, tempdir};

    #[test]
    fn head_schema_and_count_of_a_parquet_file() {
        let dir = tempdir("report-table");
        let mut df = df!(
            "name" => ["a<b", "long text here", "c"],
            "n" => [1i64, 2, 3],
            "x" => [Some(0.5f64), None, Some(2.0)],
        )
        .unwrap();
        let ids = Series::new("ids".into(), [1u32, 2, 3]);
        let lists = Series::new(
            "ids".into(),
            [
                ids.clone(),
                ids.slice(0, 1),
                Series::new_empty("".into(), &DataType::UInt32),
            ],
        );
        df.with_column(lists.into_column()).unwrap();
        let path = dir.join("t.parquet");
        crate::table::write_parquet(&mut df, &path).unwrap();

        let one = read_table(&path, Some(1), 8).unwrap();
        let mut h = Html::new();
        render(&mut h, "t", &TableView { rows: 1, ..one });
        assert!(h.finish().contains(" — 1 row, 4 columns"));

        let t = read_table(&path, Some(2), 8).unwrap();
        assert_eq!(t.rows, 3);
        assert_eq!(t.head.len(), 2);
        assert_eq!(
            t.schema,
            vec![
                ("name".into(), "str".into()),
                ("n".into(), "i64".into()),
                ("x".into(), "f64".into()),
                ("ids".into(), "list[u32]".into()),
            ]
        );
        assert_eq!(t.head[0], vec!["a<b", "1", "0.5", "[1, 2, …"]);
        assert_eq!(t.head[1], vec!["long te…", "2", "", "[1] (1)"]);
        let all = read_table(&path, None, 100).unwrap();
        assert_eq!(all.head.len(), 3);
        assert_eq!(all.head[0][3], "[1, 2, 3] (3)");

        let mut h = Html::new();
        render(&mut h, "t.parquet", &t);
        let s = h.finish();
        assert!(s.contains("3 rows, first 2 shown, 4 columns"), "{s}");
        assert!(s.contains("<td>a&lt;b</td>") && !s.contains("a<b"), "{s}");
        assert!(s.contains("<td>list[u32]</td>"));
        cleanup(&dir);
    }

    #[test]
    fn shorten_counts_characters_not_bytes() {
        assert_eq!(shorten("ééééé", 5), "ééééé");
        assert_eq!(shorten("éééééé", 5), "éééé…");
    }
}
