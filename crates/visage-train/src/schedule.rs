//! The learning rate at each step: linear warm-up, then constant, polynomial, multi-step or
//! cosine decay over the remaining steps.

use std::f64::consts::PI;

use crate::config::{ScheduleConfig, ScheduleKind};

/// The learning rate of step `step` (0-based) of `total` for base rate `lr`.
///
/// - warm-up: `lr (step + 1) / warmup_steps` for `step < warmup_steps`;
/// - then with `t = (step - warmup) / (total - warmup)` in `[0, 1)`:
///   poly `lr (1 - t)^power` (power 2), multistep `lr gamma^(milestones <= step)`,
///   cosine `min_lr + (lr - min_lr)(1 + cos(pi t))/2`, constant `lr`.
pub fn learning_rate(s: &ScheduleConfig, lr: f64, step: u64, total: u64) -> f64 {
    if step < s.warmup_steps {
        return lr * (step + 1) as f64 / s.warmup_steps as f64;
    }
    let span = total.saturating_sub(s.warmup_steps).max(1) as f64;
    let t = ((step - s.warmup_steps) as f64 / span).clamp(0.0, 1.0);
    match s.kind {
        ScheduleKind::Constant => lr,
        ScheduleKind::Poly => lr * (1.0 - t).powf(s.power.unwrap_or(2.0)),
        ScheduleKind::Multistep => {
            let passed = s.milestones.iter().filter(|&&m| m <= step).count() as i32;
            lr * s.gamma.unwrap_or(0.1).powi(passed)
        }
        ScheduleKind::Cosine => {
            let min = s.min_lr.unwrap_or(0.0);
            min + (lr - min) * (1.0 + (PI * t).cos()) / 2.0
        }
    }
}
