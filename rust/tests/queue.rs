//! Queue semantics against `VecDeque` (proptest) and a multi-threaded stress test.

use std::collections::VecDeque;
use std::thread;
use std::time::Duration;

use _core::event::{Event, Kind};
use _core::queue::{channel, PopError, PushError};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Push(u64),
    PushSlice(Vec<u64>),
    Pop,
    PopMany(usize),
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u64>().prop_map(Op::Push),
        2 => prop::collection::vec(any::<u64>(), 0..20).prop_map(Op::PushSlice),
        4 => Just(Op::Pop),
        2 => (0usize..20).prop_map(Op::PopMany),
        1 => Just(Op::Close),
    ]
}

fn ev(order_id: u64) -> Event {
    Event {
        order_id: order_id as i64,
        ..Event::new(Kind::Trade, 0)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any sequence of operations on one thread behaves like a bounded VecDeque that can be
    /// closed: same elements, same order, back-pressure exactly at capacity.
    #[test]
    fn behaves_like_a_bounded_vecdeque(cap_bits in 0u32..5, ops in prop::collection::vec(op(), 0..200)) {
        let capacity = 1usize << cap_bits;
        let (p, mut c) = channel(capacity).unwrap();
        let mut model: VecDeque<Event> = VecDeque::new();
        let mut closed = false;
        for op in ops {
            match op {
                Op::Push(x) => {
                    let got = p.try_push(ev(x));
                    let want = if closed {
                        Err(PushError::Closed(ev(x)))
                    } else if model.len() == capacity {
                        Err(PushError::Full(ev(x)))
                    } else {
                        model.push_back(ev(x));
                        Ok(())
                    };
                    prop_assert_eq!(got, want);
                }
                Op::PushSlice(xs) => {
                    let events: Vec<Event> = xs.iter().map(|&x| ev(x)).collect();
                    let got = p.push_slice(&events);
                    if closed {
                        prop_assert!(got.is_err());
                    } else {
                        let room = capacity - model.len();
                        let n = room.min(events.len());
                        model.extend(&events[..n]);
                        prop_assert_eq!(got, Ok(n));
                    }
                }
                Op::Pop => {
                    let got = c.try_pop();
                    let want = match model.pop_front() {
                        Some(e) => Ok(e),
                        None if closed => Err(PopError::EndOfStream),
                        None => Err(PopError::Empty),
                    };
                    prop_assert_eq!(got, want);
                }
                Op::PopMany(max) => {
                    let mut out = Vec::new();
                    let got = c.pop_into(max, &mut out);
                    let n = max.min(model.len());
                    let want: Vec<Event> = model.drain(..n).collect();
                    if n == 0 && closed && max > 0 {
                        prop_assert_eq!(got, Err(PopError::EndOfStream));
                    } else {
                        prop_assert_eq!(got, Ok(n));
                    }
                    prop_assert_eq!(out, want);
                }
                Op::Close => {
                    prop_assert_eq!(p.close(), !closed);
                    closed = true;
                }
            }
            prop_assert_eq!(p.len(), model.len());
        }
    }
}

/// Several producers (single pushes, batches and blocking pushes), one consumer, millions of
/// events through a small ring: every producer's events arrive exactly once and in order.
#[test]
fn stress_many_producers_one_consumer() {
    const PRODUCERS: u64 = 4;
    const PER_PRODUCER: u64 = 1_000_000;
    let (p, mut c) = channel(1024).unwrap();
    let handles: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let p = p.clone();
            thread::spawn(move || {
                let make = |i: u64| Event {
                    instrument: id as u32,
                    seq: i,
                    ..Event::new(Kind::Trade, 0)
                };
                let mut i = 0;
                while i < PER_PRODUCER {
                    match id % 3 {
                        // One event at a time, spinning on back-pressure.
                        0 => match p.try_push(make(i)) {
                            Ok(()) => i += 1,
                            Err(PushError::Full(_)) => thread::yield_now(),
                            Err(PushError::Closed(_)) => panic!("closed early"),
                        },
                        // Batches of up to 64, taking what fits.
                        1 => {
                            let n = 64.min(PER_PRODUCER - i) as usize;
                            let done = p.push_with(n, |k| make(i + k as u64)).unwrap();
                            i += done as u64;
                            if done == 0 {
                                thread::yield_now();
                            }
                        }
                        // Blocking pushes.
                        _ => {
                            p.push_timeout(make(i), None).unwrap();
                            i += 1;
                        }
                    }
                }
            })
        })
        .collect();
    let mut next = vec![0u64; PRODUCERS as usize];
    let mut total = 0u64;
    let closer = {
        let p = p.clone();
        thread::spawn(move || {
            for h in handles {
                h.join().unwrap();
            }
            p.close();
        })
    };
    drop(p);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        match c.pop_into(1024, &mut buf) {
            Ok(0) => {
                c.wait(Some(Duration::from_millis(100)));
            }
            Ok(_) => {
                for e in &buf {
                    let id = e.instrument as usize;
                    assert_eq!(e.seq, next[id], "producer {id} out of order or duplicated");
                    next[id] += 1;
                    total += 1;
                }
            }
            Err(PopError::EndOfStream) => break,
            Err(PopError::Empty) => unreachable!(),
        }
    }
    closer.join().unwrap();
    assert_eq!(total, PRODUCERS * PER_PRODUCER);
    assert!(next.iter().all(|&n| n == PER_PRODUCER));
}
