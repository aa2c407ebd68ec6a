//! Native figures of the order book: replay of a LOBSTER-like add/cancel/execute stream,
//! best bid/ask reads, and matching incoming orders.

use std::hint::black_box;

use _core::book::synthetic::{lobster_like, CENT};
use _core::book::{Order, OrderBook};
use _core::event::{Side, SCALE};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const N: usize = 200_000;

fn replay(c: &mut Criterion) {
    let stream = lobster_like(N, 42);
    let mut g = c.benchmark_group("book");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("replay_lobster_like", |b| {
        b.iter_batched_ref(
            || {
                let mut book = OrderBook::new(CENT).unwrap();
                book.reserve(8_192).unwrap();
                book
            },
            |book| book.apply_all(black_box(&stream)).unwrap(),
            BatchSize::LargeInput,
        )
    });
    let mut book = OrderBook::new(CENT).unwrap();
    book.apply_all(&stream).unwrap();
    g.throughput(Throughput::Elements(1));
    g.bench_function("bbo", |b| b.iter(|| black_box(&book).bbo()));
    g.finish();
}

fn matching(c: &mut Criterion) {
    // Market orders of 3 lots against a deep book: each matches one or two resting orders.
    let stream = lobster_like(N, 42);
    let mut g = c.benchmark_group("book");
    const ORDERS: usize = 1_000;
    g.throughput(Throughput::Elements(ORDERS as u64));
    g.bench_function("match_market_orders", |b| {
        b.iter_batched_ref(
            || {
                let mut book = OrderBook::new(CENT).unwrap();
                book.apply_all(&stream).unwrap();
                (book, Vec::with_capacity(8 * ORDERS))
            },
            |(book, fills)| {
                for i in 0..ORDERS as i64 {
                    let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
                    let order = Order::market(1_000_000_000 + i, side, 300 * SCALE);
                    black_box(book.submit(&order, fills).unwrap());
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, replay, matching);
criterion_main!(benches);
