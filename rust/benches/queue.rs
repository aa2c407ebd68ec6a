//! Native queue throughput: one producer and four producers into one consumer, pushing one
//! event at a time or in batches; and a push+pop pair on one thread (the same operation the
//! Python benchmark times, so the cost of crossing into Python shows as its own number).

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use _core::event::{Event, Kind};
use _core::queue::channel;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const EVENTS: u64 = 1 << 20;

/// Moves `EVENTS` events from `producers` threads (pushing `batch` at a time) to this thread.
fn run(producers: u64, batch: usize) -> Duration {
    let (p, mut c) = channel(1 << 14).unwrap();
    let per = EVENTS / producers;
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|id| {
            let p = p.clone();
            thread::spawn(move || {
                let mut i = 0;
                while i < per {
                    let n = (batch as u64).min(per - i) as usize;
                    let done = if batch == 1 {
                        let ev = Event {
                            seq: i,
                            instrument: id as u32,
                            ..Event::new(Kind::Trade, 0)
                        };
                        usize::from(p.try_push(ev).is_ok())
                    } else {
                        p.push_with(n, |k| Event {
                            seq: i + k as u64,
                            instrument: id as u32,
                            ..Event::new(Kind::Trade, 0)
                        })
                        .unwrap()
                    };
                    if done == 0 {
                        // Full: let the consumer run (the machine may have fewer cores than
                        // threads here).
                        thread::yield_now();
                    }
                    i += done as u64;
                }
            })
        })
        .collect();
    let mut seen = 0u64;
    let mut sum = 0u64;
    // The consumer's loop: take what is there, up to 4096; when that drained the queue (fewer
    // came), wait for more.
    while seen < per * producers {
        let n = c.pop_with(4096, |e| sum = sum.wrapping_add(e.seq)).unwrap();
        seen += n as u64;
        if n < 4096 && seen < per * producers {
            c.wait(Some(Duration::from_millis(1)));
        }
    }
    let elapsed = start.elapsed();
    black_box(sum);
    for h in handles {
        h.join().unwrap();
    }
    elapsed
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    for (name, producers, batch) in [
        ("spsc_single", 1, 1),
        ("spsc_batch", 1, 256),
        ("mpsc4_single", 4, 1),
        ("mpsc4_batch", 4, 256),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run(producers, batch)).sum())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("queue");
    group.throughput(Throughput::Elements(1));
    let (p, mut q) = channel(1024).unwrap();
    let ev = Event::new(Kind::Trade, 1);
    group.bench_function("pair_same_thread", |b| {
        b.iter(|| {
            p.try_push(black_box(ev)).unwrap();
            black_box(q.try_pop().unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
