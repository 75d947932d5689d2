//! Examples live beside this crate as `cargo run -p visage-examples --example NAME`.
