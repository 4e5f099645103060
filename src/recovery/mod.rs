//! Delivery recovery: GitHub never retries a delivery it failed to make, so the cron reads each
//! hook's deliveries and has the failed ones sent again. `plan` holds the rules (pure); the
//! service's `recover` does the I/O.

pub mod plan;
