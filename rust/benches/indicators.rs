//! Native indicator throughput over a 1M-value series: the same work as the Python benchmark
//! `tests/bench/test_indicators.py` (`compute_fixed`), so the cost of crossing into Python
//! shows as its own number.

use std::hint::black_box;
use std::time::Duration;

use _core::event::SCALE;
use _core::indicators::{atr, bollinger, ema, rsi, sma, Sma};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const N: usize = 1 << 20;

/// A deterministic random walk around 100.0 in fixed point.
fn series(n: usize) -> Vec<i64> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut price = 100 * SCALE;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            price += (state % 20_000_001) as i64 - 10_000_000;
            price
        })
        .collect()
}

fn indicators(c: &mut Criterion) {
    let x = series(N);
    let high: Vec<i64> = x.iter().map(|v| v + SCALE / 10).collect();
    let low: Vec<i64> = x.iter().map(|v| v - SCALE / 10).collect();
    let mut g = c.benchmark_group("indicators");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("sma30", |b| b.iter(|| sma(black_box(&x), 30).unwrap()));
    g.bench_function("ema30", |b| b.iter(|| ema(black_box(&x), 30).unwrap()));
    g.bench_function("rsi14", |b| b.iter(|| rsi(black_box(&x), 14).unwrap()));
    g.bench_function("atr14", |b| {
        b.iter(|| atr(black_box(&high), black_box(&low), black_box(&x), 14).unwrap())
    });
    g.bench_function("bollinger20", |b| {
        b.iter(|| bollinger(black_box(&x), 20, 2.0).unwrap())
    });
    g.bench_function("sma30_update", |b| {
        b.iter(|| {
            let mut s = Sma::new(30).unwrap();
            let mut last = None;
            for &v in &x {
                last = s.update(black_box(v));
            }
            last
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = indicators
}
criterion_main!(benches);
