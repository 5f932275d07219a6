//! Cache operations on synthetic K/V (no model): growth, truncate, gather,
//! splice, re-rotation bookkeeping and the file round trip.

use candle_core::{DType, Device, Tensor};

use super::{KvCache, Rope, BLOCK};

const H: usize = 2;
const D: usize = 4;

fn cache(layers: usize) -> KvCache {
    KvCache::new(
        layers,
        H,
        D,
        DType::F32,
        &Device::Cpu,
        Rope::new(D, 10_000.0),
    )
}

/// K/V whose entries encode (token, head, dim) so moves are checkable.
fn kv(t0: usize, t: usize, salt: f32) -> (Tensor, Tensor) {
    let mut k = Vec::new();
    for h in 0..H {
        for i in t0..t0 + t {
            for d in 0..D {
                k.push(salt + (i * 100 + h * 10 + d) as f32);
            }
        }
    }
    let k = Tensor::from_vec(k, (H, t, D), &Device::Cpu).unwrap();
    let v = (k.clone() * -1.0).unwrap();
    (k, v)
}

fn fill(c: &mut KvCache, t0: usize, t: usize) {
    let (k, v) = kv(t0, t, 0.0);
    let pos: Vec<i64> = (t0 as i64..(t0 + t) as i64).collect();
    for l in 0..c.n_layers() {
        c.append(l, &k, &v, &pos).unwrap();
    }
}

fn v3(t: &Tensor) -> Vec<Vec<Vec<f32>>> {
    t.to_vec3::<f32>().unwrap()
}

#[test]
fn append_grows_in_blocks_and_keeps_data() {
    let mut c = cache(2);
    fill(&mut c, 0, 3);
    for i in 3..BLOCK + 5 {
        fill(&mut c, i, 1);
    }
    assert_eq!(c.len(0), BLOCK + 5);
    assert_eq!(c.layers[0].k.as_ref().unwrap().dims()[1], 2 * BLOCK);
    let (want_k, _) = kv(0, BLOCK + 5, 0.0);
    assert_eq!(v3(&c.k(1).unwrap()), v3(&want_k));
    assert_eq!(c.positions(1), (0..(BLOCK + 5) as i64).collect::<Vec<_>>());
    assert_eq!(c.next_position(), (BLOCK + 5) as i64);
}

#[test]
fn truncate_then_append_overwrites_and_copies_survive() {
    let mut c = cache(1);
    fill(&mut c, 0, 5);
    let before = c.k(0).unwrap();
    c.truncate(3);
    assert_eq!(c.len(0), 3);
    let (k, v) = kv(3, 2, 0.5);
    c.append(0, &k, &v, &[3, 4]).unwrap();
    let got = v3(&c.k(0).unwrap());
    assert_eq!(got[1][3][0], 0.5 + 310.0);
    // the copy taken before the truncate is unaffected
    assert_eq!(v3(&before)[1][3][0], 310.0);
}

#[test]
fn gather_and_gather_heads() {
    let mut c = cache(2);
    fill(&mut c, 0, 6);
    c.gather(0, &[0, 2, 5]).unwrap();
    assert_eq!(c.len(0), 3);
    assert_eq!(c.len(1), 6);
    assert_eq!(c.positions(0), &[0, 2, 5]);
    assert_eq!(v3(&c.v(0).unwrap())[1][2][3], -(500.0 + 10.0 + 3.0));

    c.gather_heads(1, &[vec![1, 4], vec![0, 5]]).unwrap();
    assert!(c.is_per_head(1));
    assert_eq!(c.head_positions(1, 0), &[1, 4]);
    assert_eq!(c.head_positions(1, 1), &[0, 5]);
    let k = v3(&c.k(1).unwrap());
    assert_eq!(k[0][1][0], 400.0);
    assert_eq!(k[1][0][2], 12.0);
    assert!(c.gather(0, &[7]).is_err());
    assert!(c.gather_heads(1, &[vec![0], vec![0, 1]]).is_err());
}

#[test]
fn splice_inserts_at_offset() {
    let mut a = cache(1);
    fill(&mut a, 0, 4);
    let mut b = cache(1);
    let (k, v) = kv(10, 2, 0.0);
    b.append(0, &k, &v, &[10, 11]).unwrap();
    a.splice(1, &b).unwrap();
    assert_eq!(a.positions(0), &[0, 10, 11, 1, 2, 3]);
    let got = v3(&a.k(0).unwrap());
    let firsts: Vec<f32> = got[0].iter().map(|r| r[0]).collect();
    assert_eq!(firsts, vec![0.0, 1000.0, 1100.0, 100.0, 200.0, 300.0]);
    a.extend(&b).unwrap();
    assert_eq!(a.len(0), 8);
    assert!(a.splice(99, &b).is_err());
}

#[test]
fn rerotate_shifts_positions_and_keeps_values() {
    let mut c = cache(1);
    fill(&mut c, 0, 3);
    let v_before = v3(&c.v(0).unwrap());
    c.rerotate(7).unwrap();
    assert_eq!(c.positions(0), &[7, 8, 9]);
    assert_eq!(v3(&c.v(0).unwrap()), v_before);
    c.rerotate(-7).unwrap();
    let (k0, _) = kv(0, 3, 0.0);
    let diff = (c.k(0).unwrap() - k0)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() < 1e-3);
}

#[test]
fn save_load_round_trip_is_exact() {
    let mut c = cache(3);
    fill(&mut c, 0, 5);
    c.gather_heads(2, &[vec![0, 3], vec![1, 4]]).unwrap();
    let dir = std::env::temp_dir().join(format!("kvlab-kv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.safetensors.zst");
    c.save(&path).unwrap();
    let d = KvCache::load(&path, &Device::Cpu).unwrap();
    assert_eq!(d.n_layers(), 3);
    for l in 0..3 {
        assert_eq!(v3(&d.k(l).unwrap()), v3(&c.k(l).unwrap()));
        assert_eq!(v3(&d.v(l).unwrap()), v3(&c.v(l).unwrap()));
        for h in 0..H {
            assert_eq!(d.head_positions(l, h), c.head_positions(l, h));
        }
        assert_eq!(d.is_per_head(l), c.is_per_head(l));
    }
    assert_eq!(d.rope(), c.rope());
    // a corrupt file is an input error naming the file
    std::fs::write(&path, b"garbage").unwrap();
    let e = KvCache::load(&path, &Device::Cpu).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("c.safetensors.zst"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn f16_cache_stores_f16_and_round_trips() {
    let mut c = KvCache::new(2, H, D, DType::F16, &Device::Cpu, Rope::new(D, 10_000.0));
    fill(&mut c, 0, 7); // f32 K/V in; entries are small integers, exact in f16
    assert_eq!(c.k(1).unwrap().dtype(), DType::F16);
    let dir = std::env::temp_dir().join(format!("kvlab-kv16-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c16.safetensors.zst");
    c.save(&path).unwrap();
    let d = KvCache::load(&path, &Device::Cpu).unwrap();
    assert_eq!(d.dtype(), DType::F16);
    let (k, _) = kv(0, 7, 0.0);
    for l in 0..2 {
        let f = |t: Tensor| v3(&t.to_dtype(DType::F32).unwrap());
        assert_eq!(f(d.k(l).unwrap()), v3(&k));
        assert_eq!(f(d.v(l).unwrap()), f(c.v(l).unwrap()));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn clone_is_deep() {
    let mut a = cache(1);
    fill(&mut a, 0, 3);
    let b = a.clone();
    a.truncate(1);
    let (k, v) = kv(50, 2, 0.0);
    a.append(0, &k, &v, &[1, 2]).unwrap();
    assert_eq!(v3(&b.k(0).unwrap())[0][1][0], 100.0);
}
