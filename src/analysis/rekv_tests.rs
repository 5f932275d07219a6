//! Tests of the ReKV aggregation on synthetic rejections with known values.

use super::*;
use crate::analysis::rekv_testdata::{frame, single_rows, two_modes, Row};
use crate::analysis::testdata::write_fixture;
use crate::plot::testing::{cleanup, tempdir};

pub(crate) fn fcol(df: &DataFrame, name: &str) -> Vec<f64> {
    let c = df.column(name).unwrap().cast(&DataType::Float64).unwrap();
    c.f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect()
}

pub(crate) fn icol(df: &DataFrame, name: &str) -> Vec<i64> {
    let c = df.column(name).unwrap().cast(&DataType::Int64).unwrap();
    c.i64().unwrap().into_no_null_iter().collect()
}

pub(crate) fn scol(df: &DataFrame, name: &str) -> Vec<String> {
    let c = df.column(name).unwrap();
    c.str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap_or("").to_string())
        .collect()
}

pub(crate) fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
    }
}

fn summary(df: DataFrame) -> RekvAnalysis {
    rekv_summary(df.lazy(), Thresholds::seed()).unwrap()
}

fn rows_of(df: &DataFrame, mode: &str) -> DataFrame {
    df.clone()
        .lazy()
        .filter(col("mode").eq(lit(mode)))
        .collect()
        .unwrap()
}

#[test]
fn per_mode_statistics_and_verdicts() {
    let a = summary(two_modes());
    let m = &a.by_mode;
    assert_eq!(scol(m, "mode"), ["cross_model", "same_model"]);
    assert_eq!(icol(m, "n_rows"), [12, 12]);
    assert_eq!(icol(m, "n_rejections"), [3, 3]);
    assert_eq!(icol(m, "n_samples"), [2, 2]);
    assert_eq!(icol(m, "n_nonfinite_cos"), [0, 0]);
    assert_close(&fcol(m, "mean_cos_k"), &[0.3, 0.9]);
    assert_close(&fcol(m, "mean_cos_v"), &[0.3, 0.9]);
    assert_close(&fcol(m, "mean_cos"), &[0.3, 0.9]);
    assert_close(&fcol(m, "mean_l2_k"), &[1.4, 0.2]);
    // cross cos_k sorted: 0.1 ×3, 0.3 ×6, 0.5 ×3; linear quantiles at
    // positions 1.1, 2.75, 5.5, 8.25, 9.9 of 0..11
    assert_close(&fcol(m, "p10_cos_k")[..1], &[0.1]);
    assert_close(&fcol(m, "p25_cos_k")[..1], &[0.25]);
    assert_close(&fcol(m, "median_cos_k")[..1], &[0.3]);
    assert_close(&fcol(m, "p75_cos_k")[..1], &[0.35]);
    assert_close(&fcol(m, "p90_cos_k")[..1], &[0.5]);
    assert_close(&fcol(m, "p90_cos_v"), &[0.3, 0.9]);
    assert_eq!(scol(m, "verdict"), ["NO-GO", "GO"]);
    assert_eq!(scol(m, "verdict_k"), ["NO-GO", "GO"]);
    assert_eq!(scol(m, "verdict_v"), ["NO-GO", "GO"]);
    assert!(a.by_gamma.is_none());
}

#[test]
fn thresholds_are_parameters() {
    let t = Thresholds::new(0.95, 0.85).unwrap();
    let a = rekv_summary(two_modes().lazy(), t).unwrap();
    assert_eq!(scol(&a.by_mode, "verdict"), ["NO-GO", "CAUTION"]);
    assert_eq!(a.thresholds, t);
}

#[test]
fn boundaries_are_caution() {
    let a = summary(single_rows(&[
        ("a_at_go", 0.7, 0.7),
        ("b_above_go", 0.71, 0.71),
        ("c_at_caution", 0.5, 0.5),
        ("d_below_caution", 0.49, 0.49),
        ("e_k_go_v_nogo", 0.8, 0.2),
    ]));
    let m = &a.by_mode;
    assert_close(&fcol(m, "mean_cos")[..1], &[0.7]);
    assert_eq!(
        scol(m, "verdict"),
        ["CAUTION", "GO", "CAUTION", "NO-GO", "CAUTION"]
    );
    assert_eq!(
        scol(m, "verdict_k"),
        ["CAUTION", "GO", "CAUTION", "NO-GO", "GO"]
    );
    assert_eq!(
        scol(m, "verdict_v"),
        ["CAUTION", "GO", "CAUTION", "NO-GO", "NO-GO"]
    );
}

#[test]
fn per_layer_means_by_hand() {
    let l = summary(two_modes()).by_layer;
    assert_eq!(
        scol(&l, "mode"),
        ["cross_model", "cross_model", "same_model", "same_model"]
    );
    assert_eq!(icol(&l, "layer_target"), [0, 1, 0, 1]);
    assert_eq!(icol(&l, "n_rows"), [6, 6, 6, 6]);
    assert_eq!(icol(&l, "n_rejections"), [3, 3, 3, 3]);
    // cross layer 0: heads 0.1, 0.3; layer 1: heads 0.3, 0.5
    assert_close(&fcol(&l, "mean_cos_k"), &[0.2, 0.4, 0.9, 0.9]);
    assert_close(&fcol(&l, "mean_cos_v"), &[0.3, 0.3, 0.9, 0.9]);
    assert_close(&fcol(&l, "mean_cos"), &[0.25, 0.35, 0.9, 0.9]);
    assert_close(&fcol(&l, "mean_l2_k"), &[1.6, 1.2, 0.2, 0.2]);
    assert_eq!(scol(&l, "verdict"), ["NO-GO", "NO-GO", "GO", "GO"]);
}

#[test]
fn position_confidence_and_rank_breakdowns() {
    let a = summary(two_modes());
    let p = rows_of(&a.by_position, "cross_model");
    assert_eq!(icol(&p, "window_pos"), [0, 2]);
    assert_eq!(icol(&p, "n_rows"), [4, 8]);
    assert_eq!(icol(&p, "n_rejections"), [1, 2]);

    // conf 0.95, 0.3 and exactly 0.2 (a lower edge belongs to its bucket)
    let c = rows_of(&a.by_confidence, "cross_model");
    assert_eq!(icol(&c, "conf_bucket"), [1, 4]);
    assert_eq!(scol(&c, "conf_label"), ["[0.2, 0.4)", "[0.8, 1.0]"]);
    assert_eq!(icol(&c, "n_rejections"), [2, 1]);
    assert_close(&fcol(&c, "mean_cos_k"), &[0.3, 0.3]);

    // ranks 1, 4, 12
    let r = rows_of(&a.by_rank, "cross_model");
    assert_eq!(icol(&r, "rank_bucket"), [1, 3, 5]);
    assert_eq!(scol(&r, "rank_label"), ["1", "3-4", "10+"]);
    assert_eq!(icol(&r, "n_rejections"), [1, 1, 1]);
    assert_eq!(icol(&r, "n_rows"), [4, 4, 4]);
}

#[test]
fn out_of_range_confidence_and_rank() {
    let base = Row {
        mode: "m",
        sample: "s",
        round: 0,
        window_pos: 0,
        conf: 1.0,
        rank: 0,
        layer: 0,
        head: 0,
        cos_k: 0.5,
        cos_v: 0.5,
    };
    let rows = [
        base.clone(),
        Row {
            round: 1,
            conf: 1.2,
            rank: -3,
            ..base.clone()
        },
        Row {
            round: 2,
            conf: -0.1,
            rank: 10,
            ..base
        },
    ];
    let a = summary(frame(&rows));
    assert_eq!(icol(&a.by_confidence, "conf_bucket"), [-1, 4]);
    assert_eq!(
        scol(&a.by_confidence, "conf_label"),
        ["outside [0, 1]", "[0.8, 1.0]"]
    );
    assert_eq!(icol(&a.by_confidence, "n_rejections"), [2, 1]);
    assert_eq!(icol(&a.by_rank, "rank_bucket"), [-1, 0, 5]);
    assert_eq!(scol(&a.by_rank, "rank_label"), ["invalid", "0", "10+"]);
}

#[test]
fn rows_and_rejections_are_counted_apart() {
    // one rejection compared at 3 (layer, head) rows, another at 1
    let base = Row {
        mode: "m",
        sample: "s",
        round: 0,
        window_pos: 1,
        conf: 0.5,
        rank: 2,
        layer: 0,
        head: 0,
        cos_k: 0.6,
        cos_v: 0.6,
    };
    let rows = [
        base.clone(),
        Row {
            head: 1,
            ..base.clone()
        },
        Row {
            layer: 1,
            ..base.clone()
        },
        Row {
            sample: "t",
            ..base
        },
    ];
    let a = summary(frame(&rows));
    assert_eq!(icol(&a.by_mode, "n_rows"), [4]);
    assert_eq!(icol(&a.by_mode, "n_rejections"), [2]);
    assert_eq!(icol(&a.by_layer, "n_rows"), [3, 1]);
    assert_eq!(icol(&a.by_layer, "n_rejections"), [2, 1]);
}

#[test]
fn a_missing_layer_is_its_own_group() {
    let mut df = single_rows(&[("m", 0.6, 0.6), ("m", 0.8, 0.8)]);
    let layer = Column::new("layer_target".into(), [Some(3i64), None]);
    df.with_column(layer).unwrap();
    let l = summary(df).by_layer;
    assert_eq!(l.height(), 2);
    assert_eq!(icol(&l, "n_rejections"), [1, 1]);
}

#[test]
fn gamma_sweep_counts_rejections_per_run() {
    let tag = |g: i64| {
        two_modes()
            .lazy()
            .with_column(lit(g).alias("gamma"))
            .collect()
            .unwrap()
    };
    let mut both = tag(3);
    both.vstack_mut_owned(tag(5)).unwrap();
    let a = summary(both);
    // the runs reuse (sample, round, window_pos): gamma keeps them apart
    assert_eq!(icol(&a.by_mode, "n_rows"), [24, 24]);
    assert_eq!(icol(&a.by_mode, "n_rejections"), [6, 6]);
    let g = a.by_gamma.expect("a gamma column gives by_gamma");
    assert_eq!(icol(&g, "gamma"), [3, 3, 5, 5]);
    assert_eq!(
        scol(&g, "mode"),
        ["cross_model", "same_model", "cross_model", "same_model"]
    );
    assert_eq!(icol(&g, "n_rejections"), [3, 3, 3, 3]);
    assert_close(&fcol(&g, "mean_cos"), &[0.3, 0.9, 0.3, 0.9]);
    assert_eq!(scol(&g, "verdict"), ["NO-GO", "GO", "NO-GO", "GO"]);
    let names: Vec<&str> = g.get_column_names().iter().map(|n| n.as_str()).collect();
    assert!(!names.contains(&"mean_l2_k"), "{names:?}");
}

#[test]
fn distribution_bins_and_nonfinite_values() {
    let a = summary(two_modes());
    let d = a
        .distribution
        .clone()
        .lazy()
        .filter(
            col("mode")
                .eq(lit("cross_model"))
                .and(col("kv").eq(lit("K"))),
        )
        .collect()
        .unwrap();
    assert_eq!(icol(&d, "bin"), [55, 65, 75]);
    assert_eq!(icol(&d, "n_rows"), [3, 6, 3]);
    assert_close(&fcol(&d, "lo"), &[0.1, 0.3, 0.5]);
    assert_close(&fcol(&d, "hi"), &[0.12, 0.32, 0.52]);

    let a = summary(single_rows(&[
        ("m", 1.0, -1.0),
        ("m", f64::NAN, 0.0),
        ("z_all_nan", f64::NAN, f64::INFINITY),
    ]));
    assert_eq!(icol(&a.by_mode, "n_rows"), [2, 1]);
    assert_eq!(icol(&a.by_mode, "n_nonfinite_cos"), [1, 1]);
    let m = fcol(&a.by_mode, "mean_cos_k");
    assert_close(&m[..1], &[1.0]);
    assert!(m[1].is_nan(), "a group without finite cosines has no mean");
    assert_close(&fcol(&a.by_mode, "mean_cos")[..1], &[0.0]);
    // m: mean of (1 + -1) / 2 = 0 over the one row with both cosines finite
    assert_eq!(scol(&a.by_mode, "verdict"), ["NO-GO", "NO-DATA"]);
    let d = &a.distribution;
    assert_eq!(scol(d, "mode"), ["m", "m", "m"]);
    assert_eq!(scol(d, "kv"), ["K", "V", "V"]);
    // 1.0 is clamped into the last bin, -1.0 is the first
    assert_eq!(icol(d, "bin"), [99, 0, 50]);
}

#[test]
fn empty_table_gives_empty_breakdowns() {
    let a = summary(two_modes().head(Some(0)));
    assert_eq!(a.by_mode.height(), 0);
    assert_eq!(a.by_layer.height(), 0);
    assert_eq!(a.distribution.height(), 0);
    assert!(a.by_mode.column("verdict").is_ok());
}

#[test]
fn schema_errors_name_file_and_column() {
    let no_v = two_modes().drop("cos_v").unwrap();
    let e = rekv_summary(no_v.lazy(), Thresholds::seed())
        .unwrap_err()
        .to_string();
    assert!(e.contains("cos_v") && e.contains("missing column"), "{e}");

    let dir = tempdir("rekv-schema");
    let mut bad = two_modes();
    let conf_as_text = bad
        .column("draft_conf")
        .unwrap()
        .cast(&DataType::String)
        .unwrap();
    bad.with_column(conf_as_text).unwrap();
    let path = write_fixture(&dir, "rejections.parquet", bad);
    let Err(e) = load_rejections(&path) else {
        panic!("a text draft_conf column must be refused")
    };
    assert_eq!(e.exit_code(), 2);
    let e = e.to_string();
    assert!(
        e.contains("rejections.parquet") && e.contains("draft_conf") && e.contains("float"),
        "{e}"
    );

    let gamma_text = two_modes()
        .lazy()
        .with_column(lit("three").alias("gamma"))
        .collect()
        .unwrap();
    let path = write_fixture(&dir, "sweep.parquet", gamma_text);
    let Err(e) = load_rejections(&path) else {
        panic!("a text gamma column must be refused")
    };
    let e = e.to_string();
    assert!(e.contains("sweep.parquet") && e.contains("gamma"), "{e}");

    let ok = write_fixture(&dir, "ok.parquet", two_modes());
    let a = rekv_summary(load_rejections(&ok).unwrap(), Thresholds::seed()).unwrap();
    assert_eq!(icol(&a.by_mode, "n_rows"), [12, 12]);
    cleanup(&dir);
}
