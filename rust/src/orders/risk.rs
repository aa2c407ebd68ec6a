//! Pre-trade risk: limits checked on every order before it reaches the venue, and the kill
//! switch. Every decision is a `RISK` event (see `admf.risk` for its layout).

use std::collections::VecDeque;

use crate::event::{Event, Side, SCALE};

use super::portfolio::notional;
use super::units_text;

/// Nanoseconds per day: the daily loss limit's day is the UTC day.
pub const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// Reason codes of risk decisions (`aux` of a `RISK` event); `admf.risk.Reason` mirrors them.
#[repr(i64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Allowed = 0,
    MaxOrderQty = 1,
    MaxNotional = 2,
    MaxPosition = 3,
    OrderRate = 4,
    DailyLoss = 5,
    KillSwitch = 6,
}

/// Limits in fixed point; `None`: no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RiskLimits {
    pub max_order_qty: Option<i64>,
    pub max_notional: Option<i64>,
    pub max_position: Option<i64>,
    pub max_orders_per_second: Option<u32>,
    pub daily_loss_limit: Option<i64>,
    pub kill_switch: bool,
}

/// What the risk engine reads of the account and the market for one decision.
pub struct Exposure {
    /// Cash plus positions at the market's last prices.
    pub equity: i64,
    /// The position held in the order's instrument.
    pub held: i64,
    /// The market's last price of the order's instrument.
    pub last_price: Option<i64>,
}

#[derive(Clone, Debug, Default)]
pub struct RiskEngine {
    limits: RiskLimits,
    pub killed: bool,
    recent: VecDeque<i64>,
    day: Option<i64>,
    day_start_equity: i64,
    last_equity: i64,
}

impl RiskEngine {
    pub fn new(limits: RiskLimits) -> RiskEngine {
        RiskEngine {
            limits,
            killed: limits.kill_switch,
            ..RiskEngine::default()
        }
    }

    /// Whether a decision needs the account's equity (the daily loss limit).
    pub fn needs_equity(&self) -> bool {
        self.limits.daily_loss_limit.is_some() && !self.killed
    }

    /// The decision on one order submit at `now`, with the reason in words (empty when
    /// allowed).
    pub fn check(&mut self, order: &Event, now: i64, seen: &Exposure) -> (Reason, String) {
        if self.killed {
            return (
                Reason::KillSwitch,
                "kill switch is on: no new orders".into(),
            );
        }
        let l = self.limits;
        if let Some(max_loss) = l.daily_loss_limit {
            let day = now.div_euclid(NS_PER_DAY);
            let equity = seen.equity;
            if self.day != Some(day) {
                // The day starts from the last equity seen before it (the previous close of
                // the book, for daily bars), or from now on the first day.
                let start = if self.day.is_some() {
                    self.last_equity
                } else {
                    equity
                };
                self.day = Some(day);
                self.day_start_equity = start;
            }
            self.last_equity = equity;
            if self.day_start_equity - equity > max_loss {
                self.killed = true;
                let loss = (self.day_start_equity - equity) as f64 / SCALE as f64;
                return (
                    Reason::DailyLoss,
                    format!("daily loss {loss:.2} exceeds the limit; kill switch on"),
                );
            }
        }
        if l.max_order_qty.is_none()
            && l.max_notional.is_none()
            && l.max_position.is_none()
            && l.max_orders_per_second.is_none()
        {
            return (Reason::Allowed, String::new());
        }
        let price = if order.price != 0 {
            order.price
        } else {
            seen.last_price.unwrap_or(0)
        };
        let mut qty = order.qty;
        if qty == 0 && order.aux > 0 && price > 0 {
            // Sized by value: estimated at the last price.
            qty = (order.aux as i128 * SCALE as i128 / price as i128) as i64;
        }
        if let Some(max) = l.max_order_qty {
            if qty > max {
                return (
                    Reason::MaxOrderQty,
                    format!("order qty {} > max {}", units_text(qty), units_text(max)),
                );
            }
        }
        if let Some(max) = l.max_notional {
            let value = notional(price, qty);
            if value > max {
                return (
                    Reason::MaxNotional,
                    format!(
                        "notional {:.2} > max {}",
                        value as f64 / SCALE as f64,
                        units_text(max)
                    ),
                );
            }
        }
        if let Some(max) = l.max_position {
            let after = seen.held
                + if order.side == Side::Buy as u8 {
                    qty
                } else {
                    -qty
                };
            if after.abs() > max {
                return (
                    Reason::MaxPosition,
                    format!(
                        "position would be {}, max {}",
                        units_text(after),
                        units_text(max)
                    ),
                );
            }
        }
        if let Some(n) = l.max_orders_per_second {
            while self
                .recent
                .front()
                .is_some_and(|&t| t <= now - 1_000_000_000)
            {
                self.recent.pop_front();
            }
            if self.recent.len() >= n as usize {
                return (
                    Reason::OrderRate,
                    format!("more than {n} orders in one second"),
                );
            }
            self.recent.push_back(now);
        }
        (Reason::Allowed, String::new())
    }
}
