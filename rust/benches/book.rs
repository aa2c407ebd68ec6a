//! Native figures of the order book: replay of a LOBSTER-like add/cancel/execute stream,
//! best bid/ask reads, matching incoming orders, and deep books (one order at each of 1M
//! distinct levels, added best-first and worst-first on both sides, and the restore of such a
//! book from its snapshot).

use std::hint::black_box;

use _core::book::synthetic::{lobster_like, CENT};
use _core::book::{Order, OrderBook};
use _core::event::{Event, Kind, Side, SCALE};
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

const LEVELS: usize = 1_000_000;

/// One order at each of `n` levels of `side`, in ascending or descending price order; bids
/// sit below asks so that nothing crosses.
fn deep_adds(side: Side, ascending: bool, n: usize) -> Vec<Event> {
    let base = if side == Side::Buy {
        0
    } else {
        (n as i64 + 1) * CENT
    };
    let id_base = if side == Side::Buy { 0 } else { n as i64 };
    (1..=n as i64)
        .map(|k| {
            let tick = if ascending { k } else { n as i64 + 1 - k };
            Event {
                kind: Kind::BookAdd as u8,
                order_id: id_base + k,
                side: side as u8,
                price: base + tick * CENT,
                qty: 100 * SCALE,
                ..Event::default()
            }
        })
        .collect()
}

fn deep(c: &mut Criterion) {
    let mut g = c.benchmark_group("book");
    g.sample_size(10);
    g.throughput(Throughput::Elements(LEVELS as u64));
    for (side, ascending, name) in [
        (Side::Buy, true, "deep_insert_bids_ascending"),
        (Side::Buy, false, "deep_insert_bids_descending"),
        (Side::Sell, true, "deep_insert_asks_ascending"),
        (Side::Sell, false, "deep_insert_asks_descending"),
    ] {
        let events = deep_adds(side, ascending, LEVELS);
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    let mut book = OrderBook::new(CENT).unwrap();
                    book.reserve(LEVELS).unwrap();
                    book
                },
                |book| book.apply_all(black_box(&events)).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }
    let mut book = OrderBook::new(CENT).unwrap();
    book.apply_all(&deep_adds(Side::Buy, false, LEVELS / 2))
        .unwrap();
    book.apply_all(&deep_adds(Side::Sell, true, LEVELS / 2))
        .unwrap();
    let snapshot = book.snapshot();
    g.bench_function("deep_restore", |b| {
        b.iter_batched_ref(
            || OrderBook::new(CENT).unwrap(),
            |book| book.restore(black_box(&snapshot)).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, replay, matching, deep);
criterion_main!(benches);
