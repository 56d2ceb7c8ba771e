//! The delivery workload the reliability tests and the chaos scenarios share: orders through the delivery
//! scenarios, each order's events shuffled and partly duplicated, orders interleaved, other channels mixed in; and
//! how to read the outcome at Shopee.

use std::collections::HashMap;

use delivery_status_consumer::event::{self, Parsed};
use delivery_status_consumer::process::furthest;
use domain::delivery::{DeliveryEvent, DeliveryState};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

use crate::support::*;

/// Scenarios an order may go through (before shuffling and duplicating).
pub fn scenario(i: usize, sn: &str, ordr: &str) -> Vec<Value> {
    let e = |t: &str| event(t, sn, ordr);
    match i % 6 {
        0 => vec![
            e("delivery.ready"),
            e("delivery.on_the_way"),
            e("delivery.delivered"),
        ],
        1 => vec![
            e("delivery.ready"),
            e("delivery.on_the_way"),
            canceled(sn, ordr, Some("buyer_unreachable")),
        ],
        2 => vec![
            e("delivery.ready"),
            canceled(sn, ordr, Some("buyer_unresponsive")),
        ],
        3 => vec![e("delivery.on_the_way"), e("delivery.delivered")],
        4 => vec![e("delivery.ready"), e("delivery.on_the_way")],
        _ => vec![
            e("delivery.ready"),
            e("delivery.on_the_way"),
            e("delivery.delivered"),
            canceled(sn, ordr, None),
        ],
    }
}

pub fn domain_event(v: &Value) -> DeliveryEvent {
    match event::parse(&serde_json::to_vec(v).unwrap()).unwrap() {
        Parsed::Shopee(e) => e.event,
        Parsed::OtherChannel => unreachable!(),
    }
}

/// The state Shopee's logistics status stands for.
pub fn shopee_state(v: &shopee_sandbox::OrderView) -> &'static str {
    match (v.logistics_status.as_str(), v.order.order_status.as_str()) {
        (_, "CANCELLED") if v.cancel_reason.is_some() => "cancelled",
        ("LOGISTICS_DELIVERY_FAILED", _) => "delivery_failed",
        ("LOGISTICS_DELIVERY_DONE", _) => "delivered",
        ("LOGISTICS_PICKUP_DONE", _) => "picked_up",
        ("LOGISTICS_REQUEST_CREATED", _) => "arranged",
        _ => "ready_to_ship",
    }
}

/// The steps (Shopee calls that change state) the events lead to from ready_to_ship, in order.
pub fn steps_for(events: &[DeliveryEvent]) -> usize {
    let mut state = DeliveryState::ReadyToShip;
    let mut n = 0;
    for e in events {
        for step in domain::delivery::plan(state, e) {
            state = step.target();
            n += 1;
        }
    }
    n
}

pub struct Workload {
    /// In send order.
    pub events: Vec<(String, Value)>,
    pub expected: HashMap<String, &'static str>,
    /// State-changing Shopee calls each order needs.
    pub steps: HashMap<String, usize>,
    pub orders: Vec<String>,
    pub shopee_events: usize,
}

/// `orders` orders through the scenarios, each order's events shuffled, 20% duplicated, all orders interleaved,
/// plus `noise` events of other channels.
pub fn workload(prefix: &str, orders: usize, noise: usize, seed: u64) -> Workload {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut per_order: Vec<(String, Vec<Value>)> = Vec::new();
    let mut expected = HashMap::new();
    let mut steps = HashMap::new();
    for i in 0..orders {
        let sn = format!("{prefix}{i:06}");
        let ordr = format!("ORDR-{sn}");
        let mut evs = scenario(i, &sn, &ordr);
        let dups: Vec<Value> = evs.iter().filter(|_| rng.random_bool(0.2)).cloned().collect();
        evs.extend(dups);
        evs.shuffle(&mut rng);
        let domain_events: Vec<_> = evs.iter().map(domain_event).collect();
        expected.insert(
            sn.clone(),
            furthest(DeliveryState::ReadyToShip, &domain_events).as_str(),
        );
        steps.insert(sn.clone(), steps_for(&domain_events));
        per_order.push((ordr, evs));
    }
    let orders_sn: Vec<String> = (0..orders).map(|i| format!("{prefix}{i:06}")).collect();
    // Interleave: repeatedly take the next event of a random order (each order's own order is kept).
    let mut cursors: Vec<(String, std::vec::IntoIter<Value>)> =
        per_order.into_iter().map(|(k, v)| (k, v.into_iter())).collect();
    let mut events = Vec::new();
    while !cursors.is_empty() {
        let i = rng.random_range(0..cursors.len());
        match cursors[i].1.next() {
            Some(v) => events.push((cursors[i].0.clone(), v)),
            None => {
                cursors.swap_remove(i);
            }
        }
    }
    let shopee_events = events.len();
    for n in 0..noise {
        let at = rng.random_range(0..=events.len());
        events.insert(at, (format!("ORDR-X{n}"), other_channel(n)));
    }
    Workload {
        events,
        expected,
        steps,
        orders: orders_sn,
        shopee_events,
    }
}

/// Per order, Shopee calls that changed its state, and calls Shopee refused.
pub fn journal_by_order(env: &Env) -> (HashMap<String, usize>, HashMap<String, usize>) {
    let mut changed = HashMap::new();
    let mut refused = HashMap::new();
    for j in env.sandbox.journal() {
        if ![SHIP_ORDER, UPDATE_TRACKING_STATUS, CANCEL_ORDER].contains(&j.api.as_str()) {
            continue;
        }
        let Some(sn) = j.request.get("order_sn").and_then(Value::as_str) else {
            continue;
        };
        let map = if j.error.is_empty() && j.refused_in_answer.is_none() {
            &mut changed
        } else {
            &mut refused
        };
        *map.entry(sn.to_owned()).or_insert(0) += 1;
    }
    (changed, refused)
}

/// The step a state-changing Shopee call asks for (API and, for tracking updates, the status).
fn call_step(j: &shopee_sandbox::JournalEntry) -> Option<(String, String)> {
    if ![SHIP_ORDER, UPDATE_TRACKING_STATUS, CANCEL_ORDER].contains(&j.api.as_str()) {
        return None;
    }
    let status = j
        .request
        .get("logistics_status")
        .and_then(Value::as_str)
        .unwrap_or("");
    Some((j.api.clone(), status.to_owned()))
}

/// The state-changing calls Shopee received, told apart.
#[derive(Debug, Default, Clone, Copy)]
pub struct Calls {
    /// Accepted: each moved an order one step forward.
    pub accepted: usize,
    /// Refused because they repeat a step the order had already taken (a replay after a kill: harmless).
    pub duplicates: usize,
    /// Refused although the order never took that step: a move Shopee does not allow from where the order stands
    /// (backwards, or past a final state) was sent.
    pub regressions: usize,
    /// Orders where Shopee accepted the same step twice (it never should).
    pub steps_applied_twice: usize,
}

pub fn shopee_calls(env: &Env) -> Calls {
    let mut taken: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut calls = Calls::default();
    for j in env.sandbox.journal() {
        let Some(step) = call_step(&j) else { continue };
        let Some(sn) = j.request.get("order_sn").and_then(Value::as_str) else {
            continue;
        };
        let steps = taken.entry(sn.to_owned()).or_default();
        if j.error.is_empty() && j.refused_in_answer.is_none() {
            calls.accepted += 1;
            if steps.contains(&step) {
                calls.steps_applied_twice += 1;
            }
            steps.push(step);
        } else if steps.contains(&step) {
            calls.duplicates += 1;
        } else {
            calls.regressions += 1;
        }
    }
    calls
}

/// Events whose effect the order's recorded state lacks: applied to that state now, they would still move it.
pub fn events_without_effect(w: &Workload, states: &HashMap<String, String>) -> usize {
    w.events
        .iter()
        .filter(|(_, v)| v["sales_channel"] == "shopee")
        .filter(|(_, v)| {
            let sn = v["external_order_id"].as_str().unwrap_or_default();
            let state = states
                .get(sn)
                .and_then(|s| DeliveryState::parse(s).ok())
                .unwrap_or(DeliveryState::ReadyToShip);
            !domain::delivery::plan(state, &domain_event(v)).is_empty()
        })
        .count()
}
