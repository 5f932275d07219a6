//! `kvlab verify`, `kvlab gc`, `kvlab fetch`.

use kvlab::store::Store;
use std::path::Path;

pub fn verify(store: &Path, repair: bool) -> anyhow::Result<i32> {
    let store = Store::open(store)?;
    let report = store.verify(repair)?;
    for (file, why) in &report.corrupt {
        println!("corrupt: {} ({why})", file.display());
    }
    for key in &report.removed {
        println!("removed: {key}");
    }
    println!(
        "verified {} files in {} objects: {} corrupt",
        report.files,
        report.objects,
        report.corrupt.len()
    );
    Ok(if report.corrupt.is_empty() || repair {
        0
    } else {
        1
    })
}

pub fn gc(store: &Path, dry_run: bool) -> anyhow::Result<i32> {
    let store = Store::open(store)?;
    let report = store.gc(dry_run)?;
    let verb = if dry_run { "would delete" } else { "deleted" };
    for key in &report.deleted {
        println!("{verb}: {key}");
    }
    println!(
        "{verb} {} objects ({} bytes), kept {}",
        report.deleted.len(),
        report.bytes_freed,
        report.kept
    );
    Ok(0)
}

pub fn fetch(store: &Path, pin: &str) -> anyhow::Result<i32> {
    let store = Store::open(store)?;
    let path = kvlab::data::fetch::fetch_pin(&store, pin)?;
    println!("{}", std::path::absolute(&path)?.display());
    Ok(0)
}
