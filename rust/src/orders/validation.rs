//! The first stage of the order path: malformed orders are rejected before risk sees them.

use std::collections::BTreeSet;

use crate::event::{flags, Event, Kind, Side};

/// Knows the instruments of the run.
#[derive(Clone, Debug, Default)]
pub struct Validation {
    pub instruments: BTreeSet<u32>,
}

impl Validation {
    /// What is wrong with an order command, if anything.
    pub fn problem(&self, order: &Event) -> Option<String> {
        if order.kind != Kind::OrderSubmit as u8 {
            return None;
        }
        if order.side != Side::Buy as u8 && order.side != Side::Sell as u8 {
            return Some("side must be BUY or SELL".into());
        }
        if !self.instruments.contains(&order.instrument) {
            return Some(format!("unknown instrument {}", order.instrument));
        }
        if order.qty < 0 || (order.qty == 0 && order.aux <= 0) {
            return Some(
                "qty must be positive (or qty 0 with a positive value to size at fill)".into(),
            );
        }
        if order.flags & flags::MARKET == 0 && order.price <= 0 {
            return Some("a limit order needs a positive price".into());
        }
        None
    }
}
