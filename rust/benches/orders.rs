//! Native figures of the order path: one market order through validation, risk and the bar
//! venue to its fill folded into the portfolio (with the bar that fills it), and the fold of
//! a run's events into its equity curve, round trips and positions.

use std::hint::black_box;

use _core::event::{flags, Event, Kind, Side, SCALE};
use _core::kernel::KernelCore;
use _core::orders::bar_venue::{BarVenue, FillAt};
use _core::orders::fees::{FeeModel, SlippageModel};
use _core::orders::path::{Engine, OrderPath};
use _core::orders::risk::{RiskEngine, RiskLimits};
use _core::orders::validation::Validation;
use _core::orders::{analyze, Portfolio};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const N: usize = 100_000;

fn bars(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let price = (100 + (i % 7) as i64) * SCALE;
            Event {
                instrument: 1,
                price,
                aux: price,
                order_id: price + SCALE,
                payload: price - SCALE,
                qty: 1_000 * SCALE,
                ..Event::new(Kind::Bar, 60_000_000_000 * (i as i64 + 1))
            }
        })
        .collect()
}

fn path() -> OrderPath {
    OrderPath::new(
        Validation {
            instruments: [1].into_iter().collect(),
        },
        RiskEngine::new(RiskLimits {
            max_position: Some(10 * SCALE),
            ..RiskLimits::default()
        }),
        BarVenue::new(
            FillAt::NextOpen,
            FeeModel {
                rate: 0.0001,
                ..FeeModel::default()
            },
            SlippageModel::default(),
            SCALE,
        ),
    )
}

/// Every bar: the order decided on the previous bar fills, then a new one is submitted.
fn run_orders(inputs: &[Event]) -> u64 {
    let mut core = KernelCore::new(inputs.to_vec(), 1, 65_536);
    core.subscribe(Kind::Bar as u8, true);
    let mut portfolio = Portfolio::new(1_000_000 * SCALE);
    let mut orders = path();
    let notify = [false; 256];
    let mut out = Vec::new();
    let mut id = 0;
    let mut order_ids = 0; // the path's own orders (a live gate's): none here
    loop {
        let Some(bar) = core.advance() else {
            if core.done() {
                break;
            }
            core.drain(); // the run's output, flushed as the kernel does
            continue;
        };
        let mut engine = Engine {
            core: &mut core,
            portfolio: &mut portfolio,
            notify: &notify,
            out: &mut out,
            order_ids: &mut order_ids,
        };
        orders.on_bar(&bar, &mut engine);
        id += 1;
        let side = if id % 2 == 1 { Side::Buy } else { Side::Sell };
        let submit = Event {
            instrument: 1,
            order_id: id,
            side: side as u8,
            qty: SCALE,
            flags: flags::MARKET,
            ..Event::new(Kind::OrderSubmit, 0)
        };
        orders.command(submit, &mut engine, &mut |_, _| None);
        orders.payloads.clear();
    }
    portfolio.fills
}

fn order_path(c: &mut Criterion) {
    let inputs = bars(N);
    let mut g = c.benchmark_group("orders");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("submit_to_fill", |b| {
        b.iter(|| assert_eq!(black_box(run_orders(&inputs)), N as u64 - 1))
    });
    g.finish();
}

fn fold(c: &mut Criterion) {
    // A run's output: 1M bars and a fill on every tenth.
    let n = 1_000_000;
    let mut events = Vec::with_capacity(n + n / 10);
    for (i, bar) in bars(n).into_iter().enumerate() {
        events.push(bar);
        if i % 10 == 9 {
            events.push(Event {
                instrument: 1,
                side: if i % 20 == 9 { Side::Buy } else { Side::Sell } as u8,
                price: bar.price,
                qty: 10 * SCALE,
                aux: SCALE / 100,
                ..Event::new(Kind::Fill, bar.ts)
            });
        }
    }
    for (seq, e) in events.iter_mut().enumerate() {
        e.seq = seq as u64 + 1;
    }
    let mut g = c.benchmark_group("orders");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(10);
    g.bench_function("analyze_1m_bars", |b| {
        b.iter_batched(
            || (),
            |()| black_box(analyze(black_box(&events), 100_000 * SCALE)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, order_path, fold);
criterion_main!(benches);
